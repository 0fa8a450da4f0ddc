"""``hwsim mmu walk`` and ``hwsim demo``: output, exit codes, and never writing the image unless asked."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

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
    return ["mmu", "walk", "--image", str(path), "--base", hex(RAM), "--satp", hex(satp), "--va", hex(va),
            "--access", access, "--priv", priv, *extra]


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
    assert main(["mmu", "walk", "--image", path, "--base", "0", "--satp", "0", "--va", "0x1234", "--access", "load",
                 "--priv", "S"]) == 0
    assert capsys.readouterr().out.strip() == "satp MODE=Bare: no translation, pa 0x1234"
    assert main(["mmu", "walk", "--image", path, "--base", "0", "--satp", hex(10 << 60), "--va", "0",
                 "--access", "load", "--priv", "S"]) == 2
    assert "satp MODE=10 is not supported; known modes: 0 (Bare), 8 (Sv39), 9 (Sv48)" in capsys.readouterr().err


def test_table_outside_the_image_is_an_access_fault(image, capsys):
    path, satp, _ = image
    assert main(walk_args((path, (8 << 60) | 0x12345, 0), 0x1000)) == 1
    assert "access fault (cause 5): the PTE's physical address is not in RAM" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["mmu", "walk", "--image", "/no/such/file", "--base", "0", "--satp", "0", "--va", "0", "--access", "load",
      "--priv", "U"], "hwsim: error: cannot open memory image '/no/such/file': No such file or directory"),
])
def test_errors_are_one_line_not_tracebacks(argv, message, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == message


def test_bad_numbers_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main(["mmu", "walk", "--image", "x", "--base", "zz", "--satp", "0", "--va", "0", "--access", "load",
              "--priv", "U"])
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
