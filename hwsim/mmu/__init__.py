"""RISC-V page-based virtual memory: bit layouts, the walker, the TLB model and the walk behind it, address spaces,
two-stage translation (for teaching); and, for teaching, x86-64 and AArch64 page tables (``walk_x86``, ``walk_arm``)."""

from .arm_walk import ArmControl, walk_arm
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
from .formats import FormatWalk
from .report import format_walk, walk_to_json
from .tlb import Tlb, TlbStats
from .translate import Refusal, Resolver, lookup_or_walk
from .twostage import TwoStageFault, TwoStageResult, walk_two_stage
from .walker import AdPolicy, Fault, FaultReason, Translation, WalkResult, WalkStep, walk
from .x86_walk import X86Control, walk_x86

__all__ = [
    "AddressSpace",
    "ArmControl",
    "FormatWalk",
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
    "X86Control",
    "format_walk",
    "lookup_or_walk",
    "make_hgatp",
    "make_pte",
    "make_satp",
    "parse_flags",
    "satp_fields",
    "walk",
    "walk_arm",
    "walk_x86",
    "walk_to_json",
    "walk_two_stage",
]
