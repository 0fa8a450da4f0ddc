"""RV64's calling convention for compiled WebAssembly: where a signature's values go (a0-a7, fa0-fa7, the ABI area).

Compiled code (through :class:`~hwsim.compiler.isa.riscv64.masm.RiscvMasm`)
and the runtime (moving arguments and results across a host call) both ask
:func:`abi_locations`, so the two can never disagree.  :data:`FUEL` is the
register metered code keeps the fuel count in (see hwsim/compiler/abi.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from ...abi import AbiLoc, signature_locations
from . import regs
from .regs import FLOAT_ARGS, INT_ARGS

FUEL = regs.FUEL  # the fuel count of metered code, moved to and from the Store's fuel cell by the runtime


_LOCATIONS: dict[tuple[int, ...], tuple[AbiLoc, ...]] = {}  # by signature (hashing the register sets is slow)


def abi_locations(types: Iterable[int]) -> tuple[AbiLoc, ...]:
    """Where each value of ``types`` goes, parameters or results: :class:`RegLoc` or :class:`AreaLoc` each."""
    key = tuple(types)
    locations = _LOCATIONS.get(key)
    if locations is None:
        locations = _LOCATIONS[key] = signature_locations(key, INT_ARGS, FLOAT_ARGS)
    return locations
