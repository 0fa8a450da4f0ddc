"""hwsim.debug: the GDB remote-protocol server, driven by a raw socket client (framing, errors, boundaries)."""

from __future__ import annotations

import io
import random
import socket
import threading
import xml.etree.ElementTree as ET
from contextlib import contextmanager

import pytest
from elftools.dwarf.callframe import RegisterRule
from elftools.elf.elffile import ELFFile

from hwsim.board import DEFAULT_BOARD, load_board
from hwsim.debug import GdbServer, parse_address, target_xml
from hwsim.debug.rsp import checksum, escape_binary, frame, unescape_binary
from hwsim.driver import DriverRun
from hwsim.driver.debugging import driver_exec_file, wasm_trap_explainer
from hwsim.errors import ConfigError
from hwsim.riscv import asm as A
from hwsim.riscv.disasm import disassemble
from hwsim.runtime.api import _wat_to_wasm

TIMEOUT = 20

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


class Client:
    """A GDB stand-in: packets out with checksums, replies in, every wait bounded."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.settimeout(TIMEOUT)
        self.buf = b""
        self.ack = True

    def raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, payload: bytes | str) -> None:
        if isinstance(payload, str):
            payload = payload.encode()
        self.raw(frame(payload))

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.buf += data

    def read_ack(self) -> bytes:
        while not self.buf:
            self._fill()
        byte, self.buf = self.buf[:1], self.buf[1:]
        return byte

    def recv(self) -> bytes:
        """The next packet's payload (acks before it are dropped; the packet is acked)."""
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start + 1) if start >= 0 else -1
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                payload, digits = self.buf[start + 1 : end], self.buf[end + 1 : end + 3]
                self.buf = self.buf[end + 3 :]
                assert int(digits, 16) == checksum(payload), payload
                if self.ack:
                    try:
                        self.raw(b"+")
                    except OSError:  # the server closed after its last reply (D, k)
                        pass
                return payload
            self._fill()

    def ask(self, payload: bytes | str) -> bytes:
        self.send(payload)
        return self.recv()


@contextmanager
def debugged(wat: str = COUNT, entry: str = "probe"):
    """A driver run in a thread with the server attached, and a client connected to it."""
    system = load_board(DEFAULT_BOARD).build()
    run = DriverRun(system, _wat_to_wasm(wat), log=lambda text: None)
    server = GdbServer(
        system.machine,
        exec_file=driver_exec_file(run.vm, "/hwsim/test.elf"),
        explain=wasm_trap_explainer(run.vm),
        kill=run.vm.interrupt,
    )
    ours, theirs = socket.socketpair()
    server.serve(ours)
    outcome: dict = {}

    def target() -> None:
        report = None
        try:
            report = run.run(entry)
            outcome["report"] = report
        except BaseException as exc:  # the test fails on it below
            outcome["error"] = exc
        finally:
            server.finish(report.exit_status if report is not None else 1)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    client = Client(theirs)
    try:
        yield client, run, outcome
    finally:
        theirs.close()
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "the run did not end"
        assert "error" not in outcome, outcome.get("error")


def function_address(client: Client, name: str) -> int:
    elf = ELFFile(io.BytesIO(read_exec_file(client)))
    return next(s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols() if s.name == name)


def read_exec_file(client: Client) -> bytes:
    name = client.ask("qXfer:exec-file:read::0,1000")
    assert name.startswith(b"l")
    fd = client.ask(f"vFile:open:{name[1:].hex()},0,0")
    assert fd.startswith(b"F")
    data = b""
    while True:
        reply = client.ask(f"vFile:pread:{fd[1:].decode()},1000,{len(data):x}")
        head, _, body = reply.partition(b";")
        if head == b"F0":
            break
        chunk = unescape_binary(body)
        assert int(head[1:], 16) == len(chunk)
        data += chunk
    assert client.ask(f"vFile:close:{fd[1:].decode()}") == b"F0"
    return data


def pc_of(reply: bytes) -> int:
    for part in reply[3:].split(b";"):
        if part.startswith(b"20:"):
            return int.from_bytes(bytes.fromhex(part[3:].decode()), "little")
    raise AssertionError(reply)


# -- framing --------------------------------------------------------------------------------------------


def test_framing_checksums_and_binary_escapes():
    assert frame(b"OK") == b"$OK#9a"
    data = bytes(range(256))
    assert unescape_binary(escape_binary(data)) == data
    assert b"#" not in escape_binary(b"a#b$c}d*") and escape_binary(b"}") == b"}]"
    with pytest.raises(ValueError):
        unescape_binary(b"ab}")


def test_gdb_address_parsing():
    assert parse_address("1234") == ("127.0.0.1", 1234)
    assert parse_address(":0") == ("127.0.0.1", 0)
    assert parse_address("0.0.0.0:9") == ("0.0.0.0", 9)
    with pytest.raises(ConfigError, match=r"--gdb takes \[HOST:\]PORT, not 'x'"):
        parse_address("x")
    with pytest.raises(ConfigError, match="port 70000 is out of range"):
        parse_address("70000")


def test_target_xml_names_gdbs_riscv_features():
    root = ET.fromstring(target_xml())
    assert root.find("architecture").text == "riscv:rv64"
    features = {f.get("name"): [r.get("name") for r in f.findall("reg")] for f in root.findall("feature")}
    assert features["org.gnu.gdb.riscv.cpu"][:3] == ["zero", "ra", "sp"]
    assert features["org.gnu.gdb.riscv.cpu"][32] == "pc" and len(features["org.gnu.gdb.riscv.cpu"]) == 33
    assert features["org.gnu.gdb.riscv.fpu"][-3:] == ["fflags", "frm", "fcsr"]
    assert features["org.gnu.gdb.riscv.virtual"] == ["priv"]
    regnums = [int(r.get("regnum")) for f in root.findall("feature") for r in f.findall("reg")]
    assert regnums == list(range(69))


# -- a session ---------------------------------------------------------------------------------------------


def test_handshake_stop_at_start_registers_and_detach_finishes_the_run():
    with debugged() as (client, run, outcome):
        supported = client.ask("qSupported:multiprocess+;swbreak+;xmlRegisters=i386")
        assert b"qXfer:features:read+" in supported and b"qXfer:exec-file:read+" in supported
        assert b"PacketSize=4000" in supported
        stop = client.ask("?")
        assert stop.startswith(b"T05") and b"thread:1;" in stop
        probe = function_address(client, "probe")
        assert pc_of(stop) == probe
        regs = bytes.fromhex(client.ask("g").decode())
        assert len(regs) == 33 * 8 + 32 * 8 + 3 * 4 + 8
        assert int.from_bytes(regs[32 * 8 : 33 * 8], "little") == probe
        assert int.from_bytes(regs[-8:], "little") == 0  # priv: U-mode
        assert client.ask("p20") == regs[32 * 8 : 33 * 8].hex().encode()
        assert client.ask("qAttached") == b"1" and client.ask("qC") == b"QC1"
        assert client.ask("vCont?") == b"vCont;c;C;s;S"
        assert client.ask("D") == b"OK"
    assert outcome["report"].result == 5 and outcome["report"].ok


def test_breakpoint_continue_step_and_exit_status():
    with debugged() as (client, run, outcome):
        count = function_address(client, "count")
        assert client.ask(f"Z0,{count:x},4") == b"OK"
        stop = client.ask("c")
        assert stop.startswith(b"T05") and b"swbreak:;" in stop and pc_of(stop) == count
        assert client.ask(f"z0,{count:x},4") == b"OK"
        stop = client.ask("s")
        assert stop.startswith(b"T05") and pc_of(stop) == count + 4
        assert client.ask("vCont;s:1").startswith(b"T05")
        assert client.ask("vCont;c") == b"W00"  # the run ended: its exit status
    assert outcome["report"].result == 5


def test_a_breakpoint_is_hit_again_each_time_round_a_loop():
    with debugged() as (client, run, outcome):
        count = function_address(client, "count")
        # In the loop: the sw of the counter (found in the generated code, which the compiler may lay out
        # and allocate as it likes), and the register holding the value it stores.
        code = bytes.fromhex(client.ask(f"m{count:x},100").decode())
        sw = next(insn for insn in disassemble(code, count) if insn.mnemonic in ("sw", "c.sw"))
        store, value_reg = sw.address, A.reg(sw.op_str.split(",")[0].strip())
        assert client.ask(f"Z0,{store:x},4") == b"OK"
        values = []
        for _ in range(5):
            assert pc_of(client.ask("c")) == store
            values.append(int.from_bytes(bytes.fromhex(client.ask(f"p{value_reg:x}").decode()), "little"))
        assert values == [1, 2, 3, 4, 5]
        assert client.ask("c") == b"W00"


def test_registers_write_and_priv_is_read_only():
    with debugged() as (client, run, outcome):
        client.ask("?")
        assert client.ask("P0a=" + (42).to_bytes(8, "little").hex()) == b"OK"
        assert int.from_bytes(bytes.fromhex(client.ask("p0a").decode()), "little") == 42
        assert client.ask("P0=" + (7).to_bytes(8, "little").hex()) == b"OK"  # x0 stays 0
        assert client.ask("p0") == b"00" * 8
        assert client.ask("P44=" + (3).to_bytes(8, "little").hex()) == b"E16"  # to M-mode: refused
        regs = bytearray(bytes.fromhex(client.ask("g").decode()))
        regs[-8] = 3
        regs[10 * 8] = 99  # a0, which must not be written either
        assert client.ask("G" + regs.hex()) == b"E16"
        assert int.from_bytes(bytes.fromhex(client.ask("p0a").decode()), "little") == 42
        assert client.ask("p45") == b"E16"  # no register 69
        assert client.ask("D") == b"OK"


def test_memory_goes_through_the_page_tables_with_the_guests_rights():
    with debugged() as (client, run, outcome):
        client.ask("?")
        base = int.from_bytes(bytes.fromhex(client.ask("p12").decode()), "little")  # s2: memory 0's base
        cell = base + 0x1000
        assert client.ask(f"m{cell:x},4") == b"00000000"  # a page the driver has not touched: paged in
        assert client.ask(f"M{cell:x},4:2a000000") == b"OK"
        assert client.ask(f"m{cell:x},4") == b"2a000000"
        assert run.memory.read(0x1000, 4) == b"\x2a\0\0\0"
        assert client.ask(f"m{base + (4 << 30):x},4") == b"E0e"  # the guard region: no page, an error
        assert client.ask("m1000,8") == b"E0e"  # nothing mapped there
        probe = function_address(client, "probe")
        code = client.ask(f"m{probe:x},8")
        assert len(code) == 16  # the code is readable (GDB disassembles) ...
        assert client.ask(f"M{probe:x},4:00000000") == b"E0e"  # ... not writable
        assert client.ask(f"m{probe:x},8") == code
        # The page tables are in no page the driver's hart may reach: the debugger cannot find them.
        machine = run.system.machine
        root = (machine.satp & ((1 << 44) - 1)) << 12
        before = machine.phys.read(root, 4096)
        for va in (root, root + base, 0x8000_0000):
            assert client.ask(f"M{va:x},8:{'ff' * 8}") == b"E0e"
        assert machine.phys.read(root, 4096) == before
        # A read running off the end of what is mapped returns the readable part.
        last = base + 0x10000 - 4  # memory 0 is one 64 KiB page
        assert client.ask(f"m{last:x},8") == b"00000000"
        assert client.ask("D") == b"OK"
    assert outcome["report"].ok


def test_watchpoints_stop_after_the_access():
    with debugged() as (client, run, outcome):
        client.ask("?")
        cell = int.from_bytes(bytes.fromhex(client.ask("p12").decode()), "little") + 0x1000
        assert client.ask(f"Z2,{cell:x},4") == b"OK"
        stop = client.ask("c")
        assert stop.startswith(b"T05") and f"watch:{cell:x};".encode() in stop
        assert client.ask(f"m{cell:x},4") == b"01000000"  # the store was made
        assert client.ask(f"z2,{cell:x},4") == b"OK"
        assert client.ask(f"Z3,{cell:x},4") == b"OK"
        stop = client.ask("c")
        assert f"rwatch:{cell:x};".encode() in stop
        assert int.from_bytes(bytes.fromhex(client.ask("p05").decode()), "little") == 5  # t0: the loaded value
        assert client.ask("c") == b"W00"


def test_interrupt_stops_a_spinning_driver_and_kill_ends_the_run():
    with debugged(entry="spin") as (client, run, outcome):
        client.ask("?")
        client.send("c")
        client.raw(b"\x03")
        stop = client.recv()
        assert stop.startswith(b"T02")  # SIGINT
        count = function_address(client, "count")
        assert count <= pc_of(stop) < count + 0x100
        assert client.ask("vKill;1") == b"OK"
    report = outcome["report"]
    assert report.trap is not None and "killed by the debugger" in str(report.trap)


def test_a_trap_is_a_signal_with_its_wasm_message_then_the_report():
    with debugged(entry="oops") as (client, run, outcome):
        client.ask("?")
        client.send("c")
        console = client.recv()
        assert console.startswith(b"O")
        text = bytes.fromhex(console[1:].decode()).decode()
        assert text.startswith("hwsim: wasm trap: unreachable at wasm function 2, bytecode offset 0x")
        stop = client.recv()
        assert stop.startswith(b"T04")  # SIGILL
        assert client.ask("C04") == b"W01"
    assert outcome["report"].trap.code.name == "UNREACHABLE"


def test_exec_file_is_an_elf_of_the_generated_code_with_function_symbols():
    with debugged() as (client, run, outcome):
        data = read_exec_file(client)
        elf = ELFFile(io.BytesIO(data))
        assert elf["e_machine"] == "EM_RISCV" and elf.elfclass == 64
        symbols = {s.name: s for s in elf.get_section_by_name(".symtab").iter_symbols() if s.name}
        assert set(symbols) == {
            "count",
            "spin",
            "oops",
            "probe",
            "hwsim_host_call",
            "hwsim_tail_return",
            "hwsim_host_entry",
            "hwsim_nested_entry",
        }  # and the runtime's stubs and the addresses calls from the host return to
        text = elf.get_section_by_name(".text")
        loaded = run.vm.code[0]
        assert text["sh_addr"] == loaded.base and text.data() == bytes(loaded.compiled.code)
        assert symbols["count"]["st_value"] == loaded.base and symbols["count"]["st_info"]["type"] == "STT_FUNC"
        stat = client.ask("vFile:open:" + b"/hwsim/test.elf".hex() + ",0,0")
        assert client.ask("vFile:fstat:" + stat[1:].decode()).startswith(b"F40;")
        assert client.ask("vFile:open:" + b"/etc/passwd".hex() + ",0,0") == b"F-1,2"  # only the executable
        assert client.ask("vFile:open:" + b"/hwsim/test.elf".hex() + ",1,0") == b"F-1,d"  # read-only
        assert client.ask("vFile:pread:9,10,0") == b"F-1,9"
        check_call_frame_information(elf, run.vm)
        assert client.ask("qXfer:features:read:target.xml:0,10").startswith(b"m<?xml")
        assert client.ask("qXfer:features:read:other.xml:0,10") == b"E16"
        assert client.ask("D") == b"OK"


def check_call_frame_information(elf: ELFFile, vm) -> None:
    """Each compiled function's CFI rows, as pyelftools decodes them, follow its frame: CFA = sp at
    entry, fp once set up, sp again in each epilogue; ra and fp saved below the CFA."""
    loaded = vm.code[0]
    compiled = loaded.compiled
    fdes = {
        entry.header["initial_location"]: entry
        for entry in elf.get_dwarf_info().CFI_entries()
        if hasattr(entry, "header") and "initial_location" in entry.header
    }
    for offset, size, info in zip(compiled.func_offsets, compiled.func_sizes, compiled.frames):
        fde = fdes[loaded.base + offset]
        assert fde.header["address_range"] == size
        rows = fde.get_decoded().table

        def row_at(pc: int, rows=rows):
            return [row for row in rows if row["pc"] <= pc][-1]

        entry, body = row_at(loaded.base + offset), row_at(loaded.base + offset + info.body)
        assert (entry["cfa"].reg, entry["cfa"].offset) == (2, 0)
        assert (body["cfa"].reg, body["cfa"].offset) == (8, 0)
        assert body[1].arg == -8 and body[8].arg == -16  # ra, fp
        # a0-a7, t0-t6: a call clobbers them, so the caller's frame has no value of its own in them (a
        # local homed in a1-a5 is dead at the call); callee-saved s1-s11 are never undefined
        assert all(body[reg].type == RegisterRule.UNDEFINED for reg in (*range(5, 8), *range(10, 18), *range(28, 32)))
        assert all(reg not in body or body[reg].type != RegisterRule.UNDEFINED for reg in (9, *range(18, 28)))
        for reg, slot in info.saved:
            assert body[reg].arg == slot
        for start, end in info.epilogues:
            assert row_at(loaded.base + offset + start)["cfa"].reg == 2
            if end < size:
                assert row_at(loaded.base + offset + end)["cfa"].reg == 8


def test_bad_packets_get_error_replies_and_the_session_goes_on():
    with debugged() as (client, run, outcome):
        client.ask("?")
        client.raw(b"$g#00")  # a wrong checksum: NAK, resend
        assert client.read_ack() == b"-"
        for packet, reply in [
            ("mzz,4", b"E16"),
            ("m1000", b"E16"),
            ("M1000,4:zz", b"E16"),
            ("M1000,8:00", b"E16"),
            ("pqq", b"E16"),
            ("P0a", b"E16"),
            ("Z0,nothex,4", b"E16"),
            ("vCont;x", b"E16"),
            ("vFile:pread:zz", b"F-1,16"),
            ("qXfer:exec-file:read::zz", b"E16"),
            ("qNoSuchThing", b""),
            ("\x7f\x80\xff", b""),
            ("G00", b"E16"),
        ]:
            assert client.ask(packet) == reply, packet
        assert client.ask("QStartNoAckMode") == b"OK"
        client.ack = False
        client.raw(b"$?#00")  # in no-ack mode a bad checksum is answered with an error
        assert client.recv() == b"E16"
        client.raw(b"$" + b"m" * 0x5000 + b"#" + f"{checksum(b'm' * 0x5000):02x}".encode())  # too long
        assert client.recv() == b"E16"
        assert client.ask("?").startswith(b"T05")
        assert client.ask("D") == b"OK"
    assert outcome["report"].ok


def test_breakpoints_and_watchpoints_are_bounded():
    from hwsim.debug.server import MAX_BREAKPOINTS, MAX_WATCHPOINTS

    with debugged() as (client, run, outcome):
        client.ask("?")
        client.ask("QStartNoAckMode")
        client.ack = False
        for i in range(MAX_BREAKPOINTS):
            client.send(f"Z0,{0x10_0000 + 4 * i:x},4")
        assert all(client.recv() == b"OK" for _ in range(MAX_BREAKPOINTS))
        assert client.ask("Z0,2000000,4") == b"E1c"
        assert client.ask("Z0,100000,4") == b"OK"  # set already
        cell = int.from_bytes(bytes.fromhex(client.ask("p12").decode()), "little") + 0x1000
        for i in range(MAX_WATCHPOINTS):
            assert client.ask(f"Z2,{cell + 8 * i:x},4") == b"OK"
        assert client.ask(f"Z2,{cell + 0x800:x},4") == b"E1c"
        assert client.ask(f"Z2,{cell:x},65537") == b"E16"
        assert client.ask("D") == b"OK"
    assert outcome["report"].result == 5 and not run.system.machine.debug.breakpoints


def test_a_client_that_goes_away_lets_the_run_finish():
    with debugged() as (client, run, outcome):
        client.ask("?")
        function_address(client, "count")
        client.send(f"Z0,{function_address(client, 'count'):x},4")
        client.recv()
        client.sock.close()
    assert outcome["report"].result == 5


def test_one_debugger_per_machine():
    system = load_board(DEFAULT_BOARD).build()
    detach = system.machine.debug.attach(lambda stop: None)
    with pytest.raises(ConfigError, match="a debugger is already attached"):
        system.machine.debug.attach(lambda stop: None)
    detach()
    system.machine.debug.attach(lambda stop: None)()


WINDOW = """
(module
  (import "hwsim" "mmio_map" (func $map (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "uart0")
  (func $after (export "after") (param i32) (result i32) local.get 0)
  (func (export "probe") (result i32) (call $after (call $map (i32.const 16) (i32.const 5)))))
"""


def test_device_windows_are_refused_to_the_debugger():
    with debugged(WINDOW) as (client, run, outcome):
        client.ask("?")
        after = function_address(client, "after")
        client.ask(f"Z0,{after:x},4")
        assert pc_of(client.ask("c")) == after
        linear = int.from_bytes(bytes.fromhex(client.ask("p0a").decode()), "little") & 0xFFFF_FFFF  # a0: the window
        base = int.from_bytes(bytes.fromhex(client.ask("p12").decode()), "little")
        machine = run.system.machine
        accesses = machine.mmio_accesses
        assert linear >= 0xF000_0000
        assert client.ask(f"m{base + linear:x},1") == b"E0e"  # a device register read has side effects
        assert client.ask(f"M{base + linear:x},1:41") == b"E0e"
        assert client.ask(f"Z2,{base + linear:x},1") == b"E0e"
        assert machine.mmio_accesses == accesses
        assert client.ask("D") == b"OK"
    assert outcome["report"].trap is None


def test_breakpoints_removed_and_set_again_never_fire_after_detach(tmp_path):
    """GDB's own pattern around steps (remove, step with a breakpoint further on, set again, remove,
    detach) once made a deleted Unicorn code hook fire; the run must finish as without a debugger."""
    from pathlib import Path

    from hwsim.debug import ExecFile
    from hwsim.driver import build_driver
    from hwsim.driver.firmware import FirmwareRun

    elf = build_driver(Path(__file__).resolve().parents[1] / "drivers" / "virtio_blk", native=True)
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(64 << 10))
    system = load_board(DEFAULT_BOARD).build(options={"blk0": {"image": str(image)}})
    run = FirmwareRun(system, elf.read_bytes())
    server = GdbServer(system.machine, exec_file=ExecFile(str(elf), elf.read_bytes()), kill=run.interrupt)
    ours, theirs = socket.socketpair()
    server.serve(ours)
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["report"] = run.run()
        finally:
            server.finish(0)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    client = Client(theirs)
    client.ask("?")
    first = run.image.symbols["request"] + 0x18
    second = first + 4
    for packet in [f"Z0,{first:x},2", "c", f"z0,{first:x},2", f"Z0,{second:x},2", "c", f"z0,{second:x},2"]:
        client.ask(packet)
    assert client.ask(f"Z0,{first:x},2") == b"OK" and client.ask(f"z0,{first:x},2") == b"OK"
    assert client.ask("D") == b"OK"
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    assert outcome["report"].result == 128 and outcome["report"].ok


@pytest.mark.parametrize(
    "register, value",
    [("20", 0x1234), ("02", 0), ("12", 1 << 40)],  # pc into nothing, sp 0, memory base not canonical
    ids=["pc", "sp", "s2"],
)
def test_a_debugger_that_breaks_the_harts_state_gets_a_trap_not_an_internal_error(register, value):
    with debugged() as (client, run, outcome):
        client.ask("?")
        assert client.ask(f"P{register}=" + value.to_bytes(8, "little").hex()) == b"OK"
        client.send("c")
        console = client.recv()
        assert console.startswith(b"O") and client.recv().startswith(b"T")
        assert client.ask("c") == b"W01"
    trap = outcome["report"].trap
    assert trap is not None and "after a debugger changed the hart's registers or memory" in str(trap)


def test_an_ecall_the_debugger_aimed_nowhere_is_a_trap():
    with debugged(WINDOW) as (client, run, outcome):
        client.ask("?")
        for _ in range(200):  # step to the host call's ecall
            pc = pc_of(client.ask("s"))
            if client.ask(f"m{pc:x},4") == b"73000000":
                break
        else:
            raise AssertionError("no ecall within 200 steps")
        assert client.ask("P1f=" + (0xDEAD).to_bytes(8, "little").hex()) == b"OK"  # t6: the host function
        client.send("c")
        while client.recv().startswith(b"O"):
            pass
    trap = outcome["report"].trap
    assert trap is not None and "ecall with t6=0xdead" in trap.summary


def monitor(client: Client, line: str) -> str:
    client.send("qRcmd," + line.encode().hex())
    text = ""
    while (reply := client.recv()) != b"OK" and reply.startswith(b"O"):
        text += bytes.fromhex(reply[1:].decode()).decode()
    assert reply == b"OK"
    return text


def test_monitor_commands_show_hwsims_state_on_gdbs_console():
    with debugged() as (client, run, outcome):
        client.ask("?")
        assert monitor(client, "help").splitlines() == [
            "mmu      mmu walk VA [load|store|fetch]: the page-table walk of VA as the hart would do it now",
            "replay-to replay-to TIME | icount N: run again from the start to a virtual time (12us, 3ms) or a position",
            "when     where the run is: instructions retired (icount) and virtual time",
        ]
        code = function_address(client, "probe")
        walk = monitor(client, f"mmu walk {code:#x} fetch")
        assert (
            "fetch as U-mode" in walk
            and "-A-UX-RV  leaf (4 KiB page): fetch allowed" in walk
            and "result: pa 0x" in walk
        )
        assert monitor(client, "mmu walk 0x1000").endswith("PTE is not valid (V=0)\n")
        assert monitor(client, "mmu walk nothex") == "usage: monitor mmu walk VA [load|store|fetch] (not 'nothex')\n"
        assert monitor(client, "frob") == "unknown monitor command 'frob'; 'monitor help' lists them\n"
        assert client.ask("qRcmd,zz") == b"E16"
        assert client.ask("D") == b"OK"


def test_random_packets_get_replies_and_leave_the_run_intact():
    """Packets made of the server's own commands with random arguments (huge, negative, malformed
    numbers, stray separators): each gets a reply, none reaches a traceback, the run is undisturbed."""
    rng = random.Random(17)
    heads = [
        "m", "M", "g", "G", "p", "P", "Z0,", "z0,", "Z1,", "Z2,", "z2,", "Z3,", "Z4,", "Z9,", "vCont?",
        "vFile:open:", "vFile:pread:", "vFile:close:", "vFile:fstat:", "vFile:setfs:", "vFile:unlink:",
        "qXfer:features:read:target.xml:", "qXfer:exec-file:read::", "qXfer:libraries:read::", "qRcmd,",
        "qSupported:", "H", "T", "?", "X", "q", "Q", "",
    ]  # fmt: skip
    alphabet = "0123456789abcdefABCDEF,:;=-+xz/\x7f "
    numbers = [0, 1, 2**32, 2**63, 2**64 - 1, 2**64, 2**80]
    with debugged() as (client, run, outcome):
        client.ask("?")
        for _ in range(1500):
            head = rng.choice(heads)
            if rng.random() < 0.3:
                tail = ",".join(f"{rng.choice(numbers + [rng.getrandbits(70)]):x}" for _ in range(rng.randint(1, 3)))
            else:
                tail = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
            reply = client.ask(head + tail)
            while reply.startswith(b"O") and reply != b"OK":  # monitor output comes first
                reply = client.recv()
        assert client.ask("?").startswith(b"T05")
        assert client.ask("D") == b"OK"
    assert outcome["report"].result == 5 and outcome["report"].ok


def test_the_line_table_of_generated_code_agrees_with_the_runtimes_own_lines():
    """Differential: for every instruction of a C driver's generated code, the ELF's DWARF (read back by
    pyelftools) gives the location the runtime reports for that pc: line, function, inlined calls."""
    from pathlib import Path

    from hwsim.driver import build_driver
    from hwsim.wasm.dwarf import SourceMap

    repo = Path(__file__).resolve().parents[1]
    system = load_board(DEFAULT_BOARD).build()
    run = DriverRun(system, build_driver(repo / "drivers" / "virtio_blk").read_bytes(), log=lambda text: None)
    dirs = [repo / "drivers" / "virtio_blk", repo / "drivers" / "include"]
    elf = driver_exec_file(run.vm, "/hwsim/virtio_blk.elf", source_dirs=dirs).data
    lines = SourceMap.from_elf_bytes(elf)
    assert lines.available
    loaded = run.vm.code[0]
    checked = inlined = 0
    for offset in range(0, len(loaded.compiled.code), 4):
        pc = loaded.base + offset
        where = run.vm.wasm_location(pc)
        expected = run.vm.source_location(loaded.module, where.wasm_offset) if where is not None else None
        got = lines.locate(pc)
        if expected is None or got is None or got.line == 0:
            continue
        # The whole location: the line, its function, and the chain of inlined calls with their lines.
        assert got.format() == expected, (hex(pc), expected, got)
        checked += 1
        inlined += bool(got.inlined_at)
    assert checked > 500 and inlined > 100
    top = ELFFile(io.BytesIO(elf)).get_dwarf_info()
    units = list(top.iter_CUs())
    assert len(units) == 1
    die = units[0].get_top_DIE()
    assert die.attributes["DW_AT_name"].value == b"virtio_blk.c"
    assert die.attributes["DW_AT_comp_dir"].value == str((repo / "drivers" / "virtio_blk").resolve()).encode()
    children = list(die.iter_children())
    names = {child.attributes["DW_AT_name"].value for child in children if child.tag == "DW_TAG_subprogram"}
    assert names == {b"probe", b"init", b"request", b"read_loop"}
    named = {child.attributes["DW_AT_name"].value for child in children if "DW_AT_name" in child.attributes}
    assert {b"q", b"regs", b"buffer", b"used_seen", b"shared", b"uint32_t"} <= named  # globals and types
