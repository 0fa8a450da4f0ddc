"""Running ``zig cc`` (the ``ziglang`` package) for drivers, firmware and process modules, cached by content."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def zig_cc(args: list[str], output: Path, key: str, *, force: bool, what: str, hint: str, error) -> Path:
    """``zig cc ARGS -o OUTPUT``, skipped when OUTPUT's stamp file records ``key`` (a digest of every input).

    Failures raise ``error``: ``hint`` when zig is not installed, else the compiler's messages for ``what``.
    """
    stamp = output.with_name(output.name + ".sha256")
    if not force and output.is_file() and stamp.is_file() and stamp.read_text() == key:
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "ziglang", "cc", *args, "-o", str(output)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        raise error(f"cannot run zig: {exc}") from None
    if result.returncode != 0:
        if "No module named ziglang" in result.stderr:
            raise error(hint)
        raise error(f"building {what} failed:\n{result.stderr.strip()}")
    stamp.write_text(key)
    return output
