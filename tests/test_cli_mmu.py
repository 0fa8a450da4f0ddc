"""``hwsim mmu walk``, ``hwsim mmu dump`` and ``hwsim demo``: page tables from images, snapshots and live boards,
output, exit codes, and never writing the image unless asked."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import sys

import pytest
from golden import check_golden

from hwsim import __version__
from hwsim.cli import main
from hwsim.machine import FrameAllocator, PhysicalMemory
from hwsim.mmu import AddressSpace, Pte

RAM = 0x8000_0000


@pytest.fixture
def image(tmp_path):
    """A 1 MiB image with one Sv39 space: 0x1000 -> a user rw page with A/D clear."""
    phys = PhysicalMemory()
    frames = FrameAllocator(phys.add_ram(RAM, 1 << 20))
    space = AddressSpace(phys, frames, asid=5)
    data = frames.alloc()
    space.map(0x1000, data, 0x1000, Pte.R | Pte.W | Pte.U, accessed=False)
    space.map(0x4000_0000, RAM, 2 << 20, Pte.R | Pte.X)
    path = tmp_path / "mem.bin"
    path.write_bytes(phys.read(RAM, 1 << 20))
    return path, space.satp, data


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def walk_args(image, va, access="load", priv="U", *extra):
    path, satp, _ = image
    return [
        "mmu",
        "walk",
        "--image",
        str(path),
        "--base",
        hex(RAM),
        "--satp",
        hex(satp),
        "--va",
        hex(va),
        "--access",
        access,
        "--priv",
        priv,
        *extra,
    ]


def test_text_walk(image, capsys):
    before = digest(image[0])
    assert main(walk_args(image, 0x1234)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"satp {image[1]:#018x}: MODE=Sv39 ASID=5 root table at {RAM:#x}"
    assert out[1] == "va 0x0000000000001234 (Sv39): vpn[2]=0x000  vpn[1]=0x000  vpn[0]=0x001  offset=0x234"
    assert out[-2].endswith("load allowed; hardware would set A (not written)")
    assert out[-1] == f"result: pa {image[2] + 0x234:#x}  (4 KiB page at va 0x1000 -> pa {image[2]:#x}, rw-u)"
    assert digest(image[0]) == before  # never written without --update-ad


def test_json_walk_and_fault_exit_code(image, capsys):
    assert main(walk_args(image, 0x4000_0000, "fetch", "U", "--json")) == 1
    j = json.loads(capsys.readouterr().out)
    assert j["result"] == "fault" and j["fault"]["reason"] == "user_page_from_u" and j["fault"]["cause"] == 12
    assert [s["level"] for s in j["steps"]] == [2, 1]
    assert main(walk_args(image, 0x4000_0010, "fetch", "S", "--json")) == 0
    j = json.loads(capsys.readouterr().out)
    assert (j["result"], j["pa"], j["level"], j["page_size"]) == ("ok", hex(RAM + 0x10), 1, 2 << 20)
    assert j["satp"] == {"mode": "Sv39", "asid": 5, "root": hex(RAM)}


def test_update_ad_writes_the_bits(image, capsys):
    path = image[0]
    before = digest(path)
    assert main(walk_args(image, 0x1000, "store", "U", "--update-ad", "--json")) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["ad_update"]["written"] is True
    assert digest(path) != before
    assert main(walk_args(image, 0x1000, "store", "U", "--json")) == 0
    assert "ad_update" not in json.loads(capsys.readouterr().out)  # A and D are now set in the image


def test_svade_option_and_sum(image, capsys):
    assert main(walk_args(image, 0x1000, "load", "U", "--ad", "fault")) == 1
    assert "A=0 in the leaf PTE" in capsys.readouterr().out
    assert main(walk_args(image, 0x1000, "load", "S")) == 1
    assert "with SUM=0" in capsys.readouterr().out
    assert main(walk_args(image, 0x1000, "load", "S", "--sum")) == 0


def test_bare_and_unknown_modes(image, capsys):
    path = str(image[0])
    assert (
        main(
            [
                "mmu",
                "walk",
                "--image",
                path,
                "--base",
                "0",
                "--satp",
                "0",
                "--va",
                "0x1234",
                "--access",
                "load",
                "--priv",
                "S",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == "satp MODE=Bare: no translation, pa 0x1234"
    assert (
        main(
            [
                "mmu",
                "walk",
                "--image",
                path,
                "--base",
                "0",
                "--satp",
                hex(11 << 60),
                "--va",
                "0",
                "--access",
                "load",
                "--priv",
                "S",
            ]
        )
        == 2
    )
    assert (
        "satp MODE=11 is not supported; known modes: 0 (Bare), 8 (Sv39), 9 (Sv48), 10 (Sv57)" in capsys.readouterr().err
    )


def test_table_outside_the_image_is_an_access_fault(image, capsys):
    path, satp, _ = image
    assert main(walk_args((path, (8 << 60) | 0x12345, 0), 0x1000)) == 1
    assert "access fault (cause 5): the PTE's physical address is not in RAM" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (
            [
                "mmu",
                "walk",
                "--image",
                "/no/such/file",
                "--base",
                "0",
                "--satp",
                "0",
                "--va",
                "0",
                "--access",
                "load",
                "--priv",
                "U",
            ],
            "hwsim: error: cannot open memory image '/no/such/file': No such file or directory",
        ),
    ],
)
def test_errors_are_one_line_not_tracebacks(argv, message, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == message


def test_bad_numbers_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main(
            [
                "mmu",
                "walk",
                "--image",
                "x",
                "--base",
                "zz",
                "--satp",
                "0",
                "--va",
                "0",
                "--access",
                "load",
                "--priv",
                "U",
            ]
        )
    assert info.value.code == 2
    assert "argument --base: not an integer: 'zz'" in capsys.readouterr().err


def test_demo_runs_and_reports_the_fault(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "run 1: sum of 1024 words -> reached the exit address; result 524800 (expected 524800)" in out
    assert "load page fault (cause 13) at va 0x102000" in out
    assert "pc 0x1000c: ld t0, 0(a1)" in out


def test_console_entry_point_version():
    out = subprocess.run([sys.executable, "-m", "hwsim", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"hwsim {__version__}"


# -- live boards, snapshots, dump ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_snapshot(tmp_path_factory):
    """The virt board's demo guest, run once: its dump (text) and a snapshot file."""
    path = tmp_path_factory.mktemp("snap") / "demo.json"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(["mmu", "dump", "--board", "virt", "--demo", "--save-snapshot", str(path)]) == 0
    assert err.getvalue() == f"saved 5 tables to {path}\n"
    return path, out.getvalue()


def test_dump_of_the_live_demo_board(demo_snapshot):
    check_golden("mmu_dump_demo.txt", demo_snapshot[1])


def test_walk_on_a_live_board_sees_the_bits_the_guest_set(capsys):
    assert (
        main(["mmu", "walk", "--board", "virt", "--demo", "--va", "0x300005", "--access", "load", "--priv", "U"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("board 'virt': a U-mode guest ran on the CPU in address space ASID 1")
    assert out[4] == "va 0x0000000000300005 (Sv39): vpn[2]=0x000  vpn[1]=0x001  vpn[0]=0x100  offset=0x005"
    assert out[-3].endswith("ppn=0x10000 -A-U-WRV  leaf (4 KiB page): load allowed")  # A: the guest read LSR; once
    assert out[6] == (
        "flags DAGUXWRV: D dirty, A accessed, G global, U user, X executable, W writable, R readable, V valid; - clear"
    )
    assert out[-1] == "pa 0x10000005 is in 'uart0'"


def test_snapshot_walks_like_the_board(demo_snapshot, capsys):
    path, board_dump = demo_snapshot
    assert main(["mmu", "dump", "--snapshot", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"snapshot {path} (board 'virt', the demo guest's address space (ASID 1) after its run)"
    assert out[1:] == board_dump.splitlines()[3:]
    # The buffer's third page was never read: A is still clear there, and set on the two read before it.
    assert (
        main(["mmu", "walk", "--snapshot", str(path), "--va", "0x102000", "--access", "load", "--priv", "U", "--json"])
        == 0
    )
    j = json.loads(capsys.readouterr().out)
    assert j["steps"][-1]["flags"] == "---U--RV" and j["ad_update"]["written"] is False and j["region"] == "ram"
    assert (
        main(["mmu", "walk", "--snapshot", str(path), "--va", "0x101ff8", "--access", "load", "--priv", "U", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["steps"][-1]["flags"] == "-A-U--RV"


def test_walk_explain_golden(demo_snapshot, capsys):
    path = str(demo_snapshot[0])
    texts = []
    for va, access, priv, extra in (
        ("0x40101234", "store", "U", []),
        ("0xffffffc000401000", "fetch", "S", []),
        ("0x100010", "load", "S", []),
        ("0x100010", "load", "S", ["--sum"]),
        ("0x4000000000", "load", "U", []),
    ):
        code = main(
            ["mmu", "walk", "--snapshot", path, "--va", va, "--access", access, "--priv", priv, "--explain", *extra]
        )
        texts.append(
            f"$ hwsim mmu walk --snapshot demo.json --va {va} --access {access} --priv {priv} "
            f"--explain{''.join(' ' + e for e in extra)}   (exit {code})\n"
            + capsys.readouterr().out.replace(path, "demo.json")
        )
    check_golden("mmu_walk_explain.txt", "\n".join(texts))


def test_dump_of_an_image_and_json(image, capsys):
    path, satp, data = image
    assert main(["mmu", "dump", "--image", str(path), "--base", hex(RAM), "--satp", hex(satp)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"satp {satp:#018x}: Sv39 page tables, root table 0x80000000, ASID 5"
    assert f"[0x001] va 0x1000-0x1fff  4 KiB page -> pa {data:#x}-{data + 0xFFF:#x}  ---U-WRV" in out[5]
    assert main(["mmu", "dump", "--image", str(path), "--base", hex(RAM), "--satp", hex(satp), "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["root"]["valid"] == 2 and "region" not in j["root"]["entries"][1]  # an image's map is not known


@pytest.mark.parametrize(
    "argv,message",
    [
        (
            ["mmu", "dump"],
            "give the page tables with exactly one of --image (with --base and --satp), --snapshot FILE, "
            "or --board BOARD with --demo or --driver DRIVER",
        ),
        (
            ["mmu", "dump", "--snapshot", "a", "--board", "virt"],
            "or --board BOARD with --demo or --driver DRIVER; got --snapshot, --board",
        ),
        (["mmu", "dump", "--image", "x", "--satp", "0"], "--image needs --base"),
        (
            ["mmu", "dump", "--snapshot", "x", "--satp", "0"],
            "--satp goes with --image (a snapshot carries its own memory map and satp)",
        ),
        (["mmu", "dump", "--board", "virt"], "--board needs one guest to run first: --demo or --driver DRIVER"),
        (["mmu", "dump", "--board", "virt", "--demo", "--driver", "x"], "--board needs one guest to run first"),
        (["mmu", "dump", "--snapshot", "x", "--demo"], "--demo goes with --board"),
        (["mmu", "dump", "--snapshot", "x", "--driver", "d"], "--driver goes with --board"),
        (
            ["mmu", "dump", "--board", "virt", "--driver", "/no/such.wasm"],
            "cannot read driver '/no/such.wasm': No such file or directory",
        ),
        (["mmu", "dump", "--board", "virt", "--driver", __file__], f"driver {__file__!r}: magic header not detected"),
        (["mmu", "dump", "--board", __file__, "--demo"], f"{__file__}: not valid TOML"),
        (
            ["mmu", "dump", "--board", "nosuch", "--demo"],
            "nosuch: no such board file, and hwsim has no board of that name",
        ),
        (
            ["mmu", "dump", "--snapshot", "/no/such.json"],
            "cannot read snapshot '/no/such.json': No such file or directory",
        ),
        (
            ["mmu", "walk", "--snapshot", "x", "--update-ad", "--va", "0", "--access", "load", "--priv", "U"],
            "--update-ad writes into a memory image; it needs --image",
        ),
    ],
)
def test_source_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwsim: error: ") and message in err and err.count("\n") == 1


def test_dump_of_a_bare_satp_is_an_error(image, capsys):
    assert main(["mmu", "dump", "--image", str(image[0]), "--base", hex(RAM), "--satp", "0"]) == 2
    assert "satp 0x0 is Bare: there are no page tables to dump" in capsys.readouterr().err


def test_dump_html_writes_one_self_contained_page(demo_snapshot, tmp_path, capsys):
    page = tmp_path / "tables.html"
    assert main(["mmu", "dump", "--snapshot", str(demo_snapshot[0]), "--html", str(page)]) == 0
    assert capsys.readouterr().err == f"wrote {page}\n"
    text = page.read_text()
    assert "<title>board &#x27;virt&#x27;, the demo guest&#x27;s address space (ASID 1) after its run</title>" in text
    assert '"satp": "0x8000100000080000"' in text and '"region": "uart0"' in text
    assert main(["mmu", "dump", "--snapshot", str(demo_snapshot[0]), "--html", "/no/such/dir/x.html"]) == 2
    assert "cannot write '/no/such/dir/x.html': No such file or directory" in capsys.readouterr().err


def test_dump_and_walk_a_sandboxed_drivers_address_space(capsys):
    """The wasm runtime's tables after drivers/dma_copy's probe(): the DMA engine's window is mapped into the
    driver's linear memory, and a walk of it ends in the device."""
    from pathlib import Path

    driver = str(Path(__file__).parent.parent / "drivers" / "dma_copy")
    assert main(["mmu", "dump", "--board", "virt", "--driver", driver, "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["source"][0].startswith("board 'virt': driver dma_copy.wasm ran probe() sandboxed (returned)")

    def leaves(table):
        for e in table["entries"]:
            yield from leaves(e["table"]) if "table" in e and e["kind"] == "pointer" else [e]

    window = [e for e in leaves(j["root"]) if e.get("region") == "dma0"]
    assert window and all(e["flags"][3] == "U" for e in window)  # a user mapping: the sandbox reaches the device
    va = window[0]["va"]
    assert (
        main(["mmu", "walk", "--board", "virt", "--driver", driver, "--va", va, "--access", "load", "--priv", "U"]) == 0
    )
    assert capsys.readouterr().out.splitlines()[-1] == f"pa {int(window[0]['target'], 16):#x} is in 'dma0'"
