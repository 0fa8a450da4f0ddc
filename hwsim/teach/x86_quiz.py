"""x86-64 paging exercises (4-level and 5-level), from a seed, answered by hwsim's x86 walker
(``hwsim mmu quiz --format x86-64`` or ``x86-64-5level``).

Each exercise is a small RAM holding paging structures, printed as its non-zero quadwords, a CR3,
the control bits (CR0.WP, EFER.NXE, CR4.SMEP/SMAP/PKE, EFLAGS.AC, PKRU, MAXPHYADDR) and one
access (linear address, fetch/read/write, CPL=3 or CPL=0).  The student gives the physical
address (and the A/D bits the processor sets), or the exception: #GP, or #PF with its error
code.  Exercise ``n`` of seed ``s`` depends only on ``(s, n)``, the format and the topics; the
answer is the walker's (``hwsim.mmu.x86_walk``), and the tests check it against the generator's
intent and ``tests/spec_walk_x86.py`` on thousands of seeds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from ..errors import ConfigError
from ..mmu.formats import FormatWalk, WordMemory, answer_line, format_explained, walk_to_json
from ..mmu.x86_bits import LEVELS, X86_64, X86_64_5LEVEL, X86Format
from ..mmu.x86_walk import X86Control, X86Reason, walk_x86
from ..riscv.priv import Access, Priv
from . import topics
from .mmu_quiz import READ_WRITE_WORDS, check_seed_and_count, memory_lines

RAM_BASE = 0x0010_0000
RAM_FRAMES = 16
RAM_SIZE = RAM_FRAMES * 0x1000
TOPICS = topics.X86
FORMATS = {"x86-64": X86_64, "x86-64-5level": X86_64_5LEVEL}

_P, _RW, _US, _A, _D, _PS = 1, 2, 4, 0x20, 0x40, 0x80
_XD = 1 << 63


@dataclass(frozen=True)
class X86Exercise:
    seed: int
    number: int
    format: str
    topic: str
    memory: dict[int, int]
    cr3: int
    va: int
    access: Access
    priv: Priv
    ctl: X86Control
    intended: X86Reason | None  # None: translates

    @property
    def fmt(self) -> X86Format:
        return FORMATS[self.format]

    def solve(self) -> FormatWalk:
        mem = WordMemory(self.memory, RAM_BASE, RAM_SIZE)
        return walk_x86(mem, self.cr3, self.va, self.access, self.priv, fmt=self.fmt, ctl=self.ctl)


class _Build:
    def __init__(self, rng: random.Random, fmt: X86Format) -> None:
        self.rng, self.fmt = rng, fmt
        self.free = list(range(RAM_FRAMES))
        rng.shuffle(self.free)
        self.words: dict[int, int] = {}
        self.root = self.frame()
        self.access = rng.choice(list(Access))
        self.priv = rng.choice([Priv.U, Priv.S])
        self.maxphy = rng.choice([52, 46, 40, 39])
        self.ctl = X86Control(
            nxe=rng.random() < 0.85,
            wp=rng.random() < 0.8,
            smep=rng.random() < 0.3,
            smap=rng.random() < 0.3,
            ac=rng.random() < 0.2,
            maxphyaddr=self.maxphy,
        )
        self.va = fmt.canonical(rng.getrandbits(fmt.va_bits) & ~3)

    def frame(self) -> int:
        return RAM_BASE + self.free.pop() * 0x1000

    def rights(self) -> int:
        """R/W, U/S bits that allow the access (with the current controls) in a pointer or a leaf."""
        bits = _P | _RW
        if self.priv is Priv.U or (self.access is not Access.FETCH and not self.ctl.smap) and self.rng.random() < 0.5:
            bits |= _US
        if self.priv is Priv.S and bits & _US:
            if self.access is Access.FETCH and self.ctl.smep:
                bits &= ~_US
            if self.access is not Access.FETCH and self.ctl.smap and not self.ctl.ac:
                bits &= ~_US
        if self.rng.random() < 0.4:
            bits |= _A
        return bits

    def target(self, level: int) -> int:
        """A physical address for a page at ``level``, below MAXPHYADDR, aligned to its size."""
        shift = LEVELS[level].shift
        return self.rng.getrandbits(min(self.maxphy, 40) - shift) << shift

    def path(self, stop: int, last: int, pointer_bits: dict[int, int] | None = None) -> None:
        table = self.root
        for level in range(self.fmt.levels - 1, -1, -1):
            addr = table + self.fmt.index(self.va, level) * 8
            if level == stop:
                self.words[addr] = last
                self._decoys(table, addr)
                return
            child = self.frame()
            bits = self.rights() | (pointer_bits or {}).get(level, 0)
            if self.rng.random() < 0.1:
                bits |= 0x18  # PWT, PCD
            self.words[addr] = child | bits
            self._decoys(table, addr)
            table = child
        raise AssertionError("stop is a level of the format")

    def _decoys(self, table: int, used: int) -> None:
        rng = self.rng
        here = (used - table) // 8
        for index in sorted({(here + 1) % 512, (here - 1) % 512, rng.randrange(512)} - {here})[: rng.randint(1, 2)]:
            addr = table + index * 8
            if addr in self.words:
                continue
            if rng.random() < 0.5:
                value = self.target(0) | self.rights() | rng.choice([0, _D])
            else:
                value = self.target(0) | rng.randrange(0x100) & ~_P
            self.words[addr] = value

    def leaf(self, level: int, bits: int) -> int:
        value = self.target(level) | bits
        if level:
            value |= _PS
        if self.rng.random() < 0.2:
            value |= 0x100  # G
        return value


def _ok(b: _Build, level: int) -> X86Reason | None:
    b.path(level, b.leaf(level, b.rights() | b.rng.choice([0, _D])))
    return None


def _page(b: _Build) -> X86Reason | None:
    return _ok(b, 0)


def _large_page(b: _Build) -> X86Reason | None:
    return _ok(b, b.rng.choice([1, 1, 2]))


def _not_present(b: _Build) -> X86Reason | None:
    level = b.rng.randrange(b.fmt.levels)
    junk = 0 if b.rng.random() < 0.4 else b.target(0) | (b.rights() & ~_P)
    b.path(level, junk)
    return X86Reason.NOT_PRESENT


def _reserved(b: _Build) -> X86Reason | None:
    rng = b.rng
    case = rng.choice(["maxphy", "xd", "ps-top", "large-low"])
    if case == "maxphy" and b.maxphy == 52:
        case = "large-low"
    if case == "xd":
        b.ctl = replace(b.ctl, nxe=False)
        level = rng.randrange(b.fmt.levels)
        if level:
            b.path(level - 1, b.leaf(level - 1, b.rights()), pointer_bits={level: _XD})
        else:
            b.path(0, b.leaf(0, b.rights()) | _XD)
        return X86Reason.RESERVED
    if case == "ps-top":
        top = rng.randrange(3, b.fmt.levels)
        b.path(top, b.frame() | b.rights() | _PS)
        return X86Reason.RESERVED
    if case == "large-low":
        level = rng.choice([1, 2])
        b.path(level, b.leaf(level, b.rights()) | 1 << rng.randrange(13, LEVELS[level].shift))
        return X86Reason.RESERVED
    high = 1 << rng.randrange(b.maxphy, 52)
    level = rng.randrange(b.fmt.levels)
    if level:
        b.path(level - 1, b.leaf(level - 1, b.rights()), pointer_bits={level: high})
    else:
        b.path(0, b.leaf(0, b.rights()) | high)
    return X86Reason.RESERVED


def _user_supervisor(b: _Build) -> X86Reason | None:
    rng = b.rng
    b.priv = Priv.U
    level = rng.choice([0, 0, 1])
    clear_at = rng.randrange(level, b.fmt.levels)  # the level whose U/S is 0
    user_ok = rng.random() < 0.3
    leaf_bits = b.rights() | _US
    b.access = rng.choice([Access.LOAD, Access.FETCH]) if rng.random() < 0.5 else Access.LOAD
    if b.access is Access.FETCH:
        leaf_bits &= ~0  # XD stays clear
    if user_ok:
        b.path(level, b.leaf(level, leaf_bits))
        _set_all(b, _US)
        return None
    b.path(level, b.leaf(level, leaf_bits))
    _set_all(b, _US)
    _clear_at(b, clear_at, _US)
    return X86Reason.USER_SUPERVISOR


def _set_all(b: _Build, bit: int) -> None:
    for addr in _walk_addrs(b):
        b.words[addr] |= bit


def _clear_at(b: _Build, level: int, bit: int) -> None:
    addr = _walk_addrs(b)[b.fmt.levels - 1 - level]
    b.words[addr] &= ~bit


def _walk_addrs(b: _Build) -> list[int]:
    """The entries the VA's walk reads, top level first (as far as the tables go)."""
    out, table = [], b.root
    for level in range(b.fmt.levels - 1, -1, -1):
        addr = table + b.fmt.index(b.va, level) * 8
        out.append(addr)
        value = b.words.get(addr, 0)
        if level == 0 or value & _PS and level in (1, 2) or not value & _P:
            break
        table = value & ((1 << b.maxphy) - 1) & ~0xFFF
    return out


def _read_write(b: _Build) -> X86Reason | None:
    rng = b.rng
    b.access = Access.STORE
    level = rng.choice([0, 0, 1, 2])
    b.ctl = replace(b.ctl, smap=False)
    b.path(level, b.leaf(level, b.rights() | (_US if b.priv is Priv.U else 0)))
    if b.priv is Priv.U:
        _set_all(b, _US)
    addrs = _walk_addrs(b)
    b.words[rng.choice(addrs)] &= ~_RW
    if b.priv is Priv.U:
        return X86Reason.USER_WRITE
    if b.ctl.wp:
        return X86Reason.SUPERVISOR_WRITE
    return None


def _execute_disable(b: _Build) -> X86Reason | None:
    rng = b.rng
    b.access = Access.FETCH
    b.ctl = replace(b.ctl, smep=False)
    level = rng.choice([0, 0, 1])
    b.path(level, b.leaf(level, b.rights()))
    if b.priv is Priv.U:
        _set_all(b, _US)
    b.words[rng.choice(_walk_addrs(b))] |= _XD
    if not b.ctl.nxe:
        b.ctl = replace(b.ctl, nxe=True)
    if rng.random() < 0.25:  # NXE=0 would make XD reserved: show the RSVD fault instead
        b.ctl = replace(b.ctl, nxe=False)
        return X86Reason.RESERVED
    return X86Reason.EXECUTE_DISABLED


def _smep_smap(b: _Build) -> X86Reason | None:
    rng = b.rng
    b.priv = Priv.S
    level = rng.choice([0, 0, 1])
    b.path(level, b.leaf(level, _P | _RW | _US | _A))
    _set_all(b, _US)
    case = rng.choice(["smep", "smap", "smap-ac", "off"])
    if case == "smep":
        b.access = Access.FETCH
        b.ctl = replace(b.ctl, smep=True, nxe=True)
        return X86Reason.SMEP
    b.access = rng.choice([Access.LOAD, Access.STORE])
    b.ctl = replace(b.ctl, smap=case != "off", ac=case == "smap-ac")
    return X86Reason.SMAP if case == "smap" else None


def _pku(b: _Build) -> X86Reason | None:
    rng = b.rng
    b.access = rng.choice([Access.LOAD, Access.STORE, Access.STORE])
    key = rng.randrange(16)
    level = rng.choice([0, 0, 1])
    b.path(level, b.leaf(level, _P | _RW | _US | _A) | key << 59)
    _set_all(b, _US | _RW)
    ad, wd = rng.random() < 0.35, rng.random() < 0.5
    pkru = rng.getrandbits(32) & ~(3 << 2 * key) | int(ad) << 2 * key | int(wd) << (2 * key + 1)
    smap = False if b.priv is Priv.S else b.ctl.smap
    b.ctl = replace(b.ctl, pke=True, pkru=pkru, smap=smap)
    if ad:
        return X86Reason.PKEY_ACCESS
    if wd and b.access is Access.STORE and (b.ctl.wp or b.priv is Priv.U):
        return X86Reason.PKEY_WRITE
    return None


def _accessed_dirty(b: _Build) -> X86Reason | None:
    level = b.rng.choice([0, 0, 1, 2])
    b.path(level, b.leaf(level, b.rights() & ~_A))
    if b.priv is Priv.U:
        _set_all(b, _US)
    if b.access is Access.STORE:
        _set_all(b, _RW)
    if b.access is Access.FETCH:
        for addr in _walk_addrs(b):
            b.words[addr] &= ~_XD
        b.ctl = replace(b.ctl, smep=False)
    if b.priv is Priv.S:
        b.ctl = replace(b.ctl, smap=False)
    return None


def _canonical(b: _Build) -> X86Reason | None:
    rng = b.rng
    if rng.random() < 0.35:
        b.va = b.fmt.canonical(b.va | 1 << (b.fmt.va_bits - 1))
        return _ok(b, rng.choice([0, 1]))
    _ok(b, 0)
    b.va ^= 1 << rng.randrange(b.fmt.va_bits, 64)
    return X86Reason.NON_CANONICAL


_BUILDERS = {
    "page": _page,
    "large-page": _large_page,
    "not-present": _not_present,
    "reserved": _reserved,
    "user-supervisor": _user_supervisor,
    "read-write": _read_write,
    "execute-disable": _execute_disable,
    "smep-smap": _smep_smap,
    "pku": _pku,
    "accessed-dirty": _accessed_dirty,
    "canonical": _canonical,
}
assert set(_BUILDERS) == set(TOPICS)


def make_exercise(seed: int, number: int, topics: list[str] | None = None, *, fmt: str = "x86-64") -> X86Exercise:
    chosen = list(topics or TOPICS)
    for t in chosen:
        if t not in TOPICS:
            raise ConfigError(f"unknown topic {t!r} for --format {fmt}; topics: {', '.join(TOPICS)}")
    rng = random.Random(f"hwsim-{fmt}-quiz:{seed}:{number}")
    topic = rng.choice(chosen)
    b = _Build(rng, FORMATS[fmt])
    intended = _BUILDERS[topic](b)
    cr3 = b.root | rng.choice([0, 0, 0, 0x8, 0x10])
    return X86Exercise(
        seed, number, fmt, topic, dict(sorted(b.words.items())), cr3, b.va, b.access, b.priv, b.ctl, intended
    )


def make_quiz(seed: int, count: int = 3, topics: list[str] | None = None, *, fmt: str = "x86-64") -> list:
    check_seed_and_count(seed, count)
    return [make_exercise(seed, n, topics, fmt=fmt) for n in range(1, count + 1)]


def preamble(fmt: str = "x86-64") -> list[str]:
    five = fmt == "x86-64-5level"
    top = 56 if five else 47
    return [
        f"Reference (Intel SDM vol. 3A ch. 4, {'5-level paging, CR4.LA57=1' if five else '4-level paging'}):",
        f"  linear address: bits 63:{top} all equal (else #GP); "
        + ("PML5 56:48, " if five else "")
        + "PML4 47:39, PDPT 38:30, PD 29:21,",
        "  PT 20:12, offset 11:0.  CR3: bits M-1:12 the root table (M = MAXPHYADDR); PCD 4, PWT 3.",
        "  Entry: P 0, R/W 1, U/S 2, PWT 3, PCD 4, A 5, D 6, PS 7 (PAT in a PTE), G 8, address M-1:12,",
        "  reserved 51:M, PK 62:59 (in an entry that maps a page), XD 63 (reserved when EFER.NXE=0).",
        "  PS=1 in a PDPTE/PDE maps a 1 GiB / 2 MiB page (bits 29:13 / 20:13 reserved; PAT at 12); PS is",
        "  reserved in a PML4E/PML5E.  Rights combine every level: user-mode address if U/S=1 in all,",
        "  writable if R/W=1 in all, execute-disabled if XD=1 in any (NXE=1).  CPL=3 needs a user-mode",
        "  address; CPL<3 writes honour R/W only with CR0.WP=1; SMEP forbids CPL<3 fetches from user",
        "  addresses, SMAP CPL<3 data accesses to them unless EFLAGS.AC=1.  With CR4.PKE=1, user-mode",
        "  addresses: PKRU.AD[key]=1 forbids data accesses, WD[key]=1 writes (CPL<3 ones only with WP=1).",
        "  #PF error code: P 0 (0 = not present), W/R 1, U/S 2 (CPL=3), RSVD 3, I/D 4 (a fetch, with",
        "  NXE=1 or SMEP=1), PK 5.  A success sets A in every entry used and D in the one that maps the",
        "  page on a write.",
    ]


def format_exercise(ex: X86Exercise) -> list[str]:
    c = ex.ctl
    lines = [f"Exercise {ex.number} (seed {ex.seed}), {ex.fmt.title}", ""]
    lines.append(
        f"The paging structures live in RAM at {RAM_BASE:#x}-{RAM_BASE + RAM_SIZE - 1:#x} ({RAM_FRAMES} frames of 4 KiB)."
    )
    lines.append("The non-zero quadwords of that RAM (all other bytes are zero):")
    lines += memory_lines(ex.memory)
    lines.append("")
    lines.append(f"CR3     = {ex.cr3:#x}")
    lines.append(
        f"controls: CR0.WP={int(c.wp)} EFER.NXE={int(c.nxe)} CR4.SMEP={int(c.smep)} CR4.SMAP={int(c.smap)} "
        f"EFLAGS.AC={int(c.ac)} CR4.PKE={int(c.pke)}" + (f" PKRU={c.pkru:#010x}" if c.pke else "")
    )
    lines.append(f"MAXPHYADDR = {c.maxphyaddr}")
    mode = "CPL=3 (user mode)" if ex.priv is Priv.U else "CPL=0 (supervisor mode)"
    lines.append(f"access  = {READ_WRITE_WORDS[ex.access]} at {ex.va:#018x}, {mode}")
    lines.append("")
    lines.append("Question: the physical address (and the A/D bits the processor sets), or the")
    lines.append("exception: #GP, or #PF with its error code, and the entry where the walk stops.")
    return lines


def format_answer(ex: X86Exercise) -> list[str]:
    result = ex.solve()
    lines = [f"Answer {ex.number}: {answer_line(result)}", f"Topic: {TOPICS[ex.topic]}", "Worked solution:"]
    lines.extend("  " + line for line in format_explained(result))
    return lines


def exercise_to_json(ex: X86Exercise, *, solve: bool) -> dict:
    c = ex.ctl
    out: dict = {
        "number": ex.number,
        "format": ex.format,
        "ram": {"base": hex(RAM_BASE), "size": hex(RAM_SIZE)},
        "memory": {hex(pa): hex(v) for pa, v in ex.memory.items()},
        "cr3": hex(ex.cr3),
        "va": hex(ex.va),
        "access": ex.access.value,
        "priv": ex.priv.name,
        "controls": {
            "wp": c.wp,
            "nxe": c.nxe,
            "smep": c.smep,
            "smap": c.smap,
            "ac": c.ac,
            "pke": c.pke,
            "pkru": hex(c.pkru),
            "maxphyaddr": c.maxphyaddr,
        },
    }
    if solve:
        result = ex.solve()
        out["topic"] = ex.topic
        out["answer"] = answer_line(result)
        out["walk"] = walk_to_json(result)
    return out
