"""The interactive page's stylesheet and script, inlined by ``hwsim.teach.html`` (kept apart from the Python).

``SCRIPT`` is two parts: ``HwsimWalk``, the Sv39/Sv48 walk written out in JavaScript as
:func:`hwsim.mmu.walker.walk` does it (checks, order, step codes and fault reasons by name), with
``HwsimWalk.walkMany(space, cases)`` for the tests; then the page: the drawing, the step-through,
quiz mode, and ``window.hwsimPage`` (the views and a walk hook) for the tests.

``HwsimWalk`` is a second implementation of the walk, which should be one with ``walker.walk``: a
browser runs only JavaScript, and the page must work from a file with nothing installed.  What keeps
the two one in behaviour is ``tests/test_teach_page.py``, which runs both on thousands of cases and
compares every step; a change to the walker's rules must be made here too.
"""

CSS = """
body { font: 13px/1.35 ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
       margin: 16px; color: #1d2330; background: #f7f8fa; }
h1 { font-size: 16px; margin: 0 0 4px; }
.sub { color: #5b6475; margin-bottom: 10px; }
.note { color: #5b6475; margin-bottom: 6px; }
details { margin: 8px 0; }
summary { cursor: pointer; color: #1f5fbf; }
.controls { margin: 6px 0; }
.controls input { font: inherit; width: 22ch; padding: 2px 4px; }
.controls input[type=checkbox] { width: auto; }
.controls label { margin-right: 1ch; }
button, select { font: inherit; }
#walk-note { margin-left: 10px; color: #5b6475; }
#steps { margin: 6px 0 12px; padding-left: 3ch; }
#steps li { margin: 4px 0; padding: 4px 8px; background: #fff; border: 1px solid #dde2ea; border-radius: 4px; }
#steps li.current { border-color: #f0a500; background: #fff6d9; }
#steps li .title { font-weight: bold; }
#steps li.result .line { font-weight: bold; }
table.va-split { border-collapse: collapse; margin: 3px 0; }
table.va-split td, table.va-split th { border: 1px solid #aab3c5; padding: 1px 8px; text-align: center; }
table.va-split th { background: #e8edf6; font-weight: normal; }
#quiz { background: #fff; border: 1px solid #aab3c5; border-radius: 6px; padding: 8px 12px; margin: 8px 0; }
#quiz pre { background: #f7f8fa; padding: 6px; overflow-x: auto; }
#quiz form div { margin: 4px 0; }
#quiz input { font: inherit; padding: 2px 4px; }
#verdict { margin: 6px 0; font-weight: bold; }
#verdict.right { color: #1e7b3a; }
#verdict.wrong { color: #c0392b; }
#explanation .why { color: #8a2a1f; }
#explanation .title { margin-top: 6px; font-weight: bold; }
pre.worked span.end { font-weight: bold; color: #8a2a1f; }
.part { margin: 4px 0; }
.part input { font: inherit; padding: 2px 4px; }
.part .mark.right { color: #1e7b3a; font-weight: bold; }
.part .mark.wrong { color: #c0392b; font-weight: bold; }
.part .why { color: #8a2a1f; margin-left: 2ch; }
.part pre.worked { color: #1d2330; background: #f7f8fa; padding: 4px; }
#canvas { position: relative; display: flex; gap: 70px; align-items: flex-start; margin-top: 8px; }
#links { position: absolute; left: 0; top: 0; pointer-events: none; overflow: visible; }
.column { display: flex; flex-direction: column; gap: 16px; align-items: flex-start; }
.column h2 { font-size: 12px; color: #5b6475; margin: 0; font-weight: normal; }
.table { background: #fff; border: 1px solid #aab3c5; border-radius: 6px; min-width: 30ch;
         box-shadow: 0 1px 2px rgba(0,0,0,.06); }
.table.missing { border: 1px dashed #c0392b; background: #fdf0ee; }
.table .head { padding: 4px 8px; background: #e8edf6; border-bottom: 1px solid #aab3c5; border-radius: 6px 6px 0 0; }
.table.missing .head { background: #f6d5cf; }
.row { padding: 3px 8px; border-top: 1px solid #eef0f4; white-space: nowrap; }
.row .l2 { padding-left: 2ch; }
.row .idx { color: #5b6475; }
.row.run { cursor: pointer; }
.row.pointer .kind { color: #1f5fbf; }
.row.leaf .kind { color: #1e7b3a; }
.row.super .kind { color: #8a4fbf; font-weight: bold; }
.row.problem { background: #fdecea; }
.row.problem .why { color: #c0392b; display: block; white-space: normal; max-width: 60ch; }
.row.decoy { color: #9aa1ad; background: repeating-linear-gradient(45deg, #fff, #fff 6px, #f3f4f7 6px, #f3f4f7 12px); }
.row.decoy .kind { color: #9aa1ad; }
.row.on-path { outline: 2px solid #f0a500; background: #fff6d9; }
.row.current { outline: 3px solid #d35400; }
.row .hit { padding-left: 2ch; color: #8a5a00; font-weight: bold; }
.run-entries { padding: 2px 8px 4px 4ch; background: #f3f6fb; color: #3b4456; }
.flags { margin-left: 1ch; }
.flags span { color: #c4c9d4; }
.flags span.on { color: #1d2330; font-weight: bold; }
.region { color: #5b6475; }
#legend { color: #5b6475; margin: 6px 0 6px; }
.key { padding: 0 4px; border-radius: 3px; }
.key.super { color: #8a4fbf; font-weight: bold; }
.key.problem { background: #fdecea; color: #c0392b; }
.key.decoy { background: #f3f4f7; color: #9aa1ad; }
.key.on-path { outline: 2px solid #f0a500; background: #fff6d9; }
.key.current { outline: 2px solid #d35400; }
path.link { fill: none; stroke: #1f5fbf; stroke-width: 1.4; opacity: .7; }
path.link.bad { stroke: #c0392b; stroke-dasharray: 4 3; }
path.link.back { stroke: #7a8294; stroke-dasharray: 2 3; }
path.link.on-path { stroke: #f0a500; stroke-width: 3; opacity: 1; }
"""

SCRIPT = r"""
"use strict";
// The walk, as hwsim.mmu.walker.walk does it: the same checks in the same order, the same step codes
// (tests/test_teach_page.py runs both on thousands of cases).  A space is the page data's "space":
// {mode, root, ram: [[base, size]], zero_fill, tables: {pa: {index: pte}}} with hex strings.
const HwsimWalk = (function () {
  const LEVELS = {Sv39: 3, Sv48: 4};
  const V = 1n, R = 2n, W = 4n, X = 8n, U = 16n, G = 32n, A = 64n, D = 128n;
  const HIGH = 0x3ffn << 54n, PPN_MASK = ((1n << 44n) - 1n) << 10n;
  const PAGE_CAUSE = {fetch: 12, load: 13, store: 15}, ACCESS_CAUSE = {fetch: 1, load: 5, store: 7};
  const cache = new WeakMap();

  function memoryOf(space) {  // the space's tables as BigInts, once
    let mem = cache.get(space);
    if (mem) return mem;
    const tables = new Map();
    for (const [pa, ptes] of Object.entries(space.tables)) {
      const t = new Map();
      for (const [i, v] of Object.entries(ptes)) t.set(Number(i), BigInt(v));
      tables.set(BigInt(pa), t);
    }
    const ram = space.ram.map(([base, size]) => [BigInt(base), BigInt(base) + BigInt(size)]);
    mem = {tables, ram, zero: !!space.zero_fill};
    cache.set(space, mem);
    return mem;
  }

  function readPte(mem, addr) {  // the PTE at addr, or null where there is no RAM (an access fault)
    if (!mem.ram.some(([lo, hi]) => lo <= addr && addr + 8n <= hi)) return null;
    const t = mem.tables.get(addr & ~0xfffn);
    if (t) return t.get(Number((addr & 0xfffn) >> 3n)) || 0n;
    if (mem.zero) return 0n;
    throw new Error("this page does not hold the frame at 0x" + (addr & ~0xfffn).toString(16));
  }

  function permission(pte, access, priv, sum, mxr) {  // walker.check_permission: a reason's name, or null
    if (pte & U) {
      if (priv === "S") {
        if (access === "fetch") return "USER_PAGE_FETCH";
        if (!sum) return "USER_PAGE_SUM";
      }
    } else if (priv === "U") return "USER_PAGE_FROM_U";
    if (access === "load") {
      if (!(pte & R || (mxr && pte & X))) return "NOT_READABLE";
    } else if (access === "store") {
      if (!(pte & W)) return "NOT_WRITABLE";
    } else if (!(pte & X)) return "NOT_EXECUTABLE";
    return null;
  }

  function flagString(pte) {
    return "DAGUXWRV".split("").map((c, i) => (pte >> BigInt(7 - i)) & 1n ? c : "-").join("");
  }

  // walk(space, va, access "fetch"|"load"|"store", priv "U"|"S", sum, mxr, ad "update"|"fault")
  function walk(space, va, access, priv, sum, mxr, ad) {
    const levels = LEVELS[space.mode];
    const vaBits = 12 + 9 * levels;
    va = BigInt.asUintN(64, BigInt(va));
    const res = {va, access, priv, sum: !!sum, mxr: !!mxr, ad, levels, root: BigInt(space.root), steps: [], ok: false,
                 global: false, ad_update: null};
    const steps = res.steps;
    function stop(reason, level, pteAddr, pte) {
      const accessFault = reason === "PTE_ACCESS";
      res.fault = {reason, level, pte_addr: pteAddr, pte, kind: accessFault ? "access fault" : "page fault",
                   cause: (accessFault ? ACCESS_CAUSE : PAGE_CAUSE)[access]};
      return res;
    }
    const top = va >> BigInt(vaBits - 1);
    if (top !== 0n && top !== (1n << BigInt(65 - vaBits)) - 1n) return stop("NON_CANONICAL", null, null, null);
    const mem = memoryOf(space);
    let a = res.root;
    for (let level = levels - 1; level >= 0; level--) {
      const shift = BigInt(12 + 9 * level);
      const table = a;
      const pteAddr = a + ((va >> shift) & 0x1ffn) * 8n;
      const step = (pte, code, arg) => steps.push({level, table, vpn: (va >> shift) & 0x1ffn, pte_addr: pteAddr, pte,
                                                 code, arg});
      const pte = readPte(mem, pteAddr);
      if (pte === null) { step(0n, "pte_access", null); return stop("PTE_ACCESS", level, pteAddr, null); }
      if (!(pte & V)) { step(pte, "invalid", null); return stop("INVALID", level, pteAddr, pte); }
      if (pte & W && !(pte & R)) { step(pte, "write_no_read", null); return stop("WRITE_NO_READ", level, pteAddr, pte); }
      if (pte & HIGH) { step(pte, "reserved_bits", null); return stop("RESERVED_BITS", level, pteAddr, pte); }
      if (pte & G) res.global = true;
      if (!(pte & (R | X))) {  // a pointer to the next level
        if (pte & (D | A | U)) { step(pte, "nonleaf_reserved", null); return stop("NONLEAF_RESERVED", level, pteAddr, pte); }
        if (level === 0) { step(pte, "no_leaf", null); return stop("NO_LEAF", level, pteAddr, pte); }
        a = ((pte & PPN_MASK) >> 10n) << 12n;
        step(pte, "pointer", a);
        continue;
      }
      // A leaf: permissions, then superpage alignment, then A/D.
      const denied = permission(pte, access, priv, sum, mxr);
      if (denied) { step(pte, "denied", access); return stop(denied, level, pteAddr, pte); }
      const ppn = (pte & PPN_MASK) >> 10n;
      if (level && ppn & ((1n << BigInt(9 * level)) - 1n)) {
        step(pte, "misaligned", null);
        return stop("MISALIGNED_SUPERPAGE", level, pteAddr, pte);
      }
      const updated = pte | A | (access === "store" ? D : 0n);
      let note = access + " allowed";
      if (updated !== pte) {
        if (ad === "fault") {
          const bit = pte & A ? "D" : "A";
          step(pte, "ad_fault", bit);
          return stop(bit === "A" ? "ACCESSED_CLEAR" : "DIRTY_CLEAR", level, pteAddr, pte);
        }
        res.ad_update = [pteAddr, pte, updated];
        note += "; hardware would set " + (updated & ~pte & A ? "A" : "") + (updated & ~pte & D ? "D" : "") +
                " (not written)";
      }
      step(pte, "leaf", note);
      const size = 1n << shift;
      Object.assign(res, {ok: true, pa: (ppn << 12n) | (va & (size - 1n)), level, page_size: size, pte_addr: pteAddr,
                          pte: updated});
      return res;
    }
    throw new Error("unreachable: the loop returns at level 0");
  }

  const hex = n => "0x" + n.toString(16);
  // A walk as plain JSON, in the shape the tests compare with the Python walker's.
  function toJSON(r) {
    const out = {ok: r.ok, steps: r.steps.map(s => [s.level, hex(s.pte_addr), hex(s.pte), s.code,
                                                    typeof s.arg === "bigint" ? hex(s.arg) : s.arg])};
    if (r.ok) Object.assign(out, {pa: hex(r.pa), level: r.level, pte_addr: hex(r.pte_addr), pte: hex(r.pte),
                                  global: r.global});
    else Object.assign(out, {reason: r.fault.reason, cause: r.fault.cause, level: r.fault.level});
    out.ad_update = r.ad_update ? r.ad_update.map(hex) : null;
    return out;
  }
  // cases: [[va, access, priv, sum, mxr, ad], ...] -> [toJSON(walk), ...] (the tests' hook)
  function walkMany(space, cases) { return cases.map(c => toJSON(walk(space, ...c))); }
  return {walk, walkMany, toJSON, permission, flagString, U, R, W, X, A, D, V, G, PPN_MASK, HIGH};
})();
// Answers to TLB and IOMMU questions, normalised as hwsim.teach.grade.normalise does (numbers in any base,
// entries in any order, "evicts"/"removes" optional), so that the page and `hwsim quiz grade` agree on
// what is right (tests/test_teach_page.py checks them on the same answers).
const HwsimAnswers = (function () {
  class Unreadable extends Error {}
  function number(text) {  // Python's int(text, 0), and plain decimal with leading zeros
    text = text.replace(/_/g, "");
    if (/^[0-9]+$/.test(text)) return BigInt(text);
    const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0|[1-9][0-9]*)$/.exec(text);
    if (!m) throw new Unreadable(JSON.stringify(text) + " is not a number (hex 0x..., or decimal)");
    return m[1] === "-" ? -BigInt(m[2]) : BigInt(m[2]);
  }
  function entries(text) {  // TLB entries "A1:0x161000 G:0x..." as a sorted list of "TAG:number"
    const out = new Set();
    for (const word of text.replace(/,/g, " ").split(/\s+/).filter(Boolean)) {
      const at = word.indexOf(":");
      const tag = at < 0 ? "" : word.slice(0, at).toUpperCase();
      if (at < 0 || !["G", "A1", "A2"].includes(tag)) {
        throw new Unreadable(JSON.stringify(word) + " is not a TLB entry (A1:0x161000, A2:..., G:...)");
      }
      out.add(tag + ":" + number(word.slice(at + 1).split("/")[0]));
    }
    return [...out].sort();
  }
  function normalise(quiz, part, text) {  // a string key: equal keys mean the same answer
    text = text.trim();
    const low = text.toLowerCase();
    if (low === "none" || low === "-") return "none";
    if (quiz === "tlb") {
      const words = low.replace(/,/g, " ").split(/\s+/).filter(Boolean);
      for (const filler of ["removes", "evicts"]) {
        const at = words.indexOf(filler);
        if (at >= 0) words.splice(at, 1);
      }
      const step = part.startsWith("step");
      if (step && words[0] === "hit") {
        if (words.length > 1) throw new Unreadable(JSON.stringify(text) + ": a hit evicts nothing: write 'hit' alone");
        return "hit";
      }
      if (step && words[0] === "miss") {
        const rest = words.slice(1);
        const none = rest.length === 0 || (rest.length === 1 && rest[0] === "none");
        return "miss " + (none ? "none" : "[" + entries(rest.join(" ")).join(" ") + "]");
      }
      if (!words.length || (words.length === 1 && words[0] === "none")) return "none";
      return "[" + entries(words.join(" ")).join(" ") + "]";
    }
    if (part === "pa") {
      if (low === "fault") return "fault";
      return "(" + low.replace(/,/g, " ").split(/\s+/).filter(Boolean).map(w => String(number(w))).join(" ") + ")";
    }
    if (["level", "cause", "iotval"].includes(part)) return "#" + number(low);
    if (part === "queued") {
      if (low !== "yes" && low !== "no") throw new Unreadable(JSON.stringify(text) + ": 'yes', 'no' or 'none'");
      return low;
    }
    return low;
  }
  // true, false, or "unreadable" (what the student wrote cannot be read as an answer to that part)
  function same(quiz, part, given, expected) {
    try { return normalise(quiz, part, given) === normalise(quiz, part, expected); }
    catch (err) { if (err instanceof Unreadable) return "unreadable"; throw err; }
  }
  return {normalise, same, Unreadable};
})();

(function () {
  const data = JSON.parse(document.getElementById("tree-data").textContent);
  const reasons = data.reasons;
  const $ = id => document.getElementById(id);
  const canvas = $("canvas");
  const svgNS = "http://www.w3.org/2000/svg";  // a namespace name, not a download
  const sizeNames = ["4 KiB", "2 MiB", "1 GiB", "512 GiB", "256 TiB"];
  const levelNames = ["4 KiB page", "2 MiB megapage", "1 GiB gigapage", "512 GiB terapage", "256 TiB petapage"];
  const flagNames = ["dirty", "accessed", "global", "user", "executable", "writable", "readable", "valid"];
  const hex = n => "0x" + BigInt(n).toString(16);
  const hex3 = n => "0x" + n.toString(16).padStart(3, "0");
  const hex16 = n => "0x" + BigInt.asUintN(64, BigInt(n)).toString(16).padStart(16, "0");
  let view = null, boxes = {}, links = [], linkEls = [], svg = null;

  function text(tag, cls, content) {
    const el = document.createElement(tag);
    if (cls) el.className = cls;
    el.textContent = content;
    return el;
  }
  function flags(f) {  // "DA-U--RV": every letter shown, the set ones dark, each named on hover
    const span = document.createElement("span");
    span.className = "flags";
    for (let i = 0; i < 8; i++) {
      const s = document.createElement("span");
      s.textContent = "DAGUXWRV"[i];
      s.title = "DAGUXWRV"[i] + " " + flagNames[i] + (f[i] !== "-" ? ": set" : ": clear");
      if (f[i] !== "-") s.className = "on";
      span.appendChild(s);
    }
    return span;
  }
  function end(start, size) { return "0x" + (BigInt(start) + BigInt(size) - 1n).toString(16); }
  function regionLabel(parts) {  // what the mapped range holds: one region, or each part with its addresses
    if (parts.length === 1) return parts[0].name || "no RAM or device";
    return parts.map(p => (p.name || "no RAM or device") + " " + p.pa + "-" + end(p.pa, p.size)).join(", ");
  }
  function levels() { return {Sv39: 3, Sv48: 4}[view.tree.mode] || 3; }

  // -- the drawing --------------------------------------------------------------------------------------
  function expandRun(row, e) {  // list a run's entries one by one under its row (click again to fold)
    if (row.sub) { row.sub.remove(); row.sub = null; row.classList.remove("open"); return; }
    const sub = document.createElement("div");
    sub.className = "run-entries";
    const shift = BigInt(12 + 9 * e.level);
    for (let k = 0; k < e.count; k++) {
      const va = BigInt(e.va) + (BigInt(k) << shift), frame = BigInt(e.target) + (BigInt(k) << shift);
      const r = text("div", "sub-row", "[" + hex3(e.index + k) + "] va " + hex(va) + "-" + end(va, 1n << shift) +
                     " \u2192 pa " + hex(frame) + "  PTE @ " + hex(BigInt(e.pte_addr) + 8n * BigInt(k)));
      r.dataset.index = e.index + k;
      sub.appendChild(r);
    }
    row.after(sub);
    row.sub = sub;
    row.classList.add("open");
    layoutLinks();
  }

  function drawTable(t, columns, counts) {
    const box = document.createElement("div");
    box.className = "table" + (t.missing ? " missing" : "");
    box.dataset.pa = t.pa;
    box.dataset.level = t.level;
    let head = "table " + t.pa + "  (" + t.valid + " valid";
    if (t.invalid_nonzero) head += ", " + t.invalid_nonzero + " non-zero with V=0";
    head += ")";
    if (t.missing) head = "table " + t.pa + ": not in RAM, a walk here is an access fault";
    box.appendChild(text("div", "head", head));
    columns[t.level].appendChild(box);
    boxes[t.pa] = boxes[t.pa] || box;
    counts.tables++;
    const rows = [];
    for (const e of t.entries) {
      const row = document.createElement("div");
      const superpage = e.kind !== "pointer" && e.level > 0;
      row.className = "row " + (e.kind === "pointer" ? "pointer" : "leaf") + (superpage ? " super" : "") +
                      (e.problem ? " problem" : "") + (e.count > 1 ? " run" : "");
      row.dataset.first = e.index;
      row.dataset.last = e.index + e.count - 1;
      row.dataset.level = e.level;
      const idx = e.count > 1 ? "[" + hex3(e.index) + "-" + hex3(e.index + e.count - 1) + "]" : "[" + hex3(e.index) + "]";
      const l1 = document.createElement("div"), l2 = document.createElement("div");
      l1.className = "l1";
      l2.className = "l2";
      l1.appendChild(text("span", "idx", (e.count > 1 ? "\u25b8 " : "") + idx + " "));
      l1.appendChild(text("span", "va", "va " + e.va + "-" + end(e.va, e.size)));
      if (e.kind === "pointer") {
        l2.appendChild(text("span", "kind", "\u2192 table " + e.target + (e.table && e.table.shared ? " (drawn above)" : "")));
        if (e.table) links.push([row, e.table.pa, !!e.problem]);
      } else {
        const what = e.count > 1 ? e.count + " \u00d7 " + sizeNames[e.level] :
                     superpage ? sizeNames[e.level] + " superpage" : sizeNames[e.level] + " page";
        l2.appendChild(text("span", "kind", what + " \u2192 pa " + e.target));
        if (e.regions !== undefined) l2.appendChild(text("span", "region", " [" + regionLabel(e.regions) + "]"));
      }
      l2.appendChild(flags(e.flags));
      row.appendChild(l1);
      row.appendChild(l2);
      if (e.problem) row.appendChild(text("span", "why", "\u26a0 " + e.problem));
      row.entry = e;
      if (e.count > 1) {
        row.title = "click to list the " + e.count + " entries of this run";
        row.addEventListener("click", () => expandRun(row, e));
      }
      rows.push([e.index, row]);
      counts.entries++;
    }
    // V=0 words that are not zero: a walk stops on them like on a zero word, but they are in RAM to be read.
    const ptes = (view.space.tables || {})[t.pa] || {};
    for (const [i, v] of Object.entries(ptes)) {
      const pte = BigInt(v), index = Number(i);
      if (pte & 1n) continue;
      const row = document.createElement("div");
      row.className = "row decoy";
      row.dataset.first = row.dataset.last = index;
      row.appendChild(text("span", "idx", "[" + hex3(index) + "] "));
      row.appendChild(text("span", "kind", "V=0: " + hex16(pte) + " (not valid; the other bits are left-overs)"));
      rows.push([index, row]);
    }
    rows.sort((a, b) => a[0] - b[0]);
    for (const [, row] of rows) box.appendChild(row);
    box.table = t;
    for (const e of t.entries) {
      if (e.table && !e.table.shared) drawTable(e.table, columns, counts);
    }
  }

  function layoutLinks() {
    if (!svg) return;
    const base = canvas.getBoundingClientRect();
    svg.setAttribute("width", canvas.scrollWidth);
    svg.setAttribute("height", canvas.scrollHeight);
    for (const [row, pa, bad] of links) {
      const target = boxes[pa];
      const a = row.getBoundingClientRect(), b = target.getBoundingClientRect();
      const back = b.left < a.right;  // a table drawn earlier (shared, or a loop): curve round on the right
      const x1 = a.right - base.left, y1 = a.top + a.height / 2 - base.top;
      const x2 = (back ? b.right : b.left) - base.left, y2 = b.top + 12 - base.top;
      let path = row.link;
      if (!path) {
        path = document.createElementNS(svgNS, "path");
        path.setAttribute("class", "link" + (bad ? " bad" : "") + (back ? " back" : ""));
        svg.appendChild(path);
        row.link = path;
        linkEls.push(path);
      }
      const dx = Math.max(30, (x2 - x1) / 2);
      const c2 = back ? x2 + 40 + (x1 - x2) : x2 - dx;
      path.setAttribute("d", "M" + x1 + "," + y1 + " C" + (x1 + (back ? 40 : dx)) + "," + y1 + " " + c2 + "," + y2 +
                             " " + x2 + "," + y2);
    }
  }

  function drawView() {
    canvas.textContent = "";
    boxes = {}; links = []; linkEls = []; svg = null;
    if (!view.tree) return;  // a TLB or IOMMU question: no page tables to draw
    const columns = [];
    for (let level = levels() - 1; level >= 0; level--) {
      const col = document.createElement("div");
      col.className = "column";
      col.innerHTML = "<h2>level " + level + " tables</h2>";
      canvas.appendChild(col);
      columns[level] = col;
    }
    const counts = {tables: 0, entries: 0};
    drawTable(view.tree.root, columns, counts);
    svg = document.createElementNS(svgNS, "svg");
    svg.id = "links";
    canvas.appendChild(svg);
    layoutLinks();
    document.body.dataset.tables = counts.tables;
    document.body.dataset.entries = counts.entries;
    document.body.dataset.links = linkEls.length;
  }
  window.addEventListener("resize", layoutLinks);
  $("drawing").addEventListener("toggle", layoutLinks);

  function rowAt(tablePa, index) {  // the row (entry, run or decoy) of a table's entry index, or null
    const box = boxes[hex(tablePa)];
    if (!box) return null;
    for (const r of box.querySelectorAll(":scope > .row")) {
      if (Number(r.dataset.first) <= index && index <= Number(r.dataset.last)) return r;
    }
    return null;
  }

  // Highlight the entries a VA's walk indexes, and name the frame it ends in (as before the step-through).
  const input = $("va");
  const note = $("walk-note");
  function highlight(value) {
    for (const el of document.querySelectorAll(".on-path")) el.classList.remove("on-path");
    for (const el of linkEls) el.classList.remove("on-path");
    for (const el of document.querySelectorAll(".row .hit")) el.remove();
    note.textContent = "";
    if (!value.trim() || !view.tree) return;
    let va;
    try { va = BigInt(value.trim()); } catch (err) { note.textContent = "not a number"; return; }
    let box = boxes[view.tree.root.pa];
    if (!box) return;
    for (let level = levels() - 1; level >= 0; level--) {
      const index = Number((va >> BigInt(12 + 9 * level)) & 0x1ffn);
      let row = null;
      for (const r of box.querySelectorAll(":scope > .row:not(.decoy)")) {
        if (Number(r.dataset.first) <= index && index <= Number(r.dataset.last)) row = r;
      }
      if (!row) { note.textContent = "level " + level + ": entry " + hex3(index) + " is not valid"; return; }
      row.classList.add("on-path");
      const e = row.entry;
      if (e.kind !== "pointer") {
        let what = "level " + level + ": entry " + hex3(index) + " is a " + sizeNames[level] + " leaf";
        if (e.problem) { note.textContent = what + " (" + e.problem + ")"; return; }
        // A run's row shows its first frame: the page this VA is in is the entry's own, further on.
        const shift = BigInt(12 + 9 * level);
        const frame = BigInt(e.target) + (BigInt(index - e.index) << shift);
        const pa = frame | (va & ((1n << shift) - 1n));
        const where = (level ? "superpage at 0x" : "frame 0x") + frame.toString(16);
        if (e.count > 1) what += ", number " + (index - e.index + 1) + " of a run of " + e.count;
        note.textContent = what + ": " + where + ", pa 0x" + pa.toString(16);
        row.appendChild(text("div", "hit", "\u21b3 [" + hex3(index) + "] \u2192 " + where));
        return;
      }
      if (row.link) row.link.classList.add("on-path");
      if (!e.table || e.table.missing) { note.textContent = "level " + level + ": " + (e.problem || "stop"); return; }
      box = boxes[e.table.pa];
    }
    note.textContent = "the level-0 entry is a pointer: there is no leaf (a page fault)";
  }

  // -- the step-through ------------------------------------------------------------------------------------
  const W = HwsimWalk;
  const bit = (pte, b) => (pte & b ? 1 : 0);
  function fields(pte) {  // report.pte_fields: every field by name
    const high = pte >> 54n ? "bits63:54=" + hex(pte >> 54n) + " " : "";
    return high + "PPN=" + hex((pte & W.PPN_MASK) >> 10n) + " RSW=" + ((pte >> 8n) & 3n) + " " +
           "DAGUXWRV".split("").map((c, i) => c + "=" + ((pte >> BigInt(7 - i)) & 1n)).join(" ");
  }
  function decision(s) {  // WalkStep.describe
    const leaf = "leaf (" + levelNames[s.level] + ") " + W.flagString(s.pte);
    switch (s.code) {
      case "pointer": return "pointer to the level-" + (s.level - 1) + " table at " + hex(s.arg);
      case "leaf": return leaf + ": " + s.arg;
      case "pte_access": return "PTE address is outside RAM -> access fault";
      case "invalid": return "V=0: not valid -> page fault";
      case "write_no_read": return "R=0 W=1: reserved encoding -> page fault";
      case "reserved_bits": return "reserved bits 63:54 = " + hex(s.pte >> 54n) + " -> page fault";
      case "nonleaf_reserved": return "non-leaf with " + W.flagString(s.pte & 0xd0n).replace(/-/g, "") +
                                      " set (reserved) -> page fault";
      case "no_leaf": return "pointer at the last level -> page fault";
      case "denied": return leaf + ": " + s.arg + " denied -> page fault";
      case "misaligned": return leaf + " with PPN " + hex((s.pte & W.PPN_MASK) >> 10n) + " not aligned to its size -> page fault";
      case "ad_fault": return leaf + ": " + s.arg + "=0 -> page fault (Svade)";
    }
    return s.code;
  }
  function permissionLines(r, s) {  // the permission check of a leaf, rule by rule
    const pte = s.pte, out = [];
    if (pte & W.U) {
      if (r.priv === "U") out.push("U=1: a user page, and the access is in U-mode: allowed");
      else if (r.access === "fetch") out.push("U=1: a user page; S-mode never fetches instructions from one: denied");
      else if (!r.sum) out.push("U=1: a user page; S-mode may load or store there only with SUM=1, and SUM=0: denied");
      else out.push("U=1: a user page; S-mode with SUM=1 may load or store there: allowed");
    } else if (r.priv === "U") out.push("U=0: a supervisor page; U-mode needs U=1: denied");
    else out.push("U=0: a supervisor page, and the access is in S-mode: allowed");
    if (out[0].endsWith("denied")) return out;
    if (r.access === "load") {
      const ok = bit(pte, W.R) || (r.mxr && bit(pte, W.X));
      out.push("a load needs R=1, or X=1 with MXR=1: R=" + bit(pte, W.R) + " X=" + bit(pte, W.X) + " MXR=" +
               (r.mxr ? 1 : 0) + ": " + (ok ? "allowed" : "denied"));
    } else if (r.access === "store") {
      out.push("a store needs W=1: W=" + bit(pte, W.W) + ": " + (bit(pte, W.W) ? "allowed" : "denied"));
    } else {
      out.push("a fetch needs X=1: X=" + bit(pte, W.X) + ": " + (bit(pte, W.X) ? "allowed" : "denied"));
    }
    return out;
  }
  function regionOf(space, pa) {
    const regions = space.regions;
    if (!regions) return undefined;
    for (const r of regions) if (BigInt(r.base) <= pa && pa < BigInt(r.base) + BigInt(r.size)) return r.name;
    return null;
  }

  // The walk as a list of steps: [{title, lines, step (the WalkStep it shows, if any)}].
  function stepsOf(r, space) {
    const out = [];
    const n = r.levels, vaBits = 12 + 9 * n;
    const cols = [["sign ext", "63.." + vaBits, r.va >> BigInt(vaBits)]];
    for (let i = n - 1; i >= 0; i--) cols.push(["vpn[" + i + "]", (20 + 9 * i) + ".." + (12 + 9 * i), (r.va >> BigInt(12 + 9 * i)) & 0x1ffn]);
    cols.push(["offset", "11..0", r.va & 0xfffn]);
    const split = {title: "Split the VA into its fields", kind: "split", table: cols, lines: [
      "va " + hex16(r.va) + ": " + r.access + " in " + r.priv + "-mode, SUM=" + (r.sum ? 1 : 0) + " MXR=" + (r.mxr ? 1 : 0),
    ]};
    if (space.satp) split.lines.unshift("satp " + hex16(space.satp) + ": root table at " + hex(r.root));
    const top = r.va >> BigInt(vaBits - 1);
    if (top !== 0n && top !== (1n << BigInt(65 - vaBits)) - 1n) {
      split.lines.push("bits 63.." + vaBits + " are not all copies of bit " + (vaBits - 1) +
                       ": the address is not canonical, nothing is read");
    } else split.lines.push("bits 63.." + vaBits + " are copies of bit " + (vaBits - 1) + ": canonical");
    out.push(split);
    for (const s of r.steps) {
      out.push({title: "Level " + s.level + ": the PTE's address", kind: "address", step: s, lines: [
        "PTE address = table + vpn[" + s.level + "]*8 = " + hex(s.table) + " + " + hex(s.vpn) + "*8 = " + hex(s.pte_addr),
      ].concat(s.code === "pte_access" ? ["that address is not in RAM: reading the PTE is an access fault",
                                           "-> " + decision(s)] : [])});
      if (s.code === "pte_access") break;
      const leaf = ["leaf", "denied", "misaligned", "ad_fault"].includes(s.code);  // reached the leaf checks
      const kind = !(s.pte & W.V) ? "not valid" : s.pte & W.W && !(s.pte & W.R) ? "a reserved encoding (W=1, R=0)" :
                   s.pte & (W.R | W.X) ? "a leaf (R or X set)" : "a pointer (R=X=0)";
      const lines = ["PTE = " + hex16(s.pte) + ": " + fields(s.pte), "V=" + bit(s.pte, W.V) + ", R=" + bit(s.pte, W.R) +
                     " W=" + bit(s.pte, W.W) + " X=" + bit(s.pte, W.X) + ": " + kind];
      if (!leaf) lines.push("-> " + decision(s));
      out.push({title: "Level " + s.level + ": decode the PTE", kind: "pte", step: s, lines});
      if (leaf) {
        const perm = permissionLines(r, s);
        const more = [];
        if (s.code !== "denied") {
          if (s.level) {
            const low = ((s.pte & W.PPN_MASK) >> 10n) & ((1n << BigInt(9 * s.level)) - 1n);
            more.push("a " + levelNames[s.level] + ": PPN's low " + 9 * s.level + " bits must be 0: " + hex(low) +
                      (low ? ": misaligned" : ": aligned"));
          }
          if (s.code !== "misaligned") {
            const needD = r.access === "store";
            more.push("A=" + bit(s.pte, W.A) + (needD ? " D=" + bit(s.pte, W.D) : "") + ": " +
                      (s.code === "ad_fault" ? "clear, and A/D updates are not done by hardware (Svade)" :
                       r.ad_update ? "the hardware sets them: the PTE becomes " + hex16(r.ad_update[2]) : "already set"));
          }
        }
        out.push({title: "Level " + s.level + ": check the leaf", kind: "check", step: s,
                  lines: perm.concat(more, ["-> " + decision(s)])});
      }
    }
    const result = {title: r.ok ? "The physical address" : "The exception", kind: "result", lines: []};
    if (r.ok) {
      const shift = 12 + 9 * r.level;
      const low = r.level === 0 ? "offset" : "va[" + (shift - 1) + ":0]";
      result.lines.push("pa = (PPN " + hex((r.pte & W.PPN_MASK) >> 10n) + " << 12) | " + low + " " +
                        hex(r.va & (r.page_size - 1n)) + " = " + hex(r.pa) + " (" + levelNames[r.level] + ")");
      const region = regionOf(space, r.pa);
      if (region !== undefined) result.lines.push(region ? "pa " + hex(r.pa) + " is in '" + region + "'" :
        "pa " + hex(r.pa) + " is neither RAM nor a device: the access itself would be an access fault");
    } else {
      const f = r.fault;
      result.lines.push(r.access + " " + f.kind + " (cause " + f.cause + ")" + (f.level === null ? "" : " at level " + f.level) +
                        ": " + reasons[f.reason]);
    }
    out.push(result);
    return out;
  }

  let steps = [], shown = 0, current = null;
  function readControls() {
    let va;
    try { va = BigInt(input.value.trim()); } catch (err) { return null; }
    if (!input.value.trim()) return null;
    return [BigInt.asUintN(64, va), $("access").value, $("priv").value, $("sum").checked, $("mxr").checked, $("ad").value];
  }
  function recompute(keep) {  // walk again; keep: stay at the step shown (a selector changed, not the VA)
    highlight(input.value);
    const c = readControls();
    steps = [];
    current = null;
    if (c && view.space) {
      try { current = W.walk(view.space, ...c); steps = stepsOf(current, view.space); }
      catch (err) { steps = [{title: "Cannot walk", kind: "error", lines: [String(err.message)]}]; }
    }
    shown = !steps.length ? 0 : keep ? Math.min(Math.max(shown, 1), steps.length) : 1;
    showSteps();
  }
  function showSteps() {
    const list = $("steps");
    list.textContent = "";
    for (const el of document.querySelectorAll(".row.current")) el.classList.remove("current");
    steps.slice(0, shown).forEach((st, n) => {
      const li = document.createElement("li");
      li.className = "step " + st.kind + (n === shown - 1 ? " current" : "");
      li.dataset.kind = st.kind;
      li.appendChild(text("div", "title", st.title));
      if (st.table) {
        const tbl = document.createElement("table");
        tbl.className = "va-split";
        for (const k of [1, 0, 2]) {
          const tr = document.createElement("tr");
          for (const col of st.table) tr.appendChild(text(k === 0 ? "th" : "td", "", k === 2 ? hex(col[2]) : col[k]));
          tbl.appendChild(tr);
        }
        li.appendChild(tbl);
      }
      for (const line of st.lines) li.appendChild(text("div", "line", line));
      list.appendChild(li);
    });
    const last = steps[shown - 1];
    if (last && last.step) {
      const s = last.step, row = rowAt(s.table, Number(s.vpn));
      if (row) row.classList.add("current");
    }
    $("step-count").textContent = steps.length ? "step " + shown + " of " + steps.length : "type a VA to walk";
    $("back").disabled = shown <= 1;
    $("next").disabled = shown >= steps.length;
    const b = document.body.dataset;
    b.step = shown;
    b.steps = steps.length;
    b.outcome = !current ? "" : current.ok ? "pa " + hex(current.pa) : "fault " + current.fault.cause + " " + current.fault.reason;
  }
  $("next").addEventListener("click", () => { if (shown < steps.length) { shown++; showSteps(); } });
  $("back").addEventListener("click", () => { if (shown > 1) { shown--; showSteps(); } });
  $("all").addEventListener("click", () => { shown = steps.length; showSteps(); });
  input.addEventListener("input", () => recompute(false));
  document.addEventListener("keydown", ev => {  // the arrow keys step too, when not typing
    if (ev.target.closest && ev.target.closest("input, select, textarea") || !$("walk-panel").open) return;
    if (ev.key === "ArrowRight") $("next").click();
    else if (ev.key === "ArrowLeft") $("back").click();
  });
  $("walk-panel").addEventListener("toggle", () => {  // a quiz's panel opens on the exercise's access
    if ($("walk-panel").open && data.kind === "quiz" && !input.value) setControls(view.start);
  });
  for (const id of ["access", "priv", "sum", "mxr", "ad"]) $(id).addEventListener("change", () => recompute(true));

  function setControls(start) {
    input.value = start ? start.va : "";
    if (start) {
      $("access").value = start.access;
      $("priv").value = start.priv;
      $("sum").checked = start.sum;
      $("mxr").checked = start.mxr;
      $("ad").value = start.ad;
    }
    recompute();
  }

  // -- quiz mode ---------------------------------------------------------------------------------------------
  function rewriteOf(answer) {  // the PTE rewrite given: null (none), [addr, value], or "unreadable"
    const addr = $("ans-pte").value.trim().toLowerCase(), value = $("ans-new").value.trim().toLowerCase();
    if ((addr === "" || addr === "none") && (value === "" || value === "none")) return null;
    try { return [BigInt(addr), BigInt(value)]; } catch (err) { return "unreadable"; }
  }
  function rewriteRight(a, given) {
    if (a.rewrite === null) return given === null;
    return Array.isArray(given) && given[0] === BigInt(a.rewrite[0]) && given[1] === BigInt(a.rewrite[1]);
  }
  function explainWrong(q, kind, pa, cause, level, rewrite) {  // lines saying what is wrong, then the worked walk
    const a = q.answer, out = [];
    const lvl = a.level === null ? "none" : String(a.level);
    if (a.result === "ok") {
      if (kind !== "pa") out.push("The access translates: no exception. The model answer is " + a.line + ".");
      else if (pa === null) out.push("Give the physical address the access reaches.");
      else if (pa === BigInt(a.pa)) out.push("The physical address is right.");
      else {
        const bits = 12n + 9n * BigInt(a.level), diff = pa ^ BigInt(a.pa), offset = "va[" + (bits - 1n) + ":0]";
        out.push("The physical address is " + a.pa + " (" + levelNames[a.level] + "), not " + hex(pa) + ".");
        if ((diff & ((1n << bits) - 1n)) === 0n) out.push("Your offset (" + offset + ") is right, your frame is not: it is the leaf PTE's PPN.");
        else if (bits > 12n && (diff & 0xfffn) === 0n) out.push("Your low 12 bits are right, but the leaf is a superpage: its offset is " +
          offset + ", and only the PPN's bits above " + (bits - 1n) + " name the frame.");
        else if (diff >> bits === 0n) out.push("Your frame is right, your offset is not: it is " + offset + ".");
        else out.push("Both the frame (the leaf PTE's PPN) and the offset are wrong.");
      }
      if (kind === "pa" && !rewriteRight(a, rewrite)) {
        out.push(a.rewrite === null ? "No PTE is rewritten: " + a.rewrite_hint + "." :
                 "The PTE rewrite is " + a.rewrite.join(" -> ") + ": " + a.rewrite_hint + "." +
                 (rewrite === "unreadable" ? " (Yours cannot be read: give an address and a value, in hex or decimal.)" : ""));
      }
    } else {
      const what = a.kind + " (cause " + a.cause + ")" + (a.level === null ? "" : " at level " + a.level) + ": " + a.message;
      if (kind !== "fault") out.push("The access does not translate: it raises a " + what + ".");
      else {
        if (cause !== a.cause) out.push("The cause is " + a.cause + ", not " + (cause === null ? "(none given)" : cause) +
                                        ": a " + a.kind + " on a " + document.body.dataset.qaccess + " is cause " + a.cause + ".");
        if (level !== lvl) out.push("The walk stops " + (a.level === null ? "before reading any PTE (the VA is not canonical)" :
                                    "at level " + a.level) + ", not " + (level === "" ? "(no level given)" : "level " + level) + ".");
        out.push("The exception: " + what + ".");
      }
    }
    return out;
  }
  function check(ev) {
    ev.preventDefault();
    const q = view.question;
    const kind = $("kind-fault").checked ? "fault" : "pa";
    const verdict = $("verdict"), explanation = $("explanation");
    explanation.textContent = "";
    let pa = null, cause = null, level = $("ans-level").value.trim().toLowerCase();
    try {
      if (kind === "pa") pa = BigInt($("ans-pa").value.trim());
      else {
        const c = $("ans-cause").value.trim();
        cause = c ? Number(BigInt(c)) : null;
        if (/^(0x)?[0-9a-f]+$/.test(level)) level = String(Number(BigInt(level)));
      }
    } catch (err) {
      verdict.className = "wrong";
      verdict.textContent = "That is not a number (hex 0x..., or decimal).";
      document.body.dataset.verdict = "unreadable";
      return;
    }
    if (kind === "pa" && !$("ans-pa").value.trim()) pa = null;
    const a = q.answer;
    const lvl = a.level === null ? "none" : String(a.level);
    const rewrite = rewriteOf();
    const right = a.result === "ok" ? kind === "pa" && pa !== null && pa === BigInt(a.pa) && rewriteRight(a, rewrite)
                                    : kind === "fault" && cause === a.cause && level === lvl;
    verdict.className = right ? "right" : "wrong";
    verdict.textContent = right ? "Right: " + a.line + "." : "Not right.";
    document.body.dataset.verdict = right ? "right" : "wrong";
    if (!right) {
      for (const line of explainWrong(q, kind, pa, cause, level, rewrite)) explanation.appendChild(text("div", "why", line));
    }
    explanation.appendChild(text("div", "title", "The walk, step by step (hwsim's walker):"));
    const pre = document.createElement("pre");
    pre.className = "worked";
    q.worked.forEach((line, n) => {  // the decisions that end the walk in bold
      const end = /-> .*(fault|allowed)|^pa = |^(fetch|load|store) (page|access) fault/.test(line.trim());
      pre.appendChild(text("span", end ? "end" : "", line + (n < q.worked.length - 1 ? "\n" : "")));
    });
    explanation.appendChild(pre);
    const open = text("button", "", "Step through it in the walk panel");
    open.type = "button";
    open.id = "step-through";
    open.addEventListener("click", () => { $("walk-panel").open = true; setControls(view.start); });
    explanation.appendChild(open);
  }

  // TLB and IOMMU questions: a field per part, each checked as `hwsim quiz grade` would.
  function showParts(q) {
    const how = $("how"), box = $("parts");
    how.textContent = "";
    for (const line of q.how) how.appendChild(text("div", "note", line));
    box.textContent = "";
    for (const p of q.parts) {
      const row = document.createElement("div");
      row.className = "part";
      const label = text("label", "", p.name + ": ");
      const field = document.createElement("input");
      field.id = "part-" + p.name;
      field.size = 40;
      field.spellcheck = false;
      label.appendChild(field);
      row.appendChild(label);
      row.appendChild(text("span", "mark", ""));
      row.appendChild(text("div", "why", ""));
      box.appendChild(row);
    }
    $("score").textContent = "";
  }
  function checkParts(ev) {
    ev.preventDefault();
    const q = view.question;
    let right = 0;
    const shown = new Set();
    for (const p of q.parts) {
      const field = $("part-" + p.name), row = field.closest(".part");
      const given = field.value.trim();
      const verdict = given ? HwsimAnswers.same(q.quiz, p.name, given, p.expected) : "unanswered";
      const mark = row.querySelector(".mark"), why = row.querySelector(".why");
      why.textContent = "";
      row.dataset.verdict = verdict === true ? "right" : verdict === false ? "wrong" : verdict;
      mark.className = "mark " + (verdict === true ? "right" : "wrong");
      mark.textContent = verdict === true ? " \u2714 right" : verdict === "unanswered" ? " \u2718 not answered" :
                         verdict === "unreadable" ? " \u2718 cannot be read as an answer" : " \u2718 wrong";
      if (verdict === true) { right++; continue; }
      if (verdict === "unanswered") continue;  // left blank: nothing given away, the student may go on
      why.appendChild(text("div", "", "expected '" + p.expected + "'" + (given ? ", you wrote '" + given + "'" : "")));
      if (p.hint) why.appendChild(text("div", "", p.hint));
      const lines = p.why.join("\n");
      if (lines && !shown.has(lines)) {  // each explanation once
        shown.add(lines);
        why.appendChild(text("pre", "worked", lines));
      }
    }
    const all = right === q.parts.length;
    $("score").textContent = right + " of " + q.parts.length + " parts right";
    $("verdict").className = all ? "right" : "wrong";
    $("verdict").textContent = all ? "Right: every part." : "Not right: " + (q.parts.length - right) + " of " +
                               q.parts.length + " parts.";
    document.body.dataset.verdict = all ? "right" : "wrong";
    document.body.dataset.score = right + "/" + q.parts.length;
    const explanation = $("explanation");
    explanation.textContent = "";
    if (!all) {
      explanation.appendChild(text("div", "title", "The worked answer (hwsim's models):"));
      explanation.appendChild(text("pre", "worked", q.worked.join("\n")));
    }
  }

  function selectView(n) {
    view = data.views[n];
    drawView();
    if (view.question) {
      $("question").textContent = view.question.text.join("\n");
      $("verdict").textContent = "";
      $("verdict").className = "";
      $("explanation").textContent = "";
      if (data.kind === "parts") showParts(view.question);
      else {
        for (const id of ["ans-pa", "ans-pte", "ans-new", "ans-cause", "ans-level"]) $(id).value = "";
        document.body.dataset.qaccess = view.start.access;
      }
      delete document.body.dataset.verdict;
      delete document.body.dataset.score;
    }
    setControls(data.kind === "dump" ? view.start : null);
  }

  if (data.kind !== "dump") {
    const sel = $("exercise");
    data.views.forEach((v, n) => { const o = text("option", "", v.name); o.value = n; sel.appendChild(o); });
    sel.addEventListener("change", () => selectView(Number(sel.value)));
  }
  if (data.kind === "parts") $("parts-form").addEventListener("submit", checkParts);
  if (data.kind === "quiz") {
    $("answer-form").addEventListener("submit", check);
    // Typing in a field picks its kind of answer.
    for (const id of ["ans-pa", "ans-pte", "ans-new"]) $(id).addEventListener("input", () => { $("kind-pa").checked = true; });
    for (const id of ["ans-cause", "ans-level"]) $(id).addEventListener("input", () => { $("kind-fault").checked = true; });
  }
  selectView(0);
  const m = /(?:^#|&)va=([^&]+)/.exec(location.hash);
  if (m) { input.value = decodeURIComponent(m[1]); recompute(); }

  // The tests' hooks: HwsimWalk.walkMany on a view's space, and the views themselves.
  window.hwsimPage = {
    data,
    selectView,
    walk: (n, cases) => W.walkMany(data.views[n].space, cases),
    // every line of every step of a walk, as the step-through shows them
    explain: (space, c) => stepsOf(W.walk(space, ...c), space).flatMap(st => [st.title, ...st.lines]),
  };
  document.body.dataset.rendered = "true";
})();
"""
