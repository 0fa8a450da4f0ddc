"""hwsim.teach.html: the self-contained page that draws a page-table tree, rendered in headless Chromium.

The rendering tests need a Chromium binary (Debian: ``apt-get install chromium``; or set HWSIM_CHROMIUM to
one); without it they are skipped, saying so.
"""

from __future__ import annotations

import re
import struct
import subprocess
import tempfile

import pytest
from chromium_cdp import find_chromium

from hwsim.machine import FrameAllocator, PhysicalMemory
from hwsim.mmu import AddressSpace, Pte
from hwsim.mmu.bits import make_pte
from hwsim.mmu.snapshot import Region, region_namer
from hwsim.mmu.tree import read_tree
from hwsim.teach.html import tree_html

RAM = 0x8000_0000
CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (apt-get install chromium, or set HWSIM_CHROMIUM): "
    "the HTML page's rendering is checked in it",
)


@pytest.fixture(scope="module")
def tree():
    """A 3-page run, a code page, a 2 MiB superpage, a misaligned gigapage, a table outside RAM, a loop."""
    phys = PhysicalMemory()
    frames = FrameAllocator(phys.add_ram(RAM, 8 << 20))
    space = AddressSpace(phys, frames, asid=2)
    data = frames.alloc(3)
    space.map(0x1000, data, 0x3000, Pte.R | Pte.W | Pte.U)
    space.map(0x10000, data, 0x1000, Pte.R | Pte.X | Pte.U)
    space.map(0x4000_0000, RAM + (2 << 20), 2 << 20, Pte.R | Pte.W)
    phys.write_u64(space.root + 8 * 5, make_pte(0x80123, Pte.V | Pte.R | Pte.X))
    phys.write_u64(space.root + 8 * 6, make_pte(0x1234, Pte.V))
    phys.write_u64(space.root + 8 * 7, make_pte(space.root >> 12, Pte.V))
    return read_tree(phys, space.root, satp=space.satp)


def test_the_page_is_self_contained(tree):
    page = tree_html(tree, title="</script><b>x</b>")
    assert "&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in page
    assert page.count("</script>") == 2  # the data block and the script; the title and data cannot close them
    for needle in ("src=", "href=", "url(", "@import", "<link", "https:"):
        assert needle not in page
    assert re.findall(r"http://[^\"]*", page) == ["http://www.w3.org/2000/svg"]  # a namespace name, not a fetch


def chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            timeout=120,
        )


@needs_chromium
def test_chromium_draws_every_table_entry_and_link(tree, tmp_path):
    path = tmp_path / "tree.html"
    path.write_text(tree_html(tree, title="test tree", region_of=region_namer([Region("ram", "ram", RAM, 8 << 20)])))
    out = chromium("--dump-dom", f"file://{path}#va=0x2008")
    dom = out.stdout.decode()
    body = re.search(r"<body ([^>]*)>", dom)
    assert body, out.stderr.decode()[-2000:]
    attrs = {
        k: v for k, v in re.findall(r'data-(\w+)="([^"]*)"', body[1]) if k in ("rendered", "tables", "entries", "links")
    }
    entries = [e for t in tree.root.walk_tables() for e in t.entries]
    drawn = [t for t in tree.root.walk_tables() if not t.shared]
    assert attrs == {
        "rendered": "true",
        "tables": str(len(drawn)),
        "entries": str(len(entries)),
        "links": str(sum(1 for e in entries if e.table is not None)),
    }
    assert (len(drawn), len(entries)) == (5, 9)
    # The script built the boxes and rows (the page as written has none), and drew one SVG path per pointer.
    assert dom.count('<div class="table') == 5 and dom.count('<div class="table missing"') == 1
    assert len(re.findall(r'<div class="row ', dom)) == 9
    assert len(re.findall(r'<path class="link', dom)) == 5
    assert "2 MiB superpage → pa 0x80200000" in dom and "3 × 4 KiB → pa 0x80001000" in dom
    # Each part of a mapping named by what is there: the misaligned gigapage runs past the end of RAM.
    assert dom.count('<span class="region"> [ram]</span>') == 3
    assert '<span class="region"> [ram 0x80123000-0x807fffff, no RAM or device 0x80800000-0xc0122fff]</span>' in dom
    assert "⚠ misaligned superpage: low PPN fields of the leaf are not zero" in dom
    assert "table 0x1234000: not in RAM, a walk here is an access fault" in dom
    # #va=0x2008 highlighted the walk: two pointers and the leaf run holding page 0x2000, which is the run's
    # second page: its frame is the run's first frame + 0x1000, not the first frame the row shows.
    assert len(re.findall(r'class="row [^"]*on-path"', dom)) == 3
    run = next(e for e in tree.leaves() if e.count == 3)
    frame = run.target + 0x1000
    assert (
        f'<span id="walk-note">level 0: entry 0x002 is a 4 KiB leaf, number 2 of a run of 3: frame {frame:#x}, '
        f"pa {frame + 8:#x}</span>" in dom
    )
    assert f'<div class="hit">↳ [0x002] → frame {frame:#x}</div>' in dom
    # Each flag letter is named when hovered.
    assert '<span title="V valid: set" class="on">V</span>' in dom and '<span title="D dirty: clear">D</span>' in dom


@needs_chromium
def test_chromium_screenshot_is_a_picture(tree, tmp_path):
    path = tmp_path / "tree.html"
    path.write_text(tree_html(tree, title="test tree"))
    png = tmp_path / "tree.png"
    chromium("--window-size=1200,600", f"--screenshot={png}", f"file://{path}")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 600) and len(data) > 20_000  # boxes, text and curves, not a blank page


def test_the_page_has_a_legend_for_the_flag_letters(tree):
    """The rows show DAGUXWRV with the set letters dark: the page says what each letter means (it did not)."""
    page = tree_html(tree, title="t")
    assert (
        '<div id="legend">flags DAGUXWRV: D dirty, A accessed, G global, U user, X executable, W writable, '
        "R readable, V valid; dark: set, grey: clear<br>"
    ) in page
    assert (
        'const flagNames = ["dirty", "accessed", "global", "user", "executable", "writable", "readable", "valid"]'
        in page
    )
