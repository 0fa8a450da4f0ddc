"""Running ``zig cc`` (the ``ziglang`` package) for drivers, firmware and process modules, cached by content."""

from __future__ import annotations

import os
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
    # Build beside the output and move into place: concurrent builds (test workers, two shells) never
    # see a half-written file, and the stamp is written the same way, after the output.
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    cmd = [sys.executable, "-m", "ziglang", "cc", *args, "-o", str(tmp)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        raise error(f"cannot run zig: {exc}") from None
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        if "No module named ziglang" in result.stderr:
            raise error(hint)
        raise error(f"building {what} failed:\n{result.stderr.strip()}")
    os.replace(tmp, output)
    tmp_stamp = stamp.with_name(f".{stamp.name}.{os.getpid()}.tmp")
    tmp_stamp.write_text(key)
    os.replace(tmp_stamp, stamp)
    return output
