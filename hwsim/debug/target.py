"""What GDB sees of the hart: its registers (``target.xml``), its memory (through the page tables, with the
guest's own rights), and the signal each kind of stop is reported as.

Registers, in GDB's remote numbering (the order of ``target.xml``; GDB's own
RISC-V feature names, so it needs no ``set architecture``)::

    0-31   x0..x31 (zero, ra, sp, ... t6)      org.gnu.gdb.riscv.cpu
    32     pc
    33-64  f0..f31 (ft0, ... ft11), 64 bits     org.gnu.gdb.riscv.fpu
    65-67  fflags, frm, fcsr (32 bits)
    68     priv (0 U, 1 S, 3 M; read-only)      org.gnu.gdb.riscv.virtual

Memory is the guest's virtual memory as the hart sees it now: each access is
translated as the hart's own load or store would be (``Machine.resolve``:
the page tables in force, the hart's privilege, SUM and MXR, with the
guest's side effects: a page the guest may touch but has not yet is paged
in, a store to a copy-on-write page copies it, A/D bits are set).  A read
needs a page the hart may load from or execute; a write, a page it may
store to.  Only RAM is reached: a
device window is refused (a read of a device register has side effects).
So the debugger can do what the code it stops can do, nothing more: a
sandboxed driver's debugger cannot reach the page tables, hwsim's own
frames, another Store's memory or the code (mapped without W), and the
privilege register cannot be written (that would escape every check).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from ..errors import HwsimError
from ..machine import DebugStop, DebugStopKind, Machine, StopReason
from ..mmu.bits import PAGE_MASK, PAGE_SIZE, Pte
from ..mmu.walker import Translation
from ..riscv.asm import ABI_NAMES
from ..riscv.priv import Access, Cause

XLEN = 8  # bytes

_FP_NAMES = [f"ft{i}" for i in range(8)] + ["fs0", "fs1"] + [f"fa{i}" for i in range(8)]
_FP_NAMES += [f"fs{i}" for i in range(2, 12)] + [f"ft{i}" for i in range(8, 12)]
_CODE_PTRS = frozenset({"ra", "pc"})
_DATA_PTRS = frozenset({"sp", "gp", "tp", "fp"})


@dataclass(frozen=True, slots=True)
class Register:
    name: str  # GDB's name
    machine: str  # Machine.get_reg's name
    size: int  # bytes
    feature: str
    type: str
    writable: bool = True


def _registers() -> tuple[Register, ...]:
    regs = []
    for i, abi in enumerate(ABI_NAMES):
        name = "fp" if abi == "s0" else abi
        kind = "code_ptr" if name in _CODE_PTRS else "data_ptr" if name in _DATA_PTRS else "int"
        regs.append(Register(name, f"x{i}", XLEN, "org.gnu.gdb.riscv.cpu", kind))
    regs.append(Register("pc", "pc", XLEN, "org.gnu.gdb.riscv.cpu", "code_ptr"))
    for i, name in enumerate(_FP_NAMES):
        regs.append(Register(name, f"f{i}", 8, "org.gnu.gdb.riscv.fpu", "ieee_double"))
    for name in ("fflags", "frm", "fcsr"):
        regs.append(Register(name, name, 4, "org.gnu.gdb.riscv.fpu", "int"))
    regs.append(Register("priv", "priv", XLEN, "org.gnu.gdb.riscv.virtual", "int", writable=False))
    return tuple(regs)


REGISTERS = _registers()
PC_REGNUM = 32


def target_xml() -> bytes:
    """The target description GDB reads with ``qXfer:features:read:target.xml``."""
    lines = [
        '<?xml version="1.0"?>',
        '<!DOCTYPE target SYSTEM "gdb-target.dtd">',
        "<target>",
        "  <architecture>riscv:rv64</architecture>",
    ]
    feature = None
    for regnum, reg in enumerate(REGISTERS):
        if reg.feature != feature:
            if feature is not None:
                lines.append("  </feature>")
            feature = reg.feature
            lines.append(f'  <feature name="{feature}">')
        group = ' group="float"' if reg.feature.endswith("fpu") else ""
        lines.append(
            f'    <reg name="{reg.name}" bitsize="{8 * reg.size}" type="{reg.type}" regnum="{regnum}"{group}/>'
        )
    lines += ["  </feature>", "</target>", ""]
    return "\n".join(lines).encode()


class RegisterError(HwsimError):
    """A register the debugger may not read or write (unknown number, or read-only)."""


def read_register(machine: Machine, regnum: int) -> bytes:
    reg = _register(regnum)
    return (machine.get_reg(reg.machine) & ((1 << (8 * reg.size)) - 1)).to_bytes(reg.size, "little")


def write_register(machine: Machine, regnum: int, data: bytes) -> None:
    reg = _register(regnum)
    if len(data) != reg.size:
        raise RegisterError(f"register {reg.name} has {reg.size} bytes, not {len(data)}")
    value = int.from_bytes(data, "little")
    if not reg.writable:
        if value != machine.get_reg(reg.machine):
            raise RegisterError(f"register {reg.name} is read-only for the debugger")
        return
    if reg.machine == "x0":
        return
    machine.set_reg(reg.machine, value)


def _register(regnum: int) -> Register:
    if not 0 <= regnum < len(REGISTERS):
        raise RegisterError(f"no register number {regnum}")
    return REGISTERS[regnum]


def read_all(machine: Machine) -> bytes:
    return b"".join(read_register(machine, n) for n in range(len(REGISTERS)))


def write_all(machine: Machine, data: bytes) -> None:
    """Write every register from ``data`` (the ``G`` packet); nothing is written unless all can be."""
    if len(data) != sum(r.size for r in REGISTERS):
        raise RegisterError(f"a register file is {sum(r.size for r in REGISTERS)} bytes, not {len(data)}")
    at, values = 0, []
    for regnum, reg in enumerate(REGISTERS):
        values.append((regnum, data[at : at + reg.size]))
        at += reg.size
    for regnum, value in values:
        reg = REGISTERS[regnum]
        if not reg.writable and int.from_bytes(value, "little") != machine.get_reg(reg.machine):
            raise RegisterError(f"register {reg.name} is read-only for the debugger")
    for regnum, value in values:
        if REGISTERS[regnum].writable:
            write_register(machine, regnum, value)


# -- memory -----------------------------------------------------------------------------------------


class MemoryRefused(HwsimError):
    """The debugger may not access this guest address (the message says why)."""


def _physical(machine: Machine, va: int, write: bool) -> tuple[int, bool]:
    """(physical address, executable) of ``va`` for a debugger access, or raise MemoryRefused.

    The access takes the guest's path (``Machine.resolve``): a page the guest may touch but has not yet
    is paged in, a store to a copy-on-write page makes the copy, A/D bits are set.  A read may also
    use a page the hart could only execute (GDB disassembles)."""
    result = machine.resolve(va, Access.STORE if write else Access.LOAD)
    if result is None:  # no translation (M-mode, or satp Bare): the address is physical
        return va, True
    if isinstance(result, Translation):
        return result.pa_of(va), bool(result.pte & Pte.X)
    if not write:
        walked = machine.translate(va, Access.FETCH)
        if walked is not None and walked.fault is None and walked.translation is not None:
            return walked.translation.pa, True
    explained = machine.translate(va, Access.STORE if write else Access.LOAD)
    why = explained.fault.message if explained is not None and explained.fault is not None else "not mapped"
    raise MemoryRefused(f"{va:#x}: {why}")


def physical_page(machine: Machine, va: int) -> int:
    """The RAM frame behind ``va`` for a watchpoint: the hart must be able to load from it now."""
    pa, _ = _physical(machine, va, False)
    if not machine.phys.is_ram(pa & ~PAGE_MASK, PAGE_SIZE):
        raise MemoryRefused(f"{va:#x}: no RAM there (a device window, or nothing)")
    return pa & ~PAGE_MASK


def read_memory(machine: Machine, va: int, size: int) -> bytes:
    """Up to ``size`` bytes at ``va``: the readable first part (raise MemoryRefused when there is none)."""
    out = bytearray()
    while size > 0:
        chunk = min(size, PAGE_SIZE - (va & PAGE_MASK))
        try:
            pa, _ = _physical(machine, va, False)
            if not machine.phys.is_ram(pa, chunk):
                raise MemoryRefused(f"{va:#x}: no RAM there (a device window, or nothing)")
        except MemoryRefused:
            if out:
                break
            raise
        out += machine.phys.read(pa, chunk)
        va = (va + chunk) & ((1 << 64) - 1)
        size -= chunk
    return bytes(out)


def write_memory(machine: Machine, va: int, data: bytes) -> None:
    """Write ``data`` at ``va``, all or nothing: every page must take a guest store now."""
    parts = []
    at = 0
    code = False
    while at < len(data):
        here = (va + at) & ((1 << 64) - 1)
        chunk = min(len(data) - at, PAGE_SIZE - (here & PAGE_MASK))
        pa, executable = _physical(machine, here, True)
        if not machine.phys.is_ram(pa, chunk):
            raise MemoryRefused(f"{here:#x}: no RAM there (a device window, or nothing)")
        parts.append((pa, data[at : at + chunk]))
        code |= executable
        at += chunk
    for pa, chunk_data in parts:
        machine.phys.write(pa, chunk_data)
    if code:
        machine.code_changed()  # the CPU may hold translations of what was just written


# -- stops as signals ---------------------------------------------------------------------------------

_FAULT_SIGNALS = {
    Cause.INSN_MISALIGNED: signal.SIGBUS,
    Cause.LOAD_MISALIGNED: signal.SIGBUS,
    Cause.STORE_MISALIGNED: signal.SIGBUS,
    Cause.ILLEGAL_INSN: signal.SIGILL,
    Cause.BREAKPOINT: signal.SIGTRAP,
}


def stop_signal(stop: DebugStop, *, interrupted: bool = False) -> int:
    """The signal a stop is reported as (GDB's numbering is Linux's for these): SIGTRAP for breakpoints,
    steps, watchpoints and the stop before the first instruction; SIGINT for an interrupt; for a trap,
    SIGILL (illegal instruction), SIGBUS (misaligned), SIGTRAP (ebreak), else SIGSEGV (page and access
    faults)."""
    if stop.kind is DebugStopKind.REQUESTED and interrupted:
        return int(signal.SIGINT)
    if stop.kind is not DebugStopKind.TRAP or stop.result is None:
        return int(signal.SIGTRAP)
    result = stop.result
    if result.reason is StopReason.BREAKPOINT:
        return int(signal.SIGTRAP)
    cause = result.fault.cause if result.fault is not None else result.cause
    return int(_FAULT_SIGNALS.get(cause, signal.SIGSEGV)) if cause is not None else int(signal.SIGSEGV)
