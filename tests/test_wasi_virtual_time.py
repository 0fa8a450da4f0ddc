"""Reproducible WASI runs: virtual time (WasiConfig.virtual_time, --virtual-time) and seeded random bytes
(WasiConfig.random_seed, --random-seed).  The program is tests/data/wasi/clocks.wat."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hwsim import Engine, Linker, Module, Store, WasiConfig
from hwsim.cli import main
from hwsim.errors import ArgumentTypeError, WasmtimeError

CLOCKS = Path(__file__).parent / "data" / "wasi" / "clocks.wat"
REALTIME, MONOTONIC, PROCESS = 0, 1, 2


def _exports(config: WasiConfig, *, metering: bool = True):
    engine = Engine(metering=metering)
    store = Store(engine)
    store.set_wasi(config)
    linker = Linker(engine)
    linker.define_wasi()
    return store, linker.instantiate(store, Module.from_file(engine, str(CLOCKS))).exports(store)


def _virtual(epoch: int = 0) -> WasiConfig:
    config = WasiConfig()
    config.virtual_time = True
    config.clock_epoch = epoch
    return config


def test_virtual_clocks_start_at_the_epoch_and_advance_with_the_code_run():
    store, ex = _exports(_virtual(epoch=1_700_000_000 * 10**9))
    epoch = 1_700_000_000 * 10**9
    assert epoch <= ex["now"](store, REALTIME) < epoch + 10**6  # a few instructions ran before the call
    assert ex["now"](store, MONOTONIC) >= 0
    short, long = ex["work"](store, 100), ex["work"](store, 10_000)
    assert 0 < short < long  # the loop's fuel is the time that passes
    assert ex["now"](store, PROCESS) > 0


def test_the_same_program_reads_the_same_times_in_every_run():
    def times() -> list[int]:
        store, ex = _exports(_virtual())
        return [ex["work"](store, 5_000), ex["now"](store, MONOTONIC), ex["sleep"](store, 3 * 10**9)]

    first = times()
    assert first == times() == times()


def test_a_sleep_advances_virtual_time_by_its_timeout():
    store, ex = _exports(_virtual())
    slept = ex["sleep"](store, 7 * 10**9)  # seven seconds, virtual: the test does not wait them
    assert 7 * 10**9 <= slept < 7 * 10**9 + 10**6


def test_without_virtual_time_the_clocks_are_the_hosts():
    store, ex = _exports(WasiConfig(), metering=False)
    assert abs(ex["now"](store, REALTIME) - time.time_ns()) < 60 * 10**9


def test_seeded_random_bytes_repeat_and_unseeded_do_not():
    def rand(seed):
        config = WasiConfig()
        config.random_seed = seed
        store, ex = _exports(config, metering=False)
        return ex["rand"](store), ex["rand"](store)

    assert rand(5) == rand(5)
    assert rand(5) != rand(6)
    a, b = rand(None)
    assert a != b


def test_virtual_time_does_not_turn_threads_on():
    store, ex = _exports(_virtual())
    assert ex["spawn"](store) == -1  # wasi-threads is off: the scheduler only keeps the time


def test_bad_settings_are_refused():
    config = WasiConfig()
    with pytest.raises(ArgumentTypeError, match="WasiConfig.virtual_time: expected a bool, not str"):
        config.virtual_time = "yes"  # type: ignore[assignment]
    with pytest.raises(WasmtimeError, match="WasiConfig.clock_epoch: expected 0 to"):
        config.clock_epoch = -1
    with pytest.raises(WasmtimeError, match="WasiConfig.random_seed: expected 0 to"):
        config.random_seed = 1 << 64


def test_the_command_line_runs_the_same_way_twice(capfd):
    argv = ["wasm", "run", "--virtual-time", "--clock-epoch", "86400", "--invoke", "now", str(CLOCKS), "0"]
    assert main(argv) == 0
    assert 0 <= int(capfd.readouterr().out) - 86400 * 10**9 < 10**6
    outs = []
    for _ in range(2):
        assert main(["wasm", "run", "--virtual-time", "--invoke", "work", str(CLOCKS), "2000"]) == 0
        outs.append(int(capfd.readouterr().out))
    assert outs[0] == outs[1] > 0
    for _ in range(2):
        assert main(["wasm", "run", "--random-seed", "9", "--invoke", "rand", str(CLOCKS)]) == 0
        outs.append(int(capfd.readouterr().out))
    assert outs[2] == outs[3]


def test_the_command_line_says_what_is_wrong(capfd):
    assert main(["wasm", "run", "--clock-epoch", "5", "--invoke", "rand", str(CLOCKS)]) == 2
    assert "--clock-epoch sets where virtual time starts: give --virtual-time too" in capfd.readouterr().err
    assert main(["wasm", "run", "--random-seed", "-1", "--invoke", "rand", str(CLOCKS)]) == 2
    assert "--random-seed must be 0 to 2**64-1, not -1" in capfd.readouterr().err
