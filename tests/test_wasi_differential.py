"""WASI programs of hwsim's own (tests/data/wasi/*.c, built with ``zig cc -target wasm32-wasi``) run on
hwsim (``hwsim wasm run``) and on wasmtime-py, the oracle: the same stdout, stderr, exit status and
files left behind."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "tests" / "data" / "wasi"

pytest.importorskip("wasmtime", reason="wasmtime-py is the oracle (pip install wasmtime)")
pytest.importorskip("ziglang", reason="the programs are built with zig cc (pip install ziglang)")

# wasmtime-py in a process of its own, in the shape of `wasmtime run` (argv[0] the program's path).
WASMTIME_RUN = """
import sys, wasmtime
program, dirs, env, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
engine = wasmtime.Engine()
store = wasmtime.Store(engine)
config = wasmtime.WasiConfig()
config.argv = [program, *args]
config.env = [kv.split("=", 1) for kv in env.split(",") if kv]
for pair in filter(None, dirs.split(",")):
    host, guest = pair.split("::")
    config.preopen_dir(host, guest)
config.inherit_stdin(); config.inherit_stdout(); config.inherit_stderr()
store.set_wasi(config)
linker = wasmtime.Linker(engine)
linker.define_wasi()
instance = linker.instantiate(store, wasmtime.Module.from_file(engine, program))
try:
    instance.exports(store)["_start"](store)
except wasmtime.ExitTrap as exc:
    sys.exit(exc.code)
except wasmtime.Trap as exc:
    print(exc, file=sys.stderr)
    sys.exit(134)
"""


@pytest.fixture(scope="session")
def build(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("wasi-programs")

    def built(name: str, flags: tuple[str, ...] = ("-O2", "-g0", "-s")) -> Path:
        source = SOURCES / f"{name}.c"
        digest = hashlib.sha256(source.read_bytes() + repr(flags).encode()).hexdigest()[:16]
        out = out_dir / f"{name}-{digest}.wasm"
        if not out.exists():
            cmd = [sys.executable, "-m", "ziglang", "cc", "-target", "wasm32-wasi", *flags]
            subprocess.run([*cmd, str(source), "-o", str(out)], check=True, capture_output=True)
        return out

    return built


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = path.read_text()
        else:
            out[rel] = "dir"
    return out


def _run_both(program: Path, tmp_path: Path, *, args=(), env=(), stdin=b"", dirs=()):
    results = []
    for engine in ("hwsim", "wasmtime"):
        host_dirs = []
        for guest in dirs:
            d = tmp_path / engine / guest
            d.mkdir(parents=True)
            host_dirs.append((d, guest))
        if engine == "hwsim":
            argv = [sys.executable, "-m", "hwsim", "wasm", "run"]
            for kv in env:
                argv += ["--env", kv]
            for host, guest in host_dirs:
                argv += ["--dir", f"{host}::{guest}"]
            argv += [str(program), *args]
        else:
            dir_arg = ",".join(f"{h}::{g}" for h, g in host_dirs)
            argv = [sys.executable, "-c", WASMTIME_RUN, str(program), dir_arg, ",".join(env), *args]
        proc = subprocess.run(
            argv, input=stdin, capture_output=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT))
        )
        files = {g: _snapshot(h) for h, g in host_dirs}
        results.append((proc.returncode, proc.stdout.decode(), proc.stderr.decode(), files))
    return results


def test_stdio(build, tmp_path: Path) -> None:
    hwsim_result, wasmtime_result = _run_both(
        build("stdio"), tmp_path, args=("first arg", "5"), env=("GREETING=hello there",), stdin=b"one\ntwo\nthree"
    )
    assert hwsim_result == wasmtime_result
    assert hwsim_result[0] == 5 and "ONE\nTWO\nTHREE" in hwsim_result[1]


def test_stdio_no_input(build, tmp_path: Path) -> None:
    hwsim_result, wasmtime_result = _run_both(build("stdio"), tmp_path)
    assert hwsim_result == wasmtime_result and hwsim_result[0] == 0


def test_files(build, tmp_path: Path) -> None:
    hwsim_result, wasmtime_result = _run_both(build("files"), tmp_path, dirs=("data",))
    assert hwsim_result == wasmtime_result
    assert hwsim_result[0] == 0 and "open dotdot: Operation not permitted" in hwsim_result[1]
    assert hwsim_result[3] == {"data": {"append.txt": "one\ntwo\n"}}


def test_memory_hungry_allocator(build, tmp_path: Path) -> None:
    hwsim_result, wasmtime_result = _run_both(build("alloc"), tmp_path)
    assert hwsim_result == wasmtime_result
    assert "1 GiB block: ok\nlast byte 7" in hwsim_result[1]


def test_trap_names_the_c_line(build, tmp_path: Path) -> None:
    program = build("trap", ("-O1", "-g", "-fno-sanitize=undefined"))
    (code, out, err, _), (w_code, w_out, w_err, _) = _run_both(program, tmp_path)
    assert (code, out) == (w_code, w_out) == (134, "before the trap\n")
    assert err.startswith(f"Error: failed to run main module `{program}`")
    assert "at trap.c:10 (main)" in err and "wasm trap: integer divide by zero" in err
    # the same backtrace as wasmtime's: bytecode offsets and function names, innermost first
    frames = [line.split(":", 1)[1].strip() for line in err.splitlines() if " - " in line]
    w_frames = [line.split(":", 1)[1].strip() for line in w_err.splitlines() if " - " in line]
    assert frames == w_frames and frames[0].endswith(".wasm!main")


def test_errnos(build, tmp_path: Path) -> None:
    """Calls that fail, each with its errno (strerror): directories, links, loops, escapes, rights."""
    hwsim_result, wasmtime_result = _run_both(build("errors"), tmp_path, dirs=("data",))
    assert hwsim_result == wasmtime_result
    out = hwsim_result[1]
    assert "open escaping symlink        Operation not permitted" in out
    assert "open symlink loop            Symbolic link loop" in out
    assert hwsim_result[3] == {"data": {}}


def test_sleep_readdir_times_and_flags(build, tmp_path: Path) -> None:
    """nanosleep (poll_oneoff), a directory of 300 entries read in several fd_readdir calls, stat
    consistency, sync, file times, isatty, fcntl flags, random."""
    hwsim_result, wasmtime_result = _run_both(build("misc"), tmp_path, dirs=("data",))
    assert hwsim_result == wasmtime_result
    assert "entries 302 (dots 2)" in hwsim_result[1] and "mtime 1500000000.000000500" in hwsim_result[1]
