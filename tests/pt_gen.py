"""Random page tables aimed at one virtual address, as a hypothesis strategy.

Each case is a RAM image (data area + tables) in the layout of ``cpu_probe``,
a satp, a VA and an access.  The path to the VA is built level by level, each
level drawing a pointer, a leaf (any flags, sometimes a misaligned superpage),
an invalid PTE or the reserved W-without-R encoding; leaves point into the
data area so a successful load returns the physical address it read.
``reserved=True`` also draws PTE bits 63:54 and non-leaf D/A/U bits, which
the specification faults on and QEMU 5.0 ignores.
"""

from __future__ import annotations

import random
import struct

from cpu_probe import DATA_SIZE, RAM_BASE, RAM_SIZE, TABLE_BASE, data_image
from hypothesis import strategies as st

from hwsim.mmu.bits import PAGE_SHIFT, SV39, PagingMode, Pte, make_satp
from hwsim.riscv.priv import Access, Priv


class Case:
    """A plain class (not a dataclass) so hypothesis prints the short repr below, not the RAM."""

    def __init__(
        self, mode: PagingMode, ram: bytearray, satp: int, va: int, access: Access, priv: Priv, sum: bool, mxr: bool
    ) -> None:
        self.mode, self.ram, self.satp, self.va = mode, ram, satp, va
        self.access, self.priv, self.sum, self.mxr = access, priv, sum, mxr

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        ptes = []
        for off in range(DATA_SIZE, RAM_SIZE, 8):
            (v,) = struct.unpack_from("<Q", self.ram, off)
            if v:
                ptes.append(f"{RAM_BASE + off:#x}={v:#x}")
        return (
            f"Case({self.mode.name} va={self.va:#x} {self.access.value} priv={self.priv.name} sum={self.sum} "
            f"mxr={self.mxr} satp={self.satp:#x} ptes=[{', '.join(ptes)}])"
        )


_KINDS = ("pointer", "leaf", "invalid", "write-no-read")


@st.composite
def cases(draw, mode: PagingMode = SV39, reserved: bool = False) -> Case:
    ram = data_image() + bytearray(RAM_SIZE - DATA_SIZE)
    next_table = [TABLE_BASE]

    def new_table() -> int:
        pa = next_table[0]
        next_table[0] += 0x1000
        return pa

    def put(pa: int, pte: int) -> None:
        struct.pack_into("<Q", ram, pa - RAM_BASE, pte)

    def flag_bits(names: str) -> int:
        return sum(int(getattr(Pte, n)) for n in names)

    # Weighted choices come from a seeded generator: hypothesis' own random values lean towards
    # "simple" draws (zero), which would skew the weights; a drawn seed keeps cases reproducible.
    rnd = random.Random(draw(st.integers(0, 2**64 - 1)))
    access = draw(st.sampled_from(list(Access)))
    priv = draw(st.sampled_from([Priv.U, Priv.S]))
    target = RAM_BASE + draw(st.integers(0, DATA_SIZE // 8 - 1)) * 8
    root = new_table()
    table = root
    va = 0
    for level in reversed(range(mode.levels)):
        index = draw(st.integers(0, (1 << mode.vpn_bits) - 1))
        va |= index << mode.level_shift(level)
        pte_addr = table + 8 * index
        if level == mode.levels - 1:
            kind = rnd.choices(_KINDS, weights=(20, 2, 1, 1))[0]  # mostly descend from the root
        elif level:
            kind = rnd.choices(_KINDS, weights=(8, 5, 1, 1))[0]
        else:
            kind = rnd.choices(_KINDS, weights=(1, 12, 1, 1))[0]
        high = rnd.randint(1, 0x3FF) << 54 if reserved and rnd.random() < 0.1 else 0
        if kind == "pointer":
            child = new_table()
            bits = Pte.V | (Pte.G if rnd.random() < 0.3 else 0)
            if reserved and rnd.random() < 0.15:
                bits |= rnd.choice([Pte.A, Pte.D, Pte.U, Pte.A | Pte.D])
            put(pte_addr, (child >> PAGE_SHIFT) << 10 | bits | high)
            table = child
            continue
        if kind == "leaf":
            perms = rnd.choice(["R", "RW", "X", "RX", "RWX"])
            extra = [f for f in "UGAD" if rnd.random() < 0.5]
            page = mode.page_size(level)
            base = target & ~(page - 1)
            ppn = base >> PAGE_SHIFT
            if level and rnd.random() < 0.15:  # misaligned superpage
                ppn |= rnd.randint(1, (1 << (mode.vpn_bits * level)) - 1)
            put(pte_addr, ppn << 10 | Pte.V | flag_bits(perms + "".join(sorted(extra))) | high)
            va |= target & (page - 1)
        elif kind == "invalid":
            put(pte_addr, rnd.getrandbits(54) & ~1)
            va |= target & (mode.page_size(level) - 1)
        else:  # R=0 W=1, with or without X
            extra = [f for f in "XUAD" if rnd.random() < 0.5]
            put(pte_addr, (target >> PAGE_SHIFT) << 10 | Pte.V | Pte.W | flag_bits("".join(sorted(extra))))
            va |= target & (mode.page_size(level) - 1)
        break
    else:
        va |= target & 0xFFF  # the walk ended on a pointer at level 0
    va = mode.canonical(va)
    if rnd.random() < 0.04:  # break canonical form
        va ^= 1 << rnd.randint(mode.va_bits, 63)
    if access is Access.FETCH:
        va &= ~3
    satp = make_satp(mode, root >> PAGE_SHIFT, asid=draw(st.integers(0, 15)))
    return Case(mode, ram, satp, va, access, priv, rnd.random() < 0.5, rnd.random() < 0.5)
