"""Seeded device timing, fault injection and exploration: races found, correct drivers clean, runs replayable."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from property_scale import examples

from hwsim.board import DEFAULT_BOARD, load_board
from hwsim.devices.faults import FaultPlan, FaultSpec
from hwsim.devices.issues import IssueKind
from hwsim.devices.timing import Timing
from hwsim.driver import DriverRun, build_driver
from hwsim.driver.explore import explore
from hwsim.errors import ConfigError
from hwsim.runtime import api
from hwsim.trace import tracing

REPO = Path(__file__).resolve().parents[1]
DRIVERS = REPO / "drivers"
RACES = DRIVERS / "examples" / "races"
BOARD = load_board(DEFAULT_BOARD)


def wasm_of(path: Path) -> bytes:
    return build_driver(path).read_bytes()


LINES = b"".join(b"line %d: the quick brown fox jumps\n" % i for i in range(6))
RACE_INPUT = {"uart_fifo_overrun": LINES}


def _system(seed: int | None = None, uart_input: bytes = b""):
    system = BOARD.build(options={"uart0": {"backend": "memory"}}, seed=seed)
    system.device("uart0").backend.feed(uart_input)
    return system


@pytest.mark.parametrize(
    "race", ["dma_fixed_wait", "irq_clear_late", "virtio_blk_in_order", "virtio_net_tx_reuse", "uart_fifo_overrun"]
)
def test_each_race_passes_at_nominal_timing_and_explore_finds_it(race):
    wasm = wasm_of(RACES / race)
    uart_input = RACE_INPUT.get(race, b"")
    assert DriverRun(_system(None, uart_input), wasm, log=lambda t: None).run().ok  # at nominal timing it hides
    result = explore(BOARD, wasm, range(200), uart_input=uart_input)
    assert not result.ok and result.failed_seed is not None
    assert len(result.seeds) <= 200
    # The failing seed replays: the same report, twice.
    replays = [
        DriverRun(_system(result.failed_seed, uart_input), wasm, log=lambda t: None).run().format() for _ in range(2)
    ]
    assert replays[0] == replays[1] == result.report.format()


def test_the_uart_race_is_reported_as_lost_input():
    result = explore(BOARD, wasm_of(RACES / "uart_fifo_overrun"), range(200), uart_input=LINES)
    (issue,) = result.report.device_issues
    assert issue.kind is IssueKind.LOST_DATA and issue.device == "uart0"
    assert "receive overrun" in issue.message and "the driver last read RBR" in issue.message


def test_the_tx_reuse_race_names_the_unmap_and_the_notify():
    result = explore(BOARD, wasm_of(RACES / "virtio_net_tx_reuse"), range(200))
    text = result.report.format()
    source = (RACES / "virtio_net_tx_reuse" / "virtio_net_tx_reuse.c").read_text().splitlines()
    unmap = next(i for i, line in enumerate(source, 1) if "hwsim_dma_unmap_single" in line)
    notify = next(i for i, line in enumerate(source, 1) if "regs[QUEUE_NOTIFY] = TXQ" in line)
    assert "DMA to a mapping that was already unmapped: device net0" in text
    assert f"unmapped at virtio_net_tx_reuse.c:{unmap} (probe)" in text
    assert f"the device's work was started by the driver at virtio_net_tx_reuse.c:{notify} (probe)" in text


@pytest.mark.parametrize(
    "driver, entry, uart_input",
    [
        ("dma_copy", "probe", b""),
        ("uart16550", "probe", b"hello, explorer\n"),
        ("uart16550", "probe_irq", b"interrupts\n"),
        ("examples/timer_irq", "probe", b""),
        ("examples/timer_irq", "busy", b""),
    ],
    ids=["dma_copy", "uart16550", "uart16550-irq", "timer_irq", "timer_irq-busy"],
)
def test_shipped_correct_drivers_pass_500_seeds(driver, entry, uart_input):
    result = explore(BOARD, wasm_of(DRIVERS / driver), range(500), entry=entry, uart_input=uart_input)
    assert result.ok, result.report.format()
    assert len(result.seeds) == 500


def _trace_digest(seed: int, wasm: bytes, tmp: Path, *, faults: bool = False) -> str:
    out = tmp / f"trace-{seed}-{faults}.jsonl"
    system = BOARD.build(
        options={"uart0": {"backend": "memory"}}, seed=seed, faults=FaultPlan(seed=seed, explore=faults)
    )
    with tracing("dma*,mmio*,irq*,iommu*,host,trap,fault", out):
        report = DriverRun(system, wasm, log=lambda t: None).run()
    data = out.read_bytes() + report.format().encode()
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def irq_race():
    return wasm_of(RACES / "irq_clear_late")


@settings(max_examples=examples(150), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), faults=st.booleans())
def test_the_same_seed_gives_the_same_run_bit_for_bit(irq_race, tmp_path_factory, seed, faults):
    tmp = tmp_path_factory.mktemp("det")
    assert _trace_digest(seed, irq_race, tmp, faults=faults) == _trace_digest(seed, irq_race, tmp, faults=faults)


def test_different_seeds_give_different_timings():
    digests = {tuple(d.ticks for d in _draws(seed)) for seed in range(20)}
    assert len(digests) == 20


def _draws(seed: int):
    timing = Timing(seed)
    for _ in range(30):
        timing.delay(43, "t")
    return timing.draws


def test_timing_rejects_bad_seeds():
    for bad in (-1, "3", 1.5, True):
        with pytest.raises(ConfigError, match="a timing seed is a non-negative integer"):
            Timing(bad)


# -- fault injection -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, spec",
    [
        ("dma0.error", FaultSpec("dma0", "error")),
        ("blk0.ioerr@3", FaultSpec("blk0", "ioerr", frozenset({3}))),
        ("blk0.ioerr@2,5", FaultSpec("blk0", "ioerr", frozenset({2, 5}))),
        ("net0.drop%12.5", FaultSpec("net0", "drop", percent=12.5)),
    ],
)
def test_fault_specs_parse_and_print(text, spec):
    assert FaultSpec.parse(text) == spec and str(spec) == text


@pytest.mark.parametrize(
    "text, message",
    [
        ("dma0", "expected DEV.KIND"),
        ("dma0.error@0", "occurrences count from 1"),
        ("net0.drop%0", r"the percentage must be in \(0, 100\]"),
        ("dma0.Error", "expected DEV.KIND"),
    ],
)
def test_bad_fault_specs_are_clear_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        FaultSpec.parse(text)


def test_a_fault_at_the_nth_occurrence_fires_there_and_is_reported():
    plan = FaultPlan((FaultSpec.parse("dma0.error@2"),))
    system = BOARD.build(options={"uart0": {"backend": "memory"}}, faults=plan)
    wasm = wasm_of(DRIVERS / "examples" / "timer_irq")  # no DMA: the spec never fires
    assert DriverRun(system, wasm, log=lambda t: None).run().faults == []
    plan = FaultPlan((FaultSpec.parse("dma0.error@1"),))
    system = BOARD.build(options={"uart0": {"backend": "memory"}}, faults=plan)
    report = DriverRun(system, wasm_of(DRIVERS / "dma_copy"), log=lambda t: None).run()
    (fired,) = report.faults
    assert (fired.device, fired.kind, fired.occurrence) == ("dma0", "error", 1)
    assert "injected faults (1): dma0.error (occurrence 1, tick" in report.format() and not report.ok


def test_a_fault_spec_for_a_missing_device_or_kind_is_an_error():
    with pytest.raises(ConfigError, match="the board has no device 'nosuch'"):
        BOARD.build(faults=FaultPlan((FaultSpec.parse("nosuch.error"),)))
    with pytest.raises(ConfigError, match=r"dma0 offers no fault 'fire' \(it offers: error, lost, spurious\)"):
        BOARD.build(faults=FaultPlan((FaultSpec.parse("dma0.fire"),)))


def test_exploring_with_faults_covers_error_paths():
    result = explore(BOARD, wasm_of(DRIVERS / "dma_copy"), range(200), faults=True)
    assert not result.ok and result.report.faults  # an injected engine error made probe() fail
    assert result.report.probe_failed


# -- the command line ----------------------------------------------------------------------------------


def _hwsim(*argv, input=b""):
    return subprocess.run(
        [sys.executable, "-m", "hwsim", *argv], input=input, capture_output=True, cwd=REPO, timeout=300
    )


def test_hwsim_run_explore_stops_at_the_first_failing_seed_and_says_how_to_replay():
    out = _hwsim("run", "virt", "drivers/examples/races/dma_fixed_wait", "--explore", "200")
    assert out.returncode == 1
    err = out.stderr.decode()
    assert "explore: seed " in err and " fails (after " in err
    replay = err.splitlines()[-1]
    assert replay.startswith("replay: hwsim run virt drivers/examples/races/dma_fixed_wait --seed ")
    again = _hwsim(*replay.removeprefix("replay: hwsim ").split())
    assert again.returncode == 1 and "DMA to a mapping that was already unmapped" in again.stderr.decode()
    clean = _hwsim("run", "virt", "drivers/dma_copy", "--explore", "40")
    assert clean.returncode == 0 and "explore: all 40 seeds passed (0..39)" in clean.stderr.decode()


def test_hwsim_run_inject_list_and_errors():
    out = _hwsim("run", "virt", "drivers/dma_copy", "--inject", "list")
    listed = [line.split(None, 1) for line in out.stdout.decode().splitlines()]
    assert out.returncode == 0
    assert [
        "dma0.error",
        "a transfer ends with STATUS.ERROR (ERROR_CODE 7, device error) instead of moving its data",
    ] in listed
    assert {point for point, _ in listed} >= {"blk0.ioerr", "uart0.framing", "net0.drop", "dma0.lost", "uart0.spurious"}
    out = _hwsim("run", "virt", "drivers/dma_copy", "--inject", "dma0.error@1")
    assert out.returncode == 1 and b"injected faults (1): dma0.error" in out.stderr
    out = _hwsim("run", "virt", "drivers/dma_copy", "--faults")
    assert out.returncode == 2 and b"--faults needs --explore N or --seed S" in out.stderr
    out = _hwsim("run", "virt", "drivers/dma_copy", "--inject", "dma0")
    assert out.returncode == 2 and b"expected DEV.KIND" in out.stderr


def test_explore_reuses_one_compiled_module(monkeypatch):
    compiled = []  # modules loaded: decoded and compiled, or taken from the code cache
    original = api.Engine.load

    def counting(self, *args, **kw):
        compiled.append(1)
        return original(self, *args, **kw)

    monkeypatch.setattr(api.Engine, "load", counting)
    result = explore(BOARD, wasm_of(DRIVERS / "dma_copy"), range(10))
    assert result.ok and len(result.seeds) == 10 and len(compiled) == 1


def test_trace_digest_differs_between_seeds(irq_race, tmp_path):
    assert len({_trace_digest(seed, irq_race, tmp_path) for seed in range(5)}) > 1
