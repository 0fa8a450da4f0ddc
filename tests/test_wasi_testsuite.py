"""The official WASI test suite's prebuilt wasip1 programs (C and AssemblyScript), run through hwsim's
adapter (tests/wasi_adapter.py) as the suite's runner runs them: arguments, environment and
directories from each program's JSON, then its stdout and exit status compared.

The suite lives beside the project (``$HWSIM_WASI_TESTSUITE`` or ../shared/wasi-testsuite); the
directories a test writes to are copies, so the suite itself is never modified.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = Path(os.environ.get("HWSIM_WASI_TESTSUITE", ROOT.parent / "shared" / "wasi-testsuite"))
DIRS = [SUITE / "tests" / lang / "testsuite" / "wasm32-wasip1" for lang in ("c", "assemblyscript")]
PROGRAMS = sorted(p for d in DIRS if d.is_dir() for p in d.glob("*.wasm"))

sys.path.insert(0, str(Path(__file__).parent))
import wasi_adapter  # noqa: E402


def _id(path: Path) -> str:
    return f"{path.parents[2].name}/{path.stem}"


@pytest.mark.skipif(not PROGRAMS, reason=f"the WASI test suite is not at {SUITE} (set HWSIM_WASI_TESTSUITE)")
@pytest.mark.parametrize("program", PROGRAMS, ids=[_id(p) for p in PROGRAMS])
def test_wasi_testsuite_program(program: Path, tmp_path: Path) -> None:
    config_file = program.with_suffix(".json")
    config = json.loads(config_file.read_text()) if config_file.exists() else {}
    dirs = []
    for d in config.get("dirs", []):
        shutil.copytree(program.parent / d, tmp_path / d, symlinks=True)
        dirs.append((tmp_path / d, d))
    argv = wasi_adapter.compute_argv(
        str(program), (config.get("args", []), config.get("env", {}), dirs), [], "wasi:cli/command", "wasm32-wasip1"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    report = f"argv: {argv}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr}"
    assert proc.returncode == config.get("exit_code", 0), report
    expected = config.get("stdout")
    if expected is not None:
        assert proc.stdout[: len(expected)] == expected, report


def test_wasi_testsuite_is_complete() -> None:
    """Every wasip1 program the suite ships is run (26 when this was written)."""
    if not PROGRAMS:
        pytest.skip(f"the WASI test suite is not at {SUITE}")
    assert len(PROGRAMS) >= 26
