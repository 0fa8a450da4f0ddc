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
