"""How one signature's values cross the host<->guest boundary, worked out once per signature.

::

    host -> wasm (invoke)                          wasm -> host (ecall into a host function)
    ------------------------------------------     ---------------------------------------------
    enter: one register batch (sp ra s0 s1 s2 s3   args_from: the Store's ecall batch (t6 t4
           + the parameters in registers), ABI-      a0-a7 fa0-fa7, read once per ecall) + ABI-
           area words for the rest                   area words for the rest
    results_from: one batch read of the result     results_to: one batch write of the result
           registers + ABI-area words                registers + ABI-area words

Where each value goes is :func:`~hwsim.compiler.isa.riscv64.abi.abi_locations` (the rule compiled
code follows); a :class:`Crossing` turns it into register batches (``Machine.register_batch``: one
call into Unicorn each) and ABI-area offsets, so that a call computes no location, builds no
register name and allocates no batch.  Values are bit patterns: i32 is kept sign-extended in a
64-bit register, f32 NaN-boxed; results come back masked to their width.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..compiler.abi import RegLoc, join_v128, lower_types, split_v128
from ..compiler.isa.riscv64.abi import FLOAT_ARGS, FUEL, INT_ARGS, abi_locations
from ..wasm.types import F32, I32
from . import layout as L
from .objects import MASK64

if TYPE_CHECKING:
    from ..machine import Machine
    from ..machine.machine import RegisterBatch

# The registers an ecall is served from, read in one batch: the callee (t6), the caller's vmctx (t4,
# see RiscvMasm.call_ref), then the argument registers.  Most host functions take no float argument:
# ECALL_INT_REGS (a prefix) is read first, the whole batch only for a crossing with ``float_params``.
ECALL_REGS = ("t6", "t4", *(r.name for r in INT_ARGS), *(r.name for r in FLOAT_ARGS))
ECALL_INT_REGS = ECALL_REGS[: 2 + len(INT_ARGS)]
# ECALL_INT_REGS and the fuel register last: the batch an ecall of metered code reads (its count goes to the cell).
ECALL_FUEL_REGS = (*ECALL_INT_REGS, FUEL.name)
_ECALL_INDEX = {name: i for i, name in enumerate(ECALL_REGS)}
# Registers set on entry from the host, before the parameters: stack, return to the exit address, frame
# pointer, vmctx, memory-0 base, the zero-extension mask (see runtime/calls.py).
ENTRY_REGS = ("sp", "ra", "s0", "s1", "s2", "s3")


class Words(Protocol):
    """The Store's 8-byte host access to the ABI area (space.py: through its translation cache)."""

    def read_u64(self, va: int) -> int: ...
    def write_u64(self, va: int, value: int) -> None: ...


_SIGN32 = 0xFFFF_FFFF_0000_0000
_KIND_I32, _KIND_F32, _KIND_64 = 0, 1, 2


def _kind(ty: int) -> int:
    return _KIND_I32 if ty == I32 else _KIND_F32 if ty == F32 else _KIND_64


def to_register(kind: int, bits: int) -> int:
    """The 64-bit register (or ABI-area word) holding a value of ``kind`` with bit pattern ``bits``."""
    if kind == _KIND_I32:
        bits &= 0xFFFF_FFFF
        return bits | _SIGN32 if bits >> 31 else bits
    if kind == _KIND_F32:
        return _SIGN32 | (bits & 0xFFFF_FFFF)  # NaN-boxed single
    return bits & MASK64


class Crossing:
    """One signature's value locations as register batches and ABI-area offsets (see the module)."""

    __slots__ = (
        "machine",
        "n_params",
        "n_results",
        "entry",
        "param_regs",
        "param_area",
        "ecall_params",
        "ecall_masks",
        "float_params",
        "result_batch",
        "result_regs",
        "result_area",
        "result_masks",
        "vec_params",
        "vec_results",
    )

    def __init__(self, machine: Machine, params: tuple[int, ...], results: tuple[int, ...]) -> None:
        self.machine = machine  # the hart whose registers the batches read and write
        # A v128 crosses as two 64-bit halves (compiler.abi.lower_types); the wasm types are kept to join them.
        self.vec_params = params if lower_types(params) != params else None
        self.vec_results = results if lower_types(results) != results else None
        self.n_params = len(params)
        self.n_results = len(results)
        params, results = lower_types(params), lower_types(results)
        # Parameters: (index, kind) of those in registers, in the entry batch's order; (index, kind, offset)
        # of those in the ABI area; for an ecall, (index into the ecall batch or -1, kind, offset) of each.
        entry_names = list(ENTRY_REGS)
        self.param_regs: list[tuple[int, int]] = []
        self.param_area: list[tuple[int, int, int]] = []
        self.ecall_params: list[tuple[int, int]] = []
        for i, (loc, ty) in enumerate(zip(abi_locations(params), params)):
            kind = _kind(ty)
            if isinstance(loc, RegLoc):
                entry_names.append(loc.reg.name)
                self.param_regs.append((i, kind))
                self.ecall_params.append((_ECALL_INDEX[loc.reg.name], kind))
            else:
                self.param_area.append((i, kind, L.ABI_AREA + loc.offset))
                self.ecall_params.append((-1 - (L.ABI_AREA + loc.offset), kind))
        # (where, mask): a value of 32 bits or fewer comes back masked (i32 is sign-extended in its register)
        self.ecall_masks = [(where, MASK64 if kind == _KIND_64 else 0xFFFF_FFFF) for where, kind in self.ecall_params]
        self.float_params = any(where >= len(ECALL_INT_REGS) for where, _ in self.ecall_params)  # see ECALL_INT_REGS
        self.entry: RegisterBatch = machine.register_batch(entry_names)
        # Results: (index, kind) of those in registers (the result batch's order); (index, kind, address)
        # of those in the ABI area; the mask each is returned with.
        result_names = []
        self.result_regs: list[tuple[int, int]] = []
        self.result_area: list[tuple[int, int, int]] = []
        for i, (loc, ty) in enumerate(zip(abi_locations(results), results)):
            if isinstance(loc, RegLoc):
                result_names.append(loc.reg.name)
                self.result_regs.append((i, _kind(ty)))
            else:
                self.result_area.append((i, _kind(ty), L.ABI_AREA + loc.offset))
        self.result_batch: RegisterBatch | None = machine.register_batch(result_names) if result_names else None
        self.result_masks = [0xFFFF_FFFF if ty in (I32, F32) else MASK64 for ty in results]

    # -- host -> wasm ------------------------------------------------------------------------------

    def enter(self, store: Words, args: list[int], entry: list[int]) -> None:
        """Set the entry registers (``entry``: the values of :data:`ENTRY_REGS`) and the parameters."""
        if self.vec_params is not None:
            args = split_v128(self.vec_params, args)
        for i, kind, va in self.param_area:
            store.write_u64(va, to_register(kind, args[i]))
        for i, kind in self.param_regs:
            entry.append(to_register(kind, args[i]))
        self.entry.write(entry)

    def results_from(self, store: Words) -> list[int]:
        """The results a wasm function left, masked to their widths."""
        masks = self.result_masks
        out = [0] * len(masks)
        if self.result_batch is not None:
            for (i, _kind), value in zip(self.result_regs, self.result_batch.read()):
                out[i] = value & masks[i]
        for i, _kind, va in self.result_area:
            out[i] = store.read_u64(va) & masks[i]
        if self.vec_results is not None:
            return join_v128(self.vec_results, out)
        return out

    # -- wasm -> host ----------------------------------------------------------------------------------

    def args_from(self, store: Words, regs: list[int]) -> list[int]:
        """A host function's arguments: from ``regs`` (the ecall batch's values) and the ABI area."""
        out = []
        if not self.param_area:  # all in registers
            for where, mask in self.ecall_masks:
                out.append(regs[where] & mask)
        else:
            for where, mask in self.ecall_masks:
                out.append((regs[where] if where >= 0 else store.read_u64(-1 - where)) & mask)
        if self.vec_params is not None:
            return join_v128(self.vec_params, out)
        return out

    def results_to(self, store: Words, results: list[int]) -> None:
        """Hand a host function's results back to the wasm code that called it."""
        if self.vec_results is not None:
            results = split_v128(self.vec_results, results)
        for i, kind, va in self.result_area:
            store.write_u64(va, to_register(kind, results[i]))
        if self.result_batch is not None:
            values = []
            for i, kind in self.result_regs:  # to_register, inlined: once per host call
                bits = results[i]
                if kind == _KIND_I32:
                    bits &= 0xFFFF_FFFF
                    values.append(bits | _SIGN32 if bits >> 31 else bits)
                elif kind == _KIND_F32:
                    values.append(_SIGN32 | (bits & 0xFFFF_FFFF))
                else:
                    values.append(bits & MASK64)
            self.result_batch.write(values)
