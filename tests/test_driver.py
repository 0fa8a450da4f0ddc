"""hwsim.driver: building C drivers, the host interface, and ``hwsim run`` on the virt board."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.board import DEFAULT_BOARD, load_board
from hwsim.compiler.traps import TrapCode
from hwsim.devices.backends import MemoryBackend
from hwsim.driver import MMIO_WINDOWS, DriverError, DriverRun, build_driver
from hwsim.runtime.api import _wat_to_wasm

REPO = Path(__file__).resolve().parents[1]
UART_DRIVER = REPO / "drivers" / "uart16550"


def system_with_input(data: bytes):
    system = load_board(DEFAULT_BOARD).build(options={"uart0": {"backend": "memory"}})
    backend = MemoryBackend(data)
    system.device("uart0").backend = backend
    return system, backend


def quiet_run(system, wasm: bytes) -> DriverRun:
    return DriverRun(system, wasm, log=lambda text: None)


def test_build_is_cached(tmp_path):
    out = build_driver(UART_DRIVER)
    assert out.name == "uart16550.wasm" and out.read_bytes()[:4] == b"\0asm"
    mtime = out.stat().st_mtime_ns
    assert build_driver(UART_DRIVER) == out and out.stat().st_mtime_ns == mtime


def test_uart_echo_driver_through_page_tables():
    system, backend = system_with_input(b"hello, hwsim\n")
    run = quiet_run(system, build_driver(UART_DRIVER).read_bytes())
    report = run.run()
    assert backend.output_text() == "hello, hwsim\n"
    assert report.ok and report.result == 13
    assert report.mmio_accesses > 13 * 3  # LSR polls, RBR reads, THR writes: each one a device access
    assert run.log == ["uart16550: echoing console input"]
    assert run.windows == {"uart0": MMIO_WINDOWS}
    assert system.issues() == []


WAT_WRITER = """(module
  (import "hwsim" "mmio_map" (func $map (param i32 i32) (result i32)))
  (memory 1) (data (i32.const 16) "uart0")
  (func (export "probe") (result i32) (local $uart i32)
    (local.set $uart (call $map (i32.const 16) (i32.const 5)))
    (i32.store8 (local.get $uart) (i32.const 0x41))   ;; THR
    (i32.store8 (local.get $uart) (i32.const 0x42))
    (local.get $uart))
  (func (export "oops") unreachable))"""


def test_wat_driver_writes_the_thr():
    system, backend = system_with_input(b"")
    report = quiet_run(system, _wat_to_wasm(WAT_WRITER)).run()
    assert backend.output == b"AB"
    assert report.result == MMIO_WINDOWS - (1 << 32)  # i32 results come back signed


def test_driver_trap_is_reported_not_raised():
    system, _ = system_with_input(b"")
    report = quiet_run(system, _wat_to_wasm(WAT_WRITER)).run("oops")
    assert not report.ok and report.trap.code.message == "unreachable"
    assert "driver trapped: unreachable at wasm function 2" in report.format()


def test_errors_name_the_problem():
    system, _ = system_with_input(b"")
    run = quiet_run(system, _wat_to_wasm(WAT_WRITER))
    with pytest.raises(DriverError, match=r"the driver exports no function 'main' \(functions: probe, oops\)"):
        run.run("main")
    bad_import = _wat_to_wasm('(module (import "env" "printf" (func)) (memory 1))')
    with pytest.raises(DriverError, match="the driver imports env::printf, which hwsim does not provide"):
        quiet_run(system, bad_import)
    bad_device = _wat_to_wasm("""(module (import "hwsim" "mmio_map" (func $map (param i32 i32) (result i32)))
      (memory 1) (data (i32.const 0) "uart9") (func (export "probe") (drop (call $map (i32.const 0) (i32.const 5)))))""")
    report = quiet_run(system, bad_device).run()  # a misuse of the host interface: a trap, with the report
    assert report.trap.code is TrapCode.HOST_INTERFACE and report.exit_status == 1
    assert "hwsim_mmio_map: board 'virt' has no device 'uart9'" in str(report.trap)
    assert "driver trapped: host interface misuse at wasm function 1" in report.format()


def test_hwsim_run_echoes_piped_stdin():
    out = subprocess.run(
        [sys.executable, "-m", "hwsim", "run", str(DEFAULT_BOARD), str(UART_DRIVER)],
        input=b"echo me\nand me\n",
        capture_output=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"echo me\nand me\n"
    assert b"driver returned 15" in out.stderr and b"DMA faults: 0" in out.stderr


def test_hwsim_run_exit_status_on_trap(tmp_path):
    path = tmp_path / "w.wasm"
    path.write_bytes(_wat_to_wasm(WAT_WRITER))
    out = subprocess.run(
        [sys.executable, "-m", "hwsim", "run", str(DEFAULT_BOARD), str(path), "--invoke", "oops"],
        input=b"",
        capture_output=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 1 and b"driver trapped: unreachable" in out.stderr


def test_native_firmware_runs_the_same_sources():
    from hwsim.driver.firmware import FirmwareRun

    elf = build_driver(UART_DRIVER, native=True)
    assert elf.suffix == ".elf" and elf.read_bytes()[:4] == b"\x7fELF"
    system, backend = system_with_input(b"native\n")
    run = FirmwareRun(system, elf.read_bytes())
    report = run.run()
    assert backend.output_text() == "native\n" and report.result == 7
    assert run.log == ["uart16550: echoing console input"]
    system, _ = system_with_input(b"")
    dma = FirmwareRun(system, build_driver(REPO / "drivers" / "dma_copy", native=True).read_bytes())
    report = dma.run()
    assert report.result == 0 and report.dma_requests == 2  # physical addresses, the IOMMU in bare mode


def test_hwsim_run_accepts_firmware():
    elf = build_driver(UART_DRIVER, native=True)
    out = subprocess.run(
        [sys.executable, "-m", "hwsim", "run", str(DEFAULT_BOARD), str(elf)],
        input=b"fw\n",
        capture_output=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 0 and out.stdout == b"fw\n" and b"driver returned 3" in out.stderr


def test_help_says_where_native_builds_go_and_that_a_board_may_be_named(capsys):
    """Found by a newcomer: --native claimed firmware/build/ (true only in hwsim's source tree) and BOARD looked
    like it had to be a file."""
    from hwsim.cli import main

    for argv in (["build", "--help"], ["run", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "NAME.elf in DRIVER_DIR/build/ (in hwsim's own source tree: firmware/build/)" in text
    assert "a board file (e.g. boards/virt.toml) or the name of one of hwsim's own boards (virt)" in text


def test_invoke_exported_entry_points():
    system, _ = system_with_input(b"")
    run = quiet_run(system, build_driver(REPO / "drivers" / "bench").read_bytes())
    assert run.run("mmio_loop", (10,)).result == sum(range(10))
    assert run.run("dma_loop", (3,)).result == 0
    report = run.run("dma_copies", (3, 64 << 10))  # (bench/system.py's checked DMA rows)
    assert report.result == 0 and report.dma_requests == 6 and not report.dma_reports and not report.dma_faults
    assert run.run("dma_copies", (1, (64 << 10) + 1)).result == -1  # longer than its buffers: refused


WINDOW_DRIVER = """
(module
  (import "hwsim:mmio" "uart0" (memory $uart 8 8 (pagesize 1)))
  (memory $ram 1)
  (func (export "probe") (result i32)
    (i32.store8 $uart (i32.const 0) (i32.const 104))   ;; THR
    (i32.store8 $uart (i32.const 0) (i32.const 105))
    (i32.load8_u $uart (i32.const 5)))                 ;; LSR
  (func (export "past_the_window") (result i32) (i32.load8_u $uart (i32.const 8)))
  (func (export "size") (result i32) (memory.size $uart))
  (func (export "grow") (result i32) (memory.grow $uart (i32.const 1))))
"""


def test_wat_driver_imports_a_device_window_as_a_one_byte_page_memory(hwsim_board):
    from hwsim.driver.runner import DriverRun
    from hwsim.runtime.api import _wat_to_wasm

    system = hwsim_board()
    run = DriverRun(system, _wat_to_wasm(WINDOW_DRIVER), log=lambda text: None)
    report = run.run()
    # LSR read at once: 'h' in the shift register, 'i' in the holding register (neither THRE nor TEMT);
    # both reach the backend before the run ends, a character time each.
    assert report.result == 0x00 and report.mmio_accesses == 3 and report.ok
    assert system.device("uart0").backend.output == b"hi"
    assert run.run("size").result == 8 and run.run("grow").result == -1  # the window cannot grow
    trapped = run.run("past_the_window")
    assert trapped.trap is not None and trapped.trap.code.name == "MEMORY_OUT_OF_BOUNDS"
    assert report.device_issues == []


def test_device_issues_name_the_driver_code_of_the_access(hwsim_board):
    """The PC of the store that misused the device is exact (Machine.track_mmio_pcs) and named."""
    wat = WAT_WRITER.replace(
        "(i32.store8 (local.get $uart) (i32.const 0x42))",
        "(i32.store8 (local.get $uart) (i32.const 0x42))\n    (i32.store (i32.add (local.get $uart) (i32.const 4)) (i32.const 1))",
    )
    report = quiet_run(hwsim_board(), _wat_to_wasm(wat)).run()
    (issue,) = report.device_issues
    assert issue.message == "4-byte write at offset 0x4: MCR is 1 byte(s) wide at offset 0x4"
    assert issue.source == "wasm function 1 offset 0x6e" and issue.pc is not None
    assert "\n    by the driver at wasm function 1 offset 0x6e" in report.format()


@pytest.mark.parametrize(
    "decl, message",
    [
        (
            '(import "hwsim:mmio" "uart0" (memory 1))',
            r"the window of 'uart0' is 0x1000 bytes, less than the 1 pages "
            r"of 65536 bytes the driver asks for \(declare it with \(pagesize 1\)\)",
        ),
        ('(import "hwsim:mmio" "nosuch" (memory 1 (pagesize 1)))', r"hwsim:mmio::nosuch: board 'virt' has no device"),
        ('(import "hwsim:mmio" "uart0" (func))', r"must be a memory"),
    ],
)
def test_bad_window_imports_are_clear_errors(hwsim_board, decl, message):
    from hwsim.driver.runner import DriverError, DriverRun
    from hwsim.runtime.api import _wat_to_wasm

    with pytest.raises(DriverError, match=message):
        DriverRun(hwsim_board(), _wat_to_wasm(f"(module {decl} (memory 1))"), log=lambda text: None)


def test_irq_wait_ends_when_the_waited_device_can_get_no_more_input():
    """Console input that has not ended, on another device, does not keep a wait on net0 going."""
    from hwsim.devices.backends import ConsoleBackend

    system, _ = system_with_input(b"")
    r, w = os.pipe()
    try:
        with os.fdopen(r, "rb", buffering=0) as stdin:
            system.device("uart0").backend = ConsoleBackend(stdin=stdin)
            from hwsim.driver.irq import IrqDispatcher

            net0 = system.device("net0")
            waiter = IrqDispatcher(system, lambda cookie: None, lambda callback: None)
            assert not waiter.wait(lambda: net0.irq.level, system.clock.frequency_hz // 100, lambda: None, device=net0)
            assert system.clock.now == 0
    finally:
        os.close(w)


def test_null_pointer_dereference_traps_on_the_protected_first_page(hwsim_driver):
    result = hwsim_driver(REPO / "drivers" / "examples" / "buggy" / "null_deref")
    trap = result.report.trap
    assert trap is not None and trap.code.name == "MEMORY_ACCESS_DENIED"
    assert "null_deref.c:12 (probe)" in str(trap)
    assert "page 0x0 (linear address 0x4) is in the no-access region (trap-on-null)" in str(trap)
    assert result.run.null_page_protected


def test_the_first_page_stays_ordinary_when_data_lives_there(hwsim_board):
    wasm = _wat_to_wasm(
        '(module (memory 1) (data (i32.const 8) "x") (func (export "probe") (result i32) (i32.load8_u (i32.const 8))))'
    )
    run = DriverRun(hwsim_board(), wasm, log=lambda text: None)
    assert not run.null_page_protected and run.run().result == ord("x")


def test_native_firmware_faults_name_the_symbol_and_the_c_line(tmp_path):
    from hwsim.driver.firmware import FirmwareRun

    """A native build's fault report: ELF symbol, DWARF line (pyelftools), the exact address."""
    src = tmp_path / "fwfault"
    src.mkdir()
    (src / "fwfault.c").write_text(
        "#include <hwsim.h>\nint probe(void) {\n"
        "    volatile uint32_t *p = (volatile uint32_t *)0x40000000u;\n"
        "    return (int)*p;\n}\n"
    )
    elf = build_driver(src, native=True)
    try:
        system = load_board(DEFAULT_BOARD).build()
        with pytest.raises(DriverError) as info:
            FirmwareRun(system, elf.read_bytes()).run()
        text = str(info.value)
        assert text.startswith("firmware stopped in probe+0x")
        assert " at fwfault.c:4 (probe): load access fault (cause 5) at va 0x40000000" in text
    finally:
        for path in (elf, elf.with_suffix(".elf.sha256")):
            path.unlink(missing_ok=True)
