"""``hwsim wasm run``: Wasmtime's command-line shape and exit codes, on WAT programs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.cli import main

PRELUDE = """
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
"""


def _program(tmp_path: Path, body: str, data: str = "") -> str:
    path = tmp_path / "prog.wat"
    path.write_text(f'(module {PRELUDE} {data} (func (export "_start") {body}))')
    return str(path)


def test_hello_and_exit_status(tmp_path: Path, capfd) -> None:
    prog = _program(
        tmp_path,
        "(drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))"
        "(call $proc_exit (i32.const 42))",
        '(data (i32.const 16) "hi there\\n") (data (i32.const 0) "\\10\\00\\00\\00\\09\\00\\00\\00")',
    )
    assert main(["wasm", "run", prog]) == 42
    assert capfd.readouterr().out == "hi there\n"


def test_return_from_start_is_status_0(tmp_path: Path) -> None:
    assert main(["wasm", "run", _program(tmp_path, "")]) == 0


def test_args_env_and_dirs_reach_the_program(tmp_path: Path) -> None:
    # exit status: argc * 16 + number of environment variables
    body = (
        "(drop (call $args_sizes (i32.const 0) (i32.const 4)))"
        "(drop (call $env_sizes (i32.const 8) (i32.const 12)))"
        "(call $proc_exit (i32.add (i32.mul (i32.load (i32.const 0)) (i32.const 16)) (i32.load (i32.const 8))))"
    )
    prog = _program(tmp_path, body)
    assert main(["wasm", "run", "--env", "A=1", "--env", "B=2", prog, "x", "--y"]) == 3 * 16 + 2
    # fd 3 is the preopen: open "f.txt" in it, exit with the errno
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("x")
    open_f = (
        "(call $proc_exit (call $path_open (i32.const 3) (i32.const 0) (i32.const 32) (i32.const 5)"
        " (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 64)))"
    )
    prog = _program(tmp_path, open_f, '(data (i32.const 32) "f.txt")')
    assert main(["wasm", "run", "--dir", f"{tmp_path / 'd'}::/data", prog]) == 0
    assert main(["wasm", "run", prog]) == 8  # no preopen: fd 3 is not open (BADF)


def test_a_read_only_dir_is_read_but_never_written(tmp_path: Path, capfd) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("x")

    def opener(rights: int, oflags: int, name: str) -> str:  # exit with path_open's errno
        body = (
            f"(call $proc_exit (call $path_open (i32.const 3) (i32.const 0) (i32.const 32) (i32.const {len(name)})"
            f" (i32.const {oflags}) (i64.const {rights}) (i64.const 0) (i32.const 0) (i32.const 64)))"
        )
        where = tmp_path / f"{rights}-{oflags}"
        where.mkdir()
        return _program(where, body, f'(data (i32.const 32) "{name}")')

    read, write, create = opener(2, 0, "f.txt"), opener(64, 0, "f.txt"), opener(64, 1, "new.txt")
    ro, rw = f"{tmp_path / 'd'}::/data::ro", f"{tmp_path / 'd'}::/data::rw"
    assert main(["wasm", "run", "--dir", ro, read]) == 0
    assert main(["wasm", "run", "--dir", ro, write]) == 63  # PERM
    assert main(["wasm", "run", "--dir", ro, create]) == 63
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["f.txt"]
    assert main(["wasm", "run", "--dir", rw, create]) == 0
    assert (tmp_path / "d" / "new.txt").is_file()
    with pytest.raises(SystemExit) as exit_:
        main(["wasm", "run", "--dir", f"{tmp_path}::/t::rx", read])
    assert exit_.value.code == 2
    assert f"expected HOST[::GUEST[::ro|rw]], not '{tmp_path}::/t::rx'" in capfd.readouterr().err


def test_trap_prints_the_trap_and_exits_134(tmp_path: Path, capfd) -> None:
    prog = _program(tmp_path, "unreachable")
    assert main(["wasm", "run", prog]) == 134
    err = capfd.readouterr().err
    assert err.startswith(f"Error: failed to run main module `{prog}`\n\nCaused by:\n    0: ")
    assert "wasm `unreachable` instruction executed" in err


def test_time_limit(tmp_path: Path, capfd) -> None:
    prog = _program(tmp_path, "(loop $l (br $l))")
    assert main(["wasm", "run", "--time-limit", "0.2", prog]) == 134
    assert "interrupt" in capfd.readouterr().err


def test_stats(tmp_path: Path, capfd) -> None:
    prog = _program(tmp_path, "(i32.store (i32.const 8192) (i32.const 1))")
    assert main(["wasm", "run", "--stats", prog]) == 0
    err = capfd.readouterr().err
    assert "hwsim: memory `memory`: 1 pages touched of 16 (65536 bytes)" in err
    assert "hwsim: TLB: " in err and " misses" in err
    assert "hwsim: physical frames in use: " in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["wasm", "run", "/no/such.wasm"], "hwsim: error: cannot read /no/such.wasm: No such file or directory"),
        (["wasm", "run", "--dir", "/no/such/dir", "X"], "failed to add preopen dir: '/no/such/dir' is not a directory"),
    ],
)
def test_bad_input_is_a_clear_error(argv, message, tmp_path: Path, capfd) -> None:
    argv = [a if a != "X" else _program(tmp_path, "") for a in argv]
    assert main(argv) == 2
    assert message in capfd.readouterr().err


def test_not_a_command(tmp_path: Path, capfd) -> None:
    prog = tmp_path / "lib.wat"
    prog.write_text('(module (func (export "f")))')
    assert main(["wasm", "run", str(prog)]) == 2
    assert "no `_start` export; not a WASI command" in capfd.readouterr().err
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\0asm\x02\0\0\0")
    assert main(["wasm", "run", str(bad)]) == 2
    assert "hwsim: error: " in capfd.readouterr().err
    imports = tmp_path / "imp.wat"
    imports.write_text('(module (import "env" "f" (func)) (func (export "_start")))')
    assert main(["wasm", "run", str(imports)]) == 2
    assert "unknown import: `env::f` has not been defined" in capfd.readouterr().err


def test_bad_options(capfd) -> None:
    with pytest.raises(SystemExit) as info:
        main(["wasm", "run", "--env", "=x", "p.wasm"])
    assert info.value.code == 2
    assert "expected NAME=VALUE, not '=x'" in capfd.readouterr().err
    with pytest.raises(SystemExit):
        main(["wasm", "run", "--time-limit", "-1", "p.wasm"])
    assert "expected seconds > 0" in capfd.readouterr().err


def test_time_limit_stops_a_sleeping_program(tmp_path: Path, capfd) -> None:
    # one subscription at 0: a relative 100 s monotonic clock (userdata 0, tag 0, id 1, timeout)
    sub = "(i32.store (i32.const 16) (i32.const 1)) (i64.store (i32.const 24) (i64.const 100000000000))"
    prog = _program(tmp_path, sub + "(drop (call $poll (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 512)))")
    assert main(["wasm", "run", "--time-limit", "0.3", prog]) == 134
    assert "while a WASI program waited in poll_oneoff" in capfd.readouterr().err


def test_trace_shows_wasi_calls(tmp_path: Path, capfd) -> None:
    prog = _program(tmp_path, "(call $proc_exit (call $args_sizes (i32.const 0) (i32.const 4)))")
    assert main(["wasm", "run", "--trace", "host", prog, "a"]) == 0
    err = capfd.readouterr().err
    assert "args_sizes_get(0x0, 0x4) -> SUCCESS" in err
    assert main(["wasm", "run", "--trace-out", "x.json", prog]) == 2
    assert "--trace-out and --trace-format need --trace PATTERNS" in capfd.readouterr().err
    assert main(["wasm", "run", "--trace", "list", prog]) == 0
    assert "host_call" in capfd.readouterr().out


def test_save_snapshot_then_mmu_dump(tmp_path: Path, capfd) -> None:
    prog = _program(tmp_path, "(i32.store (i32.const 0x9000) (i32.const 1))")
    snap = tmp_path / "pt.json"
    assert main(["wasm", "run", "--save-snapshot", str(snap), prog]) == 0
    assert f"page tables to {snap}" in capfd.readouterr().err
    assert main(["mmu", "dump", "--snapshot", str(snap)]) == 0
    out = capfd.readouterr().out
    assert f"(hwsim wasm run {prog}: the Store's address space at exit)" in out
    assert "Sv39 page tables" in out and "DA-U-WRV" in out
    assert main(["wasm", "run", "--save-snapshot", str(tmp_path / "no" / "x.json"), prog]) == 2
    assert "cannot write snapshot" in capfd.readouterr().err


def test_ctrl_c_stops_the_program(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    prog = _program(tmp_path, "(loop $l (br $l))")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hwsim", "wasm", "run", prog],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(root)),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(3.0)  # well inside the loop (start-up and compile take under a second)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"hwsim: interrupted: interrupted at wasm function" in err and b"Traceback" not in err


REACTOR = """(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $base (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $base (i32.const 40)))
  (func (export "add") (param i32 i64) (result i64) (i64.add (i64.extend_i32_s (local.get 0)) (local.get 1)))
  (func (export "two") (param f64) (result f64 i32) (f64.mul (local.get 0) (f64.const 2)) (global.get $base))
  (func (export "argc") (result i32) (drop (call $args_sizes (i32.const 0) (i32.const 4))) (i32.load (i32.const 0)))
  (func (export "boom") (unreachable)))"""


def test_invoke_calls_a_function_of_a_reactor_and_prints_its_results(tmp_path: Path, capfd) -> None:
    """`--invoke FUNCTION ARGS`, as wasmtime run's: _initialize first, the arguments parsed for the
    parameter types, each result on a line; the program's argv is its name alone."""
    prog = tmp_path / "reactor.wat"
    prog.write_text(REACTOR)
    assert main(["wasm", "run", "--invoke", "add", str(prog), "--", "-5", "0x10"]) == 0
    assert capfd.readouterr().out == "11\n"
    assert main(["wasm", "run", "--invoke", "two", str(prog), "1.25"]) == 0
    assert capfd.readouterr().out == "2.5\n40\n"  # 40: _initialize ran first
    assert main(["wasm", "run", "--invoke", "argc", str(prog)]) == 0
    assert capfd.readouterr().out == "1\n"
    assert main(["wasm", "run", "--invoke", "boom", str(prog)]) == 134
    assert "unreachable" in capfd.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--invoke", "nope"], "no exported function `nope` (its functions: _initialize, add, two, argc, boom)"),
        (["--invoke", "add", "{prog}", "1"], "--invoke add: the function takes 2 arguments (i32, i64), not 1"),
        (["--invoke", "add", "{prog}", "x", "1"], "--invoke add: 'x' is not a valid i32"),
        ([], "no `_start` export; not a WASI command (a reactor or a library? call one of its functions with --invoke"),
    ],
)
def test_invoke_errors_name_the_problem(tmp_path: Path, capsys, argv, message) -> None:
    prog = tmp_path / "reactor.wat"
    prog.write_text(REACTOR)
    argv = [a.replace("{prog}", str(prog)) for a in argv]
    if str(prog) not in argv:
        argv.append(str(prog))
    assert main(["wasm", "run", *argv]) == 2
    assert message in capsys.readouterr().err


def test_time_limit_stops_a_program_blocked_reading_stdin(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    # fd_read(0, one iovec {buf 64, len 16}) on a stdin pipe that stays open and empty
    prog = tmp_path / "read.wat"
    prog.write_text(
        '(module (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))'
        ' (memory (export "memory") 1) (data (i32.const 0) "\\40\\00\\00\\00\\10\\00\\00\\00")'
        ' (func (export "_start") (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))))'
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hwsim", "wasm", "run", "--time-limit", "0.5", str(prog)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(root)),
    )
    try:
        proc.wait(timeout=120)  # (our end of the stdin pipe stays open: the read has nothing and no EOF)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the time limit did not stop a read of an empty stdin") from None
    finally:
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.close()
        err = proc.stderr.read()
    assert proc.returncode == 134, err
    assert b"while a WASI program waited in fd_read on fd 0" in err and b"wasm trap: interrupt" in err, err
