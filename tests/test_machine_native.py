"""hwsim.machine.native: the compiled TLB-fill helper against the Python hook it stands in for.

The C walker against the Python walker on random page tables (same translation or both decline,
same A/D bits), the C model TLB against :class:`~hwsim.mmu.tlb.Tlb` on random operations, whole
machines with and without the helper on the same guest accesses (same stops, faults, counters, TLB
contents and page tables), malicious PTEs on both paths, and the fallback: ``HWSIM_NO_NATIVE=1``,
a helper that does not build or load.
"""

from __future__ import annotations

import ctypes
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cpu_probe import RAM_BASE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pt_gen import cases
from test_mmu_reference import BytesMem

from hwsim import Machine, StopReason
from hwsim.machine import machine as machine_module
from hwsim.machine import native
from hwsim.mmu import AdPolicy, Pte
from hwsim.mmu.bits import SV39, SV48, make_satp, satp_fields
from hwsim.mmu.tlb import GLOBAL, Tlb
from hwsim.mmu.walker import Translation, walk
from hwsim.riscv import asm as A
from hwsim.riscv.priv import Access, Cause, Priv

LIB = native.library()
needs_native = pytest.mark.skipif(LIB is None, reason=f"no compiled helper: {native.unavailable_reason()}")
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
ROOT = Path(__file__).resolve().parents[1]

_ACCESS = {Access.LOAD: 0, Access.STORE: 1, Access.FETCH: 2}


def c_walk(ram: bytearray, ram_base: int, root: int, levels: int, va: int, access: Access, priv: Priv, sum_, mxr, ad):
    """hwsim_walk over ``ram`` (at ``ram_base``): the Translation, or None when it declines."""
    buffer = (ctypes.c_uint8 * len(ram)).from_buffer(ram) if ram else None
    state = native.HartState(
        ram=ctypes.addressof(buffer) if buffer is not None else None,
        ram_base=ram_base,
        ram_size=len(ram),
        ad_fault=int(ad is AdPolicy.FAULT),
    )
    out = native.TlbRecord()
    assert LIB is not None
    ok = LIB.hwsim_walk(
        ctypes.byref(state), root, levels, va, _ACCESS[access], int(priv), int(sum_), int(mxr), ctypes.byref(out)
    )
    del buffer
    return out.translation() if ok else None


# -- the walker ------------------------------------------------------------------------------------------


def check_c_walk(case, ad):
    _mode, _asid, root_ppn = satp_fields(case.satp)
    slow_ram, fast_ram = bytearray(case.ram), bytearray(case.ram)
    result = walk(BytesMem(slow_ram), root_ppn << 12, case.va, case.access, case.priv, mode=case.mode, sum=case.sum,
                  mxr=case.mxr, ad=ad)  # fmt: skip
    tr = c_walk(fast_ram, RAM_BASE, root_ppn << 12, case.mode.levels, case.va, case.access, case.priv, case.sum,
                case.mxr, ad)  # fmt: skip
    if result.ok:
        assert tr == result.translation
        assert fast_ram == slow_ram  # the same A/D update
    else:
        assert tr is None, result.fault
        assert fast_ram == case.ram  # a fault writes nothing


@needs_native
@settings(SETTINGS, max_examples=1500)
@given(case=cases(SV39, reserved=True), ad=st.sampled_from([AdPolicy.UPDATE, AdPolicy.FAULT]))
def test_c_walker_agrees_with_the_python_walker_on_random_sv39_tables(case, ad):
    check_c_walk(case, ad)


@needs_native
@settings(SETTINGS, max_examples=400)
@given(case=cases(SV48, reserved=True), ad=st.sampled_from([AdPolicy.UPDATE, AdPolicy.FAULT]))
def test_c_walker_agrees_with_the_python_walker_on_random_sv48_tables(case, ad):
    check_c_walk(case, ad)


@needs_native
@settings(SETTINGS, max_examples=200)
@given(case=cases(SV39))
def test_c_walker_never_reads_outside_its_ram(case):
    """Tables outside the buffer it was given (here: a window far from them, or an empty one) are not
    read: it declines, and the Python walker then finds the access fault."""
    _mode, _asid, root_ppn = satp_fields(case.satp)
    args = (root_ppn << 12, 3, case.va, case.access, case.priv, case.sum, case.mxr, AdPolicy.UPDATE)
    assert c_walk(bytearray(4096), RAM_BASE + 0x1000_0000, *args) is None
    assert c_walk(bytearray(), RAM_BASE, *args) is None
    assert c_walk(bytearray(4), RAM_BASE, *args) is None


@needs_native
def test_c_walker_bounds_at_the_end_of_ram_and_at_the_top_of_the_address_space():
    ram = bytearray(0x3000)
    # root at RAM_BASE: VPN[2] = 511 reads the root's last word, a pointer to the table at +0x1000,
    # whose last word points to the table at +0x2000, whose last word (the buffer's last 8 bytes) is a leaf.
    va = SV39.canonical((511 << 30) | (511 << 21) | (511 << 12) | 0x123)
    struct.pack_into("<Q", ram, 0xFF8, ((RAM_BASE + 0x1000) >> 12) << 10 | Pte.V)
    struct.pack_into("<Q", ram, 0x1FF8, ((RAM_BASE + 0x2000) >> 12) << 10 | Pte.V)
    struct.pack_into("<Q", ram, 0x2FF8, (RAM_BASE >> 12) << 10 | Pte.V | Pte.R | Pte.A)
    tr = c_walk(ram, RAM_BASE, RAM_BASE, 3, va, Access.LOAD, Priv.S, False, False, AdPolicy.UPDATE)
    assert tr is not None and tr.pa == RAM_BASE + 0x123 and tr.pte_addr == RAM_BASE + 0x2FF8
    # one byte short: the last PTE is no longer wholly inside, and is not read
    assert c_walk(ram[:-1], RAM_BASE, RAM_BASE, 3, va, Access.LOAD, Priv.S, False, False, AdPolicy.UPDATE) is None
    # a RAM buffer at the very top of the physical address space, and a root below it
    top = (1 << 64) - 0x1000
    assert (
        c_walk(bytearray(0x1000), top, top - 0x1000, 3, va, Access.LOAD, Priv.S, False, False, AdPolicy.UPDATE) is None
    )
    # the largest root a satp can name (PPN all ones): far beyond RAM
    assert c_walk(ram, RAM_BASE, ((1 << 44) - 1) << 12, 3, va, Access.LOAD, Priv.S, False, False,
                  AdPolicy.UPDATE) is None  # fmt: skip


# -- the model TLB ---------------------------------------------------------------------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("insert"),
            st.integers(0, 3),
            st.integers(0, 7),
            st.integers(0, 2),
            st.booleans(),
            st.integers(0, 0xFF),
        ),  # fmt: skip
        st.tuples(st.just("lookup"), st.integers(0, 3), st.integers(0, 7)),
        st.tuples(st.just("hit"), st.integers(0, 3), st.integers(0, 7), st.sampled_from([0, int(Pte.D), int(Pte.W)])),
        st.tuples(st.just("probe"), st.integers(0, 3), st.integers(0, 7)),
        st.tuples(st.just("flush"), st.one_of(st.none(), st.integers(0, 7)), st.one_of(st.none(), st.integers(0, 3))),
    ),
    max_size=60,
)


def _page_va(n: int) -> int:
    return (n % 4) << 12 | (n // 4) << 21  # 4 KiB pages in two 2 MiB regions: superpages overlap them


def _translation(va: int, level: int, global_: bool, flags: int) -> Translation:
    size = 1 << (12 + 9 * level)
    return Translation(va + 0x18, 0x8000_0000 + (va & ~(size - 1)) + 0x18, level, size, 0x8010_0000 + va % 4096 * 8,
                       (0x80000 << 10) | flags | int(Pte.V), global_)  # fmt: skip


@needs_native
@settings(SETTINGS, max_examples=400)
@given(ops=_ops, capacity=st.integers(1, 6))
def test_native_tlb_behaves_as_the_python_tlb(ops, capacity):
    """Hits, misses, LRU eviction, global entries and the four flush forms: the same answers,
    entries (in LRU order) and statistics."""
    assert LIB is not None
    py, c = Tlb(capacity=capacity), native.NativeTlb(LIB, capacity=capacity)
    for op in ops:
        if op[0] == "insert":
            _, asid, n, level, global_, flags = op
            tr = _translation(_page_va(n), level, global_, flags)
            py.insert(asid, tr)
            c.insert(asid, tr)
        elif op[0] == "flush":
            va = None if op[1] is None else _page_va(op[1])
            assert c.flush(va, op[2]) == py.flush(va, op[2])
        elif op[0] == "hit":
            assert c.hit(op[1], _page_va(op[2]) + 5, op[3]) == py.hit(op[1], _page_va(op[2]) + 5, op[3])
        else:
            name, asid, n = op
            assert getattr(c, name)(asid, _page_va(n) + 5) == getattr(py, name)(asid, _page_va(n) + 5)
        assert c.entries() == py.entries()
        assert len(c) == len(py)
        assert c.stats.as_dict() == py.stats.as_dict()


@needs_native
def test_native_tlb_refuses_a_bad_capacity():
    assert LIB is not None
    with pytest.raises(ValueError, match="TLB capacity must be positive, not 0"):
        native.NativeTlb(LIB, capacity=0)
    with pytest.raises(ValueError, match="too large for the native TLB"):
        native.NativeTlb(LIB, capacity=1 << 30)
    assert native.NativeTlb(LIB, capacity=3).entries() == [] and GLOBAL == -1


# -- whole machines: the helper and the Python hook side by side --------------------------------------------

CODE = 0x1_0000
DATA = 0x40_0000  # a 2 MiB-aligned region: 8 pages mapped, each leaf then overwritten
PAGES = 8


def python_machine(**kw) -> Machine:
    """A Machine built as if the helper were unavailable."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(machine_module, "library", lambda: None)
        m = Machine(**kw)
    assert not m.native
    return m


def both(**kw) -> list[Machine]:
    machines = [python_machine(**kw)]
    if LIB is not None:
        machines.append(Machine(**kw))
        assert machines[1].native
    return machines


_HIGH = ((1 << 10) - 1) << 54  # PTE bits 63:54


def leaf_word(old: int, flags: int | None, ppn_kind: str) -> int:
    """A leaf PTE made from the mapped one ``old``: its flags (and bits 63:54) replaced by ``flags``, its
    PPN kept, or beyond RAM, or RAM's first frame."""
    if flags is None:
        return old
    ppn = {"same": (old >> 10) & ((1 << 44) - 1), "beyond RAM": 0x1_0000_0000 >> 12, "other": RAM_BASE >> 12}[ppn_kind]
    return ppn << 10 | (flags & 0x3FF) | (flags & _HIGH)


def setup(m: Machine, leaves, priv: Priv, sum_: bool, mxr: bool, code: bytes) -> list[int]:
    """``code`` at CODE and 8 pages at DATA mapped, each data leaf PTE then rewritten (``leaves``: (flags,
    PPN kind)); returns the data leaves' PTE addresses."""
    space = m.new_address_space(asid=1)
    code_pa = m.frames.alloc()
    space.map(CODE, code_pa, 0x1000, Pte.R | Pte.X | (Pte.U if priv is Priv.U else 0))
    m.phys.write(code_pa, code)
    space.map(DATA, m.frames.alloc(PAGES), PAGES * 0x1000, Pte.R | Pte.W | Pte.U, page_size=0x1000)
    addrs = []
    for i, (flags, ppn_kind) in enumerate(leaves):
        addr = walk(m.phys, space.root, DATA + i * 0x1000, Access.LOAD, Priv.S, sum=True).steps[-1].pte_addr
        m.phys.write_u64(addr, leaf_word(m.phys.read_u64(addr), flags, ppn_kind))
        addrs.append(addr)
    m.activate(space, priv=priv, sum=sum_, mxr=mxr)
    return addrs


def program(accesses) -> tuple[bytes, int]:
    a = A.Assembler(CODE)
    for store, page, offset in accesses:
        a.li("a1", DATA + page * 0x1000 + offset * 8)
        a.emit(A.sd("a1", "a1", 0) if store else A.ld("a0", "a1", 0))
    a.label("exit")
    return a.finish(), a.labels["exit"]


def observe(m: Machine, result, addrs) -> dict:
    fault = result.fault
    return {
        "reason": result.reason,
        "pc": result.pc,
        "cause": result.cause,
        "fault": None
        if fault is None
        else (
            fault.va,
            fault.access,
            fault.priv,
            fault.cause,
            fault.kind,
            fault.message,
            fault.tlb_entry_pte,
        ),  # fmt: skip
        "walk": None if fault is None or fault.walk is None else fault.walk.steps,
        "fills": m.fills,
        "walks": m.walks,
        "tlb": m.tlb.entries(),
        "stats": m.tlb.stats.as_dict(),
        "ptes": [m.phys.read_u64(a) for a in addrs],
    }


def run_both(leaves, accesses, priv=Priv.U, sum_=False, mxr=False, runs=2, **kw) -> list:
    """What each machine (without the helper, then with it) observes running ``accesses`` ``runs`` times,
    Unicorn's TLB flushed between runs (so later runs go through the model TLB)."""
    seen = []
    for m in both(ram_size=4 << 20, **kw):
        code, exit_ = program(accesses)
        addrs = setup(m, leaves, priv, sum_, mxr, code)
        observed = []
        for _ in range(runs):
            observed.append(observe(m, m.run(CODE, until=exit_), addrs))
            m.flush_cpu_tlb()
        seen.append(observed)
    return seen


_V, _R, _W, _X, _U, _G, _A, _D = (int(f) for f in (Pte.V, Pte.R, Pte.W, Pte.X, Pte.U, Pte.G, Pte.A, Pte.D))
_interesting = (
    st.sampled_from(  # the interesting leaves: D or A clear, read-only, execute-only (MXR), supervisor, global
        [
            _V | _R | _W | _U | _A,
            _V | _R | _W | _U,
            _V | _R | _U | _A,
            _V | _X | _U | _A,
            _V | _R | _W | _A | _D,
            _V | _R | _W | _U | _G | _A,
            _R | _W | _U | _A | _D,
        ]  # fmt: skip
    )
)
_flags = st.one_of(  # (one_of picks a branch uniformly: repeated branches weigh more)
    st.none(),
    st.none(),
    _interesting,
    _interesting,
    _interesting,
    st.integers(0, 0xFF),  # any V R W X U G A D
    st.sampled_from([int(Pte.V | Pte.W), int(Pte.V | Pte.W | Pte.X | Pte.A)]),  # W without R
    st.integers(1, 0x3FF).map(lambda high: high << 54 | 0xDF),  # reserved bits 63:54
)
_leaves = st.lists(st.tuples(_flags, st.sampled_from(["same", "same", "beyond RAM", "other"])), min_size=PAGES,
                   max_size=PAGES)  # fmt: skip
_accesses = st.lists(
    st.tuples(st.booleans(), st.integers(0, 2), st.integers(0, 3)), min_size=4, max_size=16
)  # (pages 0-2: repeated)


@needs_native
@settings(SETTINGS, max_examples=300)
@given(
    leaves=_leaves,
    accesses=_accesses,
    priv=st.sampled_from([Priv.U, Priv.S]),
    sum_=st.booleans(),
    mxr=st.booleans(),
    ad=st.sampled_from([AdPolicy.UPDATE, AdPolicy.FAULT]),
    capacity=st.sampled_from([2, 1024]),
)
def test_machines_with_and_without_the_helper_observe_the_same(leaves, accesses, priv, sum_, mxr, ad, capacity):
    """Random (also malicious) leaf PTEs, random loads and stores, run twice: the same stop, fault,
    walk record, counters, TLB entries and statistics, and page tables (A/D bits)."""
    python, compiled = run_both(leaves, accesses, priv, sum_, mxr, ad_policy=ad, tlb_capacity=capacity)
    assert compiled == python


# -- malicious page tables on both paths -------------------------------------------------------------------

_RAM_2M = RAM_BASE >> 12  # a 2 MiB-aligned PPN: RAM's first frame
_BEYOND = 0x1_0000_0000 >> 12  # a PPN past the end of RAM
_LEAF = _V | _R | _W | _U | _A | _D

_LOAD_PF, _STORE_PF, _LOAD_AF = Cause.LOAD_PAGE_FAULT, Cause.STORE_PAGE_FAULT, Cause.LOAD_ACCESS


def case(l1, l0, outcome, *, priv=Priv.U, sum_=False, mxr=False, store=False):
    """The level-1 PTE of DATA's 2 MiB region, DATA's level-0 PTE (None: no level-0 table), the access
    (a load unless ``store``; U-mode unless ``priv``), and its outcome: a Cause, or "ok"."""
    return l1, l0, priv, sum_, mxr, store, outcome


ATTACKS = {
    "aligned superpage (control)": case(_RAM_2M << 10 | _LEAF, None, "ok"),
    "misaligned superpage": case((_RAM_2M | 1) << 10 | _LEAF, None, _LOAD_PF),
    "reserved bits 63:54 in a leaf": case(1 << 60 | _RAM_2M << 10 | _LEAF, None, _LOAD_PF),
    "reserved bits 63:54 in a pointer": case(1 << 63, 0, _LOAD_PF),
    "W without R (store)": case(None, _RAM_2M << 10 | _V | _W | _U | _A | _D, _STORE_PF, store=True),
    "W without R (load)": case(None, _RAM_2M << 10 | _V | _W | _X | _U | _A, _LOAD_PF),
    "U page from S-mode, SUM=0": case(None, _RAM_2M << 10 | _LEAF, _LOAD_PF, priv=Priv.S),
    "U page from S-mode, SUM=1": case(None, _RAM_2M << 10 | _LEAF, "ok", priv=Priv.S, sum_=True),
    "S page from U-mode": case(None, _RAM_2M << 10 | (_LEAF & ~_U), _LOAD_PF),
    "execute-only page, MXR=0": case(None, _RAM_2M << 10 | _V | _X | _U | _A, _LOAD_PF),
    "execute-only page, MXR=1": case(None, _RAM_2M << 10 | _V | _X | _U | _A, "ok", mxr=True),
    "store to a read-only page": case(None, _RAM_2M << 10 | _V | _R | _U | _A, _STORE_PF, store=True),
    "non-leaf with A set": case(_A, 0, _LOAD_PF),
    "pointer at level 0 (no leaf)": case(None, _RAM_2M << 10 | _V, _LOAD_PF),
    "pointer PPN beyond RAM": case(_BEYOND << 10 | _V, None, _LOAD_AF),
    "pointer PPN all ones": case(((1 << 44) - 1) << 10 | _V, None, _LOAD_AF),
    "leaf PPN beyond RAM": case(None, _BEYOND << 10 | _LEAF, _LOAD_AF),
}


def attack(m: Machine, l1, l0, priv, sum_, mxr, store) -> dict:
    """CODE mapped as usual; DATA's level-1 PTE (and level-0 PTE) written raw; one load or store of DATA."""
    a = A.Assembler(CODE)
    a.li("a1", DATA).emit(A.sd("a1", "a1", 0) if store else A.ld("a0", "a1", 0)).label("exit")
    space = m.new_address_space(asid=1)
    code_pa = m.frames.alloc()
    space.map(CODE, code_pa, 0x1000, Pte.R | Pte.X | (Pte.U if priv is Priv.U else 0))
    m.phys.write(code_pa, a.finish())
    l1_table = walk(m.phys, space.root, CODE, Access.FETCH, Priv.S, sum=True).steps[1].pte_addr & ~0xFFF
    l1_addr = l1_table + 8 * ((DATA >> 21) & 511)
    if l0 is not None:
        l0_table = m.frames.alloc()
        pointer = (l0_table >> 12) << 10 | _V
        m.phys.write_u64(l1_addr, pointer if l1 is None else pointer | l1)
        m.phys.write_u64(l0_table + 8 * ((DATA >> 12) & 511), l0)
    else:
        m.phys.write_u64(l1_addr, l1)
    m.activate(space, priv=priv, sum=sum_, mxr=mxr)
    return observe(m, m.run(CODE, until=a.labels["exit"]), [l1_addr])


@needs_native
@pytest.mark.parametrize("name", ATTACKS)
def test_malicious_page_tables_fault_the_same_on_both_paths(name):
    """Each attack ends as the specification says (a page fault, or an access fault for tables or pages
    outside RAM), with the same report, counters, TLB and A/D bits with and without the helper."""
    *setup_, expected = ATTACKS[name]
    python, compiled = (attack(m, *setup_) for m in both(ram_size=4 << 20))
    assert compiled == python
    if expected == "ok":
        assert python["reason"] is StopReason.EXIT
    else:
        assert python["reason"] is StopReason.FAULT and python["fault"][3] is expected
        assert python["fault"][0] == DATA  # tval: the faulting address


@needs_native
def test_a_root_table_beyond_ram_is_an_access_fault_on_both_paths():
    seen = []
    for m in both(ram_size=4 << 20):
        m.set_reg("satp", make_satp(SV39, ((1 << 44) - 1), asid=1))
        m.set_reg("priv", int(Priv.S))
        seen.append(observe(m, m.run(CODE, until=CODE + 4), []))
    assert seen[0] == seen[1]
    assert seen[0]["reason"] is StopReason.FAULT and seen[0]["fault"][3] is Cause.FETCH_ACCESS


# -- what defers to Python: traces ------------------------------------------------------------------------


@needs_native
def test_traced_walks_are_the_same_with_the_helper():
    """While page_walk or tlb_miss is traced the compiled hook hands every fill to Python, so the trace
    has every walk and miss, as without it; after the trace, the helper serves fills again."""
    import io

    from hwsim.trace import tracing

    leaves = [(None, "same")] * PAGES
    accesses = [(False, 0, 0), (True, 1, 0), (False, 2, 1), (True, 0, 1)]
    texts = []
    for m in both(ram_size=4 << 20):
        code, exit_ = program(accesses)
        setup(m, leaves, Priv.U, False, False, code)
        out = io.StringIO()
        with tracing("page_walk,tlb_miss", stream=out):
            assert m.run(CODE, until=exit_).ok
        texts.append(out.getvalue())
        served = m._native.fills if m._native is not None else None
        m.sfence_vma()
        assert m.run(CODE, until=exit_).ok
        if m._native is not None:
            assert served == 0 and m._native.fills > 0  # none served while traced, all of them after
    assert texts[0] == texts[1] and texts[0].count("walk ") == 4 and texts[0].count("TLB miss") == 4


# -- the fallback: HWSIM_NO_NATIVE, a helper that does not build or load --------------------------------------


def _no_native_env() -> dict[str, str]:
    return {**os.environ, "HWSIM_NO_NATIVE": "1", "PYTHONPATH": str(ROOT)}


def test_hwsim_no_native_forces_the_python_hook_and_says_why():
    code = (
        "from hwsim import Machine; from hwsim.machine import native; from hwsim.mmu.tlb import Tlb; "
        "m = Machine(); print(m.native, type(m.tlb) is Tlb, native.unavailable_reason())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_no_native_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False True HWSIM_NO_NATIVE is set"


def test_machine_and_paging_tests_pass_on_the_python_hook():
    """A representative subset of the machine and paging tests, run again with the helper turned off
    (the rest of the suite runs with it, when it builds)."""
    subset = [
        "tests/test_machine.py",
        "tests/test_machine_hooks.py",
        "tests/test_machine_cputlb.py",
        "tests/test_machine_storewatch.py",
        "tests/test_harts.py",
        "tests/test_lab_paging.py",
    ]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", *subset],
        cwd=ROOT,
        env=_no_native_env(),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout


@pytest.fixture
def fresh_native(monkeypatch, tmp_path):
    """native.py as before its first use, building into an empty cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("HWSIM_NO_NATIVE", raising=False)
    monkeypatch.setattr(native, "_LIB", None)
    monkeypatch.setattr(native, "_REASON", None)
    monkeypatch.setattr(native, "_LOOKED", False)
    return tmp_path


def test_a_helper_that_does_not_compile_leaves_the_python_hook_with_the_compiler_message(fresh_native, monkeypatch):
    broken = fresh_native / "native_fill.c"
    broken.write_text("int hwsim_native_abi(void) { return 1 }\n")  # a missing semicolon
    monkeypatch.setattr(native, "SOURCE", broken)
    with pytest.raises(native.NativeBuildError, match="building the TLB-fill helper failed:\n.*error"):
        native.build()
    assert native.library() is None
    assert native.unavailable_reason().startswith("building the TLB-fill helper failed")
    with pytest.MonkeyPatch.context() as patch:  # a machine made now uses the Python hook
        patch.setattr(machine_module, "library", native.library)
        m = Machine(ram_size=1 << 20)
    assert not m.native and type(m.tlb) is Tlb


def test_a_library_that_is_not_the_helper_is_refused(fresh_native, monkeypatch):
    not_a_library = fresh_native / "junk.so"
    not_a_library.write_bytes(b"\x7fELF this is not a shared object")
    with pytest.raises(native.NativeBuildError, match="cannot load the TLB-fill helper .*junk.so"):
        native.load_library(not_a_library)
    partial = fresh_native / "native_fill.c"
    partial.write_text("int hwsim_native_abi(void) { return 1; }\n")  # builds, but has none of the rest
    monkeypatch.setattr(native, "SOURCE", partial)
    with pytest.raises(native.NativeBuildError, match="cannot load the TLB-fill helper .*hwsim_tlb_new"):
        native.load_library(native.build())


@needs_native
def test_the_helper_is_cached_by_the_digest_of_its_source(fresh_native):
    first = native.build()
    assert first.parent == fresh_native / "cache" / "hwsim" / "native" and first.is_file()
    stamp = first.with_name(first.name + ".sha256").read_text()
    assert first.name == f"native_fill-{stamp[:16]}.so"
    mtime = first.stat().st_mtime_ns
    assert native.build() == first and first.stat().st_mtime_ns == mtime  # found, not rebuilt


# -- what defers to Python: watches ----------------------------------------------------------------------


@needs_native
def test_a_watch_on_a_page_the_helper_handed_over_catches_the_next_access():
    """The helper keeps no record of the pages it handed to Unicorn, so a new watch flushes Unicorn's
    TLB: the page's next access comes back to a fill, which Python serves while a page is watched."""
    leaves = [(None, "same")] * PAGES
    accesses = [(False, 0, 0), (True, 0, 1), (False, 1, 0)]
    seen = []
    for m in both(ram_size=4 << 20):
        code, exit_ = program(accesses)
        addrs = setup(m, leaves, Priv.U, False, False, code)
        assert m.run(CODE, until=exit_).ok  # every page handed over (by the helper, on its machine)
        hits: list = []
        page_pa = m.tlb.probe(1, DATA).pa_of(DATA)
        m.watch_page(page_pa, hits.append)
        result = m.run(CODE, until=exit_)
        after_watch = observe(m, result, addrs)
        m.unwatch_page(page_pa)
        served_before = m._native.fills if m._native is not None else 0
        m.flush_cpu_tlb()
        assert m.run(CODE, until=exit_).ok
        if m._native is not None:  # unwatched: the helper serves fills again
            assert m._native.fills > served_before
        seen.append((after_watch, [(h.va, h.access, h.size) for h in hits]))
    assert seen[0] == seen[1]
    assert [access for _va, access, _size in seen[0][1]] == [Access.LOAD, Access.STORE]


@needs_native
def test_while_a_page_is_watched_the_helper_serves_every_other_page_and_python_the_watched_one():
    """A watch hands Python the fills of its page alone (the helper searches the watched pages): the
    other pages' fills, first walks and TLB hits alike, stay in C; both machines see the same hits, A/D
    bits, counters and TLB contents."""
    leaves = [(None, "same")] * PAGES
    accesses = [(False, 0, 0), (True, 1, 0), (False, 2, 0), (True, 0, 1), (False, 1, 1), (False, 0, 2)]
    seen = []
    for m in both(ram_size=4 << 20):
        code, exit_ = program(accesses)
        addrs = setup(m, leaves, Priv.U, False, False, code)
        hits: list = []
        page_pa, other_pa = (((m.phys.read_u64(addrs[i]) >> 10) & ((1 << 44) - 1)) << 12 for i in (0, 2))
        m.watch_page(page_pa, hits.append, accesses=(Access.STORE,))
        m.watch_page(other_pa, hits.append, accesses=(Access.LOAD,))
        served = m._native.fills if m._native is not None else 0
        observed = []
        for _ in range(2):  # the second run goes through the model TLB (hits)
            observed.append(observe(m, m.run(CODE, until=exit_), addrs))
            m.flush_cpu_tlb()
        if m._native is not None:
            assert m._native.fills - served >= 4  # the code page and page 1, in both runs, served in C
        m.unwatch_page(page_pa)
        m.unwatch_page(other_pa)
        seen.append((observed, [(h.va, h.access, h.size) for h in hits]))
    assert seen[0] == seen[1]
    assert [(va - DATA, access) for va, access, _ in seen[0][1]] == [(0x2000, Access.LOAD), (0x8, Access.STORE)] * 2


@needs_native
def test_many_watched_pages_each_reach_python_and_unwatching_them_all_hands_fills_back():
    """More watched pages than the helper's first array holds (it grows): a load from the last one
    watched still stops; with every watch ended, the helper serves that page again."""
    from test_machine import DATA as G_DATA
    from test_machine import Guest

    g = Guest()
    extra = [g.m.frames.alloc() for _ in range(40)]
    hits: list = []
    for pa in extra:
        g.m.watch_page(pa, hits.append, accesses=(Access.STORE,))
    g.m.watch_page(g.data_pa, hits.append, accesses=(Access.LOAD,))
    assert g.m._native is not None and g.m._native.n_watched == 41

    def prog(a):
        a.li("a1", G_DATA).emit(A.ld("a0", "a1", 8))

    assert g.run(prog).ok and [(h.va, h.access) for h in hits] == [(G_DATA + 8, Access.LOAD)]
    for pa in [*extra, g.data_pa]:
        g.m.unwatch_page(pa)
    served = g.m._native.fills
    g.m.flush_cpu_tlb()
    assert g.run(prog).ok and len(hits) == 1 and g.m._native.n_watched == 0 and g.m._native.fills > served


# -- the PC-syncing hook over device windows -----------------------------------------------------------------


@needs_native
def test_the_pc_syncing_hook_over_device_windows_is_compiled_and_never_enters_python():
    """track_mmio_pcs registers hwsim_mmio_access over every window: the PC is exact at each device access
    (the compiled hook keeps it) with no Python call of its own; the device-access observers, while one is
    registered, run in the window's callback just before the device serves the access, on every hart, a
    window added later included."""
    from test_machine import CODE as G_CODE
    from test_machine import RW, Guest, Recorder

    g = Guest()
    hart = g.m.add_hart()
    g.m.phys.add_mmio(0x1000_0000, 0x1000, Recorder(), name="early")
    g.m.track_mmio_pcs()
    late = Recorder()
    pcs: list = []
    late.mmio_write = lambda offset, size, value: pcs.append(g.m.mmio_pc)  # type: ignore[method-assign]
    g.m.phys.add_mmio(0x1000_1000, 0x1000, late, name="late")
    g.space.map(0x4_0000, 0x1000_0000, 0x2000, RW)

    def prog(a):
        a.li("a1", 0x4_0000).li("a3", 0x4_1000)
        a.emit(A.lw("a0", "a1", 0), A.addi("a2", "zero", 1), A.sw("a2", "a3", 0))

    load_pc = G_CODE + 4 * (len(A.li_words("a1", 0x4_0000)) + len(A.li_words("a3", 0x4_1000)))
    store_pc = load_pc + 8
    assert g.run(prog).ok
    assert pcs == [store_pc] and g.m._access_hook is not None and hart._access_hook is not None
    assert g.m._access_hook.pc == store_pc  # (the last access the hook saw)
    seen: list = []  # (the PC the hook kept, whether the device is serving yet) at each observer call
    remove = g.m.add_device_access_observer(lambda: seen.append((g.m._access_hook.pc, g.m.mmio_pc)))
    assert g.run(prog).ok
    assert seen == [(load_pc, None), (store_pc, None)] and pcs == [store_pc, store_pc]
    remove()
    assert g.run(prog).ok
    assert len(seen) == 2 and pcs[-1] == store_pc


@needs_native
def test_native_tlb_probes_the_global_tag_as_the_python_tlb():
    assert LIB is not None
    py, c = Tlb(capacity=4), native.NativeTlb(LIB, capacity=4)
    for tlb in (py, c):
        tlb.insert(3, _translation(0x1000, 0, True, _R))
    assert c.probe(GLOBAL, 0x1000) == py.probe(GLOBAL, 0x1000) is not None
    assert c.entries() == py.entries() and c.entries()[0][0] == GLOBAL
