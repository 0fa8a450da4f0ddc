"""hwsim.mmu.translate: the TLB-and-walk routine the CPU and the IOMMU share."""

from __future__ import annotations

import pytest

from hwsim.machine import FrameAllocator, PhysicalMemory
from hwsim.mmu import AddressSpace, Pte, Tlb
from hwsim.mmu.translate import Refusal, Resolver, lookup_or_walk
from hwsim.mmu.walker import AdPolicy, FaultReason, Translation
from hwsim.riscv.priv import Access, Priv

VA = 0x40_0000
RWU = Pte.R | Pte.W | Pte.U


class Rig:
    def __init__(self) -> None:
        self.phys = PhysicalMemory()
        self.space = AddressSpace(self.phys, FrameAllocator(self.phys.add_ram(0x8000_0000, 1 << 20)), asid=1)
        self.tlb = Tlb()
        self.events: list = []

    def __call__(self, access=Access.LOAD, priv=Priv.U, *, ad=AdPolicy.UPDATE, resolvers=(), **kw):
        return lookup_or_walk(
            self.tlb,
            self.phys,
            1,
            self.space.root,
            VA,
            access,
            priv,
            ad=ad,
            resolvers=resolvers,
            on_miss=lambda va, tag: self.events.append(("miss", va, tag)),
            on_walk=lambda result: self.events.append(("walk", result.ok)),
            **kw,
        )

    def flags(self) -> Pte:
        return self.space.lookup(VA).flags


@pytest.fixture
def rig():
    return Rig()


def test_a_miss_walks_and_fills_then_hits(rig):
    rig.space.map_anonymous(VA, 0x1000, RWU, accessed=False)
    tr = rig()
    assert isinstance(tr, Translation) and rig.events == [("miss", VA, 1), ("walk", True)]
    assert rig.tlb.probe(1, VA) is tr and rig.flags() & Pte.A and not rig.flags() & Pte.D
    rig.events.clear()
    assert rig() is tr and rig.events == []  # a hit: no walk


def test_a_store_through_an_entry_without_d_walks_again_and_sets_d(rig):
    rig.space.map_anonymous(VA, 0x1000, RWU, accessed=False)
    rig()
    rig.events.clear()
    tr = rig(Access.STORE)
    assert tr.pte & Pte.D and rig.flags() & Pte.D and rig.events == [("miss", VA, 1), ("walk", True)]


def test_a_store_without_d_under_svade_is_refused_by_the_walk(rig):
    rig.space.map_anonymous(VA, 0x1000, RWU, accessed=False)
    assert rig(ad=AdPolicy.FAULT).reason is FaultReason.ACCESSED_CLEAR
    rig()  # sets A
    refusal = rig(Access.STORE, ad=AdPolicy.FAULT)
    assert refusal.reason is FaultReason.DIRTY_CLEAR and refusal.tlb_pte is None and not refusal.walk.ok


def test_a_denying_entry_refuses_without_walking(rig):
    rig.space.map_anonymous(VA, 0x1000, Pte.R | Pte.U)
    tr = rig()
    rig.events.clear()
    refusal = rig(Access.STORE)
    assert refusal == Refusal(FaultReason.NOT_WRITABLE, tlb_pte=tr.pte) and rig.events == []
    assert rig(priv=Priv.S) == Refusal(FaultReason.USER_PAGE_SUM, tlb_pte=tr.pte)
    assert isinstance(rig(priv=Priv.S, sum=True), Translation)


def test_a_fault_is_not_cached(rig):
    refusal = rig()
    assert refusal.reason is FaultReason.INVALID and refusal.walk.fault.reason is FaultReason.INVALID
    assert len(rig.tlb) == 0 and rig.events == [("miss", VA, 1), ("walk", False)]


def test_resolvers_are_asked_in_order_once_each_for_their_reason(rig):
    asked = []

    def pager(va, access):
        asked.append(("pager", va, access))
        rig.space.map_anonymous(va, 0x1000, Pte.R | Pte.U)
        return True

    def cow(va, access):
        asked.append(("cow", va, access))
        rig.space.protect(va, 0x1000, RWU)
        return True

    resolvers = (Resolver(FaultReason.INVALID, pager), Resolver(FaultReason.NOT_WRITABLE, cow))
    tr = rig(Access.STORE, resolvers=resolvers)
    assert tr.pte & Pte.W and asked == [("pager", VA, Access.STORE), ("cow", VA, Access.STORE)]
    assert rig.events == [("miss", VA, 1), ("walk", True)]  # one miss, reported once


def test_a_resolver_that_does_not_fix_is_not_asked_twice(rig):
    asked = []

    def liar(va, access):  # claims to have fixed the page but did not
        asked.append(va)
        return True

    refusal = rig(resolvers=(Resolver(FaultReason.INVALID, liar),))
    assert refusal.reason is FaultReason.INVALID and asked == [VA]


def test_a_denying_entry_is_dropped_when_a_resolver_fixes_the_page(rig):
    rig.space.map_anonymous(VA, 0x1000, Pte.R | Pte.U)
    rig()
    rig.events.clear()

    def cow(va, access):
        rig.space.protect(va, 0x1000, RWU)  # the address space flushes nothing here: the TLB is the rig's
        return True

    declined = Resolver(FaultReason.NOT_WRITABLE, lambda va, access: False)
    assert rig(Access.STORE, resolvers=(declined, Resolver(FaultReason.NOT_WRITABLE, cow))).pte & Pte.W
    assert rig.events == [("miss", VA, 1), ("walk", True)]
    assert rig.tlb.probe(1, VA).pte & Pte.W
