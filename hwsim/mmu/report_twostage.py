"""Two-stage walks in words and in JSON: each VS-stage PTE read with the G-stage walk it needed, counted."""

from __future__ import annotations

from .bits import PAGE_SHIFT, PagingMode, describe_flags, hgatp_fields, pte_ppn, satp_fields
from .report import plural, pte_fields, va_split_lines, walk_to_json
from .twostage import GStageWalk, Purpose, TwoStageFault, TwoStageResult
from .walker import LEVEL_NAMES, WalkResult, WalkStep

_PRIV_NAMES = {"U": "VU", "S": "VS"}


def priv_name(result: TwoStageResult) -> str:
    return _PRIV_NAMES[result.priv.name] + "-mode"


def modes_name(result: TwoStageResult) -> str:
    vs = result.vs_mode.name if result.vs_mode else "Bare"
    g = result.g_mode.name if result.g_mode else "Bare"
    return f"{vs} over {g}"


def _why(g: GStageWalk) -> str:
    if g.purpose is Purpose.VS_PTE:
        return f"the read of the VS-stage level-{g.vs_level} PTE (an implicit load)"
    if g.purpose is Purpose.AD_WRITE:
        return f"the A/D write of the VS-stage level-{g.vs_level} PTE (an implicit store)"
    return f"the access itself (a {g.access.value})"


def fault_line(result: TwoStageResult) -> str:
    """The fault in one line: kind, cause, stage, level, what the G-stage was translating, htval."""
    f = result.fault
    assert f is not None  # only for a failed walk
    return f"{result.access.value} {f.kind} (cause {int(f.cause)}) {where(f)}: {f.message}" + (
        f"; htval = {f.htval:#x} (gpa {f.gpa:#x} >> 2)" if f.htval else ""
    )


def where(f: TwoStageFault) -> str:
    level = "" if f.level is None else f" at level {f.level}"
    text = f"in the {f.stage.value}{level}"
    if f.purpose is Purpose.VS_PTE:
        text += f", translating gpa {f.gpa:#x} for the read of the VS-stage level-{f.vs_level} PTE"
    elif f.purpose is Purpose.AD_WRITE:
        text += f", translating gpa {f.gpa:#x} for the A/D write of the VS-stage level-{f.vs_level} PTE"
    elif f.purpose is Purpose.FINAL:
        text += f", translating the final gpa {f.gpa:#x}"
    return text


def counts_line(result: TwoStageResult) -> str:
    g, total = result.g_pte_reads, result.pte_reads
    writes = result.ad_writes
    return (
        f"memory accesses: {plural(total, 'PTE read')} ({g} G-stage, {total - g} VS-stage)"
        + f", {plural(len(writes), 'A/D write')}"
        + (" (reported, not written)" if writes and not _written(result) else "")
    )


def _written(result: TwoStageResult) -> bool:
    return any(w.result.ad_written for w in result.g_walks if w.result is not None) or bool(
        result.vs is not None and result.vs.ad_written
    )


def answer_line(result: TwoStageResult) -> str:
    if result.ok:
        assert result.pa is not None and result.gpa is not None
        return f"pa {result.pa:#x} (gpa {result.gpa:#x}); {plural(result.pte_reads, 'PTE read')}"
    return f"{fault_line(result)}; {plural(result.pte_reads, 'PTE read')}"


def _g_step_line(s: WalkStep) -> str:
    return (
        f"G level {s.level}: PTE @ {s.pte_addr:#x} = {s.pte:#018x} ppn={pte_ppn(s.pte):#x} "
        f"{describe_flags(s.pte)}  {_guest(s.describe(flags=False))}"
    )


def _guest(decision: str) -> str:
    """A G-stage step's decision: its page faults are guest-page faults."""
    return decision.replace("-> page fault", "-> guest-page fault")


def format_two_stage(result: TwoStageResult) -> list[str]:
    """The walk as lines: each VS-stage PTE read under the G-stage walk that found it, then the result."""
    lines = [
        f"va {result.va:#018x} ({modes_name(result)}): "
        + (
            "  ".join(f"{k}={v:#05x}" for k, v in result.vs_mode.split_va(result.va).items())
            if result.vs_mode
            else "vsatp Bare: the va is the gpa"
        ),
        f"{result.access.value} in {priv_name(result)}, vsstatus.SUM={int(result.sum)} "
        f"vsstatus.MXR={int(result.vs_mxr)} mstatus.MXR={int(result.mxr)}; "
        f"VS root at gpa {result.vs_root:#x}, G-stage root at {result.g_root:#x}",
    ]
    for e in result.events:
        if isinstance(e, GStageWalk):
            lines.append(f"  G-stage: gpa {e.gpa:#x}, for {_why(e)}")
            if e.result is None:
                lines.append(f"    hgatp Bare: pa {e.gpa:#x}")
                continue
            lines.extend("    " + _g_step_line(s) for s in e.result.steps)
            lines.append("    -> " + (f"pa {e.pa:#x}" if e.pa is not None else "fault"))
        else:
            lines.append(
                f"  VS level {e.level}: PTE @ gpa {e.pte_addr:#x} = {e.pte:#018x} ppn={pte_ppn(e.pte):#x} "
                f"{describe_flags(e.pte)}  {e.describe(flags=False)}"
            )
    if result.ok:
        lines.append(f"result: pa {result.pa:#x} (gpa {result.gpa:#x})")
    else:
        lines.append("result: " + fault_line(result))
    lines.append(counts_line(result))
    return lines


def _explain_g(g: GStageWalk, counter: list[int], indent: str) -> list[str]:
    lines = [f"{indent}G-stage: translate gpa {g.gpa:#x} for {_why(g)}, checked as a U-mode {g.access.value}"]
    r = g.result
    if r is None:
        return lines + [f"{indent}  hgatp is Bare: pa = gpa = {g.gpa:#x}"]
    mode = r.mode
    lines.extend(f"{indent}  {line}" for line in va_split_lines(mode, g.gpa))
    if not mode.is_canonical(g.gpa):
        lines.append(f"{indent}  bits 63..{mode.va_bits} of the gpa are not all zero: nothing is read")
    table = r.root
    for s in r.steps:
        counter[0] += 1
        vpn = mode.vpn(g.gpa, s.level)
        lines.append(
            f"{indent}  G level {s.level}: PTE address = {table:#x} + vpn[{s.level}]*8 = {table:#x} + {vpn:#x}*8 "
            f"= {s.pte_addr:#x}   (read {counter[0]})"
        )
        if s.code != "pte_access":
            lines.append(f"{indent}           PTE = {s.pte:#018x}: {pte_fields(s.pte)}")
        lines.append(f"{indent}           -> {_guest(s.decision)}")
        if s.code == "pointer":
            assert isinstance(s.arg, int)
            table = s.arg
    tr = r.translation
    if tr is not None:
        lines.append(
            f"{indent}  pa = (PPN {pte_ppn(tr.pte):#x} << 12) | gpa[{mode.level_shift(tr.level) - 1}:0] "
            f"{g.gpa & (tr.page_size - 1):#x} = {tr.pa:#x}"
        )
        if r.ad_update is not None:
            addr, _, new = r.ad_update
            lines.append(f"{indent}  the hardware sets A/D: the G-stage PTE at {addr:#x} becomes {new:#018x}")
    return lines


def format_two_stage_explained(
    result: TwoStageResult, *, vsatp: int | None = None, hgatp: int | None = None
) -> list[str]:
    """A worked solution: both registers decoded, the VA split, each VS-stage PTE address computed as a
    GPA and translated by a full G-stage walk, each PTE decoded, reads numbered, the result and the count."""
    lines = []
    vs_mode, g_mode = result.vs_mode, result.g_mode
    if vsatp is not None:
        mode, asid, ppn = satp_fields(vsatp)
        lines.append(
            f"vsatp {vsatp:#018x}: MODE={mode} ({vs_mode.name if vs_mode else 'Bare'}), ASID={asid}, PPN={ppn:#x}"
            + (f" -> VS root table at guest-physical {ppn << PAGE_SHIFT:#x}" if vs_mode else "")
        )
    if hgatp is not None:
        mode, vmid, ppn = hgatp_fields(hgatp)
        lines.append(
            f"hgatp {hgatp:#018x}: MODE={mode} ({g_mode.name if g_mode else 'Bare'}), VMID={vmid}, PPN={ppn:#x}"
            + (f" -> G-stage root table (16 KiB) at {ppn << PAGE_SHIFT:#x}" if g_mode else "")
        )
    lines.append(
        f"va {result.va:#018x}: {result.access.value} in {priv_name(result)}, vsstatus.SUM={int(result.sum)} "
        f"vsstatus.MXR={int(result.vs_mxr)} mstatus.MXR={int(result.mxr)}"
    )
    counter = [0]
    if vs_mode is not None:
        lines.extend("  " + line for line in va_split_lines(vs_mode, result.va))
        if not vs_mode.is_canonical(result.va):
            lines.append(
                f"  bits 63..{vs_mode.va_bits} are not all copies of bit {vs_mode.va_bits - 1}: "
                f"the address is not canonical, nothing is read"
            )
    else:
        lines.append("  vsatp is Bare: the va is the guest-physical address")
    table = result.vs_root
    for e in result.events:
        if isinstance(e, GStageWalk):
            if e.purpose is Purpose.VS_PTE:
                vpn = _vs_mode(result).vpn(result.va, e.vs_level or 0)
                lines.append(
                    f"VS level {e.vs_level}: PTE gpa = {table:#x} + vpn[{e.vs_level}]*8 = {table:#x} + {vpn:#x}*8 "
                    f"= {e.gpa:#x}"
                )
            elif e.purpose is Purpose.FINAL and result.vs is not None and result.vs.translation is not None:
                lines.extend(_gpa_lines(result.vs))
            lines.extend(_explain_g(e, counter, "  "))
            continue
        counter[0] += 1
        pa = _pa_of_vs_read(result, e)
        lines.append(f"  VS PTE read at pa {pa:#x}   (read {counter[0]})")
        if e.code != "pte_access":
            lines.append(f"           PTE = {e.pte:#018x}: {pte_fields(e.pte)}")
        lines.append(f"           -> {e.decision}" + (" (guest-physical)" if e.code == "pointer" else ""))
        if e.code == "pointer":
            assert isinstance(e.arg, int)
            table = e.arg
    if result.ok:
        lines.append(f"pa {result.pa:#x}")
    else:
        lines.append(fault_line(result))
    lines.append(counts_line(result))
    return lines


def _vs_mode(result: TwoStageResult) -> PagingMode:
    assert result.vs_mode is not None
    return result.vs_mode


def _gpa_lines(vs: WalkResult) -> list[str]:
    tr = vs.translation
    assert tr is not None
    shift = vs.mode.level_shift(tr.level)
    low = "offset" if tr.level == 0 else f"va[{shift - 1}:0]"
    lines = [
        f"VS leaf ({LEVEL_NAMES[tr.level]}): gpa = (PPN {pte_ppn(tr.pte):#x} << 12) | {low} "
        f"{vs.va & (tr.page_size - 1):#x} = {tr.pa:#x}"
    ]
    if vs.ad_update is not None:
        addr, _, new = vs.ad_update
        lines.append(f"  the hardware sets A/D: the VS-stage PTE at gpa {addr:#x} becomes {new:#018x}")
    return lines


def _pa_of_vs_read(result: TwoStageResult, step: WalkStep) -> int:
    """The physical address a VS PTE read used: the pa of the G-stage walk just before it."""
    last = None
    for e in result.events:
        if e is step:
            break
        if isinstance(e, GStageWalk):
            last = e
    assert last is not None and last.pa is not None
    return last.pa


def two_stage_to_json(result: TwoStageResult) -> dict:
    """A JSON-ready dict: every event (G-stage walks as ``walk_to_json``), the outcome and the counts."""
    events: list[dict] = []
    for e in result.events:
        if isinstance(e, GStageWalk):
            events.append(
                {
                    "stage": "G",
                    "purpose": e.purpose.name.lower(),
                    "vs_level": e.vs_level,
                    "gpa": hex(e.gpa),
                    "access": e.access.value,
                    "walk": walk_to_json(e.result) if e.result is not None else None,
                    "pa": None if e.pa is None else hex(e.pa),
                }
            )
        else:
            events.append(
                {
                    "stage": "VS",
                    "level": e.level,
                    "pte_gpa": hex(e.pte_addr),
                    "pte": hex(e.pte),
                    "flags": describe_flags(e.pte),
                    "decision": e.decision,
                }
            )
    out: dict = {
        "result": "ok" if result.ok else "fault",
        "modes": {
            "vs": result.vs_mode.name if result.vs_mode else "Bare",
            "g": result.g_mode.name if result.g_mode else "Bare",
        },
        "va": hex(result.va),
        "access": result.access.value,
        "priv": _PRIV_NAMES[result.priv.name],
        "vs_root": hex(result.vs_root),
        "g_root": hex(result.g_root),
        "events": events,
        "pte_reads": result.pte_reads,
        "g_pte_reads": result.g_pte_reads,
        "ad_writes": [
            {"stage": stage, "pte_addr": hex(addr), "old": hex(old), "new": hex(new)}
            for stage, addr, old, new in result.ad_writes
        ],
    }
    if result.ok:
        out["gpa"] = hex(result.gpa or 0)
        out["pa"] = hex(result.pa or 0)
    else:
        f = result.fault
        assert f is not None
        out["fault"] = {
            "kind": f.kind,
            "cause": int(f.cause),
            "stage": f.stage.name,
            "reason": f.reason.name.lower(),
            "message": f.message,
            "level": f.level,
            "vs_level": f.vs_level,
            "purpose": f.purpose.name.lower() if f.purpose else None,
            "gpa": None if f.gpa is None else hex(f.gpa),
            "htval": hex(f.htval),
        }
    return out
