"""``hwsim run --gdb`` with a real client: the distribution's gdb-multiarch in batch mode, over TCP."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from hwsim.board import DEFAULT_BOARD
from hwsim.driver import build_driver
from hwsim.runtime.api import _wat_to_wasm

REPO = Path(__file__).resolve().parents[1]
GDB = shutil.which("gdb-multiarch")
TIMEOUT = 90

pytestmark = pytest.mark.skipif(
    GDB is None, reason="gdb-multiarch is not installed (the README's test block installs it)"
)

COUNT = """
(module
  (memory (export "memory") 1)
  (func $count (export "count") (param $n i32) (result i32)
    (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (i32.store (i32.const 0x1000) (local.get $i))
      (br_if $l (i32.ne (local.get $i) (local.get $n))))
    (i32.load (i32.const 0x1000)))
  (func (export "spin") (result i32)
    (call $count (i32.const -1)))
  (func (export "oops") (result i32)
    unreachable)
  (func (export "probe") (result i32)
    (call $count (i32.const 5))))
"""


class Hwsim:
    """``hwsim run ... --gdb 127.0.0.1:0`` in the background; its port, and its stderr as it comes."""

    def __init__(self, *args: str, stdin: bytes = b"") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hwsim", "run", str(DEFAULT_BOARD), *args, "--gdb", "127.0.0.1:0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(stdin)
        self.proc.stdin.close()
        self.stderr: list[str] = []
        self.stdout: list[bytes] = []
        self._readers = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        deadline = time.monotonic() + TIMEOUT
        while not (found := re.search(r"waiting for GDB on 127\.0\.0\.1:(\d+)", "".join(self.stderr))):
            assert self.proc.poll() is None and time.monotonic() < deadline, "".join(self.stderr)
            time.sleep(0.05)
        self.port = int(found.group(1))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.decode())

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        self.stdout.append(self.proc.stdout.read())

    def finish(self) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) once the run ended."""
        try:
            self.proc.wait(timeout=TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for reader in self._readers:
            reader.join(TIMEOUT)
        return self.proc.returncode, b"".join(self.stdout).decode(), "".join(self.stderr)


def gdb_command(port: int, *commands: str) -> list[str]:
    argv = [GDB or "gdb-multiarch", "-nx", "--batch", "-ex", "set pagination off"]
    argv += ["-ex", f"target remote 127.0.0.1:{port}"]
    for command in commands:
        argv += ["-ex", command]
    return argv


def gdb(port: int, *commands: str) -> str:
    out = subprocess.run(gdb_command(port, *commands), capture_output=True, timeout=TIMEOUT, cwd=REPO)
    return out.stdout.decode() + out.stderr.decode()


@contextmanager
def hwsim_gdb(*args: str, stdin: bytes = b""):
    run = Hwsim(*args, stdin=stdin)
    try:
        yield run
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


@pytest.fixture(scope="module")
def count_wasm(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("gdb") / "count.wasm"
    path.write_bytes(_wat_to_wasm(COUNT))
    return str(path)


def test_breakpoint_registers_memory_step_watch_and_detach(count_wasm):
    with hwsim_gdb(count_wasm) as run:
        out = gdb(
            run.port,
            "break count",
            "continue",
            "bt",
            "info registers pc",
            "stepi",
            "info symbol $pc",
            'eval "watch *(int *)%lu", $s2 + 4096',
            "continue",
            "continue",
            "x/wx $s2 + 4096",
            "delete",
            "detach",
        )
        status, _, stderr = run.finish()
    assert "Reading symbols from target:/hwsim/count.elf" in out
    assert re.search(r"Breakpoint 1, 0x[0-9a-f]+ in count \(\)", out), out
    assert re.search(r"#1 +0x[0-9a-f]+ in probe \(\)", out), out
    assert re.search(r"pc\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <count\+\d+>", out), out
    assert re.search(r"count \+ \d+ in section \.text", out), out
    assert "Hardware watchpoint 2: *(int *)8589938688" in out
    assert "Old value = 0\nNew value = 1" in out and "Old value = 1\nNew value = 2" in out
    assert re.search(r"0x200001000:\s+0x00000002", out), out
    assert "[Inferior 1 (Remote target) detached]" in out
    assert status == 0 and "driver returned 5" in stderr


def test_monitor_commands(count_wasm):
    with hwsim_gdb(count_wasm, "--assign", "uart0") as run:
        out = gdb(
            run.port,
            "monitor help",
            "monitor time",
            "monitor mmu walk 0x1000",
            "monitor devices",
            "monitor regs uart0",
            "monitor regs nothing",
            "monitor frob",
            "detach",
        )
        status, _, stderr = run.finish()
    assert "mmu      mmu walk VA [load|store|fetch]" in out and "time     the board's virtual time" in out
    assert "virtual time: 0.000000 ms (0 ticks)" in out
    assert "result: load page fault (cause 13): PTE is not valid (V=0)" in out
    assert re.search(r"uart0 +Uart +0x10000000\+0x1000  assigned\n", out), out
    assert re.search(r"blk0 +VirtioBlk +0x10001000\+0x1000  not assigned\n", out), out
    assert re.search(r"0x0003 LCR +0x00\n", out), out  # the 16550's line control register, by name
    assert "no device 'nothing' with declared registers" in out
    assert "unknown monitor command 'frob'" in out
    assert status == 0


def test_monitor_dma_iommu_and_trace_of_a_sandboxed_driver(tmp_path):
    """hwsim's state at a C line: the DMA mappings live there with the C line that made each, the
    IOMMU's device contexts and (once the device has done DMA) its IOTLB, the last trace events."""
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(64 << 10))
    with hwsim_gdb(str(REPO / "drivers" / "virtio_blk"), "--option", f"blk0.image={image}") as run:
        out = gdb(
            run.port,
            "monitor dma",
            "break virtio_blk.c:94",
            "continue",
            "monitor dma",
            "monitor trace 2",
            "continue",
            "monitor iommu",
            "monitor iommu 2",
            "monitor dma all",
            "monitor dma frob",
            "monitor iommu blk0",
            "monitor trace x",
            "delete",
            "detach",
        )
        status, _, stderr = run.finish()
    assert "\nno live DMA mappings\n" in out, out  # before the driver ran
    # at line 94: the coherent rings from init() and the buffer request() just mapped, the device's
    mapped = re.escape("blk0     0x0000000010002000        512 0x00102000   to_device     device  ")
    assert re.search(mapped + r"virtio_blk.c:92 \(request\), in hwsim.h:\d+ \[wasm function \d+ \(request\)", out), out
    assert re.search(r"blk0 +0x0000000010000000 +248 0x[0-9a-f]+ +coherent +both +virtio_blk.c:55 \(init\)", out), out
    assert re.search(
        r"last 2 of \d+ events:\n.*\n\[ *[\d.]+ ms\] host +dma_map\('blk0', 0x102000, 0x200, 0x1\)", out
    ), out
    assert "IOMMU iommu: mode LVL1, ddtp 0x" in out
    assert re.search(r"device 2 \(blk0\):\n  level 0: 0x[0-9a-f]+ = 0x0+101  device context: first stage Sv39", out), (
        out
    )
    # at the second request: the device's translation of the rings is cached, by its PSCID (the
    # buffer's went with its unmap)
    assert re.search(r"IOTLB: 1 of 256 entries .*\n  PSCID 2 +iova 0x0+10000000 -> pa 0x[0-9a-f]+  4 KiB +rw-", out), (
        out
    )
    assert re.search(r"blk0 +0x0+10002000 +512 0x00102000 +to_device +unmapped +virtio_blk.c:92", out), out  # dma all
    assert re.search(r"blk0 +0x0+10004000 +512 0x00102000 +from_device +device +virtio_blk.c:92", out), out
    assert "usage: monitor dma [all] (not 'frob')" in out
    assert "usage: monitor iommu [DEVICE_ID] (a number; 'monitor iommu' lists them)" in out
    assert "usage: monitor trace [N] (a number of events, not 'x')" in out
    assert status == 0 and "driver returned 128" in stderr


def test_a_sandboxed_c_driver_is_debugged_at_source_level(tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(64 << 10))
    driver = str(REPO / "drivers" / "virtio_blk")
    with hwsim_gdb(driver, "--option", f"blk0.image={image}") as run:
        out = gdb(
            run.port,
            "info functions",
            "break virtio_blk.c:90",
            "continue",
            "bt",
            "next",
            "finish",
            "delete 1",
            "break wait_used",
            "continue",
            "bt 2",
            "delete",
            "detach",
        )
        status, _, stderr = run.finish()
    assert "File virtio_blk.c:\n\tstatic void init();\n\tstatic void probe();" in out, out
    assert "Breakpoint 1 at 0x" in out and "file virtio_blk.c, line 90." in out
    assert "Breakpoint 1, request (type=1, sector=1, sectors=1) at virtio_blk.c:90\n90\t    uint32_t len" in out
    # write_read_back was inlined into probe by zig: GDB shows it as a frame of its own.
    assert re.search(
        r"#0 +request \(type=1, sector=1, sectors=1\) at virtio_blk.c:90\n#1 +0x[0-9a-f]+ in write_read_back \(\) at virtio_blk.c:120\n"
        r"#2 +probe \(\) at virtio_blk.c:131\n",
        out,
    ), out
    assert "\n91\t    int dir = type == T_IN" in out  # next: the following line
    assert "in write_read_back () at virtio_blk.c:120" in out  # finish: back in the caller
    assert "Breakpoint 2 at 0x" in out and "wait_used. (3 locations)" in out  # inlined three times
    # (request's arguments there are what clang's location lists say: at -O2 they can name a wasm local
    # the code has reused by then, so the values are not checked)
    assert re.search(r"#0 +wait_used \(\) at virtio_blk.c:\d+\n#1 +request \(type=.*\) at virtio_blk.c:103", out), out
    assert status == 0 and "driver returned 128" in stderr


def test_locals_arguments_and_pointers_of_a_sandboxed_c_driver(tmp_path):
    """Variables from the module's DWARF, at the homes the compiler gave the wasm locals: arguments,
    locals (one still on the operand stack: optimized out), a pointer global followed into linear
    memory, and NULL as 0x0 before the driver set it."""
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(64 << 10))
    driver = str(REPO / "drivers" / "virtio_blk")
    with hwsim_gdb(driver, "--option", f"blk0.image={image}") as run:
        out = gdb(
            run.port,
            "print q",
            "break virtio_blk.c:93",
            "continue",
            "info args",
            "info locals",
            "print len * 2",
            "print/x data",
            "print q->avail",
            "print q->desc[1]",
            "ptype q",
            "next",
            "next",
            "print q->header",
            "set var len = 7",
            "print len",
            "set var len = 512",
            "watch used_seen",
            "continue",
            "delete",
            "detach",
        )
        status, _, stderr = run.finish()
    assert "$1 = (volatile struct shared *) 0x0\n" in out, out  # q is NULL until init() set it
    assert "Breakpoint 1, request (type=1, sector=1, sectors=1) at virtio_blk.c:93" in out, out
    assert "type = 1\nsector = 1\nsectors = 1\n" in out, out
    assert "dir = 1\nlen = 512\ndata = 268443648\ndone = <optimized out>\n" in out, out
    assert "$2 = 1024\n" in out and "$3 = 0x10002000\n" in out, out
    assert "$4 = {flags = 0, idx = 0, ring = {0, 0, 0, 0, 0, 0, 0, 0}}" in out, out
    assert "$5 = {addr = 0, len = 0, flags = 0, next = 0}" in out, out
    assert "type = volatile struct shared {\n    struct desc desc[8];" in out, out
    assert "$6 = {type = 1, reserved = 0, sector = 0}" in out, out  # written by the two lines stepped
    assert "$7 = 7\n" in out, out  # a local in a register, written by GDB
    # a global at a fixed address: a hardware watchpoint, hit where the driver sets it
    assert "Hardware watchpoint 2: used_seen\n" in out and "Old value = 0\nNew value = 1\n" in out, out
    assert re.search(r"in wait_used \(\) at virtio_blk.c:8\d\n", out), out
    assert status == 0 and "driver returned 128" in stderr


def test_the_arguments_of_an_inlined_call(tmp_path):
    """A function zig inlined has its own parameters, from the module's concrete inlined instance."""
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(64 << 10))
    with hwsim_gdb(str(REPO / "drivers" / "virtio_blk"), "--option", f"blk0.image={image}") as run:
        out = gdb(
            run.port, "break virtio_blk.c:90", "continue", "next", "next", "step", "info args", "delete", "detach"
        )
        status, _, stderr = run.finish()
    # size is len (a wasm local); dev, cpu and dir are still on the operand stack there
    assert re.search(
        r"hwsim_dma_map_single \(dev=<optimized out>, cpu=<optimized out>, size=512, dir=<optimized out>\) at "
        r"\S*drivers/include/hwsim.h:\d+\n",
        out,
    ), out
    assert "\nsize = 512\n" in out
    assert status == 0 and "driver returned 128" in stderr


def test_backtraces_go_through_wasm_calls_and_the_host_call_stub(tmp_path):
    """Call-frame information: stopped in the host-call stub two wasm calls deep (probe -> init ->
    hwsim_mmio_map, inlined), GDB unwinds each frame to the host's entry."""
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(64 << 10))
    with hwsim_gdb(str(REPO / "drivers" / "virtio_blk"), "--option", f"blk0.image={image}") as run:
        out = gdb(
            run.port,
            *("break hwsim_host_call", "continue", "bt", "frame 3", "info frame", "info registers a5 s1"),
            *("delete", "detach"),
        )
        status, _, stderr = run.finish()
    assert "Breakpoint 1, 0x0000000000010000 in hwsim_host_call ()" in out, out
    assert re.search(
        r"#0 +0x0+10000 in hwsim_host_call \(\)\n"
        r"#1 +0x[0-9a-f]+ in hwsim_mmio_map \(name=<optimized out>\) at \S*drivers/include/hwsim.h:\d+\n"
        r"#2 +init \(\) at virtio_blk.c:42\n"
        r"#3 +0x[0-9a-f]+ in probe \(\) at virtio_blk.c:130\n"
        r"#4 +0x0+10800 in hwsim_host_entry \(\)\n",
        out,
    ), out
    # probe's frame from the CFI: its CFA is the stack top the host gave it, ra and fp saved below it
    assert re.search(r"Stack level 3, frame at 0x103f30000:", out), out
    assert re.search(r"Saved registers:\n +ra at 0x103f2fff8, fp at 0x103f2fff0", out), out
    # a call clobbers a5: probe's own value is not there (GDB does not show init's or the stub's)
    assert re.search(r"\na5 +<not saved>\ns1 +0x[0-9a-f]+\s+\d+\n", out), out
    assert status == 0 and "driver returned 128" in stderr


def hwsim_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwsim", *args], capture_output=True, timeout=TIMEOUT, cwd=REPO)


def test_the_debug_elf_is_kept_by_build_and_run_and_read_by_gdb_offline(tmp_path):
    """``--debug-elf``: the ELF GDB gets from ``run --gdb``, written by ``build`` and by ``run`` (the same
    bytes), usable without a target: symbols, lines, types, and where each variable lives."""
    built, ran = tmp_path / "built.elf", tmp_path / "ran.elf"
    out = hwsim_cli("build", "drivers/virtio_blk", "--debug-elf", str(built))
    assert out.returncode == 0 and out.stdout.decode().splitlines()[-1] == str(built), out
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(64 << 10))
    out = hwsim_cli(
        "run", str(DEFAULT_BOARD), "drivers/virtio_blk", "--option", f"blk0.image={image}", "--debug-elf", str(ran)
    )
    assert out.returncode == 0 and f"hwsim: debug ELF written to {ran}" in out.stderr.decode(), out
    assert built.read_bytes() == ran.read_bytes()
    result = subprocess.run(
        [GDB or "gdb-multiarch", "-nx", "--batch", str(built), "-ex", "info scope request", "-ex", "ptype struct desc"],
        capture_output=True,
        timeout=TIMEOUT,
        cwd=REPO,
    )
    text = result.stdout.decode() + result.stderr.decode()
    # each variable in the callee-saved register homing its wasm local, over the code where it is there
    assert re.search(r"Symbol len is multi-location:\n.*Range 0x[0-9a-f]+-0x[0-9a-f]+: a variable in \$s\d+", text), (
        text
    )
    assert re.search(r"Symbol done is multi-location:\n.*Range .*\n +0: DW_OP_consts 0\n", text), text
    assert (
        "type = struct desc {\n    uint64_t addr;\n    uint32_t len;\n    uint16_t flags;\n    uint16_t next;\n}"
        in text
    )
    out = hwsim_cli("build", "drivers/virtio_blk", "--debug-elf", str(tmp_path / "no" / "such" / "dir.elf"))
    assert (
        out.returncode != 0
        and "cannot write the debug ELF" in out.stderr.decode()
        and "Traceback" not in out.stderr.decode()
    )


@pytest.mark.parametrize("driver", ["nvme", "virtio_net", "examples/timer_irq"])
def test_gdb_reads_every_drivers_debug_elf_without_complaint(tmp_path, driver):
    """The translated DWARF of larger drivers (many types, inlined helpers, location lists) as GDB reads
    it: every function, variable and type, and each function's variables, with no DWARF error."""
    elf = tmp_path / "driver.elf"
    out = hwsim_cli("build", f"drivers/{driver}", "--debug-elf", str(elf))
    assert out.returncode == 0, out
    result = subprocess.run(
        [GDB or "gdb-multiarch", "-nx", "--batch", "-ex", "set complaints 100", str(elf)]
        + ["-ex", "info functions", "-ex", "info variables", "-ex", "info types", "-ex", "info scope probe"],
        capture_output=True,
        timeout=TIMEOUT,
        cwd=REPO,
    )
    text = result.stdout.decode() + result.stderr.decode()
    assert "File " in text and "Symbol " in text, text  # functions listed, probe's scope has symbols
    assert not re.search(r"(?i)dwarf error|during symbol reading|complaint|warning", text), text


def test_breakpoints_in_an_interrupt_handler_that_preempts_the_driver():
    """The handler runs in a nested call, between two instructions of a busy loop: GDB stops in it
    each time, steps its lines (the prologue has the function's first line), and the run completes."""
    with hwsim_gdb(str(REPO / "drivers" / "examples" / "timer_irq"), "--invoke", "busy") as run:
        out = gdb(
            run.port, "break hwsim_irq_handler", "continue", "bt", "next", "next", "continue", "delete", "continue"
        )
        status, _, stderr = run.finish()
    assert "Breakpoint 1 at 0x" in out and "file timer_irq.c, line 32." in out
    # The backtrace goes through the host's nested call into the code the interrupt preempted.
    assert re.search(
        r"#0 +hwsim_irq_handler \(cookie=<optimized out>\) at timer_irq.c:32\n"
        r"#1 +0x0+10810 in hwsim_nested_entry \(\)\n#2 +0x[0-9a-f]+ in (now_ns \(\) at timer_irq.c:2\d\n#3 +)?"
        r"busy \(\) at timer_irq.c:5[67]\n#\d +0x0+10800 in hwsim_host_entry \(\)\n",
        out,
    ), out
    assert "\n33\t    rtc[CLEAR_INTERRUPT] = 1;" in out  # next, next: line by line in the handler
    assert out.count("Breakpoint 1, ") == 2  # and again at the next alarm
    assert status == 0 and "driver returned 5" in stderr and "interrupt handler calls: 5" in stderr


def test_native_firmware_is_debugged_at_source_level():
    elf = build_driver(REPO / "drivers" / "uart16550", native=True)
    with hwsim_gdb(str(elf), stdin=b"hi\n") as run:
        out = gdb(run.port, "info registers priv", "monitor dma", "break probe", "continue", "next", "bt", "detach")
        status, stdout, stderr = run.finish()
    assert f"Reading symbols from target:{elf.resolve()}" in out
    assert "prv:3 [Machine]" in out
    assert "no DMA checker in this run (native firmware: DMA is physical)" in out
    # (the DWARF names the file as zig was given it: relative, or absolute in a cached build)
    assert re.search(r"Breakpoint 1, probe \(\) at (\S*/)?drivers/uart16550/uart16550\.c:41", out), out
    assert re.search(r"\n42\t +hwsim_log\(", out), out
    assert status == 0 and stdout == "hi\n" and "driver returned 3" in stderr


def test_ctrl_c_in_gdb_interrupts_a_spinning_driver_and_kill_stops_the_run(count_wasm):
    with hwsim_gdb(count_wasm, "--invoke", "spin") as run:
        gdb_proc = subprocess.Popen(
            gdb_command(run.port, "echo READY\\n", "continue", "bt", "kill"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        killer = threading.Timer(TIMEOUT, gdb_proc.kill)  # the read below must end, whatever GDB does
        killer.start()
        try:
            assert gdb_proc.stdout is not None
            lines = []
            for line in gdb_proc.stdout:  # until GDB has connected and is about to continue
                lines.append(line.decode())
                if "READY" in line.decode():
                    break
            time.sleep(1.0)  # GDB has sent its continue by then
            gdb_proc.send_signal(signal.SIGINT)  # what Ctrl-C does at GDB's terminal
            out = "".join(lines) + gdb_proc.communicate(timeout=TIMEOUT)[0].decode()
        finally:
            killer.cancel()
            if gdb_proc.poll() is None:
                gdb_proc.kill()
                gdb_proc.wait()
        status, _, stderr = run.finish()
    assert "Program received signal SIGINT, Interrupt." in out, out
    assert re.search(r"#0 +0x[0-9a-f]+ in count \(\)\n#1 +0x[0-9a-f]+ in spin \(\)", out), out
    assert "[Inferior 1 (Remote target) killed]" in out
    assert "driver stopped by the user: interrupted" in stderr and "(killed by the debugger)" in stderr
    assert status == 130


def test_a_wasm_trap_is_a_signal_then_the_run_reports_it(count_wasm):
    with hwsim_gdb(count_wasm, "--invoke", "oops") as run:
        out = gdb(run.port, "continue", "info symbol $pc", "continue")
        status, _, stderr = run.finish()
    assert "hwsim: wasm trap: unreachable at wasm function 2, bytecode offset 0x" in out
    assert "Program received signal SIGILL, Illegal instruction." in out
    assert "oops + " in out
    assert "hwsim: driver trapped: unreachable at wasm function 2" in out  # the report's first line
    assert "[Inferior 1 (Remote target) exited with code 01]" in out
    assert status == 1 and "driver trapped: unreachable" in stderr
