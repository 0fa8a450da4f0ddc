"""The official WASI test suite's prebuilt wasip1 programs (C and AssemblyScript), run through hwsim's
adapter (tests/wasi_adapter.py) as the suite's runner runs them: arguments, environment and
directories from each program's JSON, then its stdout and exit status compared.  The wasi-threads
proposal's programs (``tests/proposals/wasi-threads/*.wat``) run the same way, with a standard input
that stays open and empty (they assume a read of fd 0 blocks).

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
THREADS_DIR = SUITE / "tests" / "proposals" / "wasi-threads"
THREAD_PROGRAMS = sorted(THREADS_DIR.glob("*.wat")) if THREADS_DIR.is_dir() else []

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


@pytest.mark.skipif(not THREAD_PROGRAMS, reason=f"the WASI test suite is not at {SUITE} (set HWSIM_WASI_TESTSUITE)")
@pytest.mark.parametrize("harts", [1, 4])
@pytest.mark.parametrize("program", THREAD_PROGRAMS, ids=[p.stem for p in THREAD_PROGRAMS])
def test_wasi_threads_proposal_program(program: Path, harts: int, tmp_path: Path) -> None:
    """Each program as the suite says, on one hart and on four (``--harts 4``: thread t on hart t mod 4)."""
    config_file = program.with_suffix(".json")
    config = json.loads(config_file.read_text()) if config_file.exists() else {}
    argv = wasi_adapter.compute_argv(str(program), ([], {}, []), ["wasi-threads"], "wasi:cli/command", "wasm32-wasip1")
    if harts > 1:
        run = argv.index("run") + 1
        argv[run:run] = ["--harts", str(harts)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as stdout_file, err.open("w") as stderr_file:
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=stdout_file, stderr=stderr_file, env=env, cwd=tmp_path
        )
        try:  # stdin stays open (and empty) until the program has ended
            returncode = proc.wait(timeout=120)
        finally:
            proc.kill()
            proc.wait()
            assert proc.stdin is not None
            proc.stdin.close()
    stdout, stderr = out.read_text(), err.read_text()
    report = f"argv: {argv}\nstdout: {stdout!r}\nstderr: {stderr}"
    assert returncode == config.get("exit_code", 0), report


def test_wasi_threads_proposal_is_complete() -> None:
    """Every wasi-threads program the suite ships is run (14 .wat files when this was written)."""
    if not THREAD_PROGRAMS:
        pytest.skip(f"the WASI test suite is not at {SUITE}")
    assert len(THREAD_PROGRAMS) >= 14


def test_wasi_threads_proposal_c_program(tmp_path: Path) -> None:
    """``thread_spawn-simple.c`` built with the project's zig (wasm32-wasi, atomics, a shared imported
    memory) and run: three threads spawned, each waiting and notified.  Built with -O2: the program
    points each thread's stack at the start of a 128-byte malloc, so a frame below it (as -O0 makes)
    writes into the allocator's own data (zig's allocator then faults in free)."""
    pytest.importorskip("ziglang")
    sources = [THREADS_DIR / "thread_spawn-simple.c", THREADS_DIR / "wasi_thread_spawn.S"]
    if not all(p.exists() for p in sources):
        pytest.skip(f"the WASI test suite is not at {SUITE}")
    program = tmp_path / "thread_spawn-simple.wasm"
    shim = Path(__file__).parent / "data" / "wasi_threads" / "thread_spawn_shim.c"
    build = [sys.executable, "-m", "ziglang", "cc", "-O2", "-target", "wasm32-wasi-musl"]
    build += ["-mcpu=generic+atomics+bulk_memory", "-pthread"]
    build += ["-Wl,--import-memory,--export-memory,--shared-memory,--max-memory=67108864"]
    subprocess.run([*build, *map(str, sources), str(shim), "-o", str(program)], check=True, timeout=600)
    argv = wasi_adapter.compute_argv(str(program), ([], {}, []), ["wasi-threads"], "wasi:cli/command", "wasm32-wasip1")
    for seed in ("0", "1", "2"):
        proc = subprocess.run(
            [*argv[:-1], "--thread-seed", seed, argv[-1]],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
