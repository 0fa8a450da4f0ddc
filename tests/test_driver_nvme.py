"""drivers/nvme end to end: sandboxed and native, under varied timing (out-of-order completions), with injected
faults, and one buggy driver per NVMe rule, each getting exactly its report."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from hwsim.board import DEFAULT_BOARD, load_board
from hwsim.devices.faults import FaultPlan, FaultSpec
from hwsim.driver import DriverRun, build_driver
from hwsim.driver.dma import Problem
from hwsim.driver.firmware import FirmwareRun
from hwsim.testing import make_board
from hwsim.trace import tracing

DRIVERS = Path(__file__).resolve().parents[1] / "drivers"
NVME = DRIVERS / "nvme"
BLOCKS = 512


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("nvme") / "disk.img"
    path.write_bytes(bytes((i * 131 + 7) & 0xFF for i in range(BLOCKS * 512)))
    return path


@pytest.fixture(scope="module")
def wasm():
    return build_driver(NVME).read_bytes()


def _board(image, *, seed=None, faults=None, **options):
    return load_board(DEFAULT_BOARD).build(
        options={"uart0": {"backend": "memory"}, "nvme0": {"image": str(image), **options}}, seed=seed, faults=faults
    )


def _completions(run, entry="probe", args=()):
    """Run, tracing completions: (report, [(sqid, cid) in completion order])."""
    out = io.StringIO()
    with tracing("nvme_complete", stream=out, format="jsonl"):
        report = run.run(entry, args)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    return report, [(r["sqid"], r["cid"]) for r in records]


def test_probe_writes_flushes_reads_back_and_shuts_down_cleanly(hwsim_driver, image):
    before = image.read_bytes()
    result = hwsim_driver(NVME, options={"nvme0": {"image": str(image)}})
    report = result.report
    assert report.ok and report.result == BLOCKS, report.format()
    assert report.device_issues == [] and report.dma_reports == [] and report.dma_faults == []
    assert result.log == ["nvme: written, flushed and read back over I/O queue pairs: 2"]
    assert image.read_bytes() != before
    dev = result.run.system.device("nvme0")
    assert dev.csts == 0 and dev.sqs == {} and not dev.irq.level  # shut down, then disabled


def test_image_holds_what_the_driver_wrote(hwsim_driver, image):
    hwsim_driver(NVME, options={"nvme0": {"image": str(image)}})
    data = image.read_bytes()
    wbuf = bytes((i * 7 + (i >> 9)) & 0xFF for i in range(16 * 4096))
    for lba, blocks, offset in ((0, 8, 0), (8, 16, 4096), (24, 64, 3 * 4096), (100, 4, 11 * 4096 + 3072)):
        assert data[lba * 512 : (lba + blocks) * 512] == wbuf[offset : offset + blocks * 512], lba


def test_varied_timing_reorders_completions_and_the_driver_stays_clean(image, wasm):
    reordered = 0
    for seed in range(24):
        system = _board(image, seed=seed)
        report, order = _completions(DriverRun(system, wasm, log=lambda text: None))
        assert report.ok and report.result == BLOCKS, (seed, report.format())
        assert report.device_issues == [], (seed, report.format())
        io_order = [cid for sqid, cid in order if sqid != 0]  # 4 writes, a flush, 4 reads (CIDs in submission order)
        writes, reads = io_order[:4], io_order[5:]
        reordered += writes != sorted(writes) or reads != sorted(reads)
    nominal, order = _completions(DriverRun(_board(image), wasm, log=lambda text: None))
    assert nominal.ok and [c for s, c in order if s] == sorted(c for s, c in order if s)  # in order
    assert reordered >= 5


def test_the_driver_follows_the_doorbell_stride_fewer_queues_and_mdts(hwsim_driver, tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(BLOCKS * 512))
    options = {"image": str(image), "doorbell_stride": 3, "io_queues": 1, "mdts": 1}  # 8 KiB per command
    result = hwsim_driver(NVME, options={"nvme0": options})
    assert result.report.ok and result.report.device_issues == [], result.report.format()
    assert result.log == ["nvme: written, flushed and read back over I/O queue pairs: 1"]
    data = image.read_bytes()
    wbuf = bytes((i * 7 + (i >> 9)) & 0xFF for i in range(16 * 4096))
    assert data[24 * 512 : 88 * 512] == wbuf[3 * 4096 : 11 * 4096]  # the 32 KiB write, as four commands


def test_native_firmware_runs_the_same_driver(image):
    system, _ = make_board(DEFAULT_BOARD, options={"nvme0": {"image": str(image)}})
    report = FirmwareRun(system, build_driver(NVME, native=True).read_bytes()).run()
    assert report.result == BLOCKS and report.device_issues == [] and not report.sandboxed, report.format()


def test_read_loop_entry(hwsim_driver, image):
    result = hwsim_driver(NVME, entry="read_loop", args=(40,), options={"nvme0": {"image": str(image)}})
    assert result.report.ok and result.report.result == 0 and result.report.device_issues == []


def test_no_medium(hwsim_driver):
    result = hwsim_driver(NVME)
    assert result.report.result == -28 and result.report.probe_failed
    assert result.log == ["nvme: namespace 1 is too small (blocks): 0"]
    assert result.report.dma_reports == [] and result.report.device_issues == []


@pytest.mark.parametrize(
    ("spec", "log"),
    [
        ("nvme0.status@9", "nvme: retrying I/O after status 6"),  # Internal Error, a write: DNR clear
        ("nvme0.media@2", "nvme: retrying I/O after status 641"),  # Unrecovered Read Error (media, 0x81)
        ("nvme0.status@3", "nvme: retrying a command after status 6"),  # Set Features, on the admin queue
    ],
)
def test_injected_errors_without_dnr_are_retried(image, wasm, spec, log):
    system = _board(image, faults=FaultPlan((FaultSpec.parse(spec),)))
    run = DriverRun(system, wasm, log=lambda text: None)
    report = run.run()
    assert report.ok and report.result == BLOCKS and log in run.log, report.format()
    assert len(system.faults.fired) == 1


@pytest.mark.parametrize(
    ("spec", "log"),
    [
        ("nvme0.cfs@8", "nvme: controller fatal status"),
        ("nvme0.status", "nvme: command failed, status 6"),  # every command: the first one gives up
    ],
)
def test_fatal_and_persistent_faults_fail_the_probe_cleanly(image, wasm, spec, log):
    system = _board(image, faults=FaultPlan((FaultSpec.parse(spec),)))
    run = DriverRun(system, wasm, log=lambda text: None)
    report = run.run()
    assert report.result == -5 and log in run.log, report.format()
    assert report.dma_reports == [] and report.dma_faults == [] and report.device_issues == []  # nothing leaked
    assert report.in_flight == [] and system.device("nvme0").csts == 0


# -- one buggy driver per rule ---------------------------------------------------------------------------------

SQ_RULE = "SQ1TDBL: write of "
EXPECTED = {
    "nvme_doorbell_range": (-110, [SQ_RULE + "16: beyond the 16-entry I/O SQ 1 (a tail is 0..15) (ignored)"], []),
    "nvme_unwritten_entry": (
        -5,
        [SQ_RULE + "1: the tail moved over entry 0 of I/O SQ 1, which is all zeros (never written?)"],
        [],
    ),
    "nvme_sq_overflow": (
        0,
        [
            SQ_RULE + "0: moves the tail of I/O SQ 1 over 1 entry, but only 0 were free (the controller last reported "
            "head 0; a 16-entry queue holds at most 15 commands)"
        ],
        [],
    ),
    "nvme_cid_reuse": (
        -5,
        [
            SQ_RULE + "2: entry 1 of I/O SQ 1 reuses command identifier 1 while the command fetched from entry 0 with "
            "that identifier is outstanding"
        ],
        [],
    ),
    "nvme_wrong_phase": (
        0,
        [
            "CQ1HDBL: write of 1: moves the head of I/O CQ 1 past 1 entry the controller has not posted (a completion "
            "consumed with the wrong phase tag?) (ignored)"
        ],
        [],
    ),
    "nvme_freed_queue": (
        -5,
        [
            "reading entry 0 of I/O SQ 1 at iova 0x10003000 failed: read page fault (PTE is not valid (V=0)); a "
            "queue's memory must stay mapped while the queue exists (controller fatal status)"
        ],
        [Problem.AFTER_UNMAP],
    ),
    "nvme_queue_reuse": (
        -5,
        [
            "I/O SQ 1 entry 0 (CID 1, Read): its data buffer [0x10004000, 0x10005000) lies in the memory of I/O CQ 1 "
            "(queue memory reused while the queue exists): Data Transfer Error"
        ],
        [],
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_buggy_nvme_driver_gets_its_report(hwsim_driver, image, name):
    result, issues, problems = EXPECTED[name]
    run = hwsim_driver(DRIVERS / "examples" / "buggy" / name, options={"nvme0": {"image": str(image)}})
    report = run.report
    assert report.result == result, report.format()
    assert [i.message for i in report.device_issues] == issues, report.format()
    assert all(i.device == "nvme0" for i in report.device_issues)
    assert [r.problem for r in report.dma_reports] == problems, report.format()
    assert len(report.dma_faults) == len(problems)  # the freed queue is also an IOMMU fault
    if problems:
        text = report.dma_reports[0].format()
        lines = (DRIVERS / "examples" / "buggy" / name / f"{name}.c").read_text().splitlines()
        opened = next(i for i, line in enumerate(lines, 1) if "nvme_open(" in line)
        freed = next(i for i, line in enumerate(lines, 1) if "hwsim_dma_free_coherent(" in line)
        assert f"created at {name}.c:{opened} (probe)" in text and f"unmapped at {name}.c:{freed} (probe)" in text, text
    if issues[0].startswith(("SQ1TDBL", "CQ1HDBL")):
        assert report.device_issues[0].register == issues[0].split(":")[0]
