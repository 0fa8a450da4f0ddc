"""FirmwareRun's irq_hart (hwsim run --irq-hart H): the interrupt handler in hart H's turns, racing the other harts."""

from __future__ import annotations

import pytest
from test_harts import HARTS_FIRMWARE, system, two_hart_board

from hwsim.errors import ConfigError


@pytest.fixture(scope="module")
def elf() -> bytes:
    from hwsim.driver.build import build_driver

    return build_driver(HARTS_FIRMWARE.parent / "harts_irq", native=True).read_bytes()


def run(elf: bytes, seed: int, entry: str = "probe", irq_hart: int | None = None, harts: int = 2):
    from hwsim.driver.firmware import FirmwareRun

    return FirmwareRun(system(harts), elf, hart_seed=seed, irq_hart=irq_hart).run(entry)


def test_the_handler_runs_in_the_irq_harts_turns_and_races_the_main_loop(elf):
    """drivers/examples/harts_irq: safe with the handler on hart 0 (between turns), a lost update with it
    on hart 1; the fixed entry (amoadd.w) passes both ways."""
    for seed in range(8):
        default = run(elf, seed)
        assert (default.result, default.irq_calls, default.harts[1].turns) == (0, 40, 0), default.format()
        racy = run(elf, seed, irq_hart=1)
        assert racy.result in (-110, -5) and racy.harts[1].turns > 0, racy.format()
        for irq_hart in (None, 1):
            fixed = run(elf, seed, "fixed", irq_hart)
            assert (fixed.result, fixed.irq_calls, fixed.ok) == (0, 40, True), fixed.format()


def test_a_seed_replays_the_race_and_the_hart_must_exist(elf):
    first, again = run(elf, 5, irq_hart=1), run(elf, 5, irq_hart=1)
    assert (first.hart_trace, first.result, first.log) == (again.hart_trace, again.result, again.log)
    with pytest.raises(ConfigError, match=r"no hart 2 to run the interrupt handler: the board has 2 \(0 \.\. 1\)"):
        run(elf, 0, irq_hart=2)
    one = run(elf, 0, irq_hart=0, harts=1)  # one hart: the handler runs as without --irq-hart
    assert (one.result, one.irq_calls) == (0, 40)


def test_hwsim_run_explores_with_the_handler_on_hart_1(elf, tmp_path, capsys, monkeypatch):
    from hwsim.cli import main

    monkeypatch.setattr("sys.stdin", None)
    board = two_hart_board(tmp_path)
    path = tmp_path / "harts_irq.elf"
    path.write_bytes(elf)
    common = [str(board), str(path), "--option", "uart0.backend=memory"]
    assert main(["run", *common, "--explore", "5"]) == 0
    assert "explore: all 5 seeds passed" in capsys.readouterr().err
    assert main(["run", *common, "--irq-hart", "1", "--explore", "5"]) == 1
    err = capsys.readouterr().err
    assert "explore: seed 0 fails" in err and "probe() returned -110 (ETIMEDOUT)" in err
    assert main(["run", *common, "--irq-hart", "1", "--invoke", "fixed", "--explore", "5"]) == 0
    assert "explore: all 5 seeds passed" in capsys.readouterr().err
    wasm = tmp_path / "probe.wat"
    wasm.write_text('(module (func (export "probe") (result i32) (i32.const 0)))')
    assert main(["run", str(board), str(wasm), "--irq-hart", "1"]) == 2
    assert "--irq-hart applies to native firmware: a sandboxed driver runs on hart 0" in capsys.readouterr().err
