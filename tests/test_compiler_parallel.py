"""Compiling functions in forked worker processes (hwsim.compiler.parallel): the serial compile's result and
errors, whatever the children do."""

from __future__ import annotations

import os
import sys
import time

import pytest

import hwsim.compiler as compiler
from hwsim.compiler import CompileError, compile_module, parallel
from hwsim.wasm import load_module

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="workers are forked (Linux only)")

wat2wasm = pytest.importorskip("wasmtime").wat2wasm

# Functions of every shape the module tables carry: traps, calls to link, a try_table's handlers, a SIMD
# helper call, a stack map (a call with a reference live), loops and branches.
_FUNCS = [
    "(func $f{i} (param i32 i32) (result i32) (local i64) (block (loop (br_if 1 (i32.eqz (local.get 0)))"
    " (local.set 0 (i32.sub (local.get 0) (i32.const 1))) (local.set 1 (i32.div_u (local.get 1) (local.get 0)))"
    " (br 0))) (i32.add (local.get 1) (i32.const {i})))",
    "(func $g{i} (param i32) (result i32) (call $f0 (local.get 0) (i32.load offset={i} (local.get 0))))",
    "(func $h{i} (result i32) (block $b (result i32) (try_table (catch $e $b) (call $t (i32.const {i})))"
    " (i32.const 0)))",
    "(func $s{i} (param v128) (result v128) (i8x16.swizzle (local.get 0) (i8x16.splat (i32.const {i}))))",
    "(func $r{i} (param externref) (result externref) (call $t (i32.const {i})) (local.get 0))",
]
MODULE = wat2wasm(
    "(module (memory 1) (tag $e (param i32)) (func $t (param i32) (throw $e (local.get 0)))"
    + "".join(_FUNCS[i % len(_FUNCS)].format(i=i) for i in range(60))
    + ")"
)


def _tables(c: compiler.CompiledModule) -> tuple:
    return (
        c.code,
        c.func_offsets,
        c.func_sizes,
        c.trap_table,
        c.pc_map.to_bytes(),
        c.frames,
        c.handlers,
        list(c.stack_maps),
        c.far_calls,
    )


@pytest.mark.parametrize("metering", [False, True])
@pytest.mark.parametrize("jobs", [2, 3, 4])
def test_workers_compile_what_one_process_does(jobs, metering, monkeypatch):
    module = load_module(MODULE)
    serial = compile_module(module, metering=metering, jobs=1)
    assert serial.handlers and serial.trap_table and len(serial.stack_maps)
    forks, fork = [], parallel._fork
    monkeypatch.setattr(parallel, "_fork", lambda *args: forks.append(1) or fork(*args))
    assert _tables(compile_module(module, metering=metering, jobs=jobs)) == _tables(serial)
    assert len(forks) == jobs - 1


def test_far_calls_in_workers():
    module = load_module(MODULE)
    assert _tables(compile_module(module, far_calls=True, jobs=2)) == _tables(
        compile_module(module, far_calls=True, jobs=1)
    )


def _failing_in_child(monkeypatch, how):
    """Make the compile of functions 40 and 50 (in the second half) do ``how`` in a forked child only."""
    parent, real = os.getpid(), compiler._compile_function

    def compile_function(env, index, func, far_calls):
        if index in (40, 50) and os.getpid() != parent:
            how(index)
        return real(env, index, func, far_calls)

    monkeypatch.setattr(compiler, "_compile_function", compile_function)


def test_a_child_that_crashes_is_replaced_by_the_parent(monkeypatch):
    module = load_module(MODULE)
    serial = compile_module(module, jobs=1)
    _failing_in_child(monkeypatch, lambda index: os._exit(7))
    assert _tables(compile_module(module, jobs=2)) == _tables(serial)


def test_a_child_that_hangs_is_killed_and_replaced(monkeypatch):
    module = load_module(MODULE)
    serial = compile_module(module, jobs=1)
    _failing_in_child(monkeypatch, lambda index: time.sleep(60))
    monkeypatch.setattr(parallel, "CHILD_TIMEOUT", 0.5)
    started = time.monotonic()
    assert _tables(compile_module(module, jobs=2)) == _tables(serial)
    assert time.monotonic() - started < 30  # (killed after its timeout, not waited for)


def test_errors_are_the_serial_compiles_first_error(monkeypatch):
    """An error in a child's run is raised by the parent compiling that run itself: the first failing
    function in index order, with its own message, whatever process met it first."""
    module = load_module(MODULE)
    real = compiler._compile_function

    def compile_function(env, index, func, far_calls):
        if index in (12, 50):
            raise CompileError(f"function {index}: refused")
        return real(env, index, func, far_calls)

    monkeypatch.setattr(compiler, "_compile_function", compile_function)
    for jobs in (1, 2, 4):
        with pytest.raises(CompileError, match=r"^function 12: refused$"):
            compile_module(module, jobs=jobs)

    def late_only(env, index, func, far_calls):
        if index == 50:
            raise CompileError(f"function {index}: refused")
        return real(env, index, func, far_calls)

    monkeypatch.setattr(compiler, "_compile_function", late_only)
    with pytest.raises(CompileError, match=r"^function 50: refused$"):
        compile_module(module, jobs=2)


@pytest.mark.parametrize("jobs", [0, -1, 1.5, "2", True])
def test_jobs_must_be_a_positive_integer(jobs):
    with pytest.raises(CompileError, match=r"compile_module\(jobs\): the number of processes must be an integer"):
        compile_module(load_module(MODULE), jobs=jobs)


def test_split_runs_are_contiguous_balanced_and_never_empty():
    assert parallel.split([1] * 10, 2) == [range(0, 5), range(5, 10)]
    assert parallel.split([10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 2) == [range(0, 1), range(1, 11)]
    assert parallel.split([5, 5], 4) == [range(0, 1), range(1, 2)]
    assert parallel.split([0, 0, 0], 2) == [range(0, 1), range(1, 3)]
    assert parallel.split([], 3) == []
    for weights in ([3, 1, 4, 1, 5, 9, 2, 6], [100] + [1] * 50, [1] * 7):
        for jobs in (1, 2, 3, 5):
            runs = parallel.split(weights, jobs)
            assert [i for r in runs for i in r] == list(range(len(weights)))
            assert all(len(r) for r in runs) and len(runs) <= jobs


def test_small_modules_and_busy_machines_compile_in_one_process(monkeypatch):
    assert parallel.auto_jobs(1000) == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (0.9, 0.0, 0.0))
    assert parallel.auto_jobs(10 * parallel.MIN_RUN) == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (3.0, 0.0, 0.0))  # both cores busy: no worker
    assert parallel.auto_jobs(10 * parallel.MIN_RUN) == 1

    def unknown():
        raise OSError("Load averages are unobtainable")

    monkeypatch.setattr(os, "getloadavg", unknown)
    assert parallel.auto_jobs(10 * parallel.MIN_RUN) == 1
