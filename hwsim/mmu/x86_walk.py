"""The x86-64 page walk (4-level and 5-level paging), every step recorded and explained.

It follows the Intel SDM vol. 3A, chapter 4: "Linear-Address Translation with 4-Level
Paging and 5-Level Paging" (the walk), "Access Rights" (U/S, R/W, XD with EFER.NXE, CR0.WP,
SMEP, SMAP with EFLAGS.AC, protection keys with PKRU), "Page-Fault Exceptions" (the error
code) and "Accessed and Dirty Flags".  The controls are a :class:`X86Control`; the tables are
read from memory with ``read_u64`` (a BusError: no memory there).

The walk, in order::

    non-canonical VA                          -> #GP(0), no walk
    for each level from CR3's table down:
        entry address outside memory          -> no page fault: the walk reads nothing (a bus error)
        P=0                                   -> #PF, P=0
        a reserved bit set                    -> #PF, P=1 RSVD=1
            (51:MAXPHYADDR; XD when NXE=0; PS in a PML5E/PML4E; 29:13 of a 1 GiB page, 20:13 of a 2 MiB one)
        PS=1 in a PDPTE/PDE, or a PTE         -> maps a page: stop
    access rights, combined over every level  -> #PF, P=1 (PK=1 for a protection-key violation)
    success: A set in every entry used, D in the entry that maps the page on a write

Model choices (where the SDM leaves freedom): A and D are set only when the translation
succeeds (a processor may also set A on entries of a walk that faults); global pages (G),
the memory type (PWT/PCD/PAT) and the protection key are decoded and shown but need no
configuration to translate; supervisor protection keys (PKS), shadow stacks, HLAT, SGX and
implicit supervisor accesses (which SMAP checks regardless of AC) are not modelled; 1 GiB pages
are supported (CPUID.80000001H:EDX.Page1GB=1), and CR4.PCIDE=0.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import BusError
from ..riscv.priv import Access, Priv
from .formats import FormatFault, FormatStep, FormatWalk, group_runs, size_name, va_drawing
from .walker import PteMemory, PteReader
from .x86_bits import (
    CR3_PCD,
    CR3_PWT,
    ENTRY_SIZE,
    LEVELS,
    PAGE_SHIFT,
    PK_MASK,
    PK_SHIFT,
    PTE_PAT,
    X86_64,
    Entry,
    PfError,
    X86Format,
    address_mask,
    describe_error_code,
    reserved_high_mask,
)

_P, _RW, _US, _PWT, _PCD, _A, _D, _PS, _G = (
    int(f) for f in (Entry.P, Entry.RW, Entry.US, Entry.PWT, Entry.PCD, Entry.A, Entry.D, Entry.PS, Entry.G)
)
_XD = int(Entry.XD)


class X86Reason(enum.Enum):
    """Why an x86-64 walk stopped; each reason has one fixed message."""

    NON_CANONICAL = "linear address is not canonical (bits 63 down to the top VA bit differ): #GP, no walk"
    NO_MEMORY = "the entry's physical address is not in memory: the walk reads nothing (not a page fault)"
    NOT_PRESENT = "entry not present (P=0)"
    RESERVED = "a reserved bit is set in a present entry"
    USER_SUPERVISOR = "user-mode access to a supervisor-mode address (U/S=0 at some level)"
    USER_WRITE = "user-mode write to a read-only address (R/W=0 at some level)"
    SUPERVISOR_WRITE = "supervisor-mode write to a read-only address with CR0.WP=1"
    EXECUTE_DISABLED = "instruction fetch from an execute-disabled address (XD=1 at some level, EFER.NXE=1)"
    SMEP = "supervisor-mode instruction fetch from a user-mode address with CR4.SMEP=1"
    SMAP = "supervisor-mode data access to a user-mode address with CR4.SMAP=1 and EFLAGS.AC=0"
    PKEY_ACCESS = "protection key: PKRU.AD=1 for the page's key forbids data accesses"
    PKEY_WRITE = "protection key: PKRU.WD=1 for the page's key forbids this write"


@dataclass(frozen=True, slots=True)
class X86Control:
    """The control bits a walk depends on (CR0, CR4, EFER, EFLAGS, PKRU) and MAXPHYADDR."""

    nxe: bool = True  # IA32_EFER.NXE: XD bits honoured (else bit 63 is reserved)
    wp: bool = True  # CR0.WP: supervisor writes honour R/W
    smep: bool = False  # CR4.SMEP
    smap: bool = False  # CR4.SMAP
    ac: bool = False  # EFLAGS.AC: lets supervisor data accesses reach user pages under SMAP
    pke: bool = False  # CR4.PKE: protection keys for user-mode addresses
    pkru: int = 0  # PKRU: AD for key i at bit 2i, WD at bit 2i+1
    maxphyaddr: int = 52

    def describe(self) -> str:
        text = f"CR0.WP={int(self.wp)} EFER.NXE={int(self.nxe)} CR4.SMEP={int(self.smep)} CR4.SMAP={int(self.smap)}"
        text += f" EFLAGS.AC={int(self.ac)} CR4.PKE={int(self.pke)}"
        if self.pke:
            text += f" PKRU={self.pkru:#010x}"
        return text + f" MAXPHYADDR={self.maxphyaddr}"


_ACCESS_WORDS = {Access.FETCH: "instruction fetch", Access.LOAD: "read", Access.STORE: "write"}


def decode_entry(value: int, level: int, ctl: X86Control) -> str:
    """The entry's fields in words, as a page-table-entry table of the SDM lists them."""
    maps_page = level == 0 or (level in (1, 2) and value & _PS)
    parts = [
        f"P={value & 1}",
        f"R/W={value >> 1 & 1}",
        f"U/S={value >> 2 & 1}",
        f"PWT={value >> 3 & 1}",
        f"PCD={value >> 4 & 1}",
        f"A={value >> 5 & 1}",
    ]
    if maps_page:
        parts.append(f"D={value >> 6 & 1}")
    if level == 0:
        parts.append(f"PAT={value >> 7 & 1}")
    else:
        parts.append(f"PS={value >> 7 & 1}")
    if maps_page:
        parts.append(f"G={value >> 8 & 1}")
        if level:
            parts.append(f"PAT={value >> 12 & 1}")
        low = LEVELS[level].shift
    else:
        low = PAGE_SHIFT
    parts.append(f"addr={value & address_mask(ctl.maxphyaddr, low):#x}")
    if maps_page:
        parts.append(f"PK={(value & PK_MASK) >> PK_SHIFT}")
    parts.append(f"XD={value >> 63}")
    return " ".join(parts)


def reserved_bits(value: int, level: int, ctl: X86Control) -> int:
    """The reserved bits set in a present entry at ``level`` (0 when none)."""
    bad = value & reserved_high_mask(ctl.maxphyaddr)
    if not ctl.nxe:
        bad |= value & _XD
    if level >= 3:
        bad |= value & _PS
    elif level in (1, 2) and value & _PS:
        bad |= value & LEVELS[level].large_reserved
    return bad


def walk_x86(
    mem: PteMemory,
    cr3: int,
    va: int,
    access: Access,
    priv: Priv,
    *,
    fmt: X86Format = X86_64,
    ctl: X86Control = X86Control(),
    write_ad: bool = False,
) -> FormatWalk:
    """Translate ``va`` with the tables under ``cr3``; ``priv`` U is CPL=3, S is CPL<3.

    ``write_ad``: write the A/D updates into ``mem`` (else they are only reported).
    """
    user = priv is Priv.U
    root = cr3 & address_mask(ctl.maxphyaddr)
    mode = "user mode (CPL=3)" if user else "supervisor mode (CPL=0)"
    names = [(LEVELS[lv].va_field, LEVELS[lv].shift + 8, LEVELS[lv].shift) for lv in range(fmt.levels - 1, -1, -1)]
    header = [
        f"cr3 {cr3:#x}: {fmt.root.table} at {root:#x} (PWT={int(bool(cr3 & CR3_PWT))} "
        f"PCD={int(bool(cr3 & CR3_PCD))}); {fmt.title}",
        f"va {va:#018x}: {_ACCESS_WORDS[access]} in {mode}",
        f"controls: {ctl.describe()}",
        *va_drawing(64, [("sign ext", 63, fmt.va_bits)] + names + [("offset", 11, 0)], va),
    ]
    result = FormatWalk(fmt.name, va, access.value, priv.name, header)
    error = (PfError.W if access is Access.STORE else 0) | (PfError.U if user else 0)
    if access is Access.FETCH and (ctl.nxe or ctl.smep):
        error |= PfError.I

    def fault(reason: X86Reason, level: int | None, code: int | None) -> FormatWalk:
        if reason is X86Reason.NON_CANONICAL:
            summary, kind = "#GP(0)", "general-protection"
        elif reason is X86Reason.NO_MEMORY:
            summary, kind = "no memory under the page tables", "bus error"
        else:
            assert code is not None
            where = "" if level is None else f" at the {LEVELS[level].entry}"
            summary = f"#PF{where}, error code {code:#x} ({describe_error_code(code)}), CR2={va:#x}"
            kind = "page fault"
        result.fault = FormatFault(kind, level, code, summary, reason.value)
        return result

    if not fmt.is_canonical(va):
        return fault(X86Reason.NON_CANONICAL, None, None)

    table = root
    used: list[tuple[int, int]] = []  # (address, value) of every entry used
    rw = us = 1
    xd = 0
    for level in range(fmt.levels - 1, -1, -1):
        info = LEVELS[level]
        index = fmt.index(va, level)
        addr = table + index * ENTRY_SIZE
        try:
            value = mem.read_u64(addr)
        except BusError:
            result.steps.append(FormatStep(level, info.entry, table, index, addr, None, "", "no memory here -> stop"))
            return fault(X86Reason.NO_MEMORY, level, None)
        fields = decode_entry(value, level, ctl)
        if not value & _P:
            result.steps.append(FormatStep(level, info.entry, table, index, addr, value, fields, "-> P=0: not present"))
            return fault(X86Reason.NOT_PRESENT, level, int(error))
        bad = reserved_bits(value, level, ctl)
        if bad:
            step = FormatStep(
                level, info.entry, table, index, addr, value, fields, f"-> reserved bits {bad:#x} set: RSVD"
            )
            result.steps.append(step)
            return fault(X86Reason.RESERVED, level, int(error | PfError.P | PfError.RSVD))
        used.append((addr, value))
        rw &= value >> 1 & 1
        us &= value >> 2 & 1
        xd |= value >> 63
        if level == 0 or (level in (1, 2) and value & _PS):
            page_size = info.page_size
            pa = (value & address_mask(ctl.maxphyaddr, info.shift)) | (va & (page_size - 1))
            result.steps.append(
                FormatStep(level, info.entry, table, index, addr, value, fields, f"-> maps a {info.page}")
            )
            break
        nxt = value & address_mask(ctl.maxphyaddr)
        decision = f"-> the {LEVELS[level - 1].table} at {nxt:#x}"
        result.steps.append(FormatStep(level, info.entry, table, index, addr, value, fields, decision))
        table = nxt
    else:  # pragma: no cover - the loop always breaks at level 0
        raise AssertionError("unreachable")

    leaf = value
    pkey = (leaf & PK_MASK) >> PK_SHIFT
    user_addr = bool(us)
    checks = [
        f"rights over all {len(used)} entries: U/S={us} ({'user' if us else 'supervisor'}-mode address), "
        f"R/W={rw}, XD={xd}" + (f", protection key {pkey}" if user_addr and ctl.pke else "")
    ]
    denied = _check_rights(access, user, user_addr, rw, xd, ctl)
    pk_denied = None
    pk_flag = False
    if access is not Access.FETCH and user_addr and ctl.pke:
        ad_bit, wd_bit = ctl.pkru >> (2 * pkey) & 1, ctl.pkru >> (2 * pkey + 1) & 1
        checks.append(f"PKRU for key {pkey}: AD={ad_bit} WD={wd_bit}")
        if ad_bit:
            pk_denied = X86Reason.PKEY_ACCESS
        elif wd_bit and access is Access.STORE and (ctl.wp or user):
            pk_denied = X86Reason.PKEY_WRITE
        pk_flag = pk_denied is not None
    reason = denied or pk_denied
    result.checks = [*checks]
    if reason is not None:
        result.checks.append(f"{_ACCESS_WORDS[access]} in {mode}: denied")
        return fault(reason, result.steps[-1].level, int(error | PfError.P | (PfError.PK if pk_flag else 0)))
    result.checks.append(f"{_ACCESS_WORDS[access]} in {mode}: allowed")

    for addr, old in used:
        new = old | _A
        if addr == used[-1][0] and access is Access.STORE:
            new |= _D
        if new != old:
            result.updates.append((addr, old, new))
    if write_ad:
        for addr, _old, new in result.updates:
            mem.write_u64(addr, new)
        result.updates_written = bool(result.updates)
    result.pa, result.page_size, result.level = pa, page_size, result.steps[-1].level
    offset_bits = LEVELS[result.level].shift
    result.checks.append(
        f"pa = address {pa & ~(page_size - 1):#x} | va[{offset_bits - 1}:0] {va & (page_size - 1):#x} = {pa:#x} "
        f"({size_name(page_size)} page)"
    )
    if leaf & (_PWT | _PCD) or (leaf & PTE_PAT if result.level == 0 else leaf & (1 << 12)):
        result.notes.append("PWT/PCD/PAT select the memory type through the PAT MSR; they do not change the address")
    return result


def _check_rights(access: Access, user: bool, user_addr: bool, rw: int, xd: int, ctl: X86Control) -> X86Reason | None:
    """SDM "Access Rights" for 4-level and 5-level paging (no protection keys here)."""
    if user:
        if not user_addr:
            return X86Reason.USER_SUPERVISOR
        if access is Access.STORE and not rw:
            return X86Reason.USER_WRITE
        if access is Access.FETCH and ctl.nxe and xd:
            return X86Reason.EXECUTE_DISABLED
        return None
    if access is Access.FETCH:
        if user_addr and ctl.smep:
            return X86Reason.SMEP
        if ctl.nxe and xd:
            return X86Reason.EXECUTE_DISABLED
        return None
    if user_addr and ctl.smap and not ctl.ac:
        return X86Reason.SMAP
    if access is Access.STORE and ctl.wp and not rw:
        return X86Reason.SUPERVISOR_WRITE
    return None


def dump_x86(mem: PteReader, cr3: int, *, fmt: X86Format = X86_64, ctl: X86Control = X86Control()) -> list[str]:
    """The paging structures under ``cr3`` as a tree: present entries, each table once, reserved bits flagged."""
    root = cr3 & address_mask(ctl.maxphyaddr)
    lines = [f"cr3 {cr3:#x}: {fmt.title}, {fmt.root.table} at {root:#x}"]
    lines.append("flags: P present, W R/W=1, U U/S=1, A accessed, D dirty, G global, X XD=1 (no execute); - clear")
    seen: set[int] = set()

    def flags(value: int, leaf: bool) -> str:
        text = "P" + ("W" if value & _RW else "-") + ("U" if value & _US else "-") + ("A" if value & _A else "-")
        if leaf:
            text += ("D" if value & _D else "-") + ("G" if value & _G else "-")
        return text + ("X" if value >> 63 else "-")

    def table(addr: int, level: int, va_base: int, indent: str) -> None:
        info = LEVELS[level]
        try:
            entries = [(i, mem.read_u64(addr + i * ENTRY_SIZE)) for i in range(512)]
        except BusError:
            lines.append(f"{indent}!! the {info.table} at {addr:#x} is not in memory")
            return
        present = [(i, v) for i, v in entries if v & _P]
        absent = sum(1 for _i, v in entries if v and not v & _P)
        note = f", {absent} non-zero with P=0" if absent else ""
        lines.append(f"{indent}{info.table} {addr:#x} ({len(present)} present{note})")

        def is_leaf(value: int) -> bool:
            return level == 0 or (level in (1, 2) and bool(value & _PS))

        runs = group_runs(present, is_leaf, info.page_size)
        for n, (i, j, value) in enumerate(runs):
            last = n == len(runs) - 1
            branch, child_indent = ("└─ ", indent + "   ") if last else ("├─ ", indent + "│  ")
            va = fmt.canonical(va_base | i << info.shift)
            count = j - i + 1
            end = va + count * info.page_size - 1
            where = f"[{i:#05x}]" if count == 1 else f"[{i:#05x}-{j:#05x}]"
            head = f"{indent}{branch}{where} va {va:#x}-{end:#x}"
            bad = reserved_bits(value, level, ctl)
            if level == 0 or (level in (1, 2) and value & _PS):
                pa = value & address_mask(ctl.maxphyaddr, info.shift)
                what = info.page if count == 1 else f"{count} x {info.page}"
                text = f"{head}  {what} -> pa {pa:#x}-{pa + count * info.page_size - 1:#x}  {flags(value, True)}"
                if value & PK_MASK:
                    text += f" PK={(value & PK_MASK) >> PK_SHIFT}"
                lines.append(text + (f"  !! reserved bits {bad:#x}" if bad else ""))
                continue
            nxt = value & address_mask(ctl.maxphyaddr)
            if bad:
                lines.append(f"{head}  -> {nxt:#x}  {flags(value, False)}  !! reserved bits {bad:#x}")
                continue
            if nxt in seen:
                lines.append(f"{head}  -> {LEVELS[level - 1].table} {nxt:#x} (shown above)")
                continue
            seen.add(nxt)
            lines.append(f"{head}  -> {LEVELS[level - 1].table} {nxt:#x}  {flags(value, False)}")
            table(nxt, level - 1, va, child_indent)

    seen.add(root)
    table(root, fmt.levels - 1, 0, "")
    return lines
