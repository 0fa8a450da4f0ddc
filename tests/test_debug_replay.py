"""Reverse execution under ``hwsim run --gdb`` (debug/replay.py, driver/replay.py): real gdb-multiarch sessions
on shipped drivers and native firmware, and the pieces alone."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from hwsim.board import DEFAULT_BOARD, load_board
from hwsim.debug import GdbServer, run_replayable
from hwsim.debug.replay import format_ns, parse_virtual_time
from hwsim.debug.rsp import checksum, frame
from hwsim.devices.backends import MemoryBackend
from hwsim.devices.virtio import DiskImage
from hwsim.driver import DriverRun, build_driver
from hwsim.driver.debugging import driver_exec_file
from hwsim.driver.replay import HostEffects, ReplayDiverged, ReplayedBackend
from hwsim.runtime.api import _wat_to_wasm

REPO = Path(__file__).resolve().parents[1]
GDB = shutil.which("gdb-multiarch")
TIMEOUT = 120
VIRTIO_BLK = str(REPO / "drivers" / "virtio_blk")

needs_gdb = pytest.mark.skipif(
    GDB is None, reason="gdb-multiarch is not installed (the README's test block installs it)"
)


@contextmanager
def hwsim_gdb(*args: str, stdin: bytes = b""):
    """``hwsim run ... --gdb 127.0.0.1:0`` in the background; yields (port, finish) where finish() gives
    (exit status, stdout bytes, stderr text) once the run ended."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hwsim", "run", str(DEFAULT_BOARD), *args, "--gdb", "127.0.0.1:0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(stdin)
    proc.stdin.close()
    err: list[str] = []
    out: list[bytes] = []
    readers = [
        threading.Thread(target=lambda: err.extend(line.decode() for line in proc.stderr), daemon=True),
        threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True),
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + TIMEOUT
    while not (found := re.search(r"waiting for GDB on 127\.0\.0\.1:(\d+)", "".join(err))):
        assert proc.poll() is None and time.monotonic() < deadline, "".join(err)
        time.sleep(0.05)

    def finish() -> tuple[int, bytes, str]:
        proc.wait(timeout=TIMEOUT)
        for reader in readers:
            reader.join(TIMEOUT)
        return proc.returncode, b"".join(out), "".join(err)

    try:
        yield int(found.group(1)), finish
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def gdb(port: int, *commands: str) -> str:
    argv = [GDB or "gdb-multiarch", "-nx", "--batch", "-ex", "set pagination off", "-ex", "set trace-commands on"]
    argv += ["-ex", f"target remote 127.0.0.1:{port}"]
    for command in commands:
        argv += ["-ex", command]
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT, cwd=REPO)
    # (GDB runs reverse-stepi, reverse-next... as stepi, next... in reverse, and echoes those too)
    return re.sub(r"^\+(stepi|continue|next|step|finish) \n", "", done.stdout.decode(), flags=re.M)


def after(out: str, command: str, nth: int = 1) -> str:
    """GDB's output for the ``nth`` run of ``command`` (``set trace-commands on`` echoes it after '+')."""
    parts = out.split(f"+{command}\n")
    assert len(parts) > nth, f"{command!r} not run {nth} times:\n{out}"
    return parts[nth].split("\n+", 1)[0]


def registers(text: str) -> dict[str, str]:
    return {m[1]: m[2] for m in re.finditer(r"^(\w+) +(0x[0-9a-f]+)", text, re.M)}


def position(text: str) -> tuple[int, float]:
    m = re.search(r"icount (\d+), virtual time ([\d.]+) ms", text)
    assert m, text
    return int(m[1]), float(m[2])


@pytest.fixture
def disk(tmp_path) -> Path:
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(range(256)) * 256)  # 64 KiB, sector 1 not what the driver writes
    return image


@needs_gdb
def test_reverse_stepi_returns_to_the_previous_instruction_with_its_registers(disk):
    with hwsim_gdb(VIRTIO_BLK, "--option", f"blk0.image={disk}") as (port, finish):
        out = gdb(
            port,
            "break init",
            "continue",
            "stepi 2",
            "info registers",
            "monitor when",
            "stepi",
            "info registers pc",
            "monitor when",
            "reverse-stepi",
            "info registers",
            "monitor when",
            "stepi 50",
            "monitor when",
            "detach",
        )
        status, _, stderr = finish()
    before = registers(after(out, "info registers"))
    assert len(before) == 32 and "pc" in before  # x1-x31 and pc
    stepped = registers(after(out, "info registers pc"))["pc"]
    back = registers(after(out, "info registers", 2))
    assert back == before and stepped != before["pc"], out
    start, _ = position(after(out, "monitor when"))
    assert position(after(out, "monitor when", 2))[0] == start + 1
    assert position(after(out, "monitor when", 3))[0] == start  # exactly one instruction back
    assert position(after(out, "monitor when", 4))[0] == start + 50  # the count is exact going forward too
    assert status == 0 and "driver returned 128" in stderr
    assert stderr.count("[driver] virtio_blk: sector 1 written and read back") == 1


@needs_gdb
def test_reverse_continue_goes_back_to_an_earlier_breakpoint_hit_with_the_same_variables(disk):
    with hwsim_gdb(VIRTIO_BLK, "--option", f"blk0.image={disk}") as (port, finish):
        out = gdb(
            port,
            "break request",
            "continue",
            "info args",
            "info locals",
            "monitor when",
            "continue",
            "info args",
            "monitor when",
            "reverse-continue",
            "info args",
            "info locals",
            "monitor when",
            "reverse-continue",
            "monitor when",
            "reverse-stepi",
            "delete",
            "continue",
        )
        status, _, stderr = finish()
    first, second = after(out, "info args"), after(out, "info args", 2)
    assert "type = 1\nsector = 1\nsectors = 1" in first and "type = 0" in second  # T_OUT, then T_IN
    assert after(out, "info args", 3) == first and after(out, "info locals", 2) == after(out, "info locals")
    assert "Breakpoint 1, request (type=1, sector=1, sectors=1) at virtio_blk.c:90" in after(out, "reverse-continue")
    assert position(after(out, "monitor when", 3)) == position(after(out, "monitor when"))
    # No hit before the first: the beginning of history, where GDB says so.
    assert "No more reverse-execution history." in after(out, "reverse-continue", 2)
    assert position(after(out, "monitor when", 4)) == (0, 0.0)
    assert "No more reverse-execution history." in after(out, "reverse-stepi")
    assert status == 0 and "driver returned 128" in stderr


@needs_gdb
def test_reverse_next_reverse_step_and_reverse_finish_at_source_level(disk):
    """GDB builds reverse-next, reverse-step and reverse-finish on bs and bc: back over C lines, and out of
    a call to the instruction that made it."""
    with hwsim_gdb(VIRTIO_BLK, "--option", f"blk0.image={disk}") as (port, finish):
        out = gdb(
            port,
            *("break request", "continue", "next", "next", "next", "reverse-next", "reverse-next", "delete"),
            *("reverse-step", "reverse-finish", "monitor when", "detach"),
        )
        status, _, stderr = finish()
    assert after(out, "next", 3).startswith("93\t    q->header.type")
    assert after(out, "reverse-next").startswith("92\t    hwsim_iova_t data = hwsim_dma_map_single")
    assert after(out, "reverse-next", 2).startswith("91\t    int dir = type == T_IN")
    assert after(out, "reverse-step").startswith("90\t    uint32_t len = sectors * SECTOR;")
    back = after(out, "reverse-finish")  # at the call of request(), in the (inlined) caller
    assert re.match(r"0x[0-9a-f]+ in write_read_back \(\) at virtio_blk.c:120\n120\t    if \(request\(T_OUT", back), out
    assert position(after(out, "monitor when"))[0] < 4750  # before request's first instruction
    assert status == 0 and "driver returned 128" in stderr


@needs_gdb
def test_reverse_continue_stops_where_a_watched_write_is_undone(disk):
    """Backwards, a watchpoint stops before the instruction that wrote: GDB shows the value after it as
    the old one and the value before it as the new one, down to the beginning of history."""
    with hwsim_gdb(VIRTIO_BLK, "--option", f"blk0.image={disk}") as (port, finish):
        out = gdb(
            port,
            *("watch used_seen", "continue", "continue", "reverse-continue", "print used_seen"),
            *("reverse-continue", "print used_seen", "reverse-continue", "continue", "detach"),
        )
        status, _, stderr = finish()
    back = after(out, "reverse-continue")
    assert "Old value = 2\nNew value = 1\n" in back and "in wait_used () at virtio_blk.c:83" in back, out
    assert "$1 = 1" in after(out, "print used_seen")
    assert "Old value = 1\nNew value = 0\n" in after(out, "reverse-continue", 2)
    assert "$2 = 0" in after(out, "print used_seen", 2)
    assert "No more reverse-execution history." in after(out, "reverse-continue", 3)
    assert "Old value = 0\nNew value = 1\n" in after(out, "continue", 3)  # forward again from the start
    assert status == 0 and "driver returned 128" in stderr


@needs_gdb
def test_reverse_into_an_interrupt_handler_that_preempted_the_driver():
    """The handler runs in a nested call of the host between two instructions of a busy loop: the count
    goes on through it, and reverse-continue finds the previous call with its backtrace."""
    with hwsim_gdb(str(REPO / "drivers" / "examples" / "timer_irq"), "--invoke", "busy") as (port, finish):
        out = gdb(
            port,
            *("break hwsim_irq_handler", "continue", "continue", "monitor when", "continue", "monitor when"),
            *("reverse-continue", "monitor when", "bt", "reverse-stepi", "monitor when", "stepi", "monitor when"),
            *("delete", "continue"),
        )
        status, _, stderr = finish()
    second, third = position(after(out, "monitor when")), position(after(out, "monitor when", 2))
    assert third[0] > second[0] and third[1] > second[1]
    assert position(after(out, "monitor when", 3)) == second  # back at the second call, exactly
    assert re.search(r"#1 +0x0+10810 in hwsim_nested_entry \(\)\n", after(out, "bt")), out
    assert position(after(out, "monitor when", 4))[0] == second[0] - 1
    assert position(after(out, "monitor when", 5)) == second
    assert status == 0 and "driver returned 5" in stderr and "interrupt handler calls: 5" in stderr


OOPS = """
(module
  (memory 1)
  (func $f (param i32) (result i32) (i32.add (local.get 0) (i32.const 3)))
  (func (export "oops") (result i32) (drop (call $f (i32.const 1))) unreachable))
"""


@needs_gdb
def test_reverse_from_a_trap_which_did_not_retire(tmp_path):
    """A trap stops before its instruction retires (the count leaves it out): reverse-stepi goes to the
    instruction before it (f's return), and going on traps again at the same position."""
    wasm = tmp_path / "oops.wasm"
    wasm.write_bytes(_wat_to_wasm(OOPS))
    with hwsim_gdb(str(wasm), "--invoke", "oops") as (port, finish):
        out = gdb(
            port, "continue", "monitor when", "reverse-stepi", "monitor when", "continue", "monitor when", "continue"
        )
        status, _, stderr = finish()
    trap, _ = position(after(out, "monitor when"))
    assert "Program received signal SIGILL" in after(out, "continue")
    assert re.search(r"0x[0-9a-f]+ in f \(\)", after(out, "reverse-stepi")), (
        out
    )  # f's ret: the call returned onto the ebreak
    assert position(after(out, "monitor when", 2))[0] == trap - 1
    assert "Program received signal SIGILL" in after(out, "continue", 2)
    assert position(after(out, "monitor when", 3))[0] == trap
    assert status == 1 and "driver trapped: unreachable" in stderr


@needs_gdb
def test_monitor_replay_to_a_virtual_time_or_a_position_and_its_errors(disk):
    with hwsim_gdb(VIRTIO_BLK, "--option", f"blk0.image={disk}") as (port, finish):
        out = gdb(
            port,
            "break request",
            "continue",
            "monitor when",
            "monitor replay-to 3us",
            "monitor when",
            "monitor replay-to icount 100",
            "maintenance flush register-cache",
            "info registers pc",
            "monitor replay-to 2ms",
            "monitor replay-to icount 999999",
            "monitor replay-to 3",
            "monitor replay-to icount x",
            "monitor help",
            "detach",
        )
        status, _, stderr = finish()
    end, end_ms = position(after(out, "monitor when"))
    arrived = after(out, "monitor replay-to 3us")
    icount, ms = position(arrived)
    assert 0 < icount < end and 0.003 <= ms < end_ms, out
    assert "maintenance flush register-cache" in arrived  # GDB must be told to read the registers again
    assert position(after(out, "monitor when", 2)) == (icount, ms)
    pc = re.search(r"pc (0x[0-9a-f]+)", after(out, "monitor replay-to icount 100"))
    assert pc and position(after(out, "monitor replay-to icount 100"))[0] == 100
    assert registers(after(out, "info registers pc"))["pc"] == pc[1]
    assert f"virtual time 2.000000 ms is outside the recorded history (up to {end_ms:.6f} ms)" in out
    assert f"icount 999999 is outside the recorded history (icount 0 to {end})" in out
    assert "'3' is not a time with a unit (ns, us, ms or s)" in out
    assert "usage: monitor replay-to TIME" in after(out, "monitor replay-to icount x")
    assert re.search(r"replay-to +replay-to TIME \| icount N", out) and re.search(r"when +where the run is", out)
    assert status == 0 and "driver returned 128" in stderr


@needs_gdb
def test_a_disk_image_is_byte_identical_after_a_session_with_reverse_steps(tmp_path, disk):
    """The attack: each reverse step runs the driver again from its start.  Its writes must not reach the
    image then (a replay would read what the run wrote later, and a read-modify-write would compound);
    they are kept in memory and reach the file once, when the session ends."""
    original = disk.read_bytes()
    shutil.copy(disk, tmp_path / "copy.img")
    plain = tmp_path / "plain.img"
    plain.write_bytes(original)
    with hwsim_gdb(VIRTIO_BLK, "--option", f"blk0.image={plain}") as (port, finish):
        gdb(port, "continue")
        assert finish()[0] == 0
    with hwsim_gdb(VIRTIO_BLK, "--option", f"blk0.image={disk}") as (port, finish):
        out = gdb(
            port,
            "break request",
            "continue",
            "continue",  # the read: the write before it is done
            f"shell cmp -s {disk} {tmp_path / 'copy.img'}; echo image-cmp=$?",
            "reverse-continue",
            "reverse-stepi",
            "continue",
            "continue",
            "reverse-continue",
            "reverse-continue",
            f"shell cmp -s {disk} {tmp_path / 'copy.img'}; echo image-cmp=$?",
            "delete",
            "continue",
        )
        status, _, stderr = finish()
    assert re.findall(r"^image-cmp=(\d)$", out, re.M) == ["0", "0"], out  # the file untouched during the session
    assert status == 0 and "driver returned 128" in stderr
    assert disk.read_bytes() == plain.read_bytes() != original


@needs_gdb
def test_an_nvme_namespace_image_is_byte_identical_after_reverse_steps(tmp_path, disk):
    """NVMe keeps its image the same way (the same DiskImage): writes, a flush, reads, reverse steps."""
    plain = tmp_path / "plain.img"
    plain.write_bytes(disk.read_bytes())
    nvme = str(REPO / "drivers" / "nvme")
    with hwsim_gdb(nvme, "--option", f"nvme0.image={plain}") as (port, finish):
        gdb(port, "continue")
        plain_status, _, plain_stderr = finish()
    with hwsim_gdb(nvme, "--option", f"nvme0.image={disk}") as (port, finish):
        out = gdb(
            port,
            *("break submit", "continue", "continue", "continue", "continue", "continue", "reverse-continue"),
            *("reverse-continue", "reverse-stepi", "delete", "continue"),
        )
        status, _, stderr = finish()
    assert out.count("Breakpoint 1.1, submit () at nvme.c:140") == 7, out
    report = stderr[stderr.index("-- hwsim run report --") :]
    assert status == plain_status == 0 and report == plain_stderr[plain_stderr.index("-- hwsim run report --") :]
    assert disk.read_bytes() == plain.read_bytes() != bytes(range(256)) * 256


@needs_gdb
def test_a_trace_file_holds_each_event_once_after_reverse_steps(tmp_path, disk):
    """--trace's sinks see a replayed run's events once: the file of a session with reverse steps is the
    file of one without."""
    files = []
    for commands in (
        ("break request", "continue", "continue", "delete", "continue"),
        (
            "break request",
            "continue",
            "continue",
            "reverse-continue",
            "reverse-stepi",
            "continue",
            "delete",
            "continue",
        ),
    ):
        out_file = tmp_path / f"trace{len(files)}.jsonl"
        image = tmp_path / f"disk{len(files)}.img"
        image.write_bytes(disk.read_bytes())
        args = ("--option", f"blk0.image={image}", "--trace", "dma*,mmio,irq*", "--trace-out", str(out_file))
        with hwsim_gdb(VIRTIO_BLK, *args) as (port, finish):
            gdb(port, *commands)
            assert finish()[0] == 0
        files.append(out_file.read_text())
    assert files[0].count("\n") > 50 and '"event": "mmio_write"' in files[0] and '"category": "dma"' in files[0]
    assert files[1] == files[0]


@needs_gdb
def test_a_virtio_net_capture_holds_each_frame_once_after_reverse_steps(tmp_path):
    """Building the board creates the tx capture anew: a replay gets the session's records back and adds
    only frames not written yet; in the middle of the session the file holds what the run has sent."""
    net = str(REPO / "drivers" / "virtio_net")
    captures = []
    for commands in (
        ("continue",),
        (
            *("break next_rx", "continue", "shell wc -c < {tx}", "reverse-continue", "shell wc -c < {tx}"),
            *("delete", "continue"),
        ),
    ):
        tx = tmp_path / f"tx{len(captures)}.pcap"
        with hwsim_gdb(net, "--option", "net0.backend=pcap", "--option", f"net0.tx={tx}") as (port, finish):
            out = gdb(port, *(command.format(tx=tx) for command in commands))
            finish()
        captures.append((tx.read_bytes(), out))
    (plain, _), (replayed, out) = captures
    assert len(plain) > 24 + 3 * 16 and replayed == plain  # the global header and the records, once each
    sent, back = (int(after(out, f"shell wc -c < {tmp_path}/tx1.pcap", n)) for n in (1, 2))
    assert "No more reverse-execution history." in after(out, "reverse-continue")
    # At the beginning again, the file still holds the frames sent by the furthest point so far, though
    # building the board for the replay created it anew.
    assert 24 < sent == back < len(plain)


@needs_gdb
def test_a_seeded_run_with_an_injected_fault_replays_to_the_same_end(disk):
    """Device timing drawn from the seed and a fault plan (its own state: draws and counts) for each run:
    after reverse steps the run ends as one without a debugger does."""
    options = ("--option", f"blk0.image={disk}", "--seed", "3", "--inject", "blk0.ioerr@2")
    plain = subprocess.run(
        [sys.executable, "-m", "hwsim", "run", str(DEFAULT_BOARD), VIRTIO_BLK, *options],
        capture_output=True,
        timeout=TIMEOUT,
        cwd=REPO,
    )
    with hwsim_gdb(VIRTIO_BLK, *options) as (port, finish):
        out = gdb(
            port,
            "break request",
            "continue",
            "continue",
            "monitor when",
            "reverse-continue",
            "continue",
            "monitor when",
            "delete",
            "continue",
        )
        status, _, stderr = finish()
    assert position(after(out, "monitor when")) == position(after(out, "monitor when", 2))
    report = stderr[stderr.index("-- hwsim run report --") :]
    assert "injected faults (1): blk0.ioerr (occurrence 2" in report and "timing seed 3" in report
    assert (
        status == plain.returncode == 1 and report == plain.stderr.decode()[plain.stderr.decode().index("-- hwsim") :]
    )


@needs_gdb
def test_native_firmware_reverse_with_console_input_said_once():
    """Console input is recorded and read again by the replays; console output and log lines reach the
    terminal once, however often the run is replayed."""
    elf = build_driver(REPO / "drivers" / "uart16550", native=True)
    with hwsim_gdb(str(elf), stdin=b"hi\n") as (port, finish):
        out = gdb(
            port,
            "break put",
            "continue",
            "continue",
            "print echoed",
            "continue",
            "print echoed",
            "reverse-continue",
            "print echoed",
            "reverse-stepi",
            "reverse-stepi",
            "monitor when",
            "reverse-continue",
            "reverse-continue",
            "print echoed",
            "delete",
            "continue",
        )
        status, stdout, stderr = finish()
    assert "$1 = 1" in after(out, "print echoed") and "$2 = 2" in after(out, "print echoed", 2)
    assert "$3 = 1" in after(out, "print echoed", 3)  # back at the second byte's put
    assert "$4 = 0" in after(out, "print echoed", 4)  # back at the first
    assert status == 0 and "driver returned 3" in stderr
    assert stdout == b"hi\n"  # echoed once, not once per replay
    assert stderr.count("[driver] uart16550: echoing console input") == 1


@needs_gdb
def test_reverse_execution_is_refused_after_the_debugger_changed_the_run(disk):
    with hwsim_gdb(VIRTIO_BLK, "--option", f"blk0.image={disk}") as (port, finish):
        out = gdb(
            port,
            "stepi 5",
            "set var $a0 = 7",
            "reverse-stepi",
            "reverse-continue",
            "monitor replay-to icount 1",
            "monitor when",
            "detach",
        )
        status, _, stderr = finish()
    why = (
        "this run is not replayable: the debugger changed registers or memory at icount 5, which a replay "
        "from the start would not repeat"
    )
    assert f"hwsim: {why}" in after(out, "reverse-stepi") and "Remote failure reply: E01" in out
    assert f"hwsim: {why}" in after(out, "reverse-continue")
    assert why in after(out, "monitor replay-to icount 1")
    assert position(after(out, "monitor when"))[0] == 5  # nothing moved
    assert status == 0 and "driver returned 128" in stderr


# -- without gdb: the server of an embedding, and the pieces ------------------------------------------------

COUNT = """
(module
  (memory 1)
  (func (export "probe") (result i32) (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.ne (local.get $i) (i32.const 5))))
    (local.get $i)))
"""


class Raw:
    """A GDB stand-in in no-ack mode: packets out, replies in; console output (``O``) kept apart."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.console = ""
        sock.sendall(b"+")
        assert self.ask(b"QStartNoAckMode") == b"OK"

    def send(self, payload: bytes) -> None:
        self.sock.sendall(frame(payload))

    def reply(self) -> bytes:
        """The next reply that is not console output."""
        while True:
            while not (m := re.search(rb"\$([^#]*)#(..)", self.buf)):
                data = self.sock.recv(65536)
                assert data, self.buf
                self.buf += data
            payload, self.buf = m[1], self.buf[m.end() :]
            assert int(m[2], 16) == checksum(payload)
            if payload.startswith(b"O") and payload != b"OK":
                self.console += bytes.fromhex(payload[1:].decode()).decode()
                continue
            return payload

    def ask(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.reply()

    def monitor(self, command: str) -> str:
        before = len(self.console)
        assert self.ask(b"qRcmd," + command.encode().hex().encode()) == b"OK"
        return self.console[before:]


def test_a_server_without_a_way_to_restart_the_run_refuses_reverse_execution():
    system = load_board(DEFAULT_BOARD).build()
    run = DriverRun(system, _wat_to_wasm(COUNT), log=lambda text: None)
    server = GdbServer(system.machine)
    ours, theirs = socket.socketpair()
    theirs.settimeout(30)
    server.serve(ours)
    thread = threading.Thread(target=lambda: server.finish(run.run("probe").exit_status), daemon=True)
    thread.start()
    try:
        gdb = Raw(theirs)
        assert b"ReverseStep+" not in gdb.ask(b"qSupported:swbreak+")
        assert gdb.ask(b"bs") == b"E01"
        assert gdb.ask(b"bx") == b"E16"
        text = "this run is not replayable: the GDB server was started without a way to run it again"
        assert text in gdb.monitor("replay-to 1us") and text in gdb.monitor("when")
        assert gdb.console.count(text) == 3, gdb.console
        gdb.send(b"D")
    finally:
        thread.join(30)
        theirs.close()
    assert not thread.is_alive()


LONG = """
(module
  (memory 1)
  (func $late (export "late") (result i32) (i32.const 7))
  (func (export "probe") (result i32) (local $i i32)
    (loop $l
      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 300000))))
    (call $late)))
"""


def test_the_replay_protocol_without_gdb_and_an_interrupt_that_ends_a_replay():
    """bs and bc as packets, with the runner's restart loop in a thread: the beginning of history at once
    from position 0; an interrupt (0x03) during a long replay stops it where it is (SIGINT); reverse-
    continue with no earlier hit goes to the beginning."""

    wasm = _wat_to_wasm(LONG)

    def make() -> DriverRun:
        return DriverRun(load_board(DEFAULT_BOARD).build(), wasm, log=lambda text: None)

    run = make()
    clock = run.system.clock
    server = GdbServer(
        run.system.machine,
        exec_file=driver_exec_file(run.vm, "/hwsim/long.elf"),
        replay=True,
        now_ns=lambda: clock.ticks_to_ns(clock.now),
    )
    ours, theirs = socket.socketpair()
    theirs.settimeout(60)
    server.serve(ours)
    outcome: dict = {}

    def rebuild():
        again = make()
        return again, again.system.machine, {"now_ns": lambda c=again.system.clock: c.ticks_to_ns(c.now)}

    def target() -> None:
        outcome["report"] = run_replayable(server, run, lambda run: run.run("probe"), rebuild)
        server.finish(outcome["report"].exit_status)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        gdb = Raw(theirs)
        assert b";ReverseStep+;ReverseContinue+" in gdb.ask(b"qSupported:swbreak+")
        assert gdb.ask(b"?").startswith(b"T05")
        assert gdb.ask(b"bs").endswith(b"replaylog:begin;thread:1;")  # at position 0 already
        symbols = ELFFile(io.BytesIO(server.exec_file.data)).get_section_by_name(".symtab").iter_symbols()
        late = next(sym["st_value"] for sym in symbols if sym.name == "late")
        assert gdb.ask(b"Z0,%x,4" % late) == b"OK"
        assert b"swbreak" in gdb.ask(b"c")
        end, _ = position(gdb.monitor("when"))
        assert end > 900_000
        gdb.send(b"bs")
        time.sleep(0.3)
        theirs.sendall(b"\x03")
        assert gdb.reply().startswith(b"T02")  # SIGINT: the replay stopped where it was
        interrupted, _ = position(gdb.monitor("when"))
        assert 0 < interrupted < end - 1
        assert gdb.ask(b"bc").endswith(b"replaylog:begin;thread:1;")  # no hit before it: the beginning
        assert position(gdb.monitor("when"))[0] == 0 and server.restarts == 3
        gdb.send(b"D")
    finally:
        thread.join(60)
        theirs.close()
    assert not thread.is_alive() and outcome["report"].result == 7


def test_a_replay_that_does_not_arrive_is_reported_as_diverged():
    """A run built again that is not the same run (here: another module, which ends sooner) never reaches
    the position: GDB is told the replay diverged, then the run's end."""
    modules = iter([_wat_to_wasm(LONG), _wat_to_wasm(COUNT)])

    def make() -> DriverRun:
        return DriverRun(load_board(DEFAULT_BOARD).build(), next(modules), log=lambda text: None)

    run = make()
    server = GdbServer(run.system.machine, replay=True)
    ours, theirs = socket.socketpair()
    theirs.settimeout(60)
    server.serve(ours)
    outcome: dict = {}

    def again():
        fresh = make()
        return fresh, fresh.system.machine, {}

    def target() -> None:
        outcome["report"] = run_replayable(server, run, lambda run: run.run("probe"), again)
        server.finish(outcome["report"].exit_status)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        gdb = Raw(theirs)
        gdb.ask(b"?")
        assert gdb.ask(b"s").startswith(b"T05") and gdb.ask(b"s").startswith(b"T05")
        for _ in range(3000):  # far enough into LONG's loop that COUNT has ended before
            gdb.ask(b"s")
        assert gdb.ask(b"bs") == b"W00"  # the run's end
        assert "hwsim: the replay diverged: the run ended at icount " in gdb.console
        assert "before the replay arrived" in gdb.console
    finally:
        thread.join(60)
        theirs.close()
    assert not thread.is_alive() and outcome["report"].result == 5


def test_the_instruction_count_is_exact_and_a_stop_at_a_position_is_exact():
    """The count against single steps, and a run stopped at each position in turn: the same PCs."""
    pcs = []

    def make() -> DriverRun:
        return DriverRun(load_board(DEFAULT_BOARD).build(), _wat_to_wasm(COUNT), log=lambda text: None)

    run = make()
    debug = run.system.machine.debug

    def stepping(stop) -> None:
        pcs.append((debug.icount, stop.pc))

    detach = debug.attach(stepping, stop_at_start=True)
    debug.count_instructions()
    debug.set_single_step(True)
    assert run.run("probe").result == 5
    detach()
    assert [i for i, _ in pcs] == list(range(len(pcs))) and len(pcs) > 20
    assert debug.icount == len(pcs)  # the last step's instruction retired too
    for target in (0, 1, 7, len(pcs) - 1):
        run = make()
        debug = run.system.machine.debug
        seen: list[tuple[str, int, int]] = []

        def record(stop, seen=seen, debug=debug) -> None:
            seen.append((stop.kind.name, debug.icount, stop.pc))

        detach = debug.attach(record, stop_at_start=True)
        debug.count_instructions()
        debug.stop_at(target)
        run.run("probe")
        detach()
        assert seen == [("REQUESTED", *pcs[0])] + ([("POSITION", *pcs[target])] if target else []), (target, seen)


def test_virtual_times_with_units():
    assert parse_virtual_time("12us") == 12_000
    assert parse_virtual_time("3ms") == 3_000_000
    assert parse_virtual_time("0.5ms") == 500_000
    assert parse_virtual_time(".25us") == 250
    assert parse_virtual_time("7ns") == 7 and parse_virtual_time("2s") == 2_000_000_000
    for bad in ("3", "ms", "1.2.3us", "-1us", "1 h"):
        with pytest.raises(ValueError, match="is not a time with a unit"):
            parse_virtual_time(bad)
    assert format_ns(119_000) == "0.119000 ms"


def test_deferred_disk_writes_reach_the_image_once_at_commit(tmp_path):
    path = tmp_path / "d.img"
    path.write_bytes(bytes(2048))
    disk = DiskImage(str(path), readonly=False)
    disk.defer_writes()
    disk.write(1, b"\x11" * 512)
    assert disk.read(0, 1024) == bytes(512) + b"\x11" * 512  # reads see the writes
    assert path.read_bytes() == bytes(2048)  # the file does not, yet
    with pytest.raises(OSError, match="past the image's end"):
        disk.write(4, b"\x22" * 512)
    disk.commit()
    assert path.read_bytes() == bytes(512) + b"\x11" * 512 + bytes(1024)
    disk.write(3, b"\x33" * 512)  # committed: writes go to the file again
    assert path.read_bytes()[1536:] == b"\x33" * 512
    disk.close()


def test_a_replayed_serial_port_reads_its_record_and_writes_each_byte_once():
    effects = HostEffects(log=lambda line: None)
    live = MemoryBackend(b"abc")
    runs = []
    for _ in range(2):
        system = load_board(DEFAULT_BOARD).build()
        system.devices["uart0"].backend = live if not runs else MemoryBackend(b"other input")
        effects.adopt(system)
        runs.append(system.devices["uart0"].backend)
    first, second = runs
    assert isinstance(first, ReplayedBackend) and isinstance(second, ReplayedBackend)
    assert first.read(2) == b"ab" and first.input_ended() is False
    first.write(b"xy")
    assert second.read(2) == b"ab" and second.input_ended() is False  # the record, not the new backend
    assert second.read(2) == b"c"  # past the record: the first run's live backend
    second.write(b"xyz")
    assert bytes(live.output) == b"xyz"  # x and y once
    with pytest.raises(
        ReplayDiverged, match=r"input call 1 of the replay is input_ended\(\), the recorded run's was read\(2\)"
    ):
        effects.adopt(system := load_board(DEFAULT_BOARD).build())
        system.devices["uart0"].backend.input_ended()


def test_log_lines_of_a_replayed_run_are_said_once():
    lines: list[str] = []
    effects = HostEffects(log=lines.append)
    log = effects.adopt(load_board(DEFAULT_BOARD).build())
    log("one")
    log = effects.adopt(load_board(DEFAULT_BOARD).build())
    log("one")
    log("two")
    assert lines == ["one", "two"]


def test_the_disk_of_an_abandoned_run_is_closed_without_its_writes(tmp_path):
    path = tmp_path / "d.img"
    path.write_bytes(bytes(1024))
    board = load_board(DEFAULT_BOARD)
    effects = HostEffects(log=lambda line: None)
    first = board.build(options={"blk0": {"image": str(path)}})
    effects.adopt(first)
    first.devices["blk0"].disk.write(0, b"\x01" * 512)
    effects.adopt(board.build(options={"blk0": {"image": str(path)}}))
    effects.commit()
    assert path.read_bytes() == bytes(1024) and os.path.getsize(path) == 1024
