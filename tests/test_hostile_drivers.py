"""Hostile drivers: attacks on the sandbox, each ending with a clear report, a non-zero exit, and no
byte changed outside the driver's own frames (see hostile_guard.RamGuard).

The attacker knows everything the host knows (the physical addresses of the page tables, the code,
the IOMMU's tables): the tests pass them in.  Classes (the count of cases is in each test's ids):

* platform windows (IOMMU, PLIC, CLINT) by ``hwsim_mmio_map`` and by ``hwsim:mmio`` memory imports;
  a peripheral withheld with ``assign``: windows, DMA and interrupts;
* DMA by physical address (the IOMMU cannot be switched off, so these are IOVAs never mapped) aimed at
  the CPU's page tables, code, the IOMMU's directory and IO page tables, other owners' frames, device
  windows (peer to peer), read and written;
* IOVAs never mapped, at random (hypothesis);
* DMA mappings of memory the driver may not hand out (the null page, read-only pages, windows),
  absurd sizes and directions;
* memory freed while a device still owns it (discard, grow-and-touch to win the frame back);
* runaway drivers: spinning on a register (virtual time), on memory (wall clock), and Ctrl-C.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile_guard import RamGuard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_scale import examples

from hwsim.board import DEFAULT_BOARD, load_board
from hwsim.compiler.traps import TrapCode
from hwsim.devices.backends import MemoryBackend
from hwsim.driver import DriverError, DriverRun
from hwsim.driver.dma import Problem
from hwsim.runtime import layout as L
from hwsim.runtime.api import _wat_to_wasm

REPO = Path(__file__).resolve().parents[1]
NAMES = 0x1000  # device names live in the driver's second page: page 0 stays trap-on-null
DEVICES = ("iommu", "plic", "clint", "uart0", "dma0", "blk0", "net0", "rtc0", "nosuch")
NAME_AT = {}
_data, _at = [], NAMES
for _name in DEVICES:
    NAME_AT[_name] = _at
    _data.append(f'(data (i32.const {_at}) "{_name}")')
    _at += 16

PRELUDE = f"""
  (import "hwsim" "mmio_map" (func $map (param i32 i32) (result i32)))
  (import "hwsim" "irq_wait" (func $irq_wait (param i32 i32) (result i32)))
  (import "hwsim" "request_irq" (func $request_irq (param i32 i32 i32) (result i32)))
  (import "hwsim" "dma_map" (func $dma_map (param i32 i32 i32 i32 i32) (result i64)))
  (import "hwsim" "dma_unmap" (func $dma_unmap (param i32 i32 i64 i32 i32)))
  (import "hwsim" "dma_alloc_coherent" (func $dma_alloc (param i32 i32 i32 i32) (result i32)))
  (import "hwsim:memory" "discard" (func $discard (param i32 i32)))
  (memory (export "memory") 4)
  {" ".join(_data)}
"""

# The DMA engine, programmed with raw 64-bit addresses: copy LEN bytes from SRC to DST, return STATUS.
DMA_FUNCS = f"""
  (func $dma (param $src i64) (param $dst i64) (param $len i32) (result i32) (local $d i32)
    (local.set $d (call $map (i32.const {NAME_AT["dma0"]}) (i32.const 4)))
    (i32.store offset=0x08 (local.get $d) (i32.wrap_i64 (local.get $src)))
    (i32.store offset=0x0c (local.get $d) (i32.wrap_i64 (i64.shr_u (local.get $src) (i64.const 32))))
    (i32.store offset=0x10 (local.get $d) (i32.wrap_i64 (local.get $dst)))
    (i32.store offset=0x14 (local.get $d) (i32.wrap_i64 (i64.shr_u (local.get $dst) (i64.const 32))))
    (i32.store offset=0x18 (local.get $d) (local.get $len))
    (i32.store offset=0x1c (local.get $d) (i32.const 1))
    (loop $busy (br_if $busy (i32.and (i32.load offset=0x20 (local.get $d)) (i32.const 1))))  ;; STATUS.BUSY
    (i32.load offset=0x20 (local.get $d)))
  (func $own_iova (result i64)  ;; a legitimate bidirectional mapping of the driver's page 3
    (call $dma_map (i32.const {NAME_AT["dma0"]}) (i32.const 4) (i32.const 0x3000) (i32.const 4096) (i32.const 0)))
"""


def module(body: str) -> bytes:
    return _wat_to_wasm(f"(module {PRELUDE} {DMA_FUNCS} {body})")


def board(**options):
    system = load_board(DEFAULT_BOARD).build(options={"uart0": {"backend": "memory"}, **options})
    system.device("uart0").backend = MemoryBackend(b"")
    return system


def attack(wasm: bytes, entry: str = "probe", args: tuple = (), *, assign=None, **kw):
    """Run ``entry``; returns (run, report, guard summary) after checking the RAM invariant."""
    run = DriverRun(board(), wasm, log=lambda text: None, assign=assign, **kw)
    guard = RamGuard(run)
    report = run.run(entry, args)
    summary = guard.check()
    assert not report.ok and report.exit_status != 0, report.format()
    return run, report, guard, summary


# -- the guard itself -----------------------------------------------------------------------------------

ESCAPE = f"""
  (func (export "probe") (param $src i64) (param $dst i64) (result i32) (local $io i32)
    (local.set $io (call $map (i32.const {NAME_AT["iommu"]}) (i32.const 5)))
    (i32.store offset=0x10 (local.get $io) (i32.const 1))   ;; ddtp.iommu_mode = Bare
    (call $dma (local.get $src) (local.get $dst) (i32.const 4096)))
"""


@pytest.mark.parametrize("target", ["root page table", "canary"])
def test_the_guard_sees_the_escape_that_device_assignment_closes(monkeypatch, target):
    """With the rule switched off (the IOMMU assignable), the reported escape works and the guard says so."""
    from hwsim.board.board import Board

    monkeypatch.setattr(Board, "why_not_assignable", lambda self, name: None)
    run = DriverRun(board(), module(ESCAPE), log=lambda text: None, assign=["iommu", "dma0"])
    guard = RamGuard(run)
    root = run.store._store.space.root
    src, dst = (guard.canaries[0], root) if target == "root page table" else (root, guard.canaries[1])
    run.run("probe", (src, dst))
    with pytest.raises(AssertionError, match="page tables corrupted|frames outside the driver's changed|ddtp"):
        guard.check()


# -- platform devices and devices not assigned ---------------------------------------------------------

WINDOW_WRITES = """
  (func (export "probe") (param $name i32) (param $len i32) (result i32) (local $w i32)
    (local.set $w (call $map (local.get $name) (local.get $len)))
    ;; write what would switch the IOMMU to Bare, route every interrupt, and fire the timer
    (i32.store offset=0x10 (local.get $w) (i32.const 1))
    (i32.store offset=0x4000 (local.get $w) (i32.const 0))
    (i32.store offset=0x200000 (local.get $w) (i32.const -1))
    (local.get $w))
"""


@pytest.mark.parametrize("device", ["iommu", "plic", "clint"])
def test_platform_windows_by_mmio_map_are_refused(device):
    run, report, _, _ = attack(module(WINDOW_WRITES), args=(NAME_AT[device], len(device)))
    # The window is NULL: the writes land in the driver's own null page, which traps.
    assert report.trap is not None and report.trap.code is TrapCode.MEMORY_ACCESS_DENIED
    (refusal,) = report.refusals
    assert refusal.startswith(f'hwsim_mmio_map("{device}") refused at wasm function')
    assert "platform device" in refusal and "never assigned to a driver" in refusal
    assert run.system.device(device).issues == []  # the device never saw an access
    assert "refused (1): the driver reached for devices it was not given" in report.format()


@pytest.mark.parametrize("device", ["iommu", "plic", "clint"])
def test_platform_windows_by_memory_import_are_refused(device):
    wasm = _wat_to_wasm(
        f'(module (import "hwsim:mmio" "{device}" (memory 1 (pagesize 1))) (memory 1) '
        f'(func (export "probe") (result i32) (i32.const 0)))'
    )
    with pytest.raises(
        DriverError,
        match=rf"the driver's import hwsim:mmio::{device} is refused: {device} "
        rf"\(\S+\) is a platform device",
    ):
        DriverRun(board(), wasm, log=lambda text: None)


WITHHELD = f"""
  (func (export "map") (result i32) (call $map (i32.const {NAME_AT["dma0"]}) (i32.const 4)))
  (func (export "dma_map") (result i32)
    (i64.eq (call $own_iova) (i64.const -1)))
  (func (export "alloc") (result i32)
    (call $dma_alloc (i32.const {NAME_AT["dma0"]}) (i32.const 4) (i32.const 4096) (i32.const 0x2000)))
  (func (export "irq_wait") (result i32) (call $irq_wait (i32.const {NAME_AT["dma0"]}) (i32.const 4)))
  (func (export "request_irq") (result i32)
    (call $request_irq (i32.const {NAME_AT["dma0"]}) (i32.const 4) (i32.const 0)))
  (func (export "hwsim_irq_handler") (param i32))
"""


@pytest.mark.parametrize(
    "entry, call, result",
    [
        ("map", "hwsim_mmio_map", 0),
        ("dma_map", "hwsim_dma_map", 1),
        ("alloc", "hwsim_dma_alloc_coherent", 0),
        ("irq_wait", "hwsim_irq_wait", 0),
        ("request_irq", "hwsim_request_irq", -1),
    ],
)
def test_a_peripheral_not_assigned_is_refused_on_every_path(entry, call, result):
    run, report, _, _ = attack(module(WITHHELD), entry, assign=["uart0"])
    assert report.trap is None and report.result == result
    (refusal,) = report.refusals
    assert refusal.startswith(f'{call}("dma0") refused at ')
    assert refusal.endswith("dma0 is not assigned to this driver (assigned: uart0)")
    assert report.dma_requests == 0 and run.system.device("dma0").issues == []


def test_a_withheld_window_import_is_refused():
    wasm = _wat_to_wasm('(module (import "hwsim:mmio" "dma0" (memory 1 (pagesize 1))) (memory 1))')
    with pytest.raises(DriverError, match=r"hwsim:mmio::dma0 is refused: dma0 is not assigned to this driver"):
        DriverRun(board(), wasm, log=lambda text: None, assign=["uart0"])


@pytest.mark.parametrize(
    "assign, message",
    [
        (["iommu"], "cannot assign 'iommu' to the driver: iommu (riscv-iommu) is a platform device"),
        (["clint"], "cannot assign 'clint' to the driver: clint (clint) is a platform device"),
        (["uart0", "plic"], "cannot assign 'plic' to the driver: plic (plic) is a platform device"),
        (["uart7"], "board 'virt' has no device 'uart7'"),
        ("uart0", "assign takes a collection of device names"),
    ],
)
def test_assigning_a_platform_device_is_an_error(assign, message):
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)")):
        DriverRun(board(), module(""), log=lambda text: None, assign=assign)


def test_boards_cannot_make_platform_devices_assignable(tmp_path):
    from hwsim.board import BoardError

    text = DEFAULT_BOARD.read_text().replace('type = "clint"', 'type = "clint"\nassignable = true')
    path = tmp_path / "b.toml"
    path.write_text(text)
    with pytest.raises(BoardError, match=r"\[devices.clint\] assignable: clint is a platform device"):
        load_board(path)
    withheld = DEFAULT_BOARD.read_text().replace('type = "dma"', 'type = "dma"\nassignable = false')
    path.write_text(withheld)
    b = load_board(path)
    assert "dma0" not in b.assignable_devices() and "uart0" in b.assignable_devices()
    assert b.why_not_assignable("dma0") == "dma0 is not assignable on board 'virt' ([devices.dma0] assignable = false)"


# -- DMA aimed at what the driver does not own -----------------------------------------------------------


def _targets(run, guard) -> dict[str, int]:
    store = run.store._store
    space = store.space
    code = space.lookup(L.CODE_BASE).pa
    io_space = next(iter(run.dma.spaces.values()))
    return {
        "cpu root page table": space.root,
        "compiled code": code,
        "runtime page": store.runtime_pa,
        "iommu device directory": run.system.iommu.directory.root,
        "io page table": io_space.root,
        "another owner's frame": guard.canaries[0],
        "blk0 window (peer to peer)": 0x1000_1000,
        "dma0 window (peer to peer)": 0x1002_0000,
        "plic window (peer to peer)": 0x0C00_0000,
        "iommu window (peer to peer)": 0x0301_0000,
    }


RAW_DMA = """
  (func (export "probe") (param $target i64) (param $write i32) (result i32) (local $own i64)
    (local.set $own (call $own_iova))
    (if (result i32) (local.get $write)
      (then (call $dma (local.get $own) (local.get $target) (i32.const 4096)))
      (else (call $dma (local.get $target) (local.get $own) (i32.const 4096)))))
"""
TARGETS = [
    "cpu root page table",
    "compiled code",
    "runtime page",
    "iommu device directory",
    "io page table",
    "another owner's frame",
    "blk0 window (peer to peer)",
    "dma0 window (peer to peer)",
    "plic window (peer to peer)",
    "iommu window (peer to peer)",
]


@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
@pytest.mark.parametrize("target", TARGETS)
def test_dma_by_physical_address_reaches_nothing(target, write):
    run = DriverRun(board(), module(RAW_DMA), log=lambda text: None)
    guard = RamGuard(run)
    pa = _targets(run, guard)[target]
    touched = []
    for name, dev in run.system.devices.items():
        if name != "dma0":
            dev.add_tracer(touched.append)  # register accesses: none may reach another device
    report = run.run("probe", (pa, int(write)))
    guard.check()
    assert report.exit_status == 1 and report.result & 4  # STATUS.ERROR
    problems = [r.problem for r in report.dma_reports]
    assert problems == [Problem.STRAY, Problem.LEAK] and "the IOMMU refused it" in report.format()
    assert len(report.dma_faults) == 1 and report.dma_faults[0].iova == pa
    assert touched == []


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    iova=st.one_of(
        st.integers(0, 2**64 - 1), st.integers(0x8000_0000, 0x8800_0000), st.integers(0x1000_0000, 0x1100_0000)
    ),
    length=st.sampled_from([1, 8, 4096, 4097, 1 << 20]),
    write=st.booleans(),
)
def test_iovas_never_mapped_reach_nothing(iova, length, write):
    run = DriverRun(
        board(),
        module(
            RAW_DMA.replace("(i32.const 4096)))", "(global.get $len)))").replace(
                "(i32.const 4096)))))", "(global.get $len)))))"
            )
            + f"(global $len i32 (i32.const {length}))"
        ),
        log=lambda text: None,
    )
    guard = RamGuard(run)
    own = run.dma.next_iova[1]  # the IOVA the driver's own mapping will get: never the target
    if own <= iova < own + 2 * 4096:
        iova += 3 * 4096
    report = run.run("probe", (iova, int(write)))
    guard.check()
    assert not report.ok and report.result & 4


# -- DMA mappings of memory the driver may not hand out ---------------------------------------------------


@pytest.mark.parametrize(
    "cpu, size, direction, expect",
    [
        (0x0, 16, 2, "MAP_PROTECTED"),  # the null page: trap-on-null
        (0x10, 16, 0, "MAP_PROTECTED"),
        (0xF000_0000, 16, 1, "MAP_MMIO"),  # a device window's linear address
        (0x3000, 0, 0, "dma_map: size must be positive"),
        (0x3000, 16, 7, "dma_map: direction must be 0, 1 or 2, not 7"),
        (0x3000, 16, -1, "dma_map: direction must be 0, 1 or 2, not -1"),
        (0x3000, 0xFFFF_FFFF, 0, "MAP_MMIO"),  # wraps into the windows
        (0x3_F000, 0x2000, 0, "is outside the driver's memory"),
    ],
)
def test_dma_maps_of_memory_the_driver_cannot_hand_out(cpu, size, direction, expect):
    wasm = module(f"""
      (func (export "probe") (result i32)
        (i32.wrap_i64 (call $dma_map (i32.const {NAME_AT["dma0"]}) (i32.const 4) (i32.const {cpu})
                                     (i32.const {size}) (i32.const {direction}))))""")
    run, report, _, _ = attack(wasm, "probe")
    if expect.isupper():
        assert report.result == -1 and [r.problem.name for r in report.dma_reports] == [expect]
    else:
        assert report.trap.code is TrapCode.HOST_INTERFACE and expect in report.trap.detail
    assert report.dma_requests == 0


def test_read_only_pages_are_not_mapped_for_device_writes():
    from hwsim.runtime.memctl import record_bytes, with_layout

    wasm = with_layout(
        module(f"""
      (func (export "probe") (result i32)
        (i32.wrap_i64 (call $dma_map (i32.const {NAME_AT["dma0"]}) (i32.const 4) (i32.const 0x2000)
                                     (i32.const 16) (i32.const 2))))
      (func (export "read") (result i32)
        (i32.wrap_i64 (call $dma_map (i32.const {NAME_AT["dma0"]}) (i32.const 4) (i32.const 0x2000)
                                     (i32.const 16) (i32.const 1))))"""),
        record_bytes(no_access=0x1000, read_only=0x2000),
    )
    run, report, _, _ = attack(wasm, "probe")
    (bug,) = report.dma_reports
    assert bug.problem is Problem.MAP_PROTECTED and "is in the read-only region (store)" in bug.detail
    run2 = DriverRun(board(), wasm, log=lambda text: None)
    report2 = run2.run("read")  # a device may read what the driver may read
    assert report2.result != -1 and report2.dma_reports[0].problem is Problem.LEAK


# -- virtio: malformed rings, raw physical addresses, absurd lengths ----------------------------------------

VIRTIO_ATTACKS = REPO / "tests" / "data" / "hostile" / "virtio_attacks"
DISK = bytes(range(256)) * 2 * 64  # 64 sectors


@pytest.fixture(scope="module")
def virtio_attacks():
    from hwsim.driver import build_driver

    return build_driver(VIRTIO_ATTACKS).read_bytes()


@pytest.mark.parametrize(
    "entry, args, issue",
    [
        ("desc_loop", (), "loop"),
        ("data_at", ("root", 1), "the IOMMU refused a device-writable data buffer"),
        ("data_at", ("root", 0), "the IOMMU refused a device-readable buffer"),
        ("data_at", ("code", 1), "the IOMMU refused a device-writable data buffer"),
        ("rings_at", ("root",), "failed: read page fault"),
        ("rings_at", (0x0C00_0000,), "failed: read page fault"),  # the rings in the PLIC's window
        ("huge_len", (1,), "beyond the capacity"),
        ("huge_len", (0,), "write of sectors 1..8388607 is beyond the capacity"),  # checked before any byte is read
        ("avail_flood", (), "more than the queue size 8"),
        ("bad_index", (), "outside the 8-entry table"),
    ],
)
def test_virtio_attacks_are_contained(virtio_attacks, tmp_path, entry, args, issue):
    image = tmp_path / "disk.img"
    image.write_bytes(DISK)
    run = DriverRun(board(blk0={"image": str(image)}), virtio_attacks, log=lambda text: None)
    guard = RamGuard(run)
    named = {"root": run.store._store.space.root, "code": run.store._store.space.lookup(L.CODE_BASE).pa}
    report = run.run(entry, tuple(named.get(a, a) for a in args))
    guard.check()
    assert report.exit_status == 1
    text = report.format()
    assert issue in text, text
    assert image.read_bytes() == DISK  # no request wrote the disk


# -- memory released while a device owns it -----------------------------------------------------------------

REUSE = """
  (func (export "probe") (result i32) (local $iova i64) (local $i i32)
    (local.set $iova (call $own_iova))                       ;; page 3, device-writable
    (call $discard (i32.const 0x3000) (i32.const 0x1000))    ;; frees the frame (while the device owns it)
    ;; grow and touch 64 pages: a freed frame would come back here, or become a page table
    (drop (memory.grow (i32.const 1)))
    (local.set $i (i32.const 0x4_0000))
    (loop $touch
      (i32.store (local.get $i) (i32.const 0x11111111))
      (local.set $i (i32.add (local.get $i) (i32.const 0x1000)))
      (br_if $touch (i32.lt_u (local.get $i) (i32.const 0x5_0000))))
    ;; now the device writes through the stale mapping
    (drop (call $dma (i64.const 0) (local.get $iova) (i32.const 4096)))
    (i32.load (i32.const 0x4_0000)))
"""


def test_a_frame_freed_while_a_device_owns_it_is_not_reused():
    run = DriverRun(board(), module(REUSE), log=lambda text: None)
    guard = RamGuard(run)
    report = run.run()
    guard.check()
    assert report.result == 0x11111111  # the driver's new pages are its own, untouched by the device
    assert [r.problem for r in report.dma_reports][-1] is Problem.LEAK  # and the mapping is reported
    frames = run.system.machine.frames
    (mapping,) = [m for m in run.dma.mappings if m.unmapped_by is None]
    assert all(frames.pinned(pa) == 1 and frames.is_allocated(pa) for pa in mapping.frames)


def test_an_interrupt_storm_is_contained():
    from hwsim.driver import build_driver

    wasm = build_driver(REPO / "drivers" / "examples" / "buggy" / "irq_storm").read_bytes()
    run, report, _, _ = attack(wasm)
    assert report.irq_calls == 1000 and report.irq_problems[0].startswith("interrupt storm: dma0's line")


def test_log_text_cannot_forge_report_lines_or_drive_the_terminal():
    text = "ok\n-- hwsim run report --\ndriver returned 0\x1b[2J\x07" + "x" * 5000
    data = text.encode()
    escaped = "".join(f"\\{b:02x}" for b in data)
    wasm = _wat_to_wasm(
        '(module (import "hwsim" "log" (func $log (param i32 i32))) (memory 1) '
        f'(data (i32.const 16) "{escaped}") (func (export "probe") (result i32) '
        f"(call $log (i32.const 16) (i32.const {len(data)})) (i32.const 0)))"
    )
    shown = []
    run = DriverRun(board(), wasm, log=shown.append)
    assert run.run().ok and run.log == [text]  # the API keeps the text as it was
    assert shown[:2] == ["ok", "-- hwsim run report --"]  # each line is its own "[driver] ..." line
    assert shown[2].startswith("driver returned 0\\x1b[2J\\x07xxx") and "\x1b" not in "".join(shown)
    assert shown[2].endswith("... (4022 more characters)")


# -- runaway drivers -------------------------------------------------------------------------------------

SPIN = f"""
  (func (export "probe") (result i32) (local $d i32)
    (local.set $d (call $map (i32.const {NAME_AT["dma0"]}) (i32.const 4)))
    (loop $spin (br_if $spin (i32.eqz (i32.and (i32.load offset=0x20 (local.get $d)) (i32.const 2)))))
    (i32.const 0))
  (func (export "spin_memory") (result i32) (loop $l (br $l)) (i32.const 0))
  (func (export "enodev") (result i32) (i32.const -19))
"""


def test_a_driver_spinning_on_a_register_is_stopped_by_the_virtual_time_limit():
    run = DriverRun(board(), module(SPIN), log=lambda text: None, time_limit_ns=1_000_000)
    report = run.run()
    assert report.exit_status == 124 and report.trap.code is TrapCode.INTERRUPTED
    assert "virtual-time limit of 0.001 s reached while the driver was still running" in report.format()
    assert report.format().splitlines()[1].startswith("driver stopped: interrupted at wasm function")
    assert report.virtual_ns == 1_000_000
    assert run.run("enodev").result == -19  # the Store is usable afterwards


def test_a_driver_spinning_on_memory_is_stopped_by_the_wall_clock_limit():
    run = DriverRun(board(), module(SPIN), log=lambda text: None, wall_limit_s=0.3)
    start = time.monotonic()
    report = run.run("spin_memory")
    assert time.monotonic() - start < 10
    assert report.exit_status == 124 and "wall-clock limit of 0.3 s reached" in str(report.trap)


def _hwsim(*argv, **kw):
    return subprocess.run([sys.executable, "-m", "hwsim", *argv], capture_output=True, timeout=120, cwd=REPO, **kw)


@pytest.fixture(scope="module")
def spin_wasm(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "spin.wasm"
    path.write_bytes(module(SPIN))
    return path


def test_exit_statuses_of_hwsim_run(spin_wasm):
    out = _hwsim("run", "virt", str(spin_wasm), "--virtual-time-limit", "0.001")
    assert out.returncode == 124 and b"virtual-time limit of 0.001 s" in out.stderr
    out = _hwsim("run", "virt", str(spin_wasm), "--invoke", "spin_memory", "--time-limit", "0.3")
    assert out.returncode == 124 and b"wall-clock limit of 0.3 s reached" in out.stderr
    out = _hwsim("run", "virt", str(spin_wasm), "--invoke", "enodev")
    assert out.returncode == 0  # only probe() is a probe
    enodev = spin_wasm.with_name("enodev.wasm")
    enodev.write_bytes(_wat_to_wasm('(module (memory 1) (func (export "probe") (result i32) (i32.const -19)))'))
    out = _hwsim("run", "virt", str(enodev))
    assert out.returncode == 1 and b"probe() returned -19 (ENODEV): the driver failed to probe" in out.stderr
    out = _hwsim("run", "virt", str(spin_wasm), "--assign", "uart0,iommu")
    assert out.returncode == 2 and b"cannot assign 'iommu' to the driver" in out.stderr
    assert b"Traceback" not in out.stderr


@pytest.mark.parametrize("invoke", [["--invoke", "spin_memory"], []], ids=["memory", "register"])
def test_ctrl_c_stops_the_run_with_its_report(spin_wasm, invoke):
    proc = subprocess.Popen(
        [sys.executable, "-m", "hwsim", "run", "virt", str(spin_wasm), *invoke, "--virtual-time-limit", "100000"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(5.0)  # well inside the spin (start-up and compile take under a second, a few on a loaded machine)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"driver stopped by the user: interrupted at wasm function" in err and b"(interrupted by Ctrl-C)" in err
    assert b"Traceback" not in err and b"-- hwsim run report --" in err


def test_native_firmware_says_the_dma_checker_is_off():
    from hwsim.driver import build_driver
    from hwsim.driver.firmware import FirmwareRun

    run = FirmwareRun(board(), build_driver(REPO / "drivers" / "dma_copy", native=True).read_bytes())
    text = run.run().format()
    assert "native firmware, unsandboxed: the DMA checker is off" in text and "DMA bugs" not in text


def test_native_firmware_spinning_is_stopped_too(tmp_path):
    from hwsim.driver import build_driver
    from hwsim.driver.firmware import FirmwareRun

    src = tmp_path / "spin"
    src.mkdir()
    (src / "spin.c").write_text("#include <hwsim.h>\nint probe(void) { volatile int x = 0; while (!x) ; return 0; }\n")
    run = FirmwareRun(board(), build_driver(src, native=True).read_bytes(), wall_limit_s=0.3)
    report = run.run()
    assert report.exit_status == 124 and "wall-clock limit of 0.3 s reached (in probe" in report.format()
