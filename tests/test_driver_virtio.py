"""The virtio protocol rules a driver must keep, each broken by one driver of drivers/examples/buggy/virtio_*:
initialisation-sequence rules seen by the device (device issues), split-ring rules seen in the driver's
stores and DMA calls (hwsim.driver.virtio), and coherent memory used after its free (a trap).  Each report
names the C line marked ``/* <-`` in the example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hwsim.driver.dma import Problem
from hwsim.driver.virtio import Rule

BUGGY = Path(__file__).resolve().parents[1] / "drivers" / "examples" / "buggy"


def marked_line(name: str) -> str:
    """``name.c:N (probe)``: the line the example marks with ``/* <-``."""
    lines = (BUGGY / name / f"{name}.c").read_text().splitlines()
    (n,) = [i + 1 for i, line in enumerate(lines) if "/* <-" in line]
    return f"{name}.c:{n} (probe)"


SEQUENCE = {
    "virtio_no_reset": "initialisation: ACKNOWLEDGE set without resetting the device first: the driver MUST write 0 "
    "to Status before initialising it (it may hold another driver's state)",
    "virtio_driver_before_ack": "initialisation: DRIVER set before ACKNOWLEDGE: set ACKNOWLEDGE first, then DRIVER, "
    "then negotiate",
    "virtio_features_before_driver": "initialisation: DriverFeatures written before DRIVER was set (acknowledge the "
    "device first)",
    "virtio_unoffered_feature": "Status: FEATURES_OK refused: the driver accepted features 0x10000000 the device did "
    "not offer",
    "virtio_features_unchecked": "initialisation: FEATURES_OK was not read back: the driver MUST re-read Status after "
    "setting FEATURES_OK, and go on only if the device kept it",
    "virtio_late_queue": "initialisation: queue 0 made ready after DRIVER_OK: the driver MUST set its queues up before "
    "it sets DRIVER_OK",
}


@pytest.mark.parametrize("name", sorted(SEQUENCE))
def test_initialisation_sequence_rules_name_the_register_write(hwsim_driver, name):
    report = hwsim_driver(BUGGY / name).report
    (issue,) = report.device_issues
    assert (issue.device, issue.message) == ("blk0", SEQUENCE[name])
    assert issue.source.startswith(marked_line(name)), issue.source
    assert f"by the driver at {marked_line(name)}" in report.format()
    assert report.protocol_reports == [] and report.dma_reports == []


RING = {
    "virtio_avail_wrap": (
        Rule.AVAIL_WRAP,
        "the available idx went from 7 to 0: it moved back (wrapped at the queue size?); it counts every entry made "
        "available, modulo 2^16 (the entry is ring[idx % 8]), and never moves back",
    ),
    "virtio_avail_skip": (
        Rule.AVAIL_STALE,
        "the available idx moved from 0 to 2 (2 entries), but ring entry 1 was not written since the device last "
        "read it: the device reads a stale head; write ring[idx % 8] for each entry, then move idx by their number",
    ),
    "virtio_double_avail": (
        Rule.DOUBLE_AVAIL,
        "the chain at descriptor 0 is made available again, but the device has not returned it (it is not in the "
        "used ring yet): the device would serve it twice",
    ),
    "virtio_desc_rewrite": (
        Rule.DEVICE_OWNED,
        "descriptor 1 of the chain at descriptor 0, which the device owns (made available and not returned in the "
        "used ring yet): the device may read it at any time",
    ),
    "virtio_long_chain": (
        Rule.CHAIN,
        "the chain at descriptor 0: descriptor 2 chains back to descriptor 0: a loop, longer than the queue",
    ),
    "virtio_no_notify": (
        Rule.NO_NOTIFY,
        "the driver made buffers available on queue 0 (this store of the available idx) and never wrote QueueNotify; "
        "the device, which did not set VIRTQ_USED_F_NO_NOTIFY, was not told",
    ),
    "virtio_free_live_ring": (
        Rule.RING_FREED,
        "dma_free_coherent of the memory holding queue 0's descriptor table while the device is live (not reset): it "
        "may still read and write it; reset the device (write 0 to Status) first",
    ),
    "virtio_ring_reused": (
        Rule.RING_REUSED,
        "driver memory [0x110000, 0x110040) mapped for blk0 holds queue 0's descriptor table, which is live",
    ),
}


@pytest.mark.parametrize("name", sorted(RING))
def test_ring_rules_name_the_store_or_call(hwsim_driver, name):
    result = hwsim_driver(BUGGY / name)
    report = result.report
    rule, detail = RING[name]
    assert not report.ok and report.exit_status == 1
    (r,) = report.protocol_reports
    assert (r.rule, r.device, r.queue, r.detail) == (rule, "blk0", 0, detail)
    assert r.where.startswith(marked_line(name)), r.where
    assert f"virtio bug: {rule.value}: device blk0, queue 0" in report.format()
    assert report.dma_reports == []


def test_a_chain_made_available_twice_is_served_twice(hwsim_board):
    """What the rule is for: the device performs the request twice (an outside driver's write went to disk twice)."""
    from hwsim.devices.virtio.mmio import QueueEventKind
    from hwsim.driver import DriverRun, build_driver

    system = hwsim_board()
    events = []
    system.device("blk0").add_queue_observer(events.append)
    DriverRun(system, build_driver(BUGGY / "virtio_double_avail").read_bytes(), log=lambda text: None).run()
    returned = [e.chain.head for e in events if e.kind is QueueEventKind.RETURNED]
    assert returned == [0, 0]


def test_coherent_memory_used_after_its_free_traps_naming_the_free(hwsim_driver):
    report = hwsim_driver(BUGGY / "use_after_free_coherent").report
    trap = report.trap
    assert trap is not None and trap.code.name == "MEMORY_ACCESS_DENIED"
    text = trap.summary  # hwsim's one line (str() is wasmtime's text)
    assert text.startswith(f"memory access denied by page protection at {marked_line('use_after_free_coherent')}")
    assert re.search(
        r"load: page 0x[0-9a-f]+ \(linear address 0x[0-9a-f]+\) was freed by hwsim_dma_free_coherent\('blk0', 4096\) "
        r"at use_after_free_coherent\.c:7 \(probe\)",
        text,
    ), text


def test_the_shipped_virtio_drivers_keep_every_rule(hwsim_driver, tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(64 * 512))
    blk = hwsim_driver("drivers/virtio_blk", options={"blk0": {"image": str(image)}}).report
    net = hwsim_driver("drivers/virtio_net").report
    for report in (blk, net):
        assert report.ok and report.protocol_reports == [] and report.device_issues == [], report.format()


@pytest.fixture
def disk(tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(64 * 512))
    return {"blk0": {"image": str(image)}}


@pytest.mark.parametrize("driver", ["virtio_blk", "virtio_net"])
def test_the_shipped_virtio_drivers_keep_every_rule_under_200_seeds(driver, disk):
    from hwsim.board import DEFAULT_BOARD, load_board
    from hwsim.driver import build_driver
    from hwsim.driver.explore import explore

    wasm = build_driver(BUGGY.parents[1] / driver).read_bytes()
    result = explore(load_board(DEFAULT_BOARD), wasm, range(200), options=disk)
    assert result.ok, result.report.format()
    assert result.seeds == list(range(200))


@pytest.mark.parametrize("driver", ["virtio_blk", "virtio_net"])
def test_the_shipped_virtio_drivers_fail_cleanly_under_injected_faults(driver, disk):
    """An injected fault may fail the probe, but never makes the driver break a rule, leak or trap."""
    from hwsim.board import DEFAULT_BOARD, load_board
    from hwsim.driver import build_driver
    from hwsim.driver.explore import explore

    board = load_board(DEFAULT_BOARD)
    wasm = build_driver(BUGGY.parents[1] / driver).read_bytes()
    fired = 0
    for seed in range(60):
        report = explore(board, wasm, [seed], options=disk, faults=True).report
        assert report is not None
        fired += bool(report.faults)
        assert not (report.protocol_reports or report.dma_reports or report.trap or report.device_issues), (
            report.format()
        )
    assert fired  # the seeds did inject faults


def test_ring_entries_written_before_queue_ready_are_not_stale(hwsim_driver):
    result = hwsim_driver(Path(__file__).resolve().parent / "data" / "virtio" / "avail_before_ready")
    assert result.report.ok and result.report.protocol_reports == [], result.report.format()


def test_wide_stores_that_publish_and_write_entries_at_once_are_taken_whole(hwsim_driver):
    """One store may move the available idx and write the entries it publishes (or the flags beside it):
    the checker counts those entries as written and takes the heads the store writes."""
    result = hwsim_driver(Path(__file__).resolve().parent / "data" / "virtio" / "wide_avail_stores")
    assert result.report.ok and result.report.result == 0, result.report.format()
    assert result.report.protocol_reports == []


def test_an_idx_stored_with_the_flags_is_seen(hwsim_driver):
    """A store that begins at the available ring's flags and moves the idx publishes as a store of the idx
    alone does: the stale entry is reported at it (the watch used to begin at the idx, and missed it)."""
    name = "avail_skip_wide"
    source = Path(__file__).resolve().parent / "data" / "virtio" / name
    result = hwsim_driver(source)
    (r,) = result.report.protocol_reports
    assert (r.rule, r.device, r.queue, r.detail) == (Rule.AVAIL_STALE, "blk0", 0, RING["virtio_avail_skip"][1])
    lines = (source / f"{name}.c").read_text().splitlines()
    (n,) = [i + 1 for i, line in enumerate(lines) if "/* <-" in line]
    assert r.where.startswith(f"{name}.c:{n} (probe)"), r.where


def test_rings_freed_mid_request_are_refused_and_reported_though_the_device_cached_views(hwsim_board):
    """The attack on the ring views from a driver: one request served (the device reads and writes the rings
    through validated views), a second in flight, then the rings freed.  The device's next ring access (the
    used element) must still be refused by the IOMMU and reported by the DMA checker, not served from a view."""
    from hwsim.driver import DriverRun, build_driver

    system = hwsim_board()
    name = "virtio_unmap_ring_mid_request"
    report = DriverRun(system, build_driver(BUGGY / name).read_bytes(), log=lambda text: None).run()
    queue = system.device("blk0").queues[0]
    assert system.iommu.stats.views == 3  # descriptor table, available ring, used ring
    used_element = queue.used + 4 + 8 * 1
    (r,) = [r for r in report.dma_reports if r.iova == used_element]
    assert (r.problem, r.access, r.size, r.device) == (Problem.AFTER_UNMAP, "write", 8, "blk0")
    assert r.mapping is not None and r.mapping.unmapped_by.startswith(marked_line(name))
    assert [f.iova for f in report.dma_faults if f.iova == used_element] == [used_element]
    (p,) = report.protocol_reports
    assert p.rule is Rule.RING_FREED
