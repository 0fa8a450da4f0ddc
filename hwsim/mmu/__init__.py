"""RISC-V page-based virtual memory: bit layouts, the walker, the TLB model and the walk behind it, address spaces,
two-stage translation (for teaching)."""

from .aspace import AddressSpace, Mapping, parse_flags
from .bits import (
    PAGE_SIZE,
    SV39,
    SV39X4,
    SV48,
    SV48X4,
    SV57,
    PagingMode,
    Pte,
    make_hgatp,
    make_pte,
    make_satp,
    satp_fields,
)
from .report import format_walk, walk_to_json
from .tlb import Tlb, TlbStats
from .translate import Refusal, Resolver, lookup_or_walk
from .twostage import TwoStageFault, TwoStageResult, walk_two_stage
from .walker import AdPolicy, Fault, FaultReason, Translation, WalkResult, WalkStep, walk

__all__ = [
    "AddressSpace",
    "AdPolicy",
    "Fault",
    "FaultReason",
    "Mapping",
    "PAGE_SIZE",
    "PagingMode",
    "Pte",
    "Refusal",
    "Resolver",
    "SV39",
    "SV39X4",
    "SV48",
    "SV48X4",
    "SV57",
    "Tlb",
    "TlbStats",
    "Translation",
    "TwoStageFault",
    "TwoStageResult",
    "WalkResult",
    "WalkStep",
    "format_walk",
    "lookup_or_walk",
    "make_hgatp",
    "make_pte",
    "make_satp",
    "parse_flags",
    "satp_fields",
    "walk",
    "walk_to_json",
    "walk_two_stage",
]
