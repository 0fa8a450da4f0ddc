"""RISC-V page-based virtual memory: bit layouts, the walker, the TLB model and the walk behind it, address spaces,
two-stage translation (for teaching); and, for teaching, x86-64 and AArch64 page tables (``walk_x86``, ``walk_arm``)."""

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
from .walker import AdPolicy, Fault, FaultReason, Translation, WalkResult, WalkStep, walk

# The teaching-only walkers (x86-64, AArch64, two-stage) load on first use: the machine never needs them,
# and a command's start-up should not pay for them (tests/test_packaging.py checks what commands load).
_LAZY = {
    "ArmControl": ".arm_walk",
    "walk_arm": ".arm_walk",
    "X86Control": ".x86_walk",
    "walk_x86": ".x86_walk",
    "FormatWalk": ".formats",
    "TwoStageFault": ".twostage",
    "TwoStageResult": ".twostage",
    "walk_two_stage": ".twostage",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


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
