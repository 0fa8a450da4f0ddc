"""hwsim.driver.dma: the DMA API, the DMA engine driver, and one buggy driver per bug class."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hwsim.board import DEFAULT_BOARD, load_board
from hwsim.driver import DriverRun, build_driver
from hwsim.driver.dma import Problem
from hwsim.driver.runner import DriverError

DRIVERS = Path(__file__).resolve().parents[1] / "drivers"


@pytest.fixture
def run_driver(hwsim_driver):
    """The pytest plugin's hwsim_driver, as (run, report)."""

    def run(path: Path):
        result = hwsim_driver(path)
        return result.run, result.report

    return run


def test_dma_copy_through_the_iommu_is_clean(run_driver):
    run, report = run_driver(DRIVERS / "dma_copy")
    assert report.result == 0 and report.ok, report.format()
    assert report.dma_requests == 2 and report.dma_reports == [] and report.dma_faults == []
    assert run.log == ["dma_copy: 1000 bytes copied through the IOMMU"]
    mappings = list(run.dma.by_start.values())
    assert len(mappings) == 2 and all(m.unmapped_by for m in mappings)


# "created at overrun.c:8 (probe), in hwsim.h:72 [wasm function 3 (probe) offset 0xe1]"
CREATOR = re.compile(
    r"created at \w+\.c:\d+ \(probe\), in hwsim\.h:\d+ \[wasm function \d+ \(probe\) offset 0x[0-9a-f]+\]"
)

EXPECTED = {
    "stray": ([Problem.STRAY], 1),
    "use_after_unmap": ([Problem.AFTER_UNMAP], 1),
    "wrong_direction": ([Problem.DIRECTION], 1),
    "overrun": ([Problem.OVERRUN], 0),  # inside the mapped page: only the checker sees it
    "bad_unmap": ([Problem.UNMAP_SIZE, Problem.UNMAP_DIRECTION], 0),
    "double_unmap": ([Problem.DOUBLE_UNMAP, Problem.UNMAP_UNKNOWN], 0),
    "bad_sync": ([Problem.SYNC_UNMAPPED, Problem.SYNC_RANGE, Problem.SYNC_DIRECTION], 0),
    "missing_sync": ([Problem.CPU_OWNED], 0),
    "leak": ([Problem.LEAK], 0),
    "dma_to_mmio": ([Problem.MAP_MMIO], 0),
    "read_before_sync": ([Problem.CPU_TOUCH], 0),  # seen by the CPU's MMU, not the IOMMU
    "write_after_map": ([Problem.CPU_TOUCH], 0),
    "discard_mapped": ([Problem.RELEASED], 0),  # memory.discard of a buffer the device owns
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_buggy_driver_gets_its_report(run_driver, name):
    problems, iommu_faults = EXPECTED[name]
    run, report = run_driver(DRIVERS / "examples" / "buggy" / name)
    assert not report.ok
    assert [r.problem for r in report.dma_reports] == problems, report.format()
    assert len(report.dma_faults) == iommu_faults
    text = report.format()
    for r in report.dma_reports:
        assert r.device == "dma0"
        if r.mapping is not None:  # the driver call that created the mapping is named
            assert CREATOR.search(r.format()), r.format()
        elif r.problem is not Problem.STRAY:
            assert re.search(rf"by the driver at {name}\.c:\d+ \(probe\)", r.format()), r.format()
    assert f"DMA bugs: {len(problems)}" in text


def test_report_keeps_the_mapping_as_it_was(run_driver):
    _, report = run_driver(DRIVERS / "examples" / "buggy" / "bad_sync")
    first_with_mapping = next(r for r in report.dma_reports if r.mapping is not None)
    assert first_with_mapping.mapping.unmapped_by is None  # unmapped only later in the driver
    assert "unmapped at" not in first_with_mapping.format()


def test_reports_name_the_c_source_line_of_the_creating_call(run_driver):
    """The DWARF of a driver built with -g gives the line the author wrote (the inline wrapper's call site)."""
    _, report = run_driver(DRIVERS / "examples" / "buggy" / "overrun")
    (r,) = report.dma_reports
    assert "created at overrun.c:8 (probe), in hwsim.h:" in r.format()
    source = (DRIVERS / "examples" / "buggy" / "overrun" / "overrun.c").read_text().splitlines()
    assert 'hwsim_dma_map_single("dma0", b, 100, HWSIM_DMA_FROM_DEVICE)' in source[8 - 1]
    _, report = run_driver(DRIVERS / "examples" / "buggy" / "double_unmap")
    assert "by the driver at double_unmap.c:7 (probe), in hwsim.h:" in report.dma_reports[0].format()


def test_traps_in_c_drivers_name_the_source_line(tmp_path):
    drv = tmp_path / "divider"
    drv.mkdir()
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "hwsim.h").write_text((DRIVERS / "include" / "hwsim.h").read_text())
    (drv / "divider.c").write_text(
        "static volatile int zero = 0;\n"
        "int divide(int a) {\n"
        "    return a / zero;\n"
        "}\n"
        "int probe(void) { return divide(7); }\n"
    )
    system = load_board(DEFAULT_BOARD).build(options={"uart0": {"backend": "memory"}})
    report = DriverRun(system, build_driver(drv).read_bytes(), log=lambda text: None).run()
    assert report.trap.code.message == "integer divide by zero"
    # divide() was inlined into probe(): the call site, then the line that divided
    assert report.trap.summary.startswith("integer divide by zero at divider.c:5 (probe), in divider.c:3")


def test_plugin_fixtures(hwsim_driver, hwsim_board):
    result = hwsim_driver(DRIVERS / "uart16550", uart_input=b"plugin\n")
    assert result.console == b"plugin\n" and result.report.ok and result.dma_problems == []
    assert hwsim_driver(DRIVERS / "examples" / "buggy" / "leak").dma_problems == ["LEAK"]
    system = hwsim_board(uart_input=b"x")
    assert system.device("uart0").backend.pending_input == 1


def test_virtio_blk_driver_writes_and_reads_the_disk_through_the_iommu(hwsim_driver, tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(64 * 512))
    result = hwsim_driver(DRIVERS / "virtio_blk", options={"blk0": {"image": str(image)}})
    assert result.report.ok, result.report.format()
    assert result.report.result == 64  # the capacity in sectors, from the device's config space
    assert result.log == ["virtio_blk: sector 1 written and read back"]
    assert image.read_bytes()[512:1024] == bytes(i ^ 0x5A for i in range(256)) * 2
    assert image.read_bytes()[:512] == bytes(512) and image.read_bytes()[1024:] == bytes(62 * 512)
    reads = hwsim_driver(DRIVERS / "virtio_blk", options={"blk0": {"image": str(image)}}, entry="read_loop", args=(10,))
    assert reads.report.ok and reads.report.result == 0


@pytest.mark.parametrize("seed, faults", [(None, ("blk0.lost@1",)), (None, ("blk0.spurious@1",)), (5, ()), (11, ())])
def test_virtio_blk_driver_copes_with_lost_interrupts_and_varied_timing(tmp_path, seed, faults):
    """The driver waits on the interrupt and looks at the ring once more when nothing more can happen, so a
    lost interrupt costs it nothing; seeds vary every request's latency."""
    from hwsim.devices.faults import FaultPlan, FaultSpec

    image = tmp_path / "disk.img"
    image.write_bytes(bytes(64 * 512))
    plan = FaultPlan(tuple(FaultSpec.parse(f) for f in faults))
    system = load_board(DEFAULT_BOARD).build(
        options={"uart0": {"backend": "memory"}, "blk0": {"image": str(image)}}, seed=seed, faults=plan
    )
    wasm = build_driver(DRIVERS / "virtio_blk").read_bytes()
    report = DriverRun(system, wasm, log=lambda text: None).run()
    assert report.ok and report.result == 64, report.format()
    assert [f"{f.device}.{f.kind}@{f.occurrence}" for f in system.faults.fired] == list(faults)


def test_hwsim_run_with_a_disk_image(tmp_path):
    import subprocess
    import sys

    image = tmp_path / "d.img"
    image.write_bytes(bytes(8 * 512))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "hwsim",
            "run",
            str(DEFAULT_BOARD),
            str(DRIVERS / "virtio_blk"),
            "--option",
            f"blk0.image={image}",
        ],
        input=b"",
        capture_output=True,
        timeout=120,
    )
    assert out.returncode == 0 and b"driver returned 8" in out.stderr, out.stderr
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "hwsim",
            "run",
            str(DEFAULT_BOARD),
            str(DRIVERS / "virtio_blk"),
            "--option",
            "blk0image",
        ],
        input=b"",
        capture_output=True,
        timeout=120,
    )
    assert out.returncode == 2 and b"--option takes DEV.KEY=VALUE, not 'blk0image'" in out.stderr


BULK_DRIVER = """
(module
  (import "hwsim" "dma_map" (func $map (param i32 i32 i32 i32 i32) (result i64)))
  (import "hwsim" "dma_unmap" (func $unmap (param i32 i32 i64 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "dma0")
  (func (export "probe") (result i32) (local $iova i64)
    (local.set $iova (call $map (i32.const 0) (i32.const 4) (i32.const 0x100) (i32.const 64) (i32.const 2)))
    (memory.fill (i32.const 0x100) (i32.const 7) (i32.const 16))      ;; CPU write: the device owns it
    (memory.copy (i32.const 0x800) (i32.const 0x120) (i32.const 8))   ;; CPU read of it
    (memory.copy (i32.const 0x800) (i32.const 0x200) (i32.const 8))   ;; other bytes: fine
    (call $unmap (i32.const 0) (i32.const 4) (local.get $iova) (i32.const 64) (i32.const 2))
    (memory.fill (i32.const 0x100) (i32.const 7) (i32.const 16))      ;; the CPU's again: fine
    (i32.const 0)))
"""


def test_bulk_memory_on_a_device_owned_buffer_is_caught(hwsim_board):
    from hwsim.driver.runner import DriverRun
    from hwsim.runtime.api import _wat_to_wasm

    run = DriverRun(hwsim_board(), _wat_to_wasm(BULK_DRIVER), log=lambda text: None)
    report = run.run()
    assert [(r.problem, r.access, r.iova - r.mapping.iova, r.size) for r in report.dma_reports] == [
        (Problem.CPU_TOUCH, "CPU write", 0, 16),
        (Problem.CPU_TOUCH, "CPU read", 0x20, 8),
    ]
    assert "wasm function 2 offset" in report.dma_reports[0].format()
    assert run.system.machine.watched_pages == frozenset()  # unmapped: nothing watched any more


def test_cpu_side_checks_follow_ownership_through_syncs(hwsim_board):
    """map (device owns) -> sync_for_cpu (CPU owns: no report) -> sync_for_device -> touch (report)."""
    from hwsim.driver.runner import DriverRun
    from hwsim.runtime.api import _wat_to_wasm

    wat = BULK_DRIVER.replace(
        "(memory.fill (i32.const 0x100) (i32.const 7) (i32.const 16))      ;; CPU write: the device owns it",
        "(call $sync_cpu (i32.const 0) (i32.const 4) (local.get $iova) (i32.const 64) (i32.const 2))"
        "(i32.store8 (i32.const 0x101) (i32.const 1))"
        "(call $sync_dev (i32.const 0) (i32.const 4) (local.get $iova) (i32.const 64) (i32.const 2))"
        "(drop (i32.load8_u (i32.const 0x13f)))",
    ).replace(
        '(import "hwsim" "dma_unmap"',
        '(import "hwsim" "dma_sync_for_cpu" (func $sync_cpu (param i32 i32 i64 i32 i32)))'
        '(import "hwsim" "dma_sync_for_device" (func $sync_dev (param i32 i32 i64 i32 i32)))'
        '(import "hwsim" "dma_unmap"',
    )
    report = DriverRun(hwsim_board(), _wat_to_wasm(wat), log=lambda text: None).run()
    assert [(r.access, r.iova - r.mapping.iova, r.size) for r in report.dma_reports] == [
        ("CPU read", 0x3F, 1),
        ("CPU read", 0x20, 8),
    ]


def test_a_dma_call_in_the_authors_inline_helper_names_the_whole_chain(run_driver):
    """The mapping was made by hwsim_dma_map_single (inline, hwsim.h) called from the author's inline
    helper, itself inlined into probe: the report names probe's call, the helper's call, and hwsim.h."""
    path = Path(__file__).resolve().parent / "data" / "inlined" / "helper_overrun"
    source = (path / "helper_overrun.c").read_text().splitlines()
    probe_line = next(i + 1 for i, line in enumerate(source) if "PROBE-CALL" in line)
    helper_line = next(i + 1 for i, line in enumerate(source) if "HELPER-CALL" in line)
    _, report = run_driver(path)
    overrun = [r for r in report.dma_reports if "(to_device)" in r.format()]
    assert len(overrun) == 1, report.format()
    assert (
        f"created at helper_overrun.c:{probe_line} (probe), in helper_overrun.c:{helper_line} (map_for_device), "
        f"in hwsim.h:"
    ) in overrun[0].format()


@pytest.mark.parametrize("name", ["stray", "use_after_unmap", "wrong_direction"])
def test_a_device_access_names_the_register_write_that_started_it(run_driver, name):
    """The DMA happens later than START (the transfer takes time): the report names the driver's line
    that started it, here the example's call of dma_engine_copy, whose START write is in dma_engine.h."""
    source = (DRIVERS / "examples" / "buggy" / name / f"{name}.c").read_text().splitlines()
    (line,) = [i + 1 for i, text in enumerate(source) if "dma_engine_copy(" in text]
    _, report = run_driver(DRIVERS / "examples" / "buggy" / name)
    text = report.format()
    assert f"the device's work was started by the driver at {name}.c:{line} (probe), in dma_engine.h:" in text, text


def test_an_nvme_command_names_its_doorbell_write(run_driver):
    _, report = run_driver(DRIVERS / "examples" / "buggy" / "nvme_freed_queue")
    (bug,) = [r for r in report.dma_reports if r.device == "nvme0"]
    assert bug.started_by.startswith("nvme_freed_queue.c:") and "nvme_lite.h:" in bug.started_by, bug.format()


def _checker(hwsim_board):
    """A DriverRun's DMA checker on the default board (blk0 is device 2), called directly."""
    run = DriverRun(hwsim_board(), build_driver(DRIVERS / "virtio_blk").read_bytes(), log=lambda text: None)
    return run, run.dma, run.system.iommu


def test_streaming_maps_and_unmaps_keep_one_leaf_table_and_free_the_others(hwsim_board):
    """IOVAs only grow; the leaf table of the span new mappings land in is kept when it empties (no table
    made and freed per map), and freed once the IOVAs move past it: 600 map/unmap pairs, 2.3 spans of
    2 MiB, leave at most that one table behind, and a DMA to an old IOVA still faults."""
    run, dma, iommu = _checker(hwsim_board)
    frames = run.system.machine.frames
    first = dma.map("blk0", 0x20000, 4096, 2, "test")
    dma.unmap("blk0", first, 4096, 2, "test")
    before = frames.committed
    for _ in range(600):
        iova = dma.map("blk0", 0x20000, 4096, 2, "test")
        assert iova >> 21 in (first >> 21, (first >> 21) + 1, (first >> 21) + 2)
        dma.unmap("blk0", iova, 4096, 2, "test")
    assert iova >> 21 == (first >> 21) + 2
    assert frames.committed - before <= 1
    assert not iommu.dma(2, first, 4, write=True, data=bytes(4)).ok
    assert not iommu.dma(2, iova, 4, write=True, data=bytes(4)).ok
    assert [r.problem for r in dma.reports] == [Problem.AFTER_UNMAP, Problem.AFTER_UNMAP]


def test_a_view_is_vouched_for_only_while_the_device_owns_the_buffer_and_a_sync_invalidates_it(hwsim_board):
    run, dma, iommu = _checker(hwsim_board)
    iova = dma.map("blk0", 0x20000, 256, 0, "test")  # bidirectional: the device owns it
    view = iommu.open_view(2, iova, 256, write=False)
    assert view is not None and view.valid
    assert iommu.open_view(2, iova, 257, write=False) is None  # one byte past the mapping: an overrun
    assert iommu.open_view(2, iova + 0x1000, 16, write=False) is None  # the gap page: stray
    dma.sync("blk0", iova, 256, 0, True, "test")  # the CPU owns it now
    assert not view.valid
    assert iommu.open_view(2, iova, 256, write=False) is None
    assert iommu.dma(2, iova, 4, write=False).ok  # the IOMMU allows it; the checker reports it
    assert [r.problem for r in dma.reports] == [Problem.CPU_OWNED]
    dma.sync("blk0", iova, 256, 0, False, "test")
    assert iommu.open_view(2, iova, 256, write=True) is not None
    dma.unmap("blk0", iova, 256, 0, "test")
    assert iommu.invalidate_views() == 0  # the unmap's IOTINVAL.VMA took it


def test_closing_a_run_frees_its_io_spaces_and_lets_the_next_run_use_the_board(hwsim_board, tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(1 << 16))
    system = hwsim_board(blk0={"image": str(image)})
    wasm = build_driver(DRIVERS / "virtio_blk").read_bytes()
    frames = system.machine.frames
    with DriverRun(system, wasm, log=lambda text: None) as first:
        assert first.run("read_loop", (3,)).result == 0
        tables = [space.root for space in first.dma.spaces.values()]
        assert tables and all(frames.is_allocated(t) for t in tables)
    assert not any(frames.is_allocated(t) for t in tables)
    with pytest.raises(DriverError, match="this DriverRun was closed: make a new one to run the driver again"):
        first.run("read_loop", (1,))
    first.close()  # idempotent
    views = system.iommu.stats.views
    second = DriverRun(system, wasm, log=lambda text: None)
    report = second.run("read_loop", (3,))
    assert report.ok and report.dma_reports == [] and first.dma.reports == []
    assert system.iommu.stats.views == views + 3  # the closed run's checker no longer refuses to vouch


def test_a_run_made_after_another_on_the_same_board_starts_with_nothing_cached(hwsim_board, tmp_path):
    """The second checker gives its devices the same PSCIDs and IOVAs with new tables: an IOTLB entry the
    first run left must not translate them (it is flushed), and closing the first run afterwards leaves
    the second one's device contexts alone."""
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(1 << 16))
    system = hwsim_board(blk0={"image": str(image)})
    wasm = build_driver(DRIVERS / "virtio_blk").read_bytes()
    first = DriverRun(system, wasm, log=lambda text: None)
    assert first.run("read_loop", (2,)).result == 0
    second = DriverRun(system, wasm, log=lambda text: None)
    first.close()
    report = second.run("read_loop", (2,))
    assert report.ok and report.result == 0 and report.dma_faults == [] and report.dma_reports == []


# The attacks whose reports name driver code through the PC of a device access or a watched access:
# a DMA to memory never mapped, after unmap (late), against the mapping's direction (into memory the
# device may only read), and the CPU touching a buffer the device owns.
_BOTH_PATHS = ("stray", "use_after_unmap", "wrong_direction", "read_before_sync", "write_after_map", "missing_sync")
_REPORTS_SCRIPT = f"""
from pathlib import Path
from hwsim.board import DEFAULT_BOARD
from hwsim.driver import DriverRun, build_driver
from hwsim.machine import native
from hwsim.testing import make_board
print("native" if native.library() is not None else "python")
for name in {_BOTH_PATHS!r}:
    wasm = build_driver(Path({str(DRIVERS)!r}) / "examples" / "buggy" / name).read_bytes()
    report = DriverRun(make_board(DEFAULT_BOARD)[0], wasm, log=lambda text: None).run()
    print("\\n".join(r.format() for r in report.dma_reports))
    print("--")
"""


def test_dma_reports_are_the_same_with_and_without_the_compiled_helper():
    """The compiled helper (the PC-syncing MMIO hook, fills around watched pages) and the Python hooks
    (HWSIM_NO_NATIVE=1) give the same reports, C lines and virtual times included."""
    import os
    import subprocess
    import sys

    from hwsim.machine import native

    if native.library() is None:
        pytest.skip(f"no compiled helper: {native.unavailable_reason()}")
    root = str(DRIVERS.parent)
    outputs = []
    for no_native in ("0", "1"):
        env = {**os.environ, "HWSIM_NO_NATIVE": no_native, "PYTHONPATH": root}
        out = subprocess.run([sys.executable, "-c", _REPORTS_SCRIPT], env=env, capture_output=True, text=True, cwd=root)
        assert out.returncode == 0, out.stderr[-3000:]
        outputs.append(out.stdout)
    assert outputs[0].splitlines()[0] == "native" and outputs[1].splitlines()[0] == "python"
    native_reports, python_reports = (text.split("\n", 1)[1] for text in outputs)
    assert native_reports == python_reports
    assert native_reports.count("DMA bug:") == len(_BOTH_PATHS)
    for name in ("stray", "use_after_unmap", "wrong_direction"):  # named by the device access's PC
        assert f"the device's work was started by the driver at {name}.c:" in native_reports
    for name in ("read_before_sync", "write_after_map"):  # named by the watched access's PC
        assert f"by the driver at {name}.c:" in native_reports


REPEAT = Path(__file__).resolve().parent / "data" / "dma_repeat"
LAST_COPY_LINE = next(
    i + 1 for i, line in enumerate((REPEAT / "dma_repeat.c").read_text().splitlines()) if "THE-LAST-COPY" in line
)


def _repeat_run(scenario: int, copies: int, *, views: bool):
    """drivers' repeat_then(scenario, copies) on the default board; ``views`` False: an extra DMA observer
    that vouches for nothing keeps every request an ordinary one (hwsim before the engine's views)."""
    from hwsim.testing import make_board

    system = make_board(DEFAULT_BOARD)[0]
    run = DriverRun(system, build_driver(REPEAT).read_bytes(), log=lambda text: None)
    if not views:
        system.iommu.add_dma_observer(lambda *request: None)
    report = run.run("repeat_then", (scenario, copies))
    return run, report


@pytest.mark.parametrize(
    ("scenario", "result", "problems"),
    [
        (0, 0, []),
        (1, 2, [Problem.AFTER_UNMAP]),  # ERROR_CODE 2: the write faulted
        (2, 0, [Problem.CPU_OWNED]),
        (3, 1, [Problem.AFTER_UNMAP]),  # ERROR_CODE 1: the read faulted
        (4, 0, []),
    ],
)
def test_a_dma_engine_moving_the_same_ranges_again_is_judged_as_without_its_views(scenario, result, problems):
    """The attack on the engine's cached translations: after copies of the same ranges (the later ones
    through views), the driver unmaps or hands a buffer to the CPU and copies once more.  The last copy
    must fault and be reported (with the mapping, the device's C line and time) exactly as when every
    request is an ordinary one, never go through the stale view."""
    run, report = _repeat_run(scenario, 5, views=True)
    assert run.system.iommu.stats.views == 2  # the source's and the destination's, from the third copy on
    assert report.result == result and [r.problem for r in report.dma_reports] == problems, report.format()
    for r in report.dma_reports:
        assert f"started by the driver at dma_repeat.c:{LAST_COPY_LINE} (repeat_then)" in r.format(), r.format()
    _, plain = _repeat_run(scenario, 5, views=False)
    assert [r.format() for r in report.dma_reports] == [r.format() for r in plain.dma_reports]
    assert [f.message for f in report.dma_faults] == [f.message for f in plain.dma_faults]
    assert (report.result, report.dma_requests, report.virtual_ns) == (
        plain.result,
        plain.dma_requests,
        plain.virtual_ns,
    )


_RELEASE_DRIVER = """#include <hwsim.h>
__attribute__((import_module("hwsim:memory"), import_name("discard"))) void hwsim_discard(void *, unsigned long);
__attribute__((import_module("hwsim:memory"), import_name("unmap"))) void hwsim_unmap(void *, unsigned long);
static uint8_t a[3 * 4096] __attribute__((aligned(4096)));
int probe(void) {
    hwsim_iova_t iova, coherent_iova;
    uint8_t *ring = hwsim_dma_alloc_coherent("dma0", 4096, &coherent_iova);
    iova = hwsim_dma_map_single("dma0", a + 4096, 4096, HWSIM_DMA_TO_DEVICE);
    hwsim_discard(a, 4096);                                     /* the page before: fine */
    hwsim_discard(a + 2 * 4096, 4096);                          /* the page after: fine */
    hwsim_dma_sync_single_for_cpu("dma0", iova, 4096, HWSIM_DMA_TO_DEVICE);
    hwsim_discard(a + 4096, 4096);                              /* line 12: the CPU owns it, still mapped */
    hwsim_dma_unmap_single("dma0", iova, 4096, HWSIM_DMA_TO_DEVICE);
    hwsim_discard(a, sizeof a);                                 /* unmapped now: fine */
    hwsim_unmap(ring + 100, 8);                                 /* line 15: coherent memory, still mapped */
    hwsim_dma_free_coherent("dma0", 4096, ring, coherent_iova);
    return 0;
}
"""


def test_discard_or_unmap_of_mapped_memory_is_reported_at_its_line(tmp_path):
    """memory.discard / memory.unmap (the hwsim:memory intrinsics) of driver pages still mapped for DMA is
    reported at the C line, whoever owns the buffer; neighbouring pages and unmapped buffers are not."""
    drv = tmp_path / "release"
    drv.mkdir()
    (tmp_path / "include").mkdir()
    for header in ("hwsim.h",):
        (tmp_path / "include" / header).write_text((DRIVERS / "include" / header).read_text())
    (drv / "release.c").write_text(_RELEASE_DRIVER)
    system = load_board(DEFAULT_BOARD).build(options={"uart0": {"backend": "memory"}})
    run = DriverRun(system, build_driver(drv).read_bytes(), log=lambda text: None)
    report = run.run()
    assert report.result == 0 and report.trap is None
    assert [(r.problem, r.access, r.size) for r in report.dma_reports] == [
        (Problem.RELEASED, "memory.discard", 4096),
        (Problem.RELEASED, "memory.unmap", 4096),  # unmap rounds to whole pages: the whole coherent page
    ], report.format()
    discard, unmap = report.dma_reports
    assert "by the driver at release.c:12 (probe)" in discard.format()
    assert "while it is still mapped" in discard.detail and discard.mapping.cpu_owned
    assert "by the driver at release.c:15 (probe)" in unmap.format()
    assert unmap.mapping.coherent and unmap.iova == unmap.mapping.iova
