"""Walks in words and in JSON: the VA split into fields, each level's PTE decoded, the outcome."""

from __future__ import annotations

from .bits import (
    PAGE_MASK,
    PAGE_SHIFT,
    PTE_HIGH_RESERVED_SHIFT,
    PTE_RSW_MASK,
    PTE_RSW_SHIFT,
    PagingMode,
    Pte,
    describe_flags,
    pte_ppn,
    satp_fields,
)
from .walker import LEVEL_NAMES, NAPOT_NAME, NAPOT_SIZE, WalkResult


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 table``, ``2 tables`` (``many`` for irregular plurals: ``plural(n, "entry", "entries")``)."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def perms_string(pte: int) -> str:
    """``rwxu`` style, ``-`` for clear bits (G shown as ``g``)."""
    return "".join(ch if pte & bit else "-" for ch, bit in (("r", 2), ("w", 4), ("x", 8), ("u", 16))) + (
        "g" if pte & 32 else ""
    )


def va_fields_line(result: WalkResult) -> str:
    mode = result.mode
    fields = "  ".join(f"{name}={value:#05x}" for name, value in mode.split_va(result.va).items())
    return f"va {result.va:#018x} ({mode.name}): {fields}"


def format_walk(result: WalkResult) -> list[str]:
    """The walk as lines of text, one per level plus a header and the result."""
    lines = [
        va_fields_line(result),
        f"root table {result.root:#x}, {result.access.value} as {result.priv.name}-mode, "
        f"SUM={int(result.sum)} MXR={int(result.mxr)}",
    ]
    for s in result.steps:
        lines.append(
            f"  level {s.level}: PTE @ {s.pte_addr:#x} = {s.pte:#018x} "
            f"ppn={pte_ppn(s.pte):#x} {describe_flags(s.pte)}  {s.describe(flags=False)}"
        )
    tr = result.translation
    if tr is not None:
        size = NAPOT_NAME if tr.page_size == NAPOT_SIZE else LEVEL_NAMES[tr.level]
        lines.append(
            f"result: pa {tr.pa:#x}  ({size} at va {tr.page_va:#x} -> pa {tr.page_pa:#x}, {perms_string(tr.pte)})"
        )
    else:
        f = result.fault
        assert f is not None  # a walk without a translation has a fault
        lines.append(f"result: {result.access.value} {f.kind} (cause {int(f.cause)}): {f.message}")
    return lines


def walk_to_json(result: WalkResult) -> dict:
    """A JSON-ready dict; addresses and PTE values are hex strings (lossless in every language)."""
    out: dict = {
        "result": "ok" if result.ok else "fault",
        "mode": result.mode.name,
        "va": hex(result.va),
        "va_fields": {k: v for k, v in result.mode.split_va(result.va).items()},
        "root": hex(result.root),
        "access": result.access.value,
        "priv": result.priv.name,
        "sum": result.sum,
        "mxr": result.mxr,
        "steps": [
            {
                "level": s.level,
                "pte_addr": hex(s.pte_addr),
                "pte": hex(s.pte),
                "ppn": hex(pte_ppn(s.pte)),
                "flags": describe_flags(s.pte),
                "decision": s.decision,
            }
            for s in result.steps
        ],
    }
    tr = result.translation
    if tr is not None:
        out.update(
            {
                "pa": hex(tr.pa),
                "level": tr.level,
                "page_size": tr.page_size,
                "perms": perms_string(tr.pte),
                "global": tr.global_,
            }
        )
    else:
        f = result.fault
        assert f is not None  # a walk without a translation has a fault
        out["fault"] = {
            "kind": f.kind,
            "cause": int(f.cause),
            "reason": f.reason.name.lower(),
            "message": f.message,
            "level": f.level,
        }
    if result.ad_update is not None:
        addr, old, new = result.ad_update
        out["ad_update"] = {"pte_addr": hex(addr), "old": hex(old), "new": hex(new), "written": result.ad_written}
    return out


_FLAGS_HIGH_FIRST = (Pte.D, Pte.A, Pte.G, Pte.U, Pte.X, Pte.W, Pte.R, Pte.V)


def pte_fields(pte: int) -> str:
    """Every field of a PTE by name: ``PPN=0x80005 RSW=0 D=0 A=0 G=0 U=0 X=0 W=0 R=0 V=1`` (bits 63:54 if set)."""
    flags = " ".join(f"{flag.name}={int(bool(pte & flag))}" for flag in _FLAGS_HIGH_FIRST)
    high = f"bits63:54={pte >> PTE_HIGH_RESERVED_SHIFT:#x} " if pte >> PTE_HIGH_RESERVED_SHIFT else ""
    return f"{high}PPN={pte_ppn(pte):#x} RSW={(pte & PTE_RSW_MASK) >> PTE_RSW_SHIFT} {flags}"


def va_split_lines(mode: PagingMode, va: int) -> list[str]:
    """The VA drawn as its fields with bit numbers: sign extension, vpn[levels-1]..vpn[0], offset."""
    top = mode.va_bits
    cols = [("zero" if mode.zero_extended else "sign ext", 63, top, va >> top)]
    for i in reversed(range(mode.levels)):
        lo = mode.level_shift(i)
        cols.append((f"vpn[{i}]", lo + mode.vpn_width(i) - 1, lo, mode.vpn(va, i)))
    cols.append(("offset", PAGE_SHIFT - 1, 0, va & PAGE_MASK))
    widths = [max(len(name), len(f"{value:#x}"), len(f"{hi}..{lo}")) + 2 for name, hi, lo, value in cols]
    bits = "".join(f"{hi}..{lo}".center(w) + " " for (name, hi, lo, value), w in zip(cols, widths))
    names = "|".join(name.center(w) for (name, *_), w in zip(cols, widths))
    values = "|".join(f"{value:#x}".center(w) for (*_, value), w in zip(cols, widths))
    return [" " + bits.rstrip(), f"|{names}|", f"|{values}|"]


def format_walk_explained(result: WalkResult, *, satp: int | None = None) -> list[str]:
    """The walk as a worked solution: satp decoded, the VA split into fields, each PTE address
    computed, each PTE decoded field by field with the walker's decision, then the result."""
    mode = result.mode
    lines = []
    if satp is not None:
        _, asid, ppn = satp_fields(satp)
        lines.append(
            f"satp {satp:#018x}: MODE={mode.satp_mode} ({mode.name}), ASID={asid}, PPN={ppn:#x} "
            f"-> root table at {ppn << PAGE_SHIFT:#x}"
        )
    lines.append(
        f"va {result.va:#018x}: {result.access.value} in {result.priv.name}-mode, "
        f"SUM={int(result.sum)} MXR={int(result.mxr)}"
    )
    lines.extend("  " + line for line in va_split_lines(mode, result.va))
    if not mode.is_canonical(result.va):
        lines.append(
            f"  bits 63..{mode.va_bits} are not all copies of bit {mode.va_bits - 1}: "
            f"the address is not canonical, nothing is read"
        )
    table = result.root
    for s in result.steps:
        vpn = mode.vpn(result.va, s.level)
        lines.append(
            f"level {s.level}: PTE address = {table:#x} + vpn[{s.level}]*8 = {table:#x} + {vpn:#x}*8 = {s.pte_addr:#x}"
        )
        if s.code == "pte_access":
            lines.append(f"         -> {s.decision}")
            break
        lines.append(f"         PTE = {s.pte:#018x}: {pte_fields(s.pte)}")
        lines.append(f"         -> {s.decision}")
        if s.code == "pointer":
            assert isinstance(s.arg, int)  # a pointer step's argument is the next table's address
            table = s.arg
    tr = result.translation
    if tr is not None:
        shift = mode.level_shift(tr.level)
        low = "offset" if tr.level == 0 else f"va[{shift - 1}:0]"
        if tr.page_size == NAPOT_SIZE:  # Svnapot: PPN bits 3:0 come from vpn[0]
            lines.append(
                f"pa = ((PPN {pte_ppn(tr.pte):#x} & ~0xf) | (vpn[0] {mode.vpn(result.va, 0):#x} & 0xf)) << 12 "
                f"| offset {result.va & PAGE_MASK:#x} = {tr.pa:#x}  (a 64 KiB NAPOT page)"
            )
        else:
            lines.append(
                f"pa = (PPN {pte_ppn(tr.pte):#x} << 12) | {low} {result.va & (tr.page_size - 1):#x} = {tr.pa:#x}"
            )
        if result.ad_update is not None:
            addr, old, new = result.ad_update
            set_bits = new & ~old
            bits = "A and D" if set_bits & Pte.A and set_bits & Pte.D else "D" if set_bits & Pte.D else "A"
            lines.append(f"the hardware sets {bits}: the PTE at {addr:#x} becomes {new:#018x}")
    else:
        f = result.fault
        assert f is not None  # a walk without a translation has a fault
        where = "" if f.level is None else f" at level {f.level}"
        lines.append(f"{result.access.value} {f.kind} (cause {int(f.cause)}){where}: {f.message}")
    return lines
