"""hwsim.teach.html's interactive page, in a real browser: headless Chromium driven over the DevTools protocol.

The page walks page tables by itself (JavaScript, ``HwsimWalk``); here that walk is run on thousands of
cases (quiz RAMs, a live board's tables and their snapshot, a hand-built tree with a table outside RAM,
a misaligned gigapage and a loop) and compared with :func:`hwsim.mmu.walker.walk` step by step, and
with ``tests/spec_walk.py`` where the whole RAM is known.  Then a user's session: type a VA, click
Next/Back through the walk and read each step, change the access to see a permission fault, expand a
run, and answer a quiz question right and wrong.  Needs Chromium (Debian: ``apt-get install chromium``;
or HWSIM_CHROMIUM=/path); without it the browser tests are skipped, saying so.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re

import pytest
from chromium_cdp import Browser, find_chromium
from spec_walk import spec_translate

from hwsim.cli import main
from hwsim.machine import FrameAllocator, PhysicalMemory
from hwsim.mmu import AddressSpace, Pte
from hwsim.mmu.bits import SV39, SV48, make_pte
from hwsim.mmu.snapshot import load_snapshot, regions_of
from hwsim.mmu.tree import read_tree
from hwsim.mmu.walker import AdPolicy, walk
from hwsim.riscv.priv import Access, Priv
from hwsim.teach import mmu_quiz
from hwsim.teach.html import mmu_quiz_html, tree_html
from hwsim.teach.mmu_quiz import RAM_BASE, RAM_SIZE, QuizMemory

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (apt-get install chromium, or set HWSIM_CHROMIUM): "
    "the interactive page is checked in it",
)
RAM = 0x8000_0000


def page_data(text: str) -> dict:
    blob = re.search(r'<script type="application/json" id="tree-data">(.*?)</script>', text, re.S)
    assert blob
    return json.loads(blob[1])


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed")
    with Browser(CHROMIUM) as b:
        yield b


@pytest.fixture(scope="module")
def built():
    """A 3-page run, a code page, a 2 MiB superpage, a misaligned gigapage, a table outside RAM, a loop, a decoy."""
    phys = PhysicalMemory()
    frames = FrameAllocator(phys.add_ram(RAM, 8 << 20))
    space = AddressSpace(phys, frames, asid=2)
    data = frames.alloc(3)
    space.map(0x1000, data, 0x3000, Pte.R | Pte.W | Pte.U, accessed=False)  # A and D clear: the walk sets them
    space.map(0x10000, data, 0x1000, Pte.R | Pte.X | Pte.U)
    space.map(0x4000_0000, RAM + (2 << 20), 2 << 20, Pte.R | Pte.W)
    phys.write_u64(space.root + 8 * 5, make_pte(0x80123, Pte.V | Pte.R | Pte.X))
    phys.write_u64(space.root + 8 * 6, make_pte(0x1234, Pte.V))
    phys.write_u64(space.root + 8 * 7, make_pte(space.root >> 12, Pte.V))
    tree = read_tree(phys, space.root, satp=space.satp)
    leaf_table = next(t.pa for t in tree.tables() if t.level == 0 and any(e.index == 1 for e in t.entries))
    phys.write_u64(leaf_table + 8 * 0x20, make_pte(0x80777, Pte.R | Pte.W | Pte.A))  # V=0, the rest left over
    tree = read_tree(phys, space.root, satp=space.satp)
    return phys, space, tree


# -- the JavaScript walk against the Python walker ------------------------------------------------------------

ACCESSES = ("fetch", "load", "store")


def python_walk(mem, root: int, case: list, mode=SV39) -> dict:
    """The walker's answer in the shape of the page's ``HwsimWalk.toJSON``."""
    va, access, priv, sum_, mxr, ad = case
    r = walk(
        mem,
        root,
        int(va, 16),
        Access(access),
        Priv[priv],
        mode=mode,
        sum=sum_,
        mxr=mxr,
        ad=AdPolicy.REPORT if ad == "update" else AdPolicy.FAULT,
    )
    out: dict = {
        "ok": r.ok,
        "steps": [
            [s.level, hex(s.pte_addr), hex(s.pte), s.code, hex(s.arg) if isinstance(s.arg, int) else s.arg]
            for s in r.steps
        ],
    }
    if r.translation is not None:
        t = r.translation
        out.update(pa=hex(t.pa), level=t.level, pte_addr=hex(t.pte_addr), pte=hex(t.pte), **{"global": t.global_})
    else:
        assert r.fault is not None
        out.update(reason=r.fault.reason.name, cause=int(r.fault.cause), level=r.fault.level)
    out["ad_update"] = [hex(x) for x in r.ad_update] if r.ad_update else None
    return out


def random_cases(space: dict, rng: random.Random, n: int, start: int | None = None, mode=SV39) -> list[list]:
    """VAs built from the indices the space's tables use (so walks go deep), some random, some not canonical;
    every access, privilege, SUM, MXR and A/D rule."""
    used = sorted({int(i, 16) for ptes in space["tables"].values() for i in ptes}) or [0]
    cases = []
    for k in range(n):
        if start is not None and k % 4 == 0:
            va = start ^ rng.choice([0, rng.randrange(1 << 12), rng.randrange(1 << 21)])
        else:
            va = rng.randrange(1 << 12)
            for level in range(mode.levels):
                index = rng.choice(used) if rng.random() < 0.9 else rng.randrange(512)
                va |= index << (12 + 9 * level)
            va = mode.canonical(va)
        if rng.random() < 0.05:
            va ^= 1 << rng.randrange(mode.va_bits, 64)  # not canonical
        cases.append(
            [
                hex(va),
                rng.choice(ACCESSES),
                rng.choice("US"),
                rng.random() < 0.5,
                rng.random() < 0.3,
                rng.choice(["update", "fault"]),
            ]
        )
    return cases


def js_walks(browser, space: dict, cases: list[list]) -> list[dict]:
    return browser.evaluate(f"HwsimWalk.walkMany({json.dumps(space)}, {json.dumps(cases)})")


@pytest.fixture(scope="module")
def blank_page(browser, tmp_path_factory, built):
    path = tmp_path_factory.mktemp("page") / "tree.html"
    path.write_text(tree_html(built[2], title="t"))
    browser.open(path.as_uri())
    return path


@needs_chromium
def test_the_js_walk_agrees_with_the_walker_and_the_spec_on_quiz_rams(browser, blank_page):
    """1,800 walks on 150 quiz RAMs (every topic: invalid, reserved encodings and bits, misaligned superpages,
    U/S with SUM, MXR, A/D with and without Svade, tables outside RAM, non-canonical VAs)."""
    rng = random.Random(22)
    total = faults = 0
    reasons = set()
    for n in range(150):
        ex = mmu_quiz.make_exercise(2026, n + 1)
        page = page_data(mmu_quiz_html([ex], title="q"))
        space = page["views"][0]["space"]
        own = [
            hex(ex.va),
            ex.access.value,
            ex.priv.name,
            ex.sum,
            ex.mxr,
            "update" if ex.ad.value == "update" else "fault",
        ]
        cases = [own] + random_cases(space, rng, 11, start=ex.va)
        got = js_walks(browser, space, cases)
        mem = QuizMemory(ex.memory)
        ram = b"".join(ex.memory.get(RAM_BASE + 8 * i, 0).to_bytes(8, "little") for i in range(RAM_SIZE // 8))
        root = (ex.satp & ((1 << 44) - 1)) << 12
        for case, js in zip(cases, got):
            assert js == python_walk(mem, root, case), (ex.number, case)
            va, access, priv, sum_, mxr, ad = case
            spec = spec_translate(ram, RAM_BASE, ex.satp, int(va, 16), access, priv, sum_, mxr)
            if js["ok"]:
                new = js["ad_update"][2] if js["ad_update"] else None
                if ad == "update":
                    assert spec == ("ok", int(js["pa"], 16), int(new, 16) if new else None), case
            else:
                faults += 1
                reasons.add(js["reason"])
                if spec[0] == "fault":
                    assert spec[1] == js["cause"], case
                else:  # only Svade's A/D faults are missing from the transcription (it sets A and D)
                    assert ad == "fault" and js["reason"] in ("ACCESSED_CLEAR", "DIRTY_CLEAR"), case
            total += 1
    assert total == 1800 and 300 < faults < 1700
    assert reasons == {
        "NON_CANONICAL",
        "PTE_ACCESS",
        "INVALID",
        "WRITE_NO_READ",
        "RESERVED_BITS",
        "NONLEAF_RESERVED",
        "NO_LEAF",
        "USER_PAGE_FROM_U",
        "USER_PAGE_SUM",
        "USER_PAGE_FETCH",
        "NOT_EXECUTABLE",
        "NOT_READABLE",
        "NOT_WRITABLE",
        "MISALIGNED_SUPERPAGE",
        "ACCESSED_CLEAR",
        "DIRTY_CLEAR",
    }


@needs_chromium
def test_the_step_through_says_what_the_worked_solution_says(browser, blank_page):
    """On 150 quiz exercises, each with its own access: the step-through's lines hold every PTE decoded, every
    decision and the outcome exactly as ``format_walk_explained`` (``mmu walk --explain``) words them."""
    from hwsim.mmu.report import format_walk_explained

    checked = 0
    for n in range(150):
        ex = mmu_quiz.make_exercise(77, n + 1)
        space = page_data(mmu_quiz_html([ex], title="q"))["views"][0]["space"]
        ad = "update" if ex.ad is AdPolicy.UPDATE else "fault"
        case = [hex(ex.va), ex.access.value, ex.priv.name, ex.sum, ex.mxr, ad]
        shown = browser.evaluate(f"hwsimPage.explain({json.dumps(space)}, {json.dumps(case)})")
        root = (ex.satp & ((1 << 44) - 1)) << 12
        policy = AdPolicy.REPORT if ad == "update" else AdPolicy.FAULT
        result = walk(QuizMemory(ex.memory), root, ex.va, ex.access, ex.priv, sum=ex.sum, mxr=ex.mxr, ad=policy)
        worked = [line.strip() for line in format_walk_explained(result, satp=ex.satp)]
        wanted = [line for line in worked if line.startswith(("PTE = ", "-> "))]
        assert [line for line in shown if line.startswith(("PTE = ", "-> "))] == wanted, ex.number
        outcome = worked[-1] if result.ad_update is None else worked[-2]
        assert shown[-1].startswith(outcome), (shown[-1], outcome)
        checked += 1
    assert checked == 150


@pytest.fixture(scope="module")
def demo_pages(tmp_path_factory):
    """The virt board's demo guest: the page written from the live board, its snapshot, and the page of that."""
    d = tmp_path_factory.mktemp("demo")
    live, snap, again = d / "live.html", d / "demo.json", d / "snap.html"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert (
            main(["mmu", "dump", "--board", "virt", "--demo", "--html", str(live), "--save-snapshot", str(snap)]) == 0
        )
        assert main(["mmu", "dump", "--snapshot", str(snap), "--html", str(again)]) == 0
    return live, snap, again


@needs_chromium
def test_the_js_walk_agrees_on_a_live_board_its_snapshot_and_a_built_tree(browser, blank_page, demo_pages, built):
    live, snap, again = demo_pages
    live_space = page_data(live.read_text())["views"][0]["space"]
    assert page_data(again.read_text())["views"][0]["space"] == live_space  # the snapshot's page walks the same
    snapshot = load_snapshot(snap)
    rng = random.Random(7)
    cases = random_cases(live_space, rng, 400, start=0x101FF8)
    for case, js in zip(cases, js_walks(browser, live_space, cases)):
        assert js == python_walk(snapshot.memory, snapshot.root, case), case
    phys, space, tree = built
    built_space = page_data(tree_html(tree, title="t", memory=phys, regions=regions_of(phys)))["views"][0]["space"]
    cases = random_cases(built_space, rng, 400) + [
        [hex(va), a, "U", False, False, "update"]
        for va in (0x2008, 0x1234_5678 | 6 << 30, 0x1_4000_0000)
        for a in ACCESSES
    ]
    got = js_walks(browser, built_space, cases)
    for case, js in zip(cases, got):
        assert js == python_walk(phys, space.root, case), case
    outcomes = {js.get("reason", "ok") for js in got}
    assert {"ok", "PTE_ACCESS", "MISALIGNED_SUPERPAGE", "INVALID", "NO_LEAF"} <= outcomes


@needs_chromium
def test_the_js_walk_agrees_on_a_raw_memory_image(browser, blank_page, built, tmp_path):
    """``dump --image``: RAM is the image (no memory map: no region names), the walk the same."""
    from hwsim.mmu.image import ImageMemory

    phys, space, tree = built
    image, page = tmp_path / "ram.bin", tmp_path / "image.html"
    image.write_bytes(phys.read(RAM, 8 << 20))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        argv = [
            "mmu",
            "dump",
            "--image",
            str(image),
            "--base",
            hex(RAM),
            "--satp",
            hex(space.satp),
            "--html",
            str(page),
        ]
        assert main(argv) == 0
    data = page_data(page.read_text())["views"][0]["space"]
    assert data["ram"] == [[hex(RAM), hex(8 << 20)]] and "regions" not in data
    cases = random_cases(data, random.Random(9), 300, start=0x2008)
    with ImageMemory(str(image), RAM) as mem:
        for case, js in zip(cases, js_walks(browser, data, cases)):
            assert js == python_walk(mem, space.root, case), case


@needs_chromium
def test_the_js_walk_agrees_on_sv48_tables(browser, blank_page):
    """Four levels: a 512 GiB terapage (misaligned, and aligned), 1 GiB, 2 MiB and 4 KiB pages, a decoy."""
    phys = PhysicalMemory()
    frames = FrameAllocator(phys.add_ram(RAM, 8 << 20))
    space = AddressSpace(phys, frames, mode=SV48, asid=3)
    space.map(0x1000, frames.alloc(2), 0x2000, Pte.R | Pte.W | Pte.U, accessed=False)
    space.map(0x20_0000, RAM + (2 << 20), 2 << 20, Pte.R | Pte.X)
    space.map(0x80_0000_0000 + (1 << 30), 0, 1 << 30, Pte.R | Pte.W | Pte.G, page_size=1 << 30)
    phys.write_u64(space.root + 8 * 2, make_pte(0x12345, Pte.V | Pte.R))  # misaligned
    phys.write_u64(space.root + 8 * 3, make_pte(3 << 27, Pte.V | Pte.R | Pte.W | Pte.U | Pte.A | Pte.D))
    phys.write_u64(space.root + 8 * 4, make_pte(0x80777, Pte.X | Pte.A))  # V=0
    tree = read_tree(phys, space.root, SV48, satp=space.satp)
    data = page_data(tree_html(tree, title="t", memory=phys, regions=regions_of(phys)))["views"][0]
    assert data["space"]["mode"] == "Sv48" and data["tree"]["mode"] == "Sv48"
    rng = random.Random(48)
    cases = [c for start in (0x1008, 0x20_0123) for c in random_cases(data["space"], rng, 200, start, SV48)]
    got = js_walks(browser, data["space"], cases)
    for case, js in zip(cases, got):
        assert js == python_walk(phys, space.root, case, SV48), case
    assert {(js.get("reason") or "ok", js.get("level")) for js in got} >= {
        ("ok", 0),
        ("ok", 1),
        ("ok", 2),
        ("ok", 3),
        ("MISALIGNED_SUPERPAGE", 3),
        ("INVALID", 3),
        ("NON_CANONICAL", None),
    }


# -- a user's session ---------------------------------------------------------------------------------------


def step_texts(browser) -> list[str]:
    return browser.evaluate("[...document.querySelectorAll('#steps li')].map(li => li.innerText)")


def choose(browser, select: str, value: str) -> None:
    """Pick an option of a <select> as a user does: the value changes, then a change event."""
    browser.evaluate(
        f"(() => {{ const s = document.querySelector({json.dumps(select)}); s.value = {json.dumps(value)};"
        " s.dispatchEvent(new Event('change')); })()"
    )


@needs_chromium
def test_click_through_a_walk_step_by_step(browser, built, tmp_path):
    phys, space, tree = built
    path = tmp_path / "tree.html"
    path.write_text(tree_html(tree, title="built", memory=phys, regions=regions_of(phys)))
    browser.open(path.as_uri())
    assert browser.requests() == [path.as_uri()]  # the page fetched nothing
    # and could not: its Content-Security-Policy refuses a request before it leaves the browser.
    blocked = browser.evaluate(
        "new Promise(done => { document.addEventListener('securitypolicyviolation', e => done(e.violatedDirective));"
        " fetch('https://example.com/x').catch(() => {}); })"
    )
    assert blocked == "connect-src" and browser.requests() == [path.as_uri()]
    legend = browser.text("#legend")
    assert "V=0 but not zero (a decoy: a walk stops here)" in legend and "D dirty, A accessed" in legend
    # V=0 decoys are drawn, and a run opens into its entries.
    assert browser.evaluate("document.querySelectorAll('.row.decoy').length") == 1
    browser.click(".row.run")
    assert browser.evaluate("[...document.querySelectorAll('.run-entries .sub-row')].map(r => r.dataset.index)") == [
        "1",
        "2",
        "3",
    ]
    browser.type("#va", "0x2008")
    choose(browser, "#priv", "U")
    assert browser.evaluate("[document.body.dataset.step, document.body.dataset.steps]") == ["1", "9"]
    texts = step_texts(browser)
    assert len(texts) == 1 and texts[0].startswith("Split the VA into its fields")
    assert "va 0x0000000000002008: load in U-mode, SUM=0 MXR=0\nbits 63..39 are copies of bit 38: canonical" in texts[0]
    root = space.root
    l2 = phys.read_u64(root)
    l1_table = (l2 >> 10) << 12
    l0_table = (phys.read_u64(l1_table) >> 10) << 12
    leaf = phys.read_u64(l0_table + 16)
    expected = [
        f"Level 2: the PTE's address\nPTE address = table + vpn[2]*8 = {root:#x} + 0x0*8 = {root:#x}",
        f"Level 2: decode the PTE\nPTE = {l2:#018x}: PPN={l2 >> 10:#x} RSW=0 D=0 A=0 G=0 U=0 X=0 W=0 R=0 V=1\n"
        f"V=1, R=0 W=0 X=0: a pointer (R=X=0)\n-> pointer to the level-1 table at {l1_table:#x}",
        f"Level 1: the PTE's address\nPTE address = table + vpn[1]*8 = {l1_table:#x} + 0x0*8 = {l1_table:#x}",
        None,
        f"Level 0: the PTE's address\nPTE address = table + vpn[0]*8 = {l0_table:#x} + 0x2*8 = {l0_table + 16:#x}",
        f"Level 0: decode the PTE\nPTE = {leaf:#018x}: PPN={leaf >> 10:#x} RSW=0 D=0 A=0 G=0 U=1 X=0 W=1 R=1 V=1\n"
        "V=1, R=1 W=1 X=0: a leaf (R or X set)",
        "Level 0: check the leaf\nU=1: a user page, and the access is in U-mode: allowed\n"
        "a load needs R=1, or X=1 with MXR=1: R=1 X=0 MXR=0: allowed\n"
        f"A=0: the hardware sets them: the PTE becomes {leaf | 0x40:#018x}\n"
        "-> leaf (4 KiB page) ---U-WRV: load allowed; hardware would set A (not written)",
        f"The physical address\npa = (PPN {leaf >> 10:#x} << 12) | offset 0x8 = {((leaf >> 10) << 12) + 8:#x} "
        f"(4 KiB page)\npa {((leaf >> 10) << 12) + 8:#x} is in 'ram'",
    ]
    for n, want in enumerate(expected, start=2):
        browser.click("#next")
        texts = step_texts(browser)
        assert len(texts) == n and browser.evaluate("document.body.dataset.step") == str(n)
        assert browser.evaluate("document.querySelectorAll('#steps li.current').length") == 1
        if want is not None:
            assert texts[-1] == want
    assert browser.evaluate("document.getElementById('next').disabled")
    # The arrow keys step as the buttons do (when the focus is not in a field).
    browser.evaluate("document.activeElement.blur()")
    browser.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "ArrowLeft", "code": "ArrowLeft"}, session=True)
    browser.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "ArrowLeft", "code": "ArrowLeft"}, session=True)
    assert browser.evaluate("document.body.dataset.step") == "8"
    browser.click("#next")
    # The entry the shown step reads is marked in the drawing; Back goes one step back.
    browser.click("#back")
    assert browser.evaluate("document.body.dataset.step") == "8"
    assert browser.evaluate("document.querySelector('.row.current').dataset.first") == "1"  # the run holding 0x002
    # A store is allowed (W=1), a fetch is not: the access selector changes the walk, at the step shown.
    choose(browser, "#access", "fetch")
    assert browser.evaluate("document.body.dataset.step") == "8"
    assert step_texts(browser)[-1].endswith("-> leaf (4 KiB page) ---U-WRV: fetch denied -> page fault")
    browser.click("#all")
    assert browser.evaluate("document.body.dataset.outcome") == "fault 12 NOT_EXECUTABLE"
    assert step_texts(browser)[-1] == (
        "The exception\nfetch page fault (cause 12) at level 0: fetch from a page that is not executable (X=0)"
    )
    # S-mode on a user page: a fault without SUM, a translation with it (a real click on the checkbox).
    choose(browser, "#access", "store")
    choose(browser, "#priv", "S")
    assert browser.evaluate("document.body.dataset.outcome") == "fault 15 USER_PAGE_SUM"
    browser.click("#sum")
    assert browser.evaluate("document.body.dataset.outcome") == f"pa {((leaf >> 10) << 12) + 8:#x}"
    choose(browser, "#ad", "fault")
    assert browser.evaluate("document.body.dataset.outcome") == "fault 15 ACCESSED_CLEAR"
    # The table outside RAM: an access fault at level 1.
    browser.type("#va", hex(6 << 30))
    browser.click("#all")
    assert browser.evaluate("document.body.dataset.outcome") == "fault 7 PTE_ACCESS"
    assert "that address is not in RAM: reading the PTE is an access fault" in step_texts(browser)[-2]


def quiz_exercises() -> tuple:
    """A page-topic exercise that translates and a fault one (the first of each from seed 4)."""
    ok = next(e for n in range(1, 50) if (e := mmu_quiz.make_exercise(4, n, ["page"])).solve().ok)
    bad = next(e for n in range(1, 50) if (e := mmu_quiz.make_exercise(4, n, ["invalid"])).solve().fault.level == 1)
    return ok, bad


@needs_chromium
def test_answer_a_quiz_question_right_and_wrong(browser, tmp_path):
    ok, bad = quiz_exercises()
    path = tmp_path / "quiz.html"
    path.write_text(mmu_quiz_html([ok, bad], title="quiz"))
    browser.open(path.as_uri())
    assert browser.requests() == [path.as_uri()]
    assert browser.text("#question").startswith(f"Exercise {ok.number} (seed 4), Sv39")
    assert not browser.evaluate("document.getElementById('walk-panel').open")  # the walk would give it away
    pa = ok.solve().translation.pa
    # Wrong: the frame right, the offset wrong.
    browser.type("#ans-pa", hex(pa ^ 0x10))
    browser.click("#check")
    assert browser.evaluate("document.body.dataset.verdict") == "wrong"
    assert browser.text("#verdict") == "Not right."
    why = browser.evaluate("[...document.querySelectorAll('#explanation .why')].map(e => e.innerText)")
    assert why == [
        f"The physical address is {pa:#x} (4 KiB page), not {pa ^ 0x10:#x}.",
        "Your frame is right, your offset is not: it is va[11:0].",
    ]
    worked = browser.text("#explanation pre")
    from hwsim.mmu.report import format_walk_explained

    assert worked == "\n".join(format_walk_explained(ok.solve(), satp=ok.satp))
    assert browser.evaluate("[...document.querySelectorAll('pre.worked .end')].map(e => e.innerText.trim())") == [
        line.strip() for line in format_walk_explained(ok.solve(), satp=ok.satp)[-2:]
    ]
    # Right.
    browser.type("#ans-pa", hex(pa))
    browser.click("#check")
    assert browser.evaluate("document.body.dataset.verdict") == "right"
    assert browser.text("#verdict") == f"Right: {mmu_quiz.answer_line(ok.solve())}."
    # Step through it: the walk panel opens on the exercise's access and ends where the answer does.
    browser.click("#step-through")
    assert browser.evaluate("document.getElementById('walk-panel').open")
    assert browser.evaluate("document.body.dataset.outcome") == f"pa {pa:#x}"
    # The fault exercise: a wrong level, then a translation where there is none, then right.
    choose(browser, "#exercise", "1")
    f = bad.solve().fault
    browser.click("#kind-fault")
    browser.type("#ans-cause", str(int(f.cause)))
    browser.type("#ans-level", "0")
    browser.click("#check")
    assert browser.evaluate("document.body.dataset.verdict") == "wrong"
    why = browser.evaluate("[...document.querySelectorAll('#explanation .why')].map(e => e.innerText)")
    assert why == [
        "The walk stops at level 1, not level 0.",
        f"The exception: page fault (cause {int(f.cause)}) at level 1: PTE is not valid (V=0).",
    ]
    browser.click("#kind-pa")
    browser.type("#ans-pa", "0x80001000")
    browser.click("#check")
    assert browser.evaluate("[...document.querySelectorAll('#explanation .why')].map(e => e.innerText)") == [
        f"The access does not translate: it raises a page fault (cause {int(f.cause)}) at level 1: "
        "PTE is not valid (V=0)."
    ]
    browser.click("#kind-fault")
    browser.type("#ans-level", "1")
    browser.click("#check")
    assert browser.evaluate("document.body.dataset.verdict") == "right"
    # An access whose walk sets A: the PTE the hardware rewrites is part of the answer.
    rw = mmu_quiz.make_exercise(4, 3, ["page"])
    addr, old, new = rw.solve().ad_update
    assert rw.access is Access.STORE and new == old | 0xC0
    pa = rw.solve().translation.pa
    path.write_text(mmu_quiz_html([rw], title="quiz"))
    browser.open(path.as_uri())
    browser.type("#ans-pa", hex(pa))
    browser.click("#check")
    assert browser.evaluate("[...document.querySelectorAll('#explanation .why')].map(e => e.innerText)") == [
        "The physical address is right.",
        f"The PTE rewrite is {addr:#x} -> {new:#x}: the hardware sets A and D in the leaf at {addr:#x}.",
    ]
    browser.type("#ans-pte", str(addr))  # decimal is a number too
    browser.type("#ans-new", hex(new))
    browser.click("#check")
    assert browser.evaluate("document.body.dataset.verdict") == "right"
    assert browser.text("#verdict") == f"Right: {mmu_quiz.answer_line(rw.solve())}."


# -- the file itself (no browser needed) ----------------------------------------------------------------------


def test_the_pages_fetch_nothing(built, tmp_path):
    phys, space, tree = built
    for page in (tree_html(tree, title="t", memory=phys), mmu_quiz_html(quiz_exercises(), title="q")):
        assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in page
        for needle in ("src=", "href=", "url(", "@import", "<link", "https:", "fetch(", "XMLHttpRequest"):
            assert needle not in page
        assert re.findall(r"http://[^\"]*", page) == ["http://www.w3.org/2000/svg"]  # a namespace name
        assert page.count("</script>") == 2


def test_mmu_quiz_html_writes_the_exercises_with_their_answers(tmp_path, capsys):
    path = tmp_path / "quiz.html"
    assert main(["mmu", "quiz", "--seed", "12", "--count", "2", "--html", str(path)]) == 0
    out = capsys.readouterr()
    assert out.err == f"wrote {path}\n" and "Exercise 1 (seed 12), Sv39" in out.out
    data = page_data(path.read_text())
    assert data["kind"] == "quiz" and [v["name"] for v in data["views"]] == ["Exercise 1", "Exercise 2"]
    first = data["views"][0]["question"]
    ex = mmu_quiz.make_exercise(12, 1)
    assert first["text"] == mmu_quiz.format_exercise(ex)
    tr = ex.solve().translation
    assert first["answer"] == {
        "result": "ok",
        "pa": "0xf9b58eb8",
        "level": 2,
        "line": "pa 0xf9b58eb8 (1 GiB gigapage)",
        "rewrite": None,
        "rewrite_hint": "no PTE changes: A and D are already as the access needs them",
    }
    assert (tr.pa, tr.level) == (0xF9B58EB8, 2)


def test_a_quiz_root_outside_ram_is_drawn_as_a_missing_table():
    ex = next(
        e
        for n in range(1, 200)
        if (e := mmu_quiz.make_exercise(3, n, ["access-fault"])).solve().fault.level == 2
        and not RAM_BASE <= (e.satp & ((1 << 44) - 1)) << 12 < RAM_BASE + RAM_SIZE
    )
    view = page_data(mmu_quiz_html([ex], title="q"))["views"][0]
    assert view["tree"]["root"]["missing"] and view["space"]["zero_fill"]
    assert view["space"]["ram"] == [[hex(RAM_BASE), hex(RAM_SIZE)]]
    words = {int(f, 16) + 8 * int(i, 16): int(v, 16) for f, t in view["space"]["tables"].items() for i, v in t.items()}
    assert words == ex.memory  # the whole RAM, decoy tables too


def test_teach_serve_gives_the_pages_on_localhost_only(tmp_path):
    import threading
    import urllib.request

    from hwsim.errors import ConfigError
    from hwsim.teach.serve import make_server

    page = tmp_path / "quiz.html"
    page.write_text(mmu_quiz_html(quiz_exercises(), title="q"))
    server = make_server(tmp_path, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/quiz.html", timeout=10) as reply:
            assert reply.read() == page.read_bytes()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    with pytest.raises(ConfigError, match="is not a folder"):
        make_server(tmp_path / "quiz.html", 0)


def test_teach_serve_gives_nothing_outside_its_folder(tmp_path):
    """Attacks on the folder's boundary: ``..`` (raw and percent-encoded) and a symbolic link pointing out."""
    import http.client
    import threading

    from hwsim.teach.serve import make_server

    secret = tmp_path / "secret.txt"
    secret.write_text("not for students")
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "quiz.html").write_text("<p>quiz</p>")
    (pages / "link.txt").symlink_to(secret)
    (pages / "out").symlink_to(tmp_path)
    server = make_server(pages, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        for path, status in [
            ("/quiz.html", 200),
            ("/../secret.txt", 404),
            ("/%2e%2e/secret.txt", 404),
            ("/link.txt", 404),
            ("/out/secret.txt", 404),
        ]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            reply = conn.getresponse()
            body = reply.read()
            conn.close()
            assert reply.status == status, path
            assert b"not for students" not in body, path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_a_tree_without_its_memory_gives_the_walk_its_valid_ptes(built):
    """``tree_html(tree)`` alone rebuilds each table's PTEs from the tree (runs expanded): the same valid PTEs
    as read from memory, V=0 words as zero (a walk stops on them all the same)."""
    phys, space, tree = built
    alone = page_data(tree_html(tree, title="t"))["views"][0]["space"]["tables"]
    read = page_data(tree_html(tree, title="t", memory=phys))["views"][0]["space"]["tables"]
    valid = {pa: {i: v for i, v in ptes.items() if int(v, 16) & 1} for pa, ptes in read.items()}
    assert alone == valid and alone != read  # the decoy is the difference


# -- TLB and IOMMU questions: a field per part --------------------------------------------------------------


def answer_variants(quiz: str, part: str, expected: str, rng: random.Random) -> list[str]:
    """The expected answer written other ways (right), and wrong or unreadable answers."""
    out = [expected, expected.upper(), f"  {expected}  "]
    words = expected.split()
    if quiz == "tlb":
        entries = [w for w in words if ":" in w]
        if entries:
            shuffled = entries[:]
            rng.shuffle(shuffled)
            head = [w for w in words if ":" not in w]
            out.append(" ".join(head + (["evicts"] if head == ["miss"] else []) + shuffled))
            out.append(", ".join(head + [e.replace("0x", "0X") for e in shuffled]))
            out.append(
                " ".join(head + [f"{e.split(':')[0]}:{int(e.split(':')[1].split('/')[0], 16)}" for e in entries])
            )
            out.append(" ".join(head + entries[:-1]))  # one entry missing
        out += ["hit", "miss", "miss none", "none", "hit A1:0x1000", "A3:0x1000", "miss A1:0xzz", "removes G:0x0"]
    else:
        numbers = [w for w in words if w.startswith("0x") or w.isdigit()]
        if numbers:
            out.append(" ".join(str(int(w, 0)) for w in numbers))  # decimal
            out.append(", ".join(numbers))
            out.append(" ".join(hex(int(w, 0) + 1) for w in numbers))  # off by one
            out.append(" ".join(f"0x_{int(w, 0):x}" for w in numbers))
            out.append(" ".join(f"0{int(w, 0)}" for w in numbers))  # leading zero, decimal
        out += ["fault", "none", "yes", "no", "maybe", "0x", "-1", "+7", "12abc", "0o17", "0b101"]
    return out


@needs_chromium
def test_the_page_reads_answers_as_quiz_grade_does(browser, blank_page):
    """The page's normaliser against hwsim.teach.grade.normalise: the same verdict on every answer."""
    from hwsim.teach import course, iommu_quiz, tlb_quiz
    from hwsim.teach.grade import AnswerError, normalise

    rng = random.Random(5)
    cases = []
    for quiz, module in (("tlb", tlb_quiz), ("iommu", iommu_quiz)):
        for n in range(1, 41):
            q = course.make_question(quiz, n, module.make_exercise(31, n))
            for part, expected in q.parts.items():
                for given in answer_variants(quiz, part, expected, rng):
                    cases.append([quiz, part, given, expected])
    got = browser.evaluate(f"{json.dumps(cases)}.map(c => HwsimAnswers.same(...c))")

    def python(quiz, part, given, expected):
        try:
            return normalise(quiz, part, given) == normalise(quiz, part, expected)
        except AnswerError:
            return "unreadable"

    verdicts = [python(*case) for case in cases]
    assert got == verdicts
    assert len(cases) > 3000 and {True, False, "unreadable"} == set(verdicts)


@needs_chromium
def test_answer_tlb_and_iommu_questions_part_by_part(browser, tmp_path):
    from hwsim.teach import course, iommu_quiz, tlb_quiz

    tlb = tlb_quiz.make_exercise(8, 1)
    key = course.make_question("tlb", 1, tlb)
    path = tmp_path / "tlb.html"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["mmu", "tlb-quiz", "--seed", "8", "--count", "1", "--html", str(path)]) == 0
    browser.open(path.as_uri())
    assert browser.requests() == [path.as_uri()]
    names = browser.evaluate("[...document.querySelectorAll('.part input')].map(i => i.id.slice(5))")
    assert names == list(key.parts)
    # Every part right but one, written differently from the key (upper case); the last left blank.
    first, wrong, blank = names[0], names[1], names[-1]
    for name in names[:-1]:
        browser.type(f"#part-{name}", key.parts[name].upper() if name != wrong else "miss A2:0x1000")
    browser.click("#check")
    assert browser.evaluate("document.body.dataset.score") == f"{len(names) - 2}/{len(names)}"
    verdicts = browser.evaluate(
        "Object.fromEntries([...document.querySelectorAll('.part')].map(p => [p.querySelector('input').id.slice(5),"
        " p.dataset.verdict]))"
    )
    assert verdicts[first] == "right" and verdicts[wrong] == "wrong" and verdicts[blank] == "unanswered"
    why = browser.evaluate(f"document.getElementById('part-{wrong}').closest('.part').querySelector('.why').innerText")
    assert why.startswith(f"expected '{key.parts[wrong]}', you wrote 'miss A2:0x1000'\n{key.hints[wrong]}\n")
    assert (
        browser.evaluate(f"document.getElementById('part-{blank}').closest('.part').querySelector('.why').innerText")
        == ""
    )
    assert browser.text("#verdict") == f"Not right: 2 of {len(names)} parts."
    browser.type(f"#part-{wrong}", key.parts[wrong])
    browser.type(f"#part-{blank}", key.parts[blank])
    browser.click("#check")
    assert browser.evaluate("document.body.dataset.verdict") == "right"
    assert browser.text("#verdict") == "Right: every part."
    # An IOMMU question: the parts of a fault record.
    ex = next(e for n in range(1, 40) if not (e := iommu_quiz.make_exercise(2, n)).solve().ok)
    key = course.make_question("iommu", ex.number, ex)
    path = tmp_path / "iommu.html"
    from hwsim.teach.html import quiz_html

    path.write_text(quiz_html("iommu", [ex], title="iommu"))
    browser.open(path.as_uri())
    assert browser.text("#question").startswith(iommu_quiz.format_exercise(ex)[0])
    browser.type("#part-pa", "fault")
    browser.type("#part-cause", str(int(key.parts["cause"])))  # decimal, as the key
    browser.type("#part-iotval", str(int(key.parts["iotval"], 16)))  # decimal for a hex key: still right
    browser.type("#part-queued", "maybe")
    browser.click("#check")
    verdicts = browser.evaluate("[...document.querySelectorAll('.part')].map(p => p.dataset.verdict)")
    assert verdicts == ["right", "right", "right", "unreadable"]
    assert "cannot be read as an answer" in browser.text(".part:last-child .mark")
