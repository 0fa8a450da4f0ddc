"""Walks in words and in JSON: the VA split into fields, each level's PTE decoded, the outcome."""

from __future__ import annotations

from .bits import describe_flags, pte_ppn
from .walker import LEVEL_NAMES, WalkResult


def perms_string(pte: int) -> str:
    """``rwxu`` style, ``-`` for clear bits (G shown as ``g``)."""
    return "".join(ch if pte & bit else "-" for ch, bit in (("r", 2), ("w", 4), ("x", 8), ("u", 16))) + \
        ("g" if pte & 32 else "")


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
        lines.append(f"  level {s.level}: PTE @ {s.pte_addr:#x} = {s.pte:#018x} "
                     f"ppn={pte_ppn(s.pte):#x} {describe_flags(s.pte)}  {s.decision}")
    tr = result.translation
    if tr is not None:
        lines.append(f"result: pa {tr.pa:#x}  ({LEVEL_NAMES[tr.level]} at va {tr.page_va:#x} -> pa {tr.page_pa:#x}, "
                     f"{perms_string(tr.pte)})")
    else:
        f = result.fault
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
            {"level": s.level, "pte_addr": hex(s.pte_addr), "pte": hex(s.pte), "ppn": hex(pte_ppn(s.pte)),
             "flags": describe_flags(s.pte), "decision": s.decision}
            for s in result.steps
        ],
    }
    tr = result.translation
    if tr is not None:
        out.update({"pa": hex(tr.pa), "level": tr.level, "page_size": tr.page_size,
                    "perms": perms_string(tr.pte), "global": tr.global_})
    else:
        f = result.fault
        out["fault"] = {"kind": f.kind, "cause": int(f.cause), "reason": f.reason.name.lower(),
                        "message": f.message, "level": f.level}
    if result.ad_update is not None:
        addr, old, new = result.ad_update
        out["ad_update"] = {"pte_addr": hex(addr), "old": hex(old), "new": hex(new), "written": result.ad_written}
    return out
