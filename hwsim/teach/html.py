"""A self-contained HTML page that draws a page-table tree (``hwsim mmu dump --html FILE``).

One file, no network: the tree is embedded as JSON (``tree_to_json``), and
an inline script draws it after load: one column per level, each table a
box listing its valid entries (collapsed runs, superpages, flags, faulting
PTEs in red), and an SVG curve from every pointer to the table it points
to.  Typing a VA (or opening ``page.html#va=0x1234``) highlights the entries
its walk indexes and names the frame it ends in (within a collapsed run, the
entry's own frame, not the run's first).  When drawing is done the script sets
``<body data-rendered="true" data-tables=N data-entries=N data-links=N>``,
which the tests read back from headless Chromium.
"""

from __future__ import annotations

import html
import json
import os

from ..errors import ConfigError
from ..mmu.bits import FLAGS_LEGEND
from ..mmu.tree import PageTableTree, tree_to_json

# The text output's legend, for letters drawn dark when set and grey when clear (not "-").
_LEGEND = FLAGS_LEGEND.removesuffix("; - clear") + "; dark: set, grey: clear"

_CSS = """
body { font: 13px/1.35 ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
       margin: 16px; color: #1d2330; background: #f7f8fa; }
h1 { font-size: 16px; margin: 0 0 4px; }
.sub { color: #5b6475; margin-bottom: 10px; }
.controls { margin: 8px 0 14px; }
.controls input { font: inherit; width: 22ch; padding: 2px 4px; }
#walk-note { margin-left: 10px; color: #5b6475; }
#canvas { position: relative; display: flex; gap: 70px; align-items: flex-start; }
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
.row.pointer .kind { color: #1f5fbf; }
.row.leaf .kind { color: #1e7b3a; }
.row.super .kind { color: #8a4fbf; font-weight: bold; }
.row.problem { background: #fdecea; }
.row.problem .why { color: #c0392b; display: block; white-space: normal; max-width: 60ch; }
.row.on-path { outline: 2px solid #f0a500; background: #fff6d9; }
.row .hit { padding-left: 2ch; color: #8a5a00; font-weight: bold; }
.flags { margin-left: 1ch; }
.flags span { color: #c4c9d4; }
.flags span.on { color: #1d2330; font-weight: bold; }
.region { color: #5b6475; }
#legend { color: #5b6475; margin: -6px 0 12px; }
path.link { fill: none; stroke: #1f5fbf; stroke-width: 1.4; opacity: .7; }
path.link.bad { stroke: #c0392b; stroke-dasharray: 4 3; }
path.link.back { stroke: #7a8294; stroke-dasharray: 2 3; }
path.link.on-path { stroke: #f0a500; stroke-width: 3; opacity: 1; }
"""

_JS = r"""
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("tree-data").textContent);
  const levels = {Sv39: 3, Sv48: 4}[data.mode] || 3;
  const canvas = document.getElementById("canvas");
  const svgNS = "http://www.w3.org/2000/svg";  // a namespace name, not a download
  const columns = [];
  for (let level = levels - 1; level >= 0; level--) {
    const col = document.createElement("div");
    col.className = "column";
    col.innerHTML = "<h2>level " + level + " tables</h2>";
    canvas.appendChild(col);
    columns[level] = col;
  }
  const boxes = {};  // table pa -> box element (the first one drawn)
  const links = [];  // [row element, table pa, bad]
  let tables = 0, entries = 0;
  const sizeNames = ["4 KiB", "2 MiB", "1 GiB", "512 GiB", "256 TiB"];

  function text(tag, cls, content) {
    const el = document.createElement(tag);
    if (cls) el.className = cls;
    el.textContent = content;
    return el;
  }
  const flagNames = ["dirty", "accessed", "global", "user", "executable", "writable", "readable", "valid"];
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
  function hex(n) { return "0x" + n.toString(16).padStart(3, "0"); }
  function end(start, size) { return "0x" + (BigInt(start) + BigInt(size) - 1n).toString(16); }
  function regionLabel(parts) {  // what the mapped range holds: one region, or each part with its addresses
    if (parts.length === 1) return parts[0].name || "no RAM or device";
    return parts.map(p => (p.name || "no RAM or device") + " " + p.pa + "-" + end(p.pa, p.size)).join(", ");
  }

  function drawTable(t) {
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
    tables++;
    for (const e of t.entries) {
      const row = document.createElement("div");
      const superpage = e.kind !== "pointer" && e.level > 0;
      row.className = "row " + (e.kind === "pointer" ? "pointer" : "leaf") + (superpage ? " super" : "") +
                      (e.problem ? " problem" : "");
      row.dataset.first = e.index;
      row.dataset.last = e.index + e.count - 1;
      row.dataset.level = e.level;
      const idx = e.count > 1 ? "[" + hex(e.index) + "-" + hex(e.index + e.count - 1) + "]" : "[" + hex(e.index) + "]";
      const l1 = document.createElement("div"), l2 = document.createElement("div");
      l1.className = "l1";
      l2.className = "l2";
      l1.appendChild(text("span", "idx", idx + " "));
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
      box.appendChild(row);
      entries++;
    }
    box.table = t;
    for (const e of t.entries) {
      if (e.table && !e.table.shared) drawTable(e.table);
    }
  }

  drawTable(data.root);

  const svg = document.createElementNS(svgNS, "svg");
  svg.id = "links";
  canvas.appendChild(svg);
  const linkEls = [];
  function layoutLinks() {
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
  layoutLinks();
  window.addEventListener("resize", layoutLinks);

  // Highlight the entries a VA's walk indexes (indices only; `hwsim mmu walk` checks permissions).
  const input = document.getElementById("va");
  const note = document.getElementById("walk-note");
  function highlight(value) {
    for (const el of document.querySelectorAll(".on-path")) el.classList.remove("on-path");
    for (const el of linkEls) el.classList.remove("on-path");
    for (const el of document.querySelectorAll(".row .hit")) el.remove();
    note.textContent = "";
    if (!value.trim()) return;
    let va;
    try { va = BigInt(value.trim()); } catch (err) { note.textContent = "not a number"; return; }
    let box = boxes[data.root.pa];
    for (let level = levels - 1; level >= 0; level--) {
      const index = Number((va >> BigInt(12 + 9 * level)) & 0x1ffn);
      let row = null;
      for (const r of box.querySelectorAll(":scope > .row")) {
        if (Number(r.dataset.first) <= index && index <= Number(r.dataset.last)) row = r;
      }
      if (!row) { note.textContent = "level " + level + ": entry " + hex(index) + " is not valid"; return; }
      row.classList.add("on-path");
      const e = row.entry;
      if (e.kind !== "pointer") {
        let what = "level " + level + ": entry " + hex(index) + " is a " + sizeNames[level] + " leaf";
        if (e.problem) { note.textContent = what + " (" + e.problem + ")"; return; }
        // A run's row shows its first frame: the page this VA is in is the entry's own, further on.
        const shift = BigInt(12 + 9 * level);
        const frame = BigInt(e.target) + (BigInt(index - e.index) << shift);
        const pa = frame | (va & ((1n << shift) - 1n));
        const where = (level ? "superpage at 0x" : "frame 0x") + frame.toString(16);
        if (e.count > 1) what += ", number " + (index - e.index + 1) + " of a run of " + e.count;
        note.textContent = what + ": " + where + ", pa 0x" + pa.toString(16);
        row.appendChild(text("div", "hit", "\u21b3 [" + hex(index) + "] \u2192 " + where));
        return;
      }
      if (row.link) row.link.classList.add("on-path");
      if (!e.table || e.table.missing) { note.textContent = "level " + level + ": " + (e.problem || "stop"); return; }
      box = boxes[e.table.pa];
    }
    note.textContent = "the level-0 entry is a pointer: there is no leaf (a page fault)";
  }
  input.addEventListener("input", () => highlight(input.value));
  const m = /(?:^#|&)va=([^&]+)/.exec(location.hash);
  if (m) { input.value = decodeURIComponent(m[1]); highlight(input.value); }

  document.body.dataset.tables = tables;
  document.body.dataset.entries = entries;
  document.body.dataset.links = linkEls.length;
  document.body.dataset.rendered = "true";
})();
"""


def tree_html(tree: PageTableTree, *, title: str, region_of=None) -> str:
    """The page as a string."""
    data = json.dumps(tree_to_json(tree, region_of=region_of)).replace("<", "\\u003c")
    satp = f"satp {tree.satp:#018x}, " if tree.satp is not None else ""
    sub = f"{tree.mode.name} page tables: {satp}root table {tree.root.pa:#x}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
</head>
<body data-rendered="false">
<h1>{html.escape(title)}</h1>
<div class="sub">{html.escape(sub)} &mdash; written by hwsim mmu dump --html</div>
<div class="controls"><label>Highlight the walk of va <input id="va" placeholder="0x..." spellcheck="false"></label>
<span id="walk-note"></span></div>
<div id="legend">{html.escape(_LEGEND)}</div>
<div id="canvas"></div>
<noscript>This page draws the tables with JavaScript; hwsim mmu dump prints them as text.</noscript>
<script type="application/json" id="tree-data">{data}</script>
<script>{_JS}</script>
</body>
</html>
"""


def write_tree_html(path: str | os.PathLike, tree: PageTableTree, *, title: str, region_of=None) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(tree_html(tree, title=title, region_of=region_of))
    except OSError as exc:
        raise ConfigError(f"cannot write {os.fspath(path)!r}: {exc.strerror}") from None
