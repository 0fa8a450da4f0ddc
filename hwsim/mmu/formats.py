"""Walks of other architectures' page tables (x86-64, AArch64) as records, and their text.

The RISC-V walker (``walker.py``) runs the emulated CPU; the x86-64 and AArch64 walkers
(``x86_walk.py``, ``arm_walk.py``) walk tables that students write or quizzes generate, in a
physical memory modelled in Python (any object with ``read_u64`` raising BusError where there is
no memory, and ``write_u64`` for accessed/dirty updates).  Both return a :class:`FormatWalk`:
the steps (each entry's address, value, decoded fields and the walker's decision), then a
physical address or a :class:`FormatFault`, and every line the worked explanation prints is
in the record, so the CLI, the quizzes and the tests read one thing.

``FORMATS`` names every format the command line accepts::

    sv39                          RISC-V (walker.py)
    x86-64, x86-64-5level         x86_bits.py + x86_walk.py
    aarch64-4k/-16k/-64k          arm_bits.py + arm_walk.py
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import BusError, ConfigError

FORMATS = ("sv39", "x86-64", "x86-64-5level", "aarch64-4k", "aarch64-16k", "aarch64-64k")


@dataclass(frozen=True, slots=True)
class FormatStep:
    """One entry read: the table, the index, the entry's address and value, its fields, the decision."""

    level: int
    name: str  # "PML4E", "level 2"
    table: int
    index: int
    addr: int
    value: int | None  # None: nothing could be read there
    fields: str  # the entry decoded, "P=1 R/W=1 ..."
    decision: str  # "-> points to the PDPT at 0x3000", "-> leaf: 2 MiB page"


@dataclass(frozen=True, slots=True)
class FormatFault:
    """Why a walk stopped: an architectural fault with its code, the level, one sentence."""

    kind: str  # "page fault", "general-protection", "translation", "access flag", "permission", ...
    level: int | None
    code: int | None  # x86: the #PF error code; AArch64: the DFSC/IFSC
    summary: str  # "#PF, error code 0x7 (P=1 W/R=1 U/S=1 ...)" or "data abort: permission fault, level 3 ..."
    reason: str  # the walker's reason in words
    syndrome: int | None = None  # AArch64: the ESR_EL1 value


@dataclass(slots=True)
class FormatWalk:
    """A walk and its outcome: ``pa`` (with ``page_size``) or ``fault``."""

    format: str
    va: int
    access: str  # "fetch", "load", "store"
    priv: str  # "U" or "S" (x86: CPL=3 / CPL<3; AArch64: EL0 / EL1)
    header: list[str]  # the context and the VA split, as the explanation prints them
    steps: list[FormatStep] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # the permission check, in words
    pa: int | None = None
    page_size: int | None = None
    level: int | None = None
    mapping: str = "page"  # what the leaf maps: "page", or "block" (AArch64 above level 3)
    fault: FormatFault | None = None
    updates: list[tuple[int, int, int]] = field(default_factory=list)  # (addr, old, new): A/D/AF set
    updates_written: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.pa is not None


def va_drawing(va_width: int, fields: list[tuple[str, int, int]], va: int) -> list[str]:
    """The VA drawn as its fields: ``fields`` are ``(label, high bit, low bit)``, high first."""
    heads, labels, values = [], [], []
    for label, hi, lo in fields:
        value = (va >> lo) & ((1 << (hi - lo + 1)) - 1)
        width = max(len(label), len(f"{hi}..{lo}"), len(f"{value:#x}")) + 2
        heads.append(f"{hi}..{lo}".center(width))
        labels.append(label.center(width))
        values.append(f"{value:#x}".center(width))
    return ["  " + " " + " ".join(heads), "  |" + "|".join(labels) + "|", "  |" + "|".join(values) + "|"]


def format_explained(result: FormatWalk) -> list[str]:
    """The worked solution: header, each entry, the checks, and the result."""
    lines = list(result.header)
    for s in result.steps:
        lines.append(f"{s.name}: address = {s.table:#x} + {s.index:#x}*8 = {s.addr:#x}")
        if s.value is None:
            lines.append(f"       {s.decision}")
            continue
        lines.append(f"       entry = {s.value:#018x}: {s.fields}")
        lines.append(f"       {s.decision}")
    lines.extend(result.checks)
    lines.extend(result.notes)
    lines.append(outcome_line(result))
    return lines


def format_brief(result: FormatWalk) -> list[str]:
    """One line per entry and the result (``hwsim mmu walk`` without ``--explain``)."""
    lines = result.header[:2]  # the registers, the access
    for s in result.steps:
        value = "(no memory)" if s.value is None else f"{s.value:#018x}"
        lines.append(f"  {s.name} @ {s.addr:#x} = {value}  {s.decision.removeprefix('-> ')}")
    lines.append(outcome_line(result))
    return lines


def outcome_line(result: FormatWalk) -> str:
    if result.fault is not None:
        return f"result: {result.fault.summary}: {result.fault.reason}"
    assert result.pa is not None and result.page_size is not None
    text = f"result: pa {result.pa:#x} ({size_name(result.page_size)} {result.mapping})"
    if result.updates:
        verb = "sets" if result.updates_written else "would set (not written)"
        text += f"; the hardware {verb}: " + ", ".join(f"{a:#x}: {o:#x} -> {n:#x}" for a, o, n in result.updates)
    return text


def answer_line(result: FormatWalk) -> str:
    """The short answer a quiz prints: the PA and the updates, or the fault."""
    if result.fault is not None:
        return f"{result.fault.summary}: {result.fault.reason}"
    assert result.pa is not None and result.page_size is not None
    text = f"pa {result.pa:#x} ({size_name(result.page_size)} {result.mapping})"
    if result.updates:
        text += "; the hardware rewrites " + ", ".join(
            f"the entry at {a:#x}: {o:#018x} -> {n:#018x}" for a, o, n in result.updates
        )
    return text


def group_runs(entries: list[tuple[int, int]], is_leaf: Callable[[int], bool], size: int) -> list[tuple[int, int, int]]:
    """``(first, last, value)``: consecutive leaf entries whose values step by ``size`` (consecutive frames,
    the same attributes) as one run, as ``hwsim mmu dump`` shows them; anything else alone."""
    runs: list[tuple[int, int, int]] = []
    for index, value in entries:
        if runs:
            first, last, start = runs[-1]
            if index == last + 1 and is_leaf(start) and value == start + (index - first) * size:
                runs[-1] = (first, index, start)
                continue
        runs.append((index, index, value))
    return runs


def size_name(size: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} B"


def walk_to_json(result: FormatWalk) -> dict:
    out: dict = {
        "format": result.format,
        "result": "ok" if result.ok else "fault",
        "va": hex(result.va),
        "access": result.access,
        "priv": result.priv,
        "steps": [
            {
                "level": s.level,
                "entry": s.name,
                "table": hex(s.table),
                "index": s.index,
                "addr": hex(s.addr),
                "value": None if s.value is None else hex(s.value),
                "fields": s.fields,
                "decision": s.decision,
            }
            for s in result.steps
        ],
    }
    if result.ok:
        assert result.pa is not None and result.page_size is not None
        out.update(pa=hex(result.pa), page_size=result.page_size, level=result.level)
        out["updates"] = [{"addr": hex(a), "old": hex(o), "new": hex(n)} for a, o, n in result.updates]
    else:
        f = result.fault
        assert f is not None
        out["fault"] = {
            "kind": f.kind,
            "level": f.level,
            "code": None if f.code is None else hex(f.code),
            "summary": f.summary,
            "reason": f.reason,
        }
        if f.syndrome is not None:
            out["fault"]["esr"] = hex(f.syndrome)
    return out


class WordMemory:
    """Teaching RAM: a dict of non-zero 8-byte words over ``[base, base + size)``; outside it is a BusError."""

    def __init__(self, words: dict[int, int], base: int, size: int) -> None:
        self.words = dict(words)
        self.base, self.size = base, size

    def _check(self, pa: int) -> None:
        if not self.base <= pa <= self.base + self.size - 8:
            raise BusError(f"no RAM at physical address {pa:#x}", address=pa, size=8)

    def read_u64(self, pa: int) -> int:
        self._check(pa)
        return self.words.get(pa, 0)

    def write_u64(self, pa: int, value: int) -> None:
        self._check(pa)
        if value:
            self.words[pa] = value
        else:
            self.words.pop(pa, None)


def _number(value: object, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            pass
    raise ConfigError(f"{where}: {value!r} is not a number (hex 0x... or decimal)")


def load_tables(path: str) -> WordMemory:
    """A JSON file of page tables: ``{"ram": {"base": ..., "size": ...}, "memory": {"0xADDR": "0xVALUE", ...}}``.

    The same keys as an exercise of ``hwsim mmu quiz --format ... --json``, so an exercise can be walked.
    """
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read tables {path!r}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"tables {path!r}: not JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("memory"), dict):
        raise ConfigError(f'tables {path!r}: expected an object with "memory": {{"0xADDRESS": "0xVALUE", ...}}')
    ram = data.get("ram", {"base": 0, "size": 1 << 48})
    if not isinstance(ram, dict):
        raise ConfigError(f'tables {path!r}: "ram" must be an object with "base" and "size"')
    base = _number(ram.get("base"), f"tables {path!r}: ram.base")
    size = _number(ram.get("size"), f"tables {path!r}: ram.size")
    words = {}
    for key, value in data["memory"].items():
        addr = _number(key, f"tables {path!r}: memory key")
        if addr % 8:
            raise ConfigError(f"tables {path!r}: memory address {addr:#x} is not 8-byte aligned")
        word = _number(value, f"tables {path!r}: memory[{key}]")
        if not 0 <= word < 1 << 64:
            raise ConfigError(f"tables {path!r}: memory[{key}] = {word:#x} is not a 64-bit value")
        if not base <= addr <= base + size - 8:
            raise ConfigError(f"tables {path!r}: memory address {addr:#x} is outside ram {base:#x}+{size:#x}")
        words[addr] = word
    return WordMemory(words, base, size)
