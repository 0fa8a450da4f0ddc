"""The AArch64 stage-1 walk (EL1&0 regime, 4/16/64 KiB granules), every step recorded and explained.

It follows the Arm ARM's translation-table-walk pseudo-code (AArch64.TranslationTableWalk in
ARMv8.0, AArch64.S1Walk later) and AArch64.CheckPermission; the controls are an
:class:`ArmControl` (TTBR0_EL1/TTBR1_EL1, TCR_EL1's T0SZ/T1SZ/IPS/HA, SCTLR_EL1.WXN, PSTATE.PAN).

The walk, in order::

    VA bit 63 picks TTBR0 (bits 63:64-T0SZ all 0) or TTBR1 (all 1)   -> else translation fault, level 0
    TTBR base above the PA size                                      -> address size fault, level 0
    for each level from the start level (4 - ceil((va_bits - G) / (G - 3))) down:
        descriptor address outside memory      -> synchronous external abort on the walk, at the level
        bit 0 = 0, or 01 at level 3            -> translation fault at the level
        table (11 above level 3): next table above the PA size -> address size fault;
                                  collect APTable, UXNTable, PXNTable; descend
        block (01) at a level without blocks   -> translation fault at the level
    output address above the PA size           -> address size fault at the level
    AF=0 (TCR_EL1.HA=0)                        -> access flag fault at the level
    permissions (AP[2:1] with APTable, UXN/PXN with the tables', WXN, PAN,
                 "writable at EL0 implies PXN")                       -> permission fault at the level

The contiguous bit is decoded and explained, never acted on: it tells the TLB that a run of
entries may share one entry; the translation is the same with or without it (a run that is
not consistent is the programmer's error, CONSTRAINED UNPREDICTABLE in the Arm ARM; the
optional translation fault for it is not modelled).  With HA=1 the hardware sets AF (reported
for a translation that succeeds; a walk that faults writes nothing); dirty
state management (DBM) is not modelled.  No top-byte-ignore, no FEAT_LPA/LPA2, EPD0/EPD1=0.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import BusError, ConfigError
from ..riscv.priv import Access, Priv
from .arm_bits import (
    AARCH64_4K,
    AF,
    AP_MEANING,
    CONTIGUOUS,
    DESC_SIZE,
    FAULT_NAMES,
    OA_TOP,
    PA_SIZES,
    PXN,
    TXSZ_MAX,
    TXSZ_MIN,
    UXN,
    FaultStatus,
    Granule,
    esr,
)
from .formats import FormatFault, FormatStep, FormatWalk, group_runs, size_name, va_drawing
from .walker import PteMemory, PteReader


class ArmReason(enum.Enum):
    """Why an AArch64 walk stopped; each reason has one fixed message."""

    VA_RANGE = "the VA is outside both TTBR0's and TTBR1's ranges (its top bits are neither all 0 nor all 1)"
    TTBR_SIZE = "the TTBR's table address has bits set above the PA size"
    EXTERNAL = "the descriptor's physical address is not in memory"
    INVALID = "invalid descriptor (bit 0 = 0)"
    RESERVED_L3 = "descriptor type 01 at level 3 is reserved (invalid)"
    TABLE_SIZE = "the next-level table address has bits set above the PA size"
    BLOCK_LEVEL = "a block descriptor at a level where this granule allows none"
    OUTPUT_SIZE = "the output address has bits set above the PA size"
    ACCESS_FLAG = "AF=0 in the block or page descriptor, and the hardware does not set it (TCR_EL1.HA=0)"
    NO_EL0 = "EL0 access to a page EL0 may not access (AP[1]=0, or APTable[0]=1 above)"
    READ_ONLY = "write to a read-only page (AP[2]=1, or APTable[1]=1 above)"
    UXN = "EL0 instruction fetch from an execute-never page (UXN=1, or UXNTable=1 above)"
    PXN = "EL1 instruction fetch from a privileged-execute-never page (PXN=1, or PXNTable=1 above)"
    EL0_WRITABLE = "EL1 instruction fetch from a page writable at EL0 (always privileged execute-never)"
    WXN = "instruction fetch from a writable page with SCTLR_EL1.WXN=1"
    PAN = "EL1 data access to a page EL0 can read, with PSTATE.PAN=1"


_STATUS = {
    ArmReason.VA_RANGE: FaultStatus.TRANSLATION,
    ArmReason.TTBR_SIZE: FaultStatus.ADDRESS_SIZE,
    ArmReason.EXTERNAL: FaultStatus.EXTERNAL_WALK,
    ArmReason.INVALID: FaultStatus.TRANSLATION,
    ArmReason.RESERVED_L3: FaultStatus.TRANSLATION,
    ArmReason.TABLE_SIZE: FaultStatus.ADDRESS_SIZE,
    ArmReason.BLOCK_LEVEL: FaultStatus.TRANSLATION,
    ArmReason.OUTPUT_SIZE: FaultStatus.ADDRESS_SIZE,
    ArmReason.ACCESS_FLAG: FaultStatus.ACCESS_FLAG,
}


@dataclass(frozen=True, slots=True)
class ArmControl:
    """TTBR0_EL1, TTBR1_EL1 and the TCR_EL1/SCTLR_EL1/PSTATE bits a walk depends on."""

    ttbr0: int = 0
    ttbr1: int = 0
    t0sz: int = 16
    t1sz: int = 16
    pa_bits: int = 48  # TCR_EL1.IPS
    ha: bool = False  # TCR_EL1.HA: hardware sets AF
    wxn: bool = False  # SCTLR_EL1.WXN
    pan: bool = False  # PSTATE.PAN

    def check(self) -> None:
        for name in ("t0sz", "t1sz"):
            value = getattr(self, name)
            if not TXSZ_MIN <= value <= TXSZ_MAX:
                raise ConfigError(
                    f"TCR_EL1.{name.upper()}={value} is out of range: {TXSZ_MIN} to {TXSZ_MAX} "
                    f"(VAs of {64 - TXSZ_MIN} down to {64 - TXSZ_MAX} bits)"
                )
        if self.pa_bits not in PA_SIZES:
            raise ConfigError(f"PA size {self.pa_bits} is not one TCR_EL1.IPS encodes: {', '.join(map(str, PA_SIZES))}")

    def describe(self) -> str:
        return (
            f"TCR_EL1: T0SZ={self.t0sz} T1SZ={self.t1sz} IPS={self.pa_bits}-bit PA HA={int(self.ha)}; "
            f"SCTLR_EL1.WXN={int(self.wxn)} PSTATE.PAN={int(self.pan)}"
        )


_ACCESS_WORDS = {Access.FETCH: "instruction fetch", Access.LOAD: "read", Access.STORE: "write"}


def decode_descriptor(value: int, level: int, granule: Granule) -> tuple[str, str]:
    """``(kind, fields)``: the descriptor's type at ``level`` and its fields in words."""
    if not value & 1:
        return "invalid", "bit 0 = 0: invalid"
    if value & 2 and level < 3:
        addr = value & ((1 << OA_TOP) - 1) & ~((1 << granule.shift) - 1)
        return "table", (
            f"table: next={addr:#x} NSTable={value >> 63} APTable={value >> 61 & 3:02b} "
            f"UXNTable={value >> 60 & 1} PXNTable={value >> 59 & 1}"
        )
    if not value & 2 and level == 3:
        return "reserved", "bits 1:0 = 01 at level 3: reserved"
    kind = "page" if level == 3 else "block"
    oa = value & ((1 << OA_TOP) - 1) & ~((1 << granule.level_shift(level)) - 1)
    ap = value >> 6 & 3
    return kind, (
        f"{kind}: OA={oa:#x} AttrIndx={value >> 2 & 7} NS={value >> 5 & 1} AP[2:1]={ap:02b} SH={value >> 8 & 3:02b} "
        f"AF={value >> 10 & 1} nG={value >> 11 & 1} Contiguous={value >> 52 & 1} PXN={value >> 53 & 1} "
        f"UXN={value >> 54 & 1}"
    )


def walk_arm(
    mem: PteMemory,
    va: int,
    access: Access,
    priv: Priv,
    *,
    granule: Granule = AARCH64_4K,
    ctl: ArmControl = ArmControl(),
    write_af: bool = False,
) -> FormatWalk:
    """Translate ``va`` at EL0 (``priv`` U) or EL1 (S); ``write_af``: write a hardware AF update into ``mem``."""
    ctl.check()
    el0 = priv is Priv.U
    el = "EL0" if el0 else "EL1"
    upper = va >> 63 & 1
    txsz = ctl.t1sz if upper else ctl.t0sz
    va_bits = 64 - txsz
    ttbr_name = f"TTBR{upper}_EL1"
    ttbr = ctl.ttbr1 if upper else ctl.ttbr0
    start = granule.start_level(va_bits)
    fields = [("top", 63, va_bits)]
    for level in range(start, 4):
        low = granule.level_shift(level)
        fields.append((f"L{level}", min(va_bits - 1, low + granule.stride - 1), low))
    fields.append(("offset", granule.shift - 1, 0))
    header = [
        f"{granule.title}: VA bit 63 = {upper} -> {ttbr_name} = {ttbr:#x}, "
        f"T{upper}SZ={txsz} ({va_bits}-bit VA), walk starts at level {start}",
        f"va {va:#018x}: {_ACCESS_WORDS[access]} at {el}",
        f"controls: {ctl.describe()}",
        *va_drawing(64, fields, va),
    ]
    result = FormatWalk(granule.name, va, access.value, priv.name, header)
    instruction = access is Access.FETCH

    def fault(reason: ArmReason, level: int) -> FormatWalk:
        status = _STATUS.get(reason, FaultStatus.PERMISSION)
        code = int(status) | level
        syndrome = esr(instruction, el0, access is Access.STORE, code)
        abort = "instruction abort" if instruction else "data abort"
        name = FAULT_NAMES[status]
        summary = (
            f"{abort} from {el}: {name}, level {level} ({'IFSC' if instruction else 'DFSC'} {code:#04x}), "
            f"ESR_EL1={syndrome:#010x}, FAR_EL1={va:#x}"
        )
        result.fault = FormatFault(name, level, code, summary, reason.value, syndrome)
        return result

    top = va >> va_bits
    if top != (((1 << txsz) - 1) if upper else 0):
        return fault(ArmReason.VA_RANGE, 0)
    pa_mask = (1 << ctl.pa_bits) - 1
    if ttbr & ((1 << OA_TOP) - 1) & ~pa_mask:
        return fault(ArmReason.TTBR_SIZE, 0)
    # The table's alignment: 8 bytes times the start level's entries (baselowerbound).
    base_low = 3 + va_bits - granule.level_shift(start)
    table = ttbr & ((1 << OA_TOP) - 1) & ~((1 << base_low) - 1)
    ap_table = uxn_table = pxn_table = 0
    for level in range(start, 4):
        low = granule.level_shift(level)
        width = min(va_bits, low + granule.stride) - low
        index = (va >> low) & ((1 << width) - 1)
        addr = table + index * DESC_SIZE
        name = f"level {level}"
        try:
            value = mem.read_u64(addr)
        except BusError:
            result.steps.append(FormatStep(level, name, table, index, addr, None, "", "no memory here -> abort"))
            return fault(ArmReason.EXTERNAL, level)
        kind, decoded = decode_descriptor(value, level, granule)
        if kind == "invalid":
            result.steps.append(FormatStep(level, name, table, index, addr, value, decoded, "-> translation fault"))
            return fault(ArmReason.INVALID, level)
        if kind == "reserved":
            result.steps.append(FormatStep(level, name, table, index, addr, value, decoded, "-> translation fault"))
            return fault(ArmReason.RESERVED_L3, level)
        if kind == "table":
            if value & ((1 << OA_TOP) - 1) & ~pa_mask:
                step = FormatStep(level, name, table, index, addr, value, decoded, "-> address size fault")
                result.steps.append(step)
                return fault(ArmReason.TABLE_SIZE, level)
            nxt = value & ((1 << OA_TOP) - 1) & ~((1 << granule.shift) - 1)
            ap_table |= value >> 61 & 3
            uxn_table |= value >> 60 & 1
            pxn_table |= value >> 59 & 1
            decision = f"-> the level-{level + 1} table at {nxt:#x}"
            result.steps.append(FormatStep(level, name, table, index, addr, value, decoded, decision))
            table = nxt
            continue
        if kind == "block" and not granule.blocks_at(level):
            decision = f"-> a block at level {level}: {granule.name} allows blocks only at levels "
            decision += f"{granule.first_block_level}-2: translation fault"
            result.steps.append(FormatStep(level, name, table, index, addr, value, decoded, decision))
            return fault(ArmReason.BLOCK_LEVEL, level)
        size = 1 << low
        result.steps.append(
            FormatStep(level, name, table, index, addr, value, decoded, f"-> a {kind}: maps {size_name(size)}")
        )
        break
    else:  # pragma: no cover - level 3 always stops
        raise AssertionError("unreachable")

    oa = value & ((1 << OA_TOP) - 1) & ~(size - 1)
    if oa & ~pa_mask:
        return fault(ArmReason.OUTPUT_SIZE, level)
    af_update = None
    if not value & AF:
        if not ctl.ha:
            return fault(ArmReason.ACCESS_FLAG, level)
        af_update = (addr, value, value | AF)

    ap = value >> 6 & 3
    if ap_table & 1:
        ap &= 0b10  # APTable[0]: no EL0 access
    if ap_table & 2:
        ap |= 0b10  # APTable[1]: read-only
    uxn = int(bool(value & UXN)) | uxn_table
    pxn = int(bool(value & PXN)) | pxn_table
    user_r = bool(ap & 1)
    user_w = ap == 0b01
    priv_w = not ap & 2
    checks = [
        f"effective permissions: AP[2:1]={ap:02b} ({AP_MEANING[ap]})"
        + (f" after APTable={ap_table:02b}" if ap_table else "")
        + f", UXN={uxn}, PXN={pxn}"
        + (" (from the tables)" if uxn_table or pxn_table else "")
    ]
    reason = None
    if el0:
        if instruction:
            if uxn:
                reason = ArmReason.UXN
            elif ctl.wxn and user_w:
                reason = ArmReason.WXN
        elif not user_r:
            reason = ArmReason.NO_EL0
        elif access is Access.STORE and not user_w:
            reason = ArmReason.READ_ONLY
    else:
        if instruction:
            if pxn:
                reason = ArmReason.PXN
            elif user_w:
                reason = ArmReason.EL0_WRITABLE
            elif ctl.wxn and priv_w:
                reason = ArmReason.WXN
        elif ctl.pan and user_r:
            reason = ArmReason.PAN
        elif access is Access.STORE and not priv_w:
            reason = ArmReason.READ_ONLY
    result.checks = checks
    if reason is not None:
        result.checks.append(f"{_ACCESS_WORDS[access]} at {el}: denied")
        return fault(reason, level)
    result.checks.append(f"{_ACCESS_WORDS[access]} at {el}: allowed")
    if af_update is not None:
        result.updates.append(af_update)
        if write_af:
            mem.write_u64(addr, af_update[2])
            result.updates_written = True
    result.pa = oa | (va & (size - 1))
    result.page_size, result.level = size, level
    result.mapping = "page" if level == 3 else "block"
    result.checks.append(f"pa = OA {oa:#x} | va[{low - 1}:0] {va & (size - 1):#x} = {result.pa:#x}")
    if value & CONTIGUOUS:
        run = granule.contiguous[level]
        result.notes.append(
            f"Contiguous=1: a hint that this entry is one of {run} adjacent entries mapping a contiguous, "
            f"aligned {size_name(run * size)} with the same attributes, so the TLB may cache them as one; "
            "the translation is the same without it"
        )
    return result


def dump_arm(
    mem: PteReader, *, granule: Granule = AARCH64_4K, ctl: ArmControl = ArmControl(), ttbrs: tuple[int, ...] = (0, 1)
) -> list[str]:
    """The translation tables under TTBR0_EL1 and TTBR1_EL1 as trees: valid descriptors, each table once."""
    ctl.check()
    lines = [f"{granule.title}; {ctl.describe()}"]
    lines.append(
        "AP[2:1]: 00 EL1 rw, 01 EL0+EL1 rw, 10 EL1 ro, 11 EL0+EL1 ro; flags: A AF, g global (nG=0), "
        "C contiguous, U UXN, P PXN; - clear"
    )
    seen: set[int] = set()
    for half in ttbrs:
        txsz = ctl.t1sz if half else ctl.t0sz
        va_bits = 64 - txsz
        ttbr = ctl.ttbr1 if half else ctl.ttbr0
        start = granule.start_level(va_bits)
        base_low = 3 + va_bits - granule.level_shift(start)
        root = ttbr & ((1 << OA_TOP) - 1) & ~((1 << base_low) - 1)
        top = ((1 << 64) - 1) ^ ((1 << va_bits) - 1) if half else 0
        lines.append(f"TTBR{half}_EL1 {ttbr:#x}: {va_bits}-bit VAs, level-{start} table at {root:#x}")

        def table(addr: int, level: int, va_base: int, indent: str, va_bits: int = va_bits) -> None:
            low = granule.level_shift(level)
            count = 1 << (min(va_bits, low + granule.stride) - low)
            try:
                entries = [(i, mem.read_u64(addr + i * DESC_SIZE)) for i in range(count)]
            except BusError:
                lines.append(f"{indent}!! the level-{level} table at {addr:#x} is not in memory")
                return
            valid = [(i, v) for i, v in entries if v & 1 and not (level == 3 and not v & 2)]
            other = sum(1 for _i, v in entries if v) - len(valid)
            note = f", {other} non-zero invalid" if other else ""
            lines.append(f"{indent}level-{level} table {addr:#x} ({len(valid)} valid{note})")

            def is_leaf(value: int, level: int = level) -> bool:
                return level == 3 or not value & 2

            runs = group_runs(valid, is_leaf, 1 << low)
            for n, (i, j, value) in enumerate(runs):
                last = n == len(runs) - 1
                branch, child_indent = ("└─ ", indent + "   ") if last else ("├─ ", indent + "│  ")
                va = va_base | i << low
                count = j - i + 1
                where = f"[{i:#05x}]" if count == 1 else f"[{i:#05x}-{j:#05x}]"
                head = f"{indent}{branch}{where} va {va:#x}-{va + count * (1 << low) - 1:#x}"
                if value & 2 and level < 3:
                    nxt = value & ((1 << OA_TOP) - 1) & ~((1 << granule.shift) - 1)
                    attrs = f"APTable={value >> 61 & 3:02b} UXNTable={value >> 60 & 1} PXNTable={value >> 59 & 1}"
                    if nxt in seen:
                        lines.append(f"{head}  -> level-{level + 1} table {nxt:#x} (shown above)")
                        continue
                    seen.add(nxt)
                    lines.append(f"{head}  -> level-{level + 1} table {nxt:#x}  {attrs}")
                    table(nxt, level + 1, va, child_indent, va_bits)
                    continue
                kind = "page" if level == 3 else "block"
                size = 1 << low
                oa = value & ((1 << OA_TOP) - 1) & ~(size - 1)
                flags = ("A" if value & AF else "-") + ("-" if value >> 11 & 1 else "g")
                flags += ("C" if value & CONTIGUOUS else "-") + ("U" if value & UXN else "-")
                flags += "P" if value & PXN else "-"
                what = f"{size_name(size)} {kind}" if count == 1 else f"{count} x {size_name(size)} {kind}"
                text = f"{head}  {what} -> pa {oa:#x}-{oa + count * size - 1:#x}  AP={value >> 6 & 3:02b} {flags}"
                if kind == "block" and not granule.blocks_at(level):
                    text += f"  !! no blocks at level {level} with {granule.name}: translation fault"
                elif oa & ~((1 << ctl.pa_bits) - 1):
                    text += "  !! output address above the PA size: address size fault"
                lines.append(text)

        seen.add(root)
        table(root, start, top, "")
    return lines
