"""machine/schedules.py: the random and PCT hart schedules, and hwsim run --schedule on native firmware."""

from __future__ import annotations

import random

import pytest
from test_harts import HARTS_FIRMWARE, system, two_hart_board

from hwsim.errors import ConfigError
from hwsim.machine.schedules import PctSchedule, RandomSchedule, parse_schedule


def test_a_schedule_is_parsed_from_its_name():
    assert parse_schedule("random") == RandomSchedule()
    assert parse_schedule("pct") == PctSchedule(3, None)
    assert parse_schedule("pct:2") == PctSchedule(2, None)
    assert parse_schedule("pct:4:500") == PctSchedule(4, 500)
    for bad in ("pct:x", "fifo", "random:2", "pct:1:2:3"):
        with pytest.raises(ConfigError, match=f"a schedule is random, pct, pct:DEPTH or pct:DEPTH:STEPS, not '{bad}'"):
            parse_schedule(bad)
    with pytest.raises(ConfigError, match="a PCT depth must be an integer >= 1, not 0"):
        parse_schedule("pct:0")
    with pytest.raises(ConfigError, match=r"a PCT schedule needs the run's estimated length"):
        PctSchedule(2).start(random.Random(0), [0, 1])
    assert (PctSchedule(3, 90, measured=True).format(), PctSchedule(3, 90).format()) == ("pct:3", "pct:3:90")


def test_pct_runs_the_highest_priority_hart_and_drops_it_at_each_change_point():
    """Depth 3 over 10 steps: two change points; between them the top runnable hart runs every step."""
    for seed in range(200):
        picker = PctSchedule(3, 10).start(random.Random(seed), [0, 1, 2])
        priority = dict(picker._priority)
        assert sorted(priority.values()) == [3, 4, 5]
        changes = sorted(picker._changes)
        assert len(changes) == 2 and all(1 <= k <= 10 for k in changes)
        for step in range(1, 11):
            chosen = picker.pick([0, 1, 2], step)
            if step in changes:
                priority[max(priority, key=priority.__getitem__)] = 2 if step == changes[0] else 1
            assert chosen == max(priority, key=priority.__getitem__)
        assert picker.pick([1], 11) == 1  # past the run's length: drawn among the runnable


# -- native firmware: the racy counter and the atomic one ------------------------------------------


@pytest.fixture(scope="module")
def elfs() -> dict[str, bytes]:
    from hwsim.driver.build import build_driver

    return {
        name: build_driver(HARTS_FIRMWARE.parent / name, native=True).read_bytes() for name in ("harts", "harts_atomic")
    }


def run(elf: bytes, seed: int, schedule=None):
    from hwsim.driver.firmware import FirmwareRun

    return FirmwareRun(system(2), elf, hart_seed=seed, schedule=schedule).run()


def test_random_and_pct_find_the_lost_update_and_never_fail_the_atomic_counter(elfs):
    """200 seeds each: how many lose an update under random and under PCT (depth 2 and 3; the run's
    length measured as hwsim run does).  Reported, not asserted, but for PCT finding it at all."""
    from test_harts import board_data

    from hwsim.board import parse_board
    from hwsim.driver.explore import estimate_steps

    board = parse_board(board_data(2), "virt-harts.toml")
    steps = estimate_steps(board, elfs["harts"])
    found = {}
    for name, schedule in [
        ("random", None),
        ("pct:2", PctSchedule(2, steps, measured=True)),
        ("pct:3", PctSchedule(3, steps, measured=True)),
    ]:
        found[name] = sum(run(elfs["harts"], seed, schedule).result == -5 for seed in range(200))
    print(f"\nseeds of 200 that lose an update (run length {steps} steps): {found}")
    assert found["pct:2"] >= 1 and found["pct:3"] >= 1
    for seed in range(40):
        for schedule in (None, PctSchedule(2, steps), PctSchedule(3, steps)):
            report = run(elfs["harts_atomic"], seed, schedule)
            assert (report.result, report.ok) == (0, True), report.format()


def test_a_pct_seed_gives_the_same_trace_hash_and_another_seed_may_not(elfs):
    schedule = PctSchedule(3, 90)
    hashes = {}
    for seed in range(6):
        first, again = run(elfs["harts"], seed, schedule), run(elfs["harts"], seed, schedule)
        assert (first.hart_trace, first.log, first.result) == (again.hart_trace, again.log, again.result)
        assert first.hart_schedule == "pct:3:90" and "--schedule pct:3:90" in first.format()
        hashes[seed] = first.hart_trace
    assert len(set(hashes.values())) > 1
    assert run(elfs["harts"], 0).hart_trace != hashes[0]  # random with the same seed: another interleaving


def test_hwsim_run_explores_with_pct_and_replays_the_failing_seed(elfs, tmp_path, capsys, monkeypatch):
    from hwsim.cli import main

    monkeypatch.setattr("sys.stdin", None)
    board = two_hart_board(tmp_path)
    elf = tmp_path / "harts.elf"
    elf.write_bytes(elfs["harts"])
    common = [str(board), str(elf), "--option", "uart0.backend=memory", "--schedule", "pct:2"]
    assert main(["run", *common, "--explore", "100"]) == 1
    err = capsys.readouterr().err
    assert "schedule: pct, depth 2, over " in err and "probe() returned -5 (EIO)" in err
    seed = int(err.split("explore: seed ", 1)[1].split()[0])
    trace = err.split("trace ", 1)[1].split()[0]
    assert f"(replay: --hart-seed {seed} --schedule pct:2)" in err
    assert main(["run", *common, "--seed", str(seed)]) == 1  # the replay: the same interleaving
    replay = capsys.readouterr().err
    assert f"trace {trace}" in replay and "probe() returned -5 (EIO)" in replay
    atomic = tmp_path / "harts_atomic.elf"
    atomic.write_bytes(elfs["harts_atomic"])
    assert (
        main(
            ["run", str(board), str(atomic), "--option", "uart0.backend=memory", "--schedule", "pct", "--explore", "30"]
        )
        == 0
    )
    assert "explore: all 30 seeds passed" in capsys.readouterr().err
    wasm = tmp_path / "probe.wat"
    wasm.write_text('(module (func (export "probe") (result i32) (i32.const 0)))')
    assert main(["run", str(board), str(wasm), "--schedule", "pct"]) == 2
    assert "--schedule applies to native firmware" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", str(board), str(elf), "--schedule", "lifo"])
    assert (
        "argument --schedule: a schedule is random, pct, pct:DEPTH or pct:DEPTH:STEPS, not 'lifo'"
        in capsys.readouterr().err
    )
