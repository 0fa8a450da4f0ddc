"""Translation through a TLB: the one lookup-check-walk-fill sequence behind the CPU's MMU and the IOMMU.

::

    lookup_or_walk(tlb, mem, tag, root, va, access, priv, sum, mxr, mode=, ad=, resolvers=, ...)
        |
    Tlb.lookup(tag, va) --hit--> check_permission(pte) --denied--> a resolver fixes it? --no--> Refusal(tlb_pte)
        | miss                        |  allowed                          | yes: drop the stale entry
        |                             +--> a store, D=0: walk (sets D) ---+
        |                             +--> else: the cached Translation   |
        v                                                                 v
    on_miss(va, tag) ---------------> walk(mem, root, va, ...)  <---------+
                                          | fault: each resolver in order, once, if the fault is its reason,
                                          |        may fix it; then walk again
                                          v
                                      on_walk(result); Tlb.insert(tag, tr) --> Translation
                                      (still a fault: Refusal(walk))

The callers differ only in the arguments:

=====  =====  =====================  ================================  ==========================================
who    tag    priv, SUM, MXR         A/D (``ad``)                      resolvers
=====  =====  =====================  ================================  ==========================================
CPU    ASID   the hart's (MPRV too)  ``Machine.ad_policy``             pagers (V=0), write-fault handlers (W=0)
IOMMU  PSCID  U, off, off            ``tc.SADE`` 1: UPDATE, 0: FAULT   none
=====  =====  =====================  ================================  ==========================================

A cached entry is used without looking at A (it was inserted by a walk that
set or checked A), but a store through an entry whose D is clear walks
again, so hardware sets D (``AdPolicy.UPDATE``) or the store faults
(``AdPolicy.FAULT``).  A walk that faults is never cached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ..riscv.priv import Access, Priv
from .bits import SV39, PagingMode, Pte
from .tlb import Tlb
from .walker import AdPolicy, FaultReason, PteMemory, Translation, WalkResult, check_permission, walk

_D = int(Pte.D)
_STORE = Access.STORE


class Resolver(NamedTuple):
    """Software that may fix one kind of fault and have the walk retried (QEMU: a page-fault handler
    that returns to the instruction): a pager for ``V=0``, copy-on-write for ``W=0``."""

    reason: FaultReason
    resolve: Callable[[int, Access], bool]  # (va, access) -> True when fixed in memory: walk again


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why :func:`lookup_or_walk` did not translate.

    Either the TLB's entry denied the access (``tlb_pte`` is its PTE, ``walk``
    None: nothing was walked), or the walk faulted (``walk`` is that walk).
    """

    reason: FaultReason
    tlb_pte: int | None = None
    walk: WalkResult | None = None


def lookup_or_walk(
    tlb: Tlb,
    mem: PteMemory,
    tag: int,
    root: int,
    va: int,
    access: Access,
    priv: Priv,
    sum: bool = False,
    mxr: bool = False,
    *,
    mode: PagingMode = SV39,
    ad: AdPolicy = AdPolicy.UPDATE,
    resolvers: tuple[Resolver, ...] = (),
    on_miss: Callable[[int, int], None] | None = None,
    on_walk: Callable[[WalkResult], None] | None = None,
) -> Translation | Refusal:
    """Translate ``va`` for ``access`` through ``tlb`` (entries tagged ``tag``), walking the tables at
    ``root`` in ``mem`` when the TLB cannot answer; a successful walk is inserted into ``tlb``.

    ``resolvers`` are asked in order when a fault has their reason: after a walk each at most once
    (then the walk is repeated), and for a denying TLB entry until one fixes it (then the entry is
    dropped and the page walked).  ``on_miss(va, tag)`` runs before the first walk of a miss,
    ``on_walk(result)`` after the last.  Returns the :class:`Translation` (its ``pa`` is for the
    page's VA: use ``pa_of``) or a :class:`Refusal`.
    """
    tr = tlb.lookup(tag, va)
    if tr is not None:
        denied = check_permission(tr.pte, access, priv, sum, mxr)
        if denied is None:
            if access is not _STORE or tr.pte & _D:
                return tr
        elif any(reason is denied and resolve(va, access) for reason, resolve in resolvers):
            tlb.flush(va, tag)  # fixed in memory: the cached entry is stale
        else:
            return Refusal(denied, tlb_pte=tr.pte)
    if on_miss is not None:
        on_miss(va, tag)
    result = walk(mem, root, va, access, priv, mode=mode, sum=sum, mxr=mxr, ad=ad)
    if result.fault is not None:
        for reason, resolve in resolvers:
            if result.fault is not None and result.fault.reason is reason and resolve(va, access):
                result = walk(mem, root, va, access, priv, mode=mode, sum=sum, mxr=mxr, ad=ad)
    if on_walk is not None:
        on_walk(result)
    tr = result.translation
    if tr is None:
        assert result.fault is not None  # a walk without a translation has a fault
        return Refusal(result.fault.reason, walk=result)
    tlb.insert(tag, tr)
    return tr
