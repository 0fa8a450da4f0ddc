"""AArch64 stage-1 translation exercises (4, 16 or 64 KiB granule), from a seed, answered by
hwsim's AArch64 walker (``hwsim mmu quiz --format aarch64-4k``, ``aarch64-16k``, ``aarch64-64k``).

Each exercise is a small RAM holding translation tables, printed as its non-zero doublewords,
TTBR0_EL1 and TTBR1_EL1, TCR_EL1's T0SZ/T1SZ/IPS/HA, SCTLR_EL1.WXN and PSTATE.PAN, and one
access (VA, fetch/read/write, EL0 or EL1).  The student gives the physical address (and the AF
the hardware sets), or the abort: the fault (translation, address size, access flag,
permission), its level and the DFSC/IFSC.  The answer is the walker's
(``hwsim.mmu.arm_walk``); the tests check it against the generator's intent and
``tests/spec_walk_arm.py`` on thousands of seeds.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from ..errors import ConfigError
from ..mmu.arm_bits import AF, AP_MEANING, GRANULES, Granule
from ..mmu.arm_walk import ArmControl, ArmReason, walk_arm
from ..mmu.formats import FormatWalk, WordMemory, answer_line, format_explained, walk_to_json
from ..riscv.priv import Access, Priv
from . import topics
from .mmu_quiz import READ_WRITE_WORDS, check_seed_and_count, memory_lines

RAM_BASE = 0x4000_0000
RAM_FRAMES = 16
TOPICS = topics.ARM

_VALID_TABLE = 0b11
_BLOCK = 0b01
_AP1, _AP2 = 1 << 6, 1 << 7
_PXN, _UXN, _CONT = 1 << 53, 1 << 54, 1 << 52
_PXN_T, _UXN_T, _APT0, _APT1 = 1 << 59, 1 << 60, 1 << 61, 1 << 62


def ram_size(granule: Granule) -> int:
    return RAM_FRAMES << granule.shift


@dataclass(frozen=True)
class ArmExercise:
    seed: int
    number: int
    format: str
    topic: str
    memory: dict[int, int]
    va: int
    access: Access
    priv: Priv
    ctl: ArmControl
    intended: ArmReason | None

    @property
    def granule(self) -> Granule:
        return GRANULES[self.format]

    def solve(self) -> FormatWalk:
        mem = WordMemory(self.memory, RAM_BASE, ram_size(self.granule))
        return walk_arm(mem, self.va, self.access, self.priv, granule=self.granule, ctl=self.ctl)


class _Build:
    def __init__(self, rng: random.Random, granule: Granule) -> None:
        self.rng, self.g = rng, granule
        self.free = list(range(RAM_FRAMES))
        rng.shuffle(self.free)
        self.words: dict[int, int] = {}
        self.access = rng.choice(list(Access))
        self.priv = rng.choice([Priv.U, Priv.S])
        self.upper = rng.random() < 0.3
        t0sz = rng.choice([16, 16, 16, 25, 28, 33] if granule.shift == 12 else [16, 16, 17, 28])
        t1sz = rng.choice([16, 16, 25, 34])
        self.ctl = ArmControl(
            ttbr0=self.frame(),
            ttbr1=self.frame(),
            t0sz=t0sz,
            t1sz=t1sz,
            pa_bits=rng.choice([48, 48, 44, 40]),
            ha=rng.random() < 0.2,
            wxn=rng.random() < 0.15,
            pan=rng.random() < 0.15,
        )
        self.new_va()

    def new_va(self) -> None:
        va_bits = self.va_bits
        va = self.rng.getrandbits(va_bits) & ~3
        if self.upper:
            va |= ((1 << 64) - 1) ^ ((1 << va_bits) - 1)
        self.va = va

    @property
    def va_bits(self) -> int:
        return 64 - (self.ctl.t1sz if self.upper else self.ctl.t0sz)

    @property
    def start(self) -> int:
        return self.g.start_level(self.va_bits)

    def frame(self) -> int:
        return RAM_BASE + (self.free.pop() << self.g.shift)

    def set(self, **changes) -> None:
        self.ctl = dataclasses.replace(self.ctl, **changes)

    def index(self, level: int) -> int:
        low = self.g.level_shift(level)
        width = min(self.va_bits, low + self.g.stride) - low
        return (self.va >> low) & ((1 << width) - 1)

    def perms(self) -> int:
        """AP, UXN, PXN bits that allow the access at the current EL (with WXN and PAN as they are)."""
        rng = self.rng
        el0 = self.priv is Priv.U
        if self.access is Access.FETCH:
            if el0:
                return rng.choice([0b00, 0b11, 0b10]) << 6 | rng.choice([0, _PXN])  # not EL0-writable: WXN-safe
            ap = rng.choice([0b10, 0b11] if self.ctl.wxn else [0b00, 0b10, 0b11])
            if self.ctl.pan and ap & 1:
                ap = 0b10
            return ap << 6 | rng.choice([0, _UXN])
        if el0:
            ap = 0b01 if self.access is Access.STORE else rng.choice([0b01, 0b11])
        else:
            choices = [0b00, 0b01] if self.access is Access.STORE else [0b00, 0b01, 0b10, 0b11]
            if self.ctl.pan:
                choices = [c for c in choices if not c & 1]
            ap = rng.choice(choices)
        return ap << 6 | rng.choice([0, _UXN, _PXN, _UXN | _PXN])

    def target(self, level: int) -> int:
        shift = self.g.level_shift(level)
        return self.rng.getrandbits(max(self.ctl.pa_bits - shift, 0)) << shift

    def leaf(self, level: int, bits: int, af: bool = True) -> int:
        kind = _VALID_TABLE if level == 3 else _BLOCK
        value = self.target(level) | kind | bits | (AF if af else 0)
        value |= self.rng.randrange(8) << 2 | self.rng.choice([0, 3]) << 8  # AttrIndx, SH
        if self.rng.random() < 0.3:
            value |= 1 << 11  # nG
        return value

    def path(self, stop: int, last: int, table_bits: dict[int, int] | None = None) -> int:
        table = self.ctl.ttbr1 if self.upper else self.ctl.ttbr0
        for level in range(self.start, 4):
            addr = table + self.index(level) * 8
            if level == stop:
                self.words[addr] = last
                self._decoys(table, addr, level)
                return addr
            child = self.frame()
            self.words[addr] = child | _VALID_TABLE | (table_bits or {}).get(level, 0)
            self._decoys(table, addr, level)
            table = child
        raise AssertionError("stop is a level of the walk")

    def _decoys(self, table: int, used: int, level: int) -> None:
        rng = self.rng
        here = (used - table) // 8
        entries = 1 << (min(self.va_bits, self.g.level_shift(level) + self.g.stride) - self.g.level_shift(level))
        for index in sorted({(here + 1) % entries, (here - 1) % entries, rng.randrange(entries)} - {here})[:2]:
            addr = table + index * 8
            if addr in self.words:
                continue
            if rng.random() < 0.5 and level >= self.g.first_block_level:
                self.words[addr] = self.leaf(level, rng.randrange(4) << 6)
            else:
                self.words[addr] = self.target(3) | rng.choice([0, 2, 0x400])  # invalid: bit 0 clear

    def leaf_level(self) -> int:
        return self.rng.choice([3, 3] + list(range(max(self.start, self.g.first_block_level), 3)))


def _ok(b: _Build, level: int | None = None) -> ArmReason | None:
    level = b.leaf_level() if level is None else level
    b.path(level, b.leaf(level, b.perms()))
    return None


def _page(b: _Build) -> ArmReason | None:
    return _ok(b, 3)


def _block(b: _Build) -> ArmReason | None:
    levels = list(range(max(b.start, b.g.first_block_level), 3))
    if not levels:
        b.set(t0sz=16, t1sz=16)
        b.new_va()
        levels = list(range(max(b.start, b.g.first_block_level), 3))
    return _ok(b, b.rng.choice(levels))


def _invalid(b: _Build) -> ArmReason | None:
    rng = b.rng
    case = rng.choice(["invalid", "invalid", "l3-01", "block-level"])
    if case == "block-level" and b.start < b.g.first_block_level:
        level = rng.randrange(b.start, b.g.first_block_level)
        b.path(level, b.leaf(level, b.perms()))
        return ArmReason.BLOCK_LEVEL
    if case == "l3-01":
        b.path(3, b.leaf(3, b.perms()) & ~2)
        return ArmReason.RESERVED_L3
    level = rng.randrange(b.start, 4)
    b.path(level, rng.choice([0, b.target(3) | 2 | AF]))
    return ArmReason.INVALID


def _ttbr(b: _Build) -> ArmReason | None:
    rng = b.rng
    if rng.random() < 0.6:
        b.upper = not b.upper if rng.random() < 0.5 else b.upper
        b.new_va()
        return _ok(b)
    _ok(b)
    b.va ^= 1 << rng.randrange(b.va_bits, 63)  # the tables map the low bits, the top bits are mixed
    return ArmReason.VA_RANGE


def _address_size(b: _Build) -> ArmReason | None:
    rng = b.rng
    pa_bits = rng.choice([32, 36, 40])
    b.set(pa_bits=pa_bits)
    high = 1 << rng.randrange(pa_bits, 48)
    case = rng.choice(["output", "output", "table", "ttbr"])
    level = b.leaf_level()
    if case == "output":
        b.path(level, b.leaf(level, b.perms()) | high)
        return ArmReason.OUTPUT_SIZE
    if case == "table" and level > b.start:
        b.path(level, b.leaf(level, b.perms()), table_bits={rng.randrange(b.start, level): high})
        return ArmReason.TABLE_SIZE
    b.path(level, b.leaf(level, b.perms()))
    if b.upper:
        b.set(ttbr1=b.ctl.ttbr1 | high)
    else:
        b.set(ttbr0=b.ctl.ttbr0 | high)
    return ArmReason.TTBR_SIZE


def _access_flag(b: _Build) -> ArmReason | None:
    level = b.leaf_level()
    b.path(level, b.leaf(level, b.perms(), af=False))
    return None if b.ctl.ha else ArmReason.ACCESS_FLAG


def _ap(b: _Build) -> ArmReason | None:
    rng = b.rng
    b.access = rng.choice([Access.LOAD, Access.STORE])
    b.set(pan=False)
    ap = rng.randrange(4)
    level = b.leaf_level()
    b.path(level, b.leaf(level, ap << 6))
    if b.priv is Priv.U:
        if not ap & 1:
            return ArmReason.NO_EL0
        return ArmReason.READ_ONLY if b.access is Access.STORE and ap != 0b01 else None
    return ArmReason.READ_ONLY if b.access is Access.STORE and ap & 2 else None


def _execute_never(b: _Build) -> ArmReason | None:
    rng = b.rng
    b.access = Access.FETCH
    level = b.leaf_level()
    ap = rng.randrange(4)
    xn = rng.choice([0, _UXN, _PXN, _UXN | _PXN])
    b.path(level, b.leaf(level, ap << 6 | xn))
    if b.priv is Priv.U:
        if xn & _UXN:
            return ArmReason.UXN
        return ArmReason.WXN if b.ctl.wxn and ap == 0b01 else None
    if xn & _PXN:
        return ArmReason.PXN
    if ap == 0b01:
        return ArmReason.EL0_WRITABLE
    return ArmReason.WXN if b.ctl.wxn and not ap & 2 else None


def _table_attrs(b: _Build) -> ArmReason | None:
    rng = b.rng
    level = 3
    bit = rng.choice([_APT0, _APT1, _UXN_T, _PXN_T])
    where = rng.randrange(b.start, level)
    b.set(pan=False, wxn=False)
    if bit == _APT0:
        b.priv, b.access = Priv.U, Access.LOAD
        b.path(level, b.leaf(level, 0b01 << 6), table_bits={where: bit})
        return ArmReason.NO_EL0
    if bit == _APT1:
        b.access = Access.STORE
        b.path(level, b.leaf(level, 0b01 << 6 if b.priv is Priv.U else 0), table_bits={where: bit})
        return ArmReason.READ_ONLY
    b.access = Access.FETCH
    b.path(level, b.leaf(level, 0b11 << 6), table_bits={where: bit})
    if bit == _UXN_T:
        return ArmReason.UXN if b.priv is Priv.U else None
    return ArmReason.PXN if b.priv is Priv.S else None


def _pan(b: _Build) -> ArmReason | None:
    rng = b.rng
    b.priv = Priv.S
    b.access = rng.choice([Access.LOAD, Access.STORE])
    b.set(pan=rng.random() < 0.7)
    ap = rng.choice([0b01, 0b11, 0b00]) if b.access is Access.LOAD else rng.choice([0b01, 0b00])
    level = b.leaf_level()
    b.path(level, b.leaf(level, ap << 6))
    return ArmReason.PAN if b.ctl.pan and ap & 1 else None


def _contiguous(b: _Build) -> ArmReason | None:
    rng = b.rng
    levels = [lv for lv in range(b.start + 1, 4) if b.g.contiguous[lv] and (lv == 3 or b.g.blocks_at(lv))]
    level = rng.choice(levels)
    run = b.g.contiguous[level]
    shift = b.g.level_shift(level)
    leaf = b.leaf(level, b.perms()) | _CONT
    base = leaf & ((1 << 48) - 1) & ~((run << shift) - 1)  # the run maps an aligned range
    attrs = leaf & ~((1 << 48) - 1 & ~((1 << shift) - 1))
    index = b.index(level) & (run - 1)
    addr = b.path(level, attrs | base | index << shift)
    first = addr - index * 8
    for i in range(run):  # the whole run, consistent (anything else is CONSTRAINED UNPREDICTABLE)
        b.words[first + i * 8] = attrs | base | i << shift
    return None


_BUILDERS = {
    "page": _page,
    "block": _block,
    "invalid": _invalid,
    "ttbr": _ttbr,
    "address-size": _address_size,
    "access-flag": _access_flag,
    "ap": _ap,
    "execute-never": _execute_never,
    "table-attrs": _table_attrs,
    "pan": _pan,
    "contiguous": _contiguous,
}
assert set(_BUILDERS) == set(TOPICS)


def make_exercise(seed: int, number: int, topics: list[str] | None = None, *, fmt: str = "aarch64-4k") -> ArmExercise:
    chosen = list(topics or TOPICS)
    for t in chosen:
        if t not in TOPICS:
            raise ConfigError(f"unknown topic {t!r} for --format {fmt}; topics: {', '.join(TOPICS)}")
    rng = random.Random(f"hwsim-{fmt}-quiz:{seed}:{number}")
    topic = rng.choice(chosen)
    b = _Build(rng, GRANULES[fmt])
    intended = _BUILDERS[topic](b)
    return ArmExercise(seed, number, fmt, topic, dict(sorted(b.words.items())), b.va, b.access, b.priv, b.ctl, intended)


def make_quiz(seed: int, count: int = 3, topics: list[str] | None = None, *, fmt: str = "aarch64-4k") -> list:
    check_seed_and_count(seed, count)
    return [make_exercise(seed, n, topics, fmt=fmt) for n in range(1, count + 1)]


def preamble(fmt: str = "aarch64-4k") -> list[str]:
    g = GRANULES[fmt]
    blocks = " and ".join(f"level {lv}" for lv in range(g.first_block_level, 3))
    return [
        f"Reference (Arm ARM D8: VMSAv8-64 stage 1, EL1&0, {1 << (g.shift - 10)} KiB granule, PAs of 48 bits at most):",
        "  VA bit 63 = 0: TTBR0_EL1, and bits 63:64-T0SZ must be 0; bit 63 = 1: TTBR1_EL1, and bits",
        "  63:64-T1SZ must be 1; otherwise a translation fault at level 0.  Each level indexes",
        f"  {g.stride} VA bits above the {g.shift}-bit offset; the walk starts at level",
        f"  4 - ceil((VA bits - {g.shift}) / {g.stride}).",
        "  Descriptor bits 1:0: x0 invalid; 11 a table (levels 0-2) or a page (level 3);",
        f"  01 a block ({blocks}); 01 at level 3 is invalid.",
        "  Table: next table 47:G (G the granule's shift), NSTable 63, APTable 62:61, UXNTable 60,",
        "  PXNTable 59.  Block/page: output address 47:size, UXN 54, PXN 53, Contiguous 52, nG 11,",
        "  AF 10, SH 9:8, AP[2:1] 7:6, NS 5, AttrIndx 4:2.  AP[2:1]:",
        *(f"    {ap:02b} {meaning}" for ap, meaning in AP_MEANING.items()),
        "  APTable[0]=1 takes EL0 access away below it, APTable[1]=1 write access; UXNTable and",
        "  PXNTable add UXN and PXN.  EL1 never executes what EL0 may write; SCTLR_EL1.WXN=1: what",
        "  is writable is execute-never; PSTATE.PAN=1: EL1 data accesses to pages EL0 may read fault.",
        "  Order: at each level, translation and address size (table or output address above the",
        "  PA size); then AF=0 (an access flag fault unless TCR_EL1.HA=1); then the permissions.",
        "  FSC: address size 0b0000LL, translation 0b0001LL, access flag 0b0010LL, permission",
        "  0b0011LL, external abort on the walk 0b0101LL (LL = the level).",
    ]


def format_exercise(ex: ArmExercise) -> list[str]:
    c, g = ex.ctl, ex.granule
    size = ram_size(g)
    lines = [f"Exercise {ex.number} (seed {ex.seed}), {g.title}", ""]
    frames = f"{RAM_FRAMES} frames of {1 << (g.shift - 10)} KiB"
    lines.append(f"The tables live in RAM at {RAM_BASE:#x}-{RAM_BASE + size - 1:#x} ({frames}).")
    lines.append("The non-zero doublewords of that RAM (all other bytes are zero):")
    lines += memory_lines(ex.memory, 1 << g.shift)
    lines.append("")
    lines.append(f"TTBR0_EL1 = {c.ttbr0:#x}   TTBR1_EL1 = {c.ttbr1:#x}")
    lines.append(f"TCR_EL1   : T0SZ={c.t0sz} T1SZ={c.t1sz} IPS={c.pa_bits}-bit PA HA={int(c.ha)}")
    lines.append(f"SCTLR_EL1.WXN={int(c.wxn)}  PSTATE.PAN={int(c.pan)}")
    lines.append(
        f"access    = {READ_WRITE_WORDS[ex.access]} at {ex.va:#018x}, at {'EL0' if ex.priv is Priv.U else 'EL1'}"
    )
    lines.append("")
    lines.append("Question: the physical address (and any AF the hardware sets), or the abort:")
    lines.append("the fault, its level and the fault status code (DFSC or IFSC).")
    return lines


def format_answer(ex: ArmExercise) -> list[str]:
    result = ex.solve()
    lines = [f"Answer {ex.number}: {answer_line(result)}", f"Topic: {TOPICS[ex.topic]}", "Worked solution:"]
    lines.extend("  " + line for line in format_explained(result))
    return lines


def exercise_to_json(ex: ArmExercise, *, solve: bool) -> dict:
    c = ex.ctl
    out: dict = {
        "number": ex.number,
        "format": ex.format,
        "ram": {"base": hex(RAM_BASE), "size": hex(ram_size(ex.granule))},
        "memory": {hex(pa): hex(v) for pa, v in ex.memory.items()},
        "ttbr0": hex(c.ttbr0),
        "ttbr1": hex(c.ttbr1),
        "tcr": {"t0sz": c.t0sz, "t1sz": c.t1sz, "pa_bits": c.pa_bits, "ha": c.ha},
        "wxn": c.wxn,
        "pan": c.pan,
        "va": hex(ex.va),
        "access": ex.access.value,
        "priv": ex.priv.name,
    }
    if solve:
        result = ex.solve()
        out["topic"] = ex.topic
        out["answer"] = answer_line(result)
        out["walk"] = walk_to_json(result)
    return out
