"""RISC-V page-based virtual memory: bit layouts, the walker, the TLB model and the walk behind it, address spaces."""

from .aspace import AddressSpace, Mapping, parse_flags
from .bits import PAGE_SIZE, SV39, SV48, PagingMode, Pte, make_pte, make_satp, satp_fields
from .report import format_walk, walk_to_json
from .tlb import Tlb, TlbStats
from .translate import Refusal, Resolver, lookup_or_walk
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
    "SV48",
    "Tlb",
    "TlbStats",
    "Translation",
    "WalkResult",
    "WalkStep",
    "format_walk",
    "lookup_or_walk",
    "make_pte",
    "make_satp",
    "parse_flags",
    "satp_fields",
    "walk",
    "walk_to_json",
]
