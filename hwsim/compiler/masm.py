"""The macro-assembler interface between the ISA-neutral code generator and an ISA backend.

The design follows Wasmtime's Winch: :mod:`hwsim.compiler.codegen` walks a
validated function once, keeping WebAssembly's operand stack as a list of
abstract values (in a register, a constant, a local, or a spill slot), and
asks the macro-assembler for machine code one operation at a time.  The
macro-assembler knows registers, frame layout, instruction selection,
branches and trap sites; the code generator knows WebAssembly.  A new ISA
implements this class (see :mod:`hwsim.compiler.isa.riscv64.masm`) and its
register roles; nothing in the front end or the code generator changes.

Conventions every backend follows:

* i32 values are kept sign-extended in 64-bit integer registers; f32 values
  in float registers as the ISA holds singles; references are addresses (0 is null).
* Spill slots and locals live in the frame, addressed from a frame pointer.
* Every trap is a distinct trap site recorded with its code and the
  WebAssembly offset, so a trap can be reported precisely.
* Branch targets are :class:`Label` objects bound once.
"""

from __future__ import annotations

from .regs import Reg


class Label:
    __slots__ = ("pos",)

    def __init__(self) -> None:
        self.pos: int | None = None


class BranchOutOfRange(Exception):
    """A short branch cannot reach its label: the function is compiled again with long branches."""


class MacroAssembler:
    """Operations the code generator uses.  ``cond`` strings: eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u."""

    # Register roles the code generator allocates from (set by the backend).
    int_pool: tuple[Reg, ...]
    float_pool: tuple[Reg, ...]
    int_local_regs: tuple[Reg, ...]
    float_local_regs: tuple[Reg, ...]
    int_arg_regs: tuple[Reg, ...]
    float_arg_regs: tuple[Reg, ...]

    # Code position and bookkeeping.
    def offset(self) -> int: raise NotImplementedError
    def mark_wasm_offset(self, wasm_offset: int) -> None: raise NotImplementedError
    def bind(self, label: Label) -> None: raise NotImplementedError

    # Frame.
    def prologue(self, saved: list[Reg]) -> None: raise NotImplementedError
    def epilogue_and_return(self) -> None: raise NotImplementedError
    def finish(self) -> tuple[bytes, list, list, list]: raise NotImplementedError
