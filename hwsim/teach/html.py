"""The interactive teaching page: one self-contained HTML file (``mmu dump --html``, every quiz's ``--html``).

One file, no network (inline CSS, script and data; a Content-Security-Policy
that forbids every fetch).  Each *view* is one address space::

    view = {"tree":  tree_to_json(...)      what the drawing shows: tables, runs, superpages, problems
            "space": space_data(...)        what the in-page walk reads: every table's non-zero PTEs,
                                            RAM (where a PTE read is not an access fault), satp
            "start": {va, access, ...}      the access the walk panel opens with (a quiz's), or null
            "question": {...}}              a quiz exercise: its text, the model answer, the worked walk

The script (``html_script.py``) draws the tree (a column per level, a box per
table with its valid entries, V=0 decoys greyed, runs expandable, an SVG curve
per pointer) and walks the space itself, as :func:`hwsim.mmu.walker.walk`
does (same checks, same order, same step codes; ``tests/test_teach_page.py``
runs both on thousands of cases): a Next/Back step-through of the VA split,
each PTE address and decode, the permission check and the PA or the fault,
for the access type, privilege, SUM, MXR and A/D rule chosen.  A quiz page
checks a typed answer against the model answer embedded in it (practice: the
answer is in the page source) and explains a wrong one step by step: an Sv39
question (``kind: "quiz"``) as a PA and PTE rewrite or a cause and level, a
TLB or IOMMU question (``kind: "parts"``, no tables to draw) part by part, as
``hwsim quiz grade`` reads answers.  Opening
``page.html#va=0x1234`` highlights that walk.  When drawing is done the
script sets ``<body data-rendered="true" data-tables=N data-entries=N
data-links=N>``, which the tests read back from headless Chromium.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Sequence

from ..errors import BusError, ConfigError
from ..mmu.bits import FLAGS_LEGEND, PAGE_SHIFT, PAGE_SIZE, PTE_PPN_SHIFT, PTE_SIZE, SV39, satp_fields
from ..mmu.report import format_walk_explained
from ..mmu.tree import PageTableTree, TableNode, read_tree, tree_to_json
from ..mmu.walker import AdPolicy, FaultReason, PteReader
from . import course, iommu_quiz, tlb_quiz
from .html_script import CSS, SCRIPT
from .mmu_quiz import RAM_BASE, RAM_SIZE, QuizMemory, answer_line, format_exercise

# The text output's legend, for letters drawn dark when set and grey when clear (not "-").
_LEGEND = FLAGS_LEGEND.removesuffix("; - clear") + "; dark: set, grey: clear"

# Nothing may be fetched: no scripts, styles, images or connections from anywhere but this file.
_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"

_RUN_STEP = 1 << 9  # in a run of level-L leaves, each PPN is 512**L more than the one before


def _table_ptes(tree: PageTableTree, mem: PteReader | None) -> dict[int, dict[int, int]]:
    """Every table the tree read (shared ones once, not the missing ones) as ``{pa: {index: non-zero PTE}}``.

    With ``mem`` the PTEs are read again (decoys with V=0 included); without it they are rebuilt from the
    tree's valid entries (runs expanded), and V=0 words read as zero (still invalid to a walk).
    """
    out: dict[int, dict[int, int]] = {}
    for node in tree.tables():
        if mem is not None:
            words = (mem.read_u64(node.pa + i * PTE_SIZE) for i in range(PAGE_SIZE // PTE_SIZE))
            out[node.pa] = {i: w for i, w in enumerate(words) if w}
            continue
        ptes = {}
        for e in node.entries:
            for k in range(e.count):
                ptes[e.index + k] = e.pte + ((k * _RUN_STEP**e.level) << PTE_PPN_SHIFT)
        out[node.pa] = ptes
    return out


def space_data(
    tree: PageTableTree,
    mem: PteReader | None = None,
    *,
    ram: Iterable[tuple[int, int]] | None = None,
    regions: Sequence | None = None,
    zero_fill: bool = False,
    words: dict[int, int] | None = None,
) -> dict:
    """What the page's walk reads, JSON-ready (addresses and PTEs as hex strings).

    ``ram``: ``(base, size)`` ranges where a PTE read succeeds (default: the RAM regions of ``regions``, else
    the tables' own frames); elsewhere a read is an access fault, as in the walker.  ``zero_fill``: RAM not
    held in ``tables`` reads as zero (a quiz's whole RAM is known); otherwise a walk never reads it (every
    table a walk can reach was read into the tree).  ``words``: ``{pa: value}`` instead of the tree's tables
    (a quiz's RAM, decoy tables included).  ``regions`` (``hwsim.mmu.snapshot.Region``) name where a PA lands.
    """
    if words is not None:
        tables: dict[int, dict[int, int]] = {}
        for pa, value in words.items():
            tables.setdefault(pa & ~(PAGE_SIZE - 1), {})[(pa & (PAGE_SIZE - 1)) // PTE_SIZE] = value
    else:
        tables = _table_ptes(tree, mem)
    if ram is None:
        ram = [(r.base, r.size) for r in regions or () if r.kind == "ram"] or [(pa, PAGE_SIZE) for pa in tables]
    out: dict = {
        "mode": tree.mode.name,
        "satp": hex(tree.satp) if tree.satp is not None else None,
        "root": hex(tree.root.pa),
        "ram": [[hex(base), hex(size)] for base, size in ram],
        "zero_fill": zero_fill,
        "tables": {hex(pa): {hex(i): hex(v) for i, v in sorted(ptes.items())} for pa, ptes in sorted(tables.items())},
    }
    if regions is not None:
        out["regions"] = [{"name": r.name, "kind": r.kind, "base": hex(r.base), "size": hex(r.size)} for r in regions]
    return out


def _page(title: str, sub: str, data: dict) -> str:
    blob = json.dumps(data).replace("<", "\\u003c")
    quiz = data["kind"] != "dump"
    parts = data["kind"] == "parts"  # TLB and IOMMU questions: no page tables to draw or walk
    walk_open = "" if quiz else " open"
    hide = " hidden" if parts else ""
    answer_form = (
        """<form id="parts-form" autocomplete="off"><div id="how"></div><div id="parts"></div>
<button id="check" type="submit">Check</button> <span id="score"></span></form>"""
        if parts
        else """<form id="answer-form" autocomplete="off">
<div><label><input type="radio" name="kind" id="kind-pa" value="pa" checked> it translates: pa
<input id="ans-pa" placeholder="0x..." spellcheck="false"></label>
<label>and the hardware rewrites the PTE at <input id="ans-pte" size="14" placeholder="0x... or none"></label>
<label>to <input id="ans-new" size="20" placeholder="its new value"></label></div>
<div><label><input type="radio" name="kind" id="kind-fault" value="fault"> it raises an exception: cause
<input id="ans-cause" size="4" placeholder="13"></label>
<label>at level <input id="ans-level" size="14" placeholder="0, 1, 2 or none"></label></div>
<button id="check" type="submit">Check</button>
</form>"""
    )
    quiz_panel = (
        """<section id="quiz">
<div class="note">Practice: the model answers are in this page's source, so it is not an exam (graded courses use
<code>hwsim quiz make</code> and <code>hwsim quiz grade</code>).</div>
<label>Exercise <select id="exercise"></select></label>
<pre id="question"></pre>
"""
        + answer_form
        + """
<div id="verdict"></div>
<div id="explanation"></div>
</section>
"""
        if quiz
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>{html.escape(title)}</title>
<style>{CSS}</style>
</head>
<body data-rendered="false" data-kind="{data["kind"]}">
<h1>{html.escape(title)}</h1>
<div class="sub" id="sub">{html.escape(sub)}</div>
{quiz_panel}<details id="walk-panel"{walk_open}{hide}><summary>Step through a walk{" (this shows the answer)" if quiz else ""}</summary>
<div class="controls"><label>va <input id="va" placeholder="0x..." spellcheck="false"></label>
<label>access <select id="access"><option value="load">load</option><option value="store">store</option>
<option value="fetch">fetch</option></select></label>
<label>privilege <select id="priv"><option value="S">S-mode</option><option value="U">U-mode</option></select></label>
<label><input type="checkbox" id="sum"> SUM</label> <label><input type="checkbox" id="mxr"> MXR</label>
<label>A/D clear <select id="ad"><option value="update">hardware sets them (Svadu)</option>
<option value="fault">page fault (Svade)</option></select></label></div>
<div class="controls"><button id="back" type="button">&#9664; Back</button> <button id="next" type="button">Next &#9654;</button>
<button id="all" type="button">All steps</button> <span id="step-count"></span> <span id="walk-note"></span></div>
<ol id="steps"></ol>
</details>
<div id="legend"{hide}>{html.escape(_LEGEND)}<br><span class="key super">superpage</span> <span class="key problem">a walk
faults on this entry</span> <span class="key decoy">V=0 but not zero (a decoy: a walk stops here)</span>
<span class="key on-path">on the walk</span> <span class="key current">the step shown</span>;
click a run (&#9656;) to list its entries</div>
<details id="drawing"{"" if quiz else " open"}{hide}><summary>The tables, drawn{" (a hint: problems are marked)" if quiz else ""}</summary>
<div id="canvas"></div></details>
<noscript>This page draws the tables with JavaScript; hwsim mmu dump prints them as text.</noscript>
<script type="application/json" id="tree-data">{blob}</script>
<script>{SCRIPT}</script>
</body>
</html>
"""


def _reasons() -> dict[str, str]:
    return {r.name: r.value for r in FaultReason}


def tree_html(
    tree: PageTableTree,
    *,
    title: str,
    region_of=None,
    memory: PteReader | None = None,
    regions: Sequence | None = None,
    ram: Iterable[tuple[int, int]] | None = None,
) -> str:
    """The page for one tree (``mmu dump --html``): ``memory`` is what the tree was read from (the walk then
    sees V=0 decoys too), ``regions`` the memory map when known (a ``hwsim.mmu.snapshot.Region`` list)."""
    satp = f"satp {tree.satp:#018x}, " if tree.satp is not None else ""
    sub = f"{tree.mode.name} page tables: {satp}root table {tree.root.pa:#x} \u2014 written by hwsim mmu dump --html"
    view = {
        "name": title,
        "tree": tree_to_json(tree, region_of=region_of),
        "space": space_data(tree, memory, ram=ram, regions=regions),
        "start": None,
        "question": None,
    }
    return _page(title, sub, {"kind": "dump", "reasons": _reasons(), "views": [view]})


def quiz_tree(satp: int, mem: PteReader) -> PageTableTree:
    """The tree under a quiz's satp; a root outside RAM is drawn as a missing table."""
    root = satp_fields(satp)[2] << PAGE_SHIFT
    try:
        return read_tree(mem, root, SV39, satp=satp)
    except BusError:
        return PageTableTree(SV39, TableNode(root, SV39.levels - 1, 0, missing=True), satp)


def mmu_quiz_html(exercises: Sequence, *, title: str) -> str:
    """A quiz page: one view per ``hwsim.teach.mmu_quiz.MmuExercise``, each with its model answer embedded."""
    views = []
    for ex in exercises:
        mem = QuizMemory(ex.memory)
        tree = quiz_tree(ex.satp, mem)
        result = ex.solve()
        tr, f = result.translation, result.fault
        if tr is not None:
            answer: dict = {"result": "ok", "pa": hex(tr.pa), "level": tr.level}
        else:
            assert f is not None  # a walk without a translation has a fault
            answer = {
                "result": "fault",
                "cause": int(f.cause),
                "level": f.level,
                "kind": f.kind,
                "reason": f.reason.name,
                "message": f.message,
            }
        answer["line"] = answer_line(result)
        key = course.make_question("mmu", ex.number, ex)  # the graded key's rewrite part, and what it means
        answer["rewrite"] = None if key.parts["rewrite"] == "none" else key.parts["rewrite"].split()
        answer["rewrite_hint"] = key.hints["rewrite"]
        views.append(
            {
                "name": f"Exercise {ex.number}",
                "tree": tree_to_json(tree),
                "space": space_data(tree, ram=[(RAM_BASE, RAM_SIZE)], zero_fill=True, words=ex.memory),
                "start": {
                    "va": hex(ex.va),
                    "access": ex.access.value,
                    "priv": ex.priv.name,
                    "sum": ex.sum,
                    "mxr": ex.mxr,
                    "ad": "update" if ex.ad is AdPolicy.UPDATE else "fault",
                },
                "question": {
                    "text": format_exercise(ex),
                    "answer": answer,
                    "worked": format_walk_explained(result, satp=ex.satp),
                },
            }
        )
    sub = f"{len(views)} Sv39 translation exercises \u2014 written by hwsim mmu quiz --html"
    return _page(title, sub, {"kind": "quiz", "reasons": _reasons(), "views": views})


_TLB_HOW = [
    "Each step is a part.  An access: 'hit', or 'miss' and the entry it evicts ('miss none' when it fills a",
    "free entry or the walk faults).  An sfence.vma: the entries it removes, or 'none'.  final: the TLB's",
    "entries at the end, in any order, or 'none'.  Entries as on the answer sheets: A1:0x161000 (ASID 1's",
    "page 0x161000), G:0xffffffc000000000 (a global page), A2:0x40000000/2M (a 2 MiB superpage).",
]


def parts_quiz_html(quiz: str, exercises: Sequence, *, title: str) -> str:
    """A quiz page for the TLB (``quiz="tlb"``) or IOMMU (``"iommu"``) exercises: a field per part of each
    question, checked in the page against the model's parts as ``hwsim quiz grade`` normalises them (numbers
    in any base, entries in any order), a wrong part explained with its hint and the model's explanation."""
    module = {"tlb": tlb_quiz, "iommu": iommu_quiz}[quiz]
    how = (
        _TLB_HOW
        if quiz == "tlb"
        else [f"{part}: {what}." for part, what in course.IOMMU_PARTS.items()]
        + ["Numbers in hex (0x...) or decimal; several addresses separated by spaces."]
    )
    views = []
    for ex in exercises:
        q = course.make_question(quiz, ex.number, ex)
        parts = [
            {"name": name, "expected": value, "hint": q.hints.get(name, ""), "why": q.why.get(name, [])}
            for name, value in q.parts.items()
        ]
        views.append(
            {
                "name": f"Exercise {ex.number}",
                "tree": None,
                "space": None,
                "start": None,
                "question": {
                    "quiz": quiz,
                    "text": module.format_exercise(ex),
                    "parts": parts,
                    "how": how,
                    "worked": module.format_answer(ex),
                },
            }
        )
    what, command = {"tlb": ("TLB", "hwsim mmu tlb-quiz"), "iommu": ("IOMMU", "hwsim iommu quiz")}[quiz]
    sub = f"{len(views)} {what} exercises \u2014 written by {command} --html"
    return _page(title, sub, {"kind": "parts", "reasons": _reasons(), "views": views})


def quiz_html(quiz: str, exercises: Sequence, *, title: str) -> str:
    """The quiz page of ``quiz`` (``mmu``, ``tlb`` or ``iommu``)."""
    if quiz == "mmu":
        return mmu_quiz_html(exercises, title=title)
    return parts_quiz_html(quiz, exercises, title=title)


def write_html(path: str | os.PathLike, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {os.fspath(path)!r}: {exc.strerror}") from None
