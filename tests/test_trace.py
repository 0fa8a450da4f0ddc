"""hwsim.trace: the event catalogue, patterns, zero cost when off, and the text/JSONL/Perfetto/VCD outputs."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.driver import DriverRun, build_driver
from hwsim.driver.firmware import FirmwareRun
from hwsim.testing import make_board
from hwsim.trace import EVENTS, TRACE, Trace, TraceError, tracing

DRIVERS = Path(__file__).resolve().parents[1] / "drivers"


def run_traced(patterns: str, driver: Path, out=None, *, fmt=None, stream=None, native=False):
    system, _ = make_board()
    with tracing(patterns, out, format=fmt, stream=stream):
        if native:
            run = FirmwareRun(system, build_driver(driver, native=True).read_bytes())
        else:
            run = DriverRun(system, build_driver(driver).read_bytes(), log=lambda text: None)
        report = run.run()
    return report


def test_catalogue_formats_use_only_their_fields():
    for spec in EVENTS.values():
        fields = set(re.findall(r"{(\w+)", spec.text))
        assert fields <= set(spec.fields), spec.name
        assert spec.format({f: 1 for f in spec.fields})  # formats with numbers
        assert spec.format({f: "x" for f in spec.fields})  # and, when a field is not a number, still prints


def test_trace_declares_one_emitter_per_event():
    declared = [name for name, ann in Trace.__annotations__.items() if ann == "Emitter | None"]
    assert declared == list(EVENTS)


def test_patterns_globs_categories_and_removal():
    assert TRACE.select("dma*") == ["dma", "dma_bug"]
    assert TRACE.select("mmio") == ["mmio_read", "mmio_write"]
    assert TRACE.select("*,-mmu,-mmio_read") == [n for n in EVENTS if n != "mmio_read" and EVENTS[n].category != "mmu"]
    with pytest.raises(TraceError, match="trace pattern 'dmaa' matches no event; events: mmio_read"):
        TRACE.select("dmaa")


def test_every_event_is_off_unless_enabled():
    assert all(getattr(TRACE, name) is None for name in EVENTS)
    with tracing("irq", stream=io.StringIO()):
        assert TRACE.irq is not None and TRACE.mmio_read is None
    assert all(getattr(TRACE, name) is None for name in EVENTS) and TRACE.sinks == []


def test_jsonl_trace_of_the_dma_copy_driver():
    out = io.StringIO()
    report = run_traced("dma,mmio_write,host", DRIVERS / "dma_copy", fmt="jsonl", stream=out)
    assert report.ok
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    times = [r["t_ns"] for r in records]
    assert times == sorted(times)
    regs = [r["reg"] for r in records if r["event"] == "mmio_write"]
    assert regs[:6] == ["SRC_LO", "SRC_HI", "DST_LO", "DST_HI", "LEN", "CMD"]
    dma = [r for r in records if r["event"] == "dma"]
    assert [(r["direction"], r["length"], r["result"]) for r in dma] == [("read", 1000, "ok"), ("write", 1000, "ok")]
    assert all(0x8000_0000 <= r["pa"] < 0x8800_0000 for r in dma)  # through the IOMMU into RAM
    calls = [r for r in records if r["event"] == "host_call"]
    assert calls[0]["name"] == "mmio_map" and calls[0]["args"] == "'dma0'"
    assert [c["name"] for c in calls].count("dma_map") == 2


def _check_chrome_trace(data: dict) -> None:
    """The Chrome trace event format, JSON object form (the subset hwsim writes)."""
    assert isinstance(data["traceEvents"], list) and data["displayTimeUnit"] in ("ns", "ms")
    for e in data["traceEvents"]:
        assert isinstance(e["name"], str) and isinstance(e["pid"], int) and isinstance(e["tid"], int)
        assert e["ph"] in ("i", "X", "M")
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name") and isinstance(e["args"]["name"], str)
            continue
        assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0 and isinstance(e["cat"], str)
        assert isinstance(e["args"], dict)
        if e["ph"] == "i":
            assert e["s"] in ("g", "p", "t")
        else:
            assert isinstance(e["dur"], (int, float)) and e["dur"] >= 0
    json.dumps(data)  # every value is plain JSON


def test_perfetto_trace_of_a_buggy_driver(tmp_path):
    out = tmp_path / "trace.json"
    report = run_traced("*", DRIVERS / "examples" / "buggy" / "stray", out)
    assert not report.ok
    data = json.loads(out.read_text())
    _check_chrome_trace(data)
    names = {e["name"] for e in data["traceEvents"]}
    assert {"dma", "dma_bug", "iommu_fault", "mmio_write", "host_call", "page_walk", "process_name"} <= names
    threads = {e["args"]["name"] for e in data["traceEvents"] if e["name"] == "thread_name"}
    assert {"dma", "mmio", "iommu", "mmu", "host"} <= threads
    bug = next(e for e in data["traceEvents"] if e["name"] == "dma_bug")
    assert bug["args"]["problem"] == "stray" and bug["args"]["device"] == "dma0"


def test_perfetto_trace_has_a_track_per_hart(tmp_path):
    """drivers/examples/harts_irq on two harts with the handler on hart 1: each hart's track holds its
    hart events and the MMIO of its turns (hart 0: the main loop, hart 1: the handler); the interrupt
    line stays on the irq track."""
    board = tmp_path / "virt2.toml"
    default = DRIVERS.parent / "boards" / "virt.toml"
    board.write_text(default.read_text().replace('name = "virt"', 'name = "virt2"\nharts = 2', 1))
    system, _ = make_board(board)
    out = tmp_path / "harts.json"
    elf = build_driver(DRIVERS / "examples" / "harts_irq", native=True).read_bytes()
    with tracing("hart,mmio,irq", out):
        report = FirmwareRun(system, elf, hart_seed=1, irq_hart=1).run("fixed")
    assert report.ok
    data = json.loads(out.read_text())
    _check_chrome_trace(data)
    tracks = {e["tid"]: e["args"]["name"] for e in data["traceEvents"] if e["name"] == "thread_name"}
    hart_tid = {name: tid for tid, name in tracks.items() if name.startswith("hart ")}
    assert set(hart_tid) == {"hart 0", "hart 1"}
    on = {
        name: [e for e in data["traceEvents"] if e["tid"] == tid and e["ph"] != "M"] for name, tid in hart_tid.items()
    }
    for hartid, name in enumerate(("hart 0", "hart 1")):
        assert {e["name"] for e in on[name]} == {"hart", "mmio_read", "mmio_write"}
        assert all(e["args"]["hartid"] == hartid for e in on[name] if e["name"] == "hart")
    assert any(e["args"]["event"] == "calls" for e in on["hart 1"])  # the handler, called on hart 1
    assert any(e["args"]["reg"] == "CLEAR_INTERRUPT" for e in on["hart 1"] if e["name"] == "mmio_write")
    assert not any(e["args"]["reg"] == "CLEAR_INTERRUPT" for e in on["hart 0"] if e["name"] == "mmio_write")
    irq = [e for e in data["traceEvents"] if e["name"] == "irq"]
    assert irq and all(tracks[e["tid"]] == "irq" for e in irq)


def test_irq_events_and_handler_slices(tmp_path):
    out = tmp_path / "t.jsonl"
    system, _ = make_board()
    with tracing("irq*,host", out):
        DriverRun(system, build_driver(DRIVERS / "examples" / "timer_irq").read_bytes(), log=lambda t: None).run()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    raised = [r for r in records if r["event"] == "irq" and r["level"] == "raised"]
    assert len(raised) == 5 and all(r["device"] == "rtc0" and r["line"] == 11 for r in raised)
    # The alarms: 0 ns (when probe read the RTC's time) + k * 100 us.
    assert [r["t_ns"] for r in raised] == [100_000 * k for k in range(1, 6)]
    assert sum(r["event"] == "irq_handler" for r in records) == 5


def test_vcd_of_device_registers(tmp_path):
    out = tmp_path / "regs.vcd"
    run_traced("mmio", DRIVERS / "dma_copy", out)
    text = out.read_text()
    assert "$timescale 1ns $end" in text and "$scope module dma0 $end" in text
    assert re.search(r"\$var wire 32 \S+ SRC_LO \$end", text)
    assert "$enddefinitions $end" in text
    stamps = [int(line[1:]) for line in text.splitlines() if line.startswith("#")]
    assert stamps == sorted(stamps) and len(stamps) >= 6


def test_native_firmware_host_calls_are_traced():
    out = io.StringIO()
    run_traced("host", DRIVERS / "dma_copy", fmt="text", stream=out, native=True)
    assert "host  mmio_map(" in out.getvalue() and "host  dma_map(" in out.getvalue()


def test_cli_trace_options(tmp_path):
    listing = subprocess.run(
        [sys.executable, "-m", "hwsim", "run", "virt", str(DRIVERS / "dma_copy"), "--trace", "list"],
        capture_output=True,
        text=True,
    )
    assert listing.returncode == 0 and "mmio_write     mmio" in listing.stdout
    out = tmp_path / "t.json"
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "hwsim",
            "run",
            "virt",
            str(DRIVERS / "dma_copy"),
            "--trace",
            "dma",
            "--trace-out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    _check_chrome_trace(json.loads(out.read_text()))
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "hwsim",
            "run",
            "virt",
            str(DRIVERS / "dma_copy"),
            "--trace",
            "dma",
            "--trace-out",
            str(tmp_path / "no" / "such" / "dir.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "No such file or directory" in bad.stderr


def test_a_ring_sink_keeps_the_last_events_as_text():
    from hwsim.trace import EVENTS, RingSink

    ring = RingSink(capacity=3)
    for i in range(5):
        ring.write(EVENTS["irq"], 1000 * i, {"line": i, "device": "uart0", "level": "high"})
    assert ring.count == 5
    assert ring.last(2) == [
        "[    0.003000 ms] irq   IRQ 3 (uart0) high",
        "[    0.004000 ms] irq   IRQ 4 (uart0) high",
    ]
    assert len(ring.last(10)) == 3  # the capacity


def test_jsonl_and_text_traces_name_the_hart_of_each_event(tmp_path):
    """The same two-hart run as above: JSON Lines records carry ``hart``, text lines say ``hart N:``;
    the handler's MMIO is hart 1's, the main loop's hart 0's (a one-hart run's lines are unchanged)."""
    board = tmp_path / "virt2.toml"
    default = DRIVERS.parent / "boards" / "virt.toml"
    board.write_text(default.read_text().replace('name = "virt"', 'name = "virt2"\nharts = 2', 1))
    elf = build_driver(DRIVERS / "examples" / "harts_irq", native=True).read_bytes()
    jsonl, text = tmp_path / "harts.jsonl", tmp_path / "harts.txt"
    for out in (jsonl, text):
        system, _ = make_board(board)
        with tracing("mmio", out):
            assert FirmwareRun(system, elf, hart_seed=1, irq_hart=1).run("fixed").ok
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    clears = [r for r in records if r["event"] == "mmio_write" and r["reg"] == "CLEAR_INTERRUPT"]
    assert clears and {r["hart"] for r in clears} == {1}
    assert {r["hart"] for r in records} == {0, 1}
    lines = text.read_text().splitlines()
    assert lines and all(" hart 0: " in line or " hart 1: " in line for line in lines)
    assert any(" hart 1: " in line and "CLEAR_INTERRUPT" in line for line in lines)
