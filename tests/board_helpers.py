"""Shared helpers for device and board tests: the virt board with an in-memory UART, and guest code on it."""

from __future__ import annotations

from hwsim.board import DEFAULT_BOARD, System, load_board
from hwsim.devices.faults import FaultPlan, FaultSpec
from hwsim.mmu import Pte
from hwsim.riscv import asm as A
from hwsim.riscv.priv import Priv

CODE = 0x1_0000
DATA = 0x2_0000
RW_U = Pte.R | Pte.W | Pte.U


def virt(*, seed: int | None = None, faults=None, **options) -> System:
    """boards/virt.toml built with the UART on the in-memory backend (plus any other overrides), a timing
    seed and a fault plan (``faults``: specs such as ``"blk0.ioerr@2"``, or a FaultPlan)."""
    if faults is not None and not isinstance(faults, FaultPlan):
        faults = FaultPlan(tuple(FaultSpec.parse(text) for text in faults))
    return load_board(DEFAULT_BOARD).build(
        options={"uart0": {"backend": "memory"}, **options}, seed=seed, faults=faults
    )


class BoardGuest:
    """U-mode guest code on a built board: one code page, ``data_pages`` data pages, and the MMIO
    windows of the named devices mapped (user, read/write) at the given virtual addresses."""

    def __init__(self, system: System, mmio: dict[str, int], *, data_pages: int = 1) -> None:
        self.system = system
        m = self.m = system.machine
        self.space = m.new_address_space(asid=1)
        self.code_pa = m.frames.alloc()
        self.data_pa = m.frames.alloc(data_pages)
        self.space.map(CODE, self.code_pa, 0x1000, Pte.R | Pte.X | Pte.U)
        self.space.map(DATA, self.data_pa, 0x1000 * data_pages, RW_U)
        for name, va in mmio.items():
            spec = next(d for d in system.board.all_devices() if d.name == name)
            self.space.map(va, spec.base, spec.size, RW_U)
        m.activate(self.space, priv=Priv.U)

    def run(self, build, **kw):
        a = A.Assembler(CODE)
        build(a)
        a.label("exit")
        self.m.phys.write(self.code_pa, a.finish())
        self.m.code_changed()
        return self.m.run(CODE, until=a.labels["exit"], **kw)
