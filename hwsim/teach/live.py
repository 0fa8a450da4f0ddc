"""Live address spaces for the teaching commands: a board, a guest run on its CPU, the tables it leaves.

``hwsim mmu walk|dump --board virt --demo`` inspect what a small U-mode guest
leaves behind: page tables written by :class:`~hwsim.mmu.AddressSpace` into
the board's RAM, with the A and D bits the CPU's walks set while it ran;
``--driver DRIVER`` runs a sandboxed wasm driver's ``probe()`` instead and
shows the runtime's address space (code, stack, demand-paged linear memory,
device windows mapped into it).  The demo guest's address space (ASID 1)::

    0x10000               code, one 4 KiB page            r-x u   (fetched: A set)
    0x100000-0x102fff     buffer, three 4 KiB pages       r-- u   (the guest reads two: A set on those)
    0x200000              result page                     rw- u   (stored to: A and D set)
    0x300000              the UART's register window      rw- u   (its LSR is read: A set)
    0x40000000            a 2 MiB superpage               rw- u   (never touched: A and D clear)
    0xffffffc000000000    a 1 GiB kernel gigapage at RAM  rwx g   (supervisor only, global)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError, HwsimError
from ..mmu import Pte
from ..mmu.report import plural
from ..riscv import asm as A
from ..riscv.priv import Priv

if TYPE_CHECKING:
    from ..board.system import System

CODE_VA = 0x1_0000
BUF_VA = 0x10_0000
BUF_PAGES = 3
BUF_WORDS = 1024  # the guest sums the first two pages
RESULT_VA = 0x20_0000
DEVICE_VA = 0x30_0000
BIG_VA = 0x4000_0000
KERNEL_VA = 0xFFFF_FFC0_0000_0000
DEMO_ASID = 1
UART_LSR = 5


@dataclass
class LiveSpace:
    """The system after a guest ran, the satp of the address space it ran in, and what happened, in words."""

    system: System
    satp: int
    lines: list[str]  # what ran, for the top of the output
    summary: str  # one line, e.g. a snapshot's "source"


def _program(uart: bool) -> A.Assembler:
    a = A.Assembler(CODE_VA)
    a.li("a1", BUF_VA).li("t1", BUF_WORDS).li("a0", 0)
    a.label("loop")
    a.emit(A.ld("t0", "a1", 0), A.add("a0", "a0", "t0"), A.addi("a1", "a1", 8), A.addi("t1", "t1", -1))
    a.branch("bne", "t1", "zero", "loop")
    a.li("a2", RESULT_VA).emit(A.sd("a0", "a2", 0))
    if uart:
        a.li("a3", DEVICE_VA).emit(A.lbu("t2", "a3", UART_LSR))
    a.label("exit")
    return a


def uart_name(board) -> str | None:
    """The first 16550A UART of a board (the guest reads its line-status register), or None."""
    for spec in board.devices:
        if spec.type == "ns16550a":
            return spec.name
    return None


def run_demo_guest(board) -> LiveSpace:
    """Build ``board`` (its UART on an in-memory backend), map the demo space and run the guest to its end."""
    uart = uart_name(board)
    system = board.build(options={uart: {"backend": "memory"}} if uart else None)
    m = system.machine
    space = m.new_address_space(asid=DEMO_ASID)
    code = m.frames.alloc()
    buf = m.frames.alloc(BUF_PAGES)
    space.map(CODE_VA, code, 0x1000, Pte.R | Pte.X | Pte.U, accessed=False)
    space.map(BUF_VA, buf, BUF_PAGES * 0x1000, Pte.R | Pte.U, accessed=False)
    space.map_anonymous(RESULT_VA, 0x1000, Pte.R | Pte.W | Pte.U, accessed=False)
    lines = []
    if uart:
        base = next(d.base for d in board.devices if d.name == uart)
        space.map(DEVICE_VA, base, 0x1000, Pte.R | Pte.W | Pte.U, accessed=False)
    big = m.frames.alloc(512, align=2 << 20)
    space.map(BIG_VA, big, 2 << 20, Pte.R | Pte.W | Pte.U, accessed=False)
    ram = m.ram.base & ~((1 << 30) - 1)
    space.map(KERNEL_VA, ram, 1 << 30, Pte.R | Pte.W | Pte.X | Pte.G, page_size=1 << 30)
    for i in range(BUF_WORDS):
        m.phys.write_u64(buf + 8 * i, i + 1)
    prog = _program(uart is not None)
    m.phys.write(code, prog.finish())
    m.activate(space, priv=Priv.U)
    run = m.run(CODE_VA, until=prog.labels["exit"])
    if run.fault is not None:
        raise ConfigError(f"the demo guest faulted on board {board.name!r}: {run.fault.format()}")
    result = m.phys.read_u64(space.lookup(RESULT_VA).pa)
    lines.append(
        f"board {board.name!r}: a U-mode guest ran on the CPU in address space ASID {DEMO_ASID} (satp {space.satp:#x}):"
    )
    lines.append(
        f"  it summed {BUF_WORDS} words at {BUF_VA:#x} (result {result}), stored the sum at {RESULT_VA:#x}"
        + (f" and read {uart}'s line-status register through {DEVICE_VA + UART_LSR:#x}" if uart else "")
    )
    lines.append(f"  {plural(m.walks, 'page walk')}; the hardware set A (and D on the store) in the PTEs it used")
    summary = f"board {board.name!r}, the demo guest's address space (ASID {space.asid}) after its run"
    return LiveSpace(system, space.satp, lines, summary)


def run_driver(board, driver: str) -> LiveSpace:
    """Run a sandboxed driver's ``probe()`` on ``board`` (its UART on an in-memory backend) and keep the
    address space the wasm runtime gave it.  ``driver`` is a .wasm file or a C driver directory (built)."""
    from pathlib import Path

    from ..driver import DriverRun, build_driver

    path = Path(driver)
    if path.is_dir():
        path = build_driver(path)
    try:
        wasm = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read driver {str(path)!r}: {exc.strerror}") from None
    if wasm[:4] == b"\x7fELF":
        raise ConfigError(
            f"{str(path)!r} is native firmware: it runs in M-mode on physical addresses, with no page tables to show"
        )
    uart = uart_name(board)
    system = board.build(options={uart: {"backend": "memory"}} if uart else None)
    try:
        run = DriverRun(system, wasm, log=lambda text: None)
    except HwsimError as exc:  # not a module, not a driver: name the file
        raise ConfigError(f"driver {str(path)!r}: {exc}") from None
    report = run.run("probe")
    m = system.machine
    outcome = "returned" if report.trap is None else f"trapped: {report.trap.summary}"
    lines = [
        f"board {board.name!r}: driver {path.name} ran probe() sandboxed ({outcome}); "
        f"{report.mmio_accesses} MMIO accesses, {report.dma_requests} DMA requests",
        f"  the wasm runtime's address space (satp {m.satp:#x}): runtime code, stack, the linear memory's "
        f"pages mapped on first touch, device windows",
    ]
    summary = f"board {board.name!r}, driver {path.name} after probe()"
    return LiveSpace(system, m.satp, lines, summary)
