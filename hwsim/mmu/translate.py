"""Translation through a TLB: the one lookup-check-walk-fill sequence behind the CPU's MMU and the IOMMU.

::

    lookup_or_walk(tlb, mem, tag, root, va, access, priv, sum, mxr, mode=, ad=, resolvers=, ...)
        |
    Tlb.lookup(tag, va) --hit--> check_permission(pte) --denied--> a resolver fixes it? --no--> Refusal(tlb_pte)
        | miss                        |  allowed                          | yes: drop the stale entry
        |                             +--> a store, D=0: walk (sets D) ---+
        |                             +--> else: the cached Translation   |
        v                                                                 v
    on_miss(va, tag) ---------------> walk(mem, root, va, ...)  <---------+   (untraced, ``ram`` given:
                                                                              walk_quick first)
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
from .walker import (
    QUICK_INVALID,
    AdPolicy,
    FaultReason,
    PteMemory,
    RamWords,
    Translation,
    WalkResult,
    check_permission,
    walk,
    walk_quick,
)

_A, _D = int(Pte.A), int(Pte.D)
_STORE = Access.STORE


class Resolver(NamedTuple):
    """Software that may fix one kind of fault and have the walk retried (QEMU: a page-fault handler
    that returns to the instruction): a pager for ``V=0``, copy-on-write for ``W=0``."""

    reason: FaultReason
    # (va, access) -> True when fixed in memory: walk again.  A pager may instead return the Translation
    # of the leaf it wrote for ``va`` (what a walk would now find, as the walker builds it): when it
    # allows the access without an A/D update, it stands for that walk.
    resolve: Callable[[int, Access], bool | Translation]


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
    ram: RamWords | None = None,
) -> Translation | Refusal:
    """Translate ``va`` for ``access`` through ``tlb`` (entries tagged ``tag``), walking the tables at
    ``root`` in ``mem`` when the TLB cannot answer; a successful walk is inserted into ``tlb``.

    ``resolvers`` are asked in order when a fault has their reason: after a walk each at most once
    (then the walk is repeated), and for a denying TLB entry until one fixes it (then the entry is
    dropped and the page walked).  ``on_miss(va, tag)`` runs before the first walk of a miss,
    ``on_walk(result)`` after the last.  ``ram``: the RAM region that holds the page tables, as
    words; when given and no ``on_walk`` asks for the walks' records, the miss is served by
    :func:`~.walker.walk_quick` (same outcome, no records; a fault is walked again to be recorded),
    and a resolver may return the Translation it made instead of True, saving the walk after it.
    Returns the :class:`Translation` (its ``pa`` is for the
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
    if ram is not None and on_walk is None:
        quick = walk_quick(ram, root, va, access, priv, sum, mxr, mode, ad)
        if quick.__class__ is Translation:  # the common miss: no fault, nothing to resolve
            tlb.insert(tag, quick)
            return quick
        outcome = _miss_quick(mem, ram, root, va, access, priv, sum, mxr, mode, ad, resolvers, quick)
        if outcome.__class__ is Translation:
            tlb.insert(tag, outcome)
            return outcome
        result: WalkResult = outcome  # type: ignore[assignment]
    else:
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


def _walk_quick_or_full(
    mem: PteMemory,
    ram: RamWords,
    root: int,
    va: int,
    access: Access,
    priv: Priv,
    sum: bool,
    mxr: bool,
    mode: PagingMode,
    ad: AdPolicy,
) -> Translation | FaultReason | WalkResult:
    """A Translation, QUICK_INVALID, or the recorded walk of any other fault."""
    quick = walk_quick(ram, root, va, access, priv, sum, mxr, mode, ad)
    if quick is not None:
        return quick
    result = walk(mem, root, va, access, priv, mode=mode, sum=sum, mxr=mxr, ad=ad)
    return result if result.translation is None else result.translation  # (tables outside ``ram``)


def _miss_quick(
    mem: PteMemory,
    ram: RamWords,
    root: int,
    va: int,
    access: Access,
    priv: Priv,
    sum: bool,
    mxr: bool,
    mode: PagingMode,
    ad: AdPolicy,
    resolvers: tuple[Resolver, ...],
    first: Translation | FaultReason | None,
) -> Translation | WalkResult:
    """The miss path of :func:`lookup_or_walk` when no walk is traced: the same walks, resolvers and
    outcome, with :func:`walk_quick` standing in for every walk it can answer, and a resolver's
    Translation (see :class:`Resolver`) for the walk after it.  A fault ends as its recorded walk.
    ``first``: what walk_quick answered for the first walk."""
    outcome: Translation | FaultReason | WalkResult
    if first is None:
        result = walk(mem, root, va, access, priv, mode=mode, sum=sum, mxr=mxr, ad=ad)
        outcome = result if result.translation is None else result.translation
    else:
        outcome = first
    for reason, resolve in resolvers:
        if outcome.__class__ is Translation:
            break
        current = outcome if outcome is QUICK_INVALID else outcome.fault.reason  # type: ignore[union-attr]
        if current is reason:
            fixed = resolve(va, access)
            if fixed:
                if fixed.__class__ is Translation and _as_walked(fixed, va, access, priv, sum, mxr):
                    outcome = fixed
                else:
                    outcome = _walk_quick_or_full(mem, ram, root, va, access, priv, sum, mxr, mode, ad)
    if outcome is QUICK_INVALID:  # a fault: its record
        return walk(mem, root, va, access, priv, mode=mode, sum=sum, mxr=mxr, ad=ad)
    return outcome  # type: ignore[return-value]


def _as_walked(tr: Translation, va: int, access: Access, priv: Priv, sum: bool, mxr: bool) -> bool:
    """Whether a walk of ``va`` would return ``tr`` unchanged: the resolver's leaf is for ``va``, allows the
    access, and needs no A/D update (so no policy writes or faults)."""
    pte = tr.pte
    return (
        tr.va == va
        and pte & _A != 0
        and (access is not _STORE or pte & _D != 0)
        and check_permission(pte, access, priv, sum, mxr) is None
    )
