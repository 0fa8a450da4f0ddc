"""RV64 register roles for compiled WebAssembly: pinned, scratch, locals, operand pool, arguments.

::

    x0  zero                      x8  s0/fp  frame pointer (pinned)
    x1  ra    return address      x9  s1     vmctx (pinned)
    x2  sp    stack pointer       x18 s2     memory 0 base (pinned)
    x3  gp    metered code: the fuel count (pinned, see compiler/abi.py); other code: a local (callee-saved)
    x4  tp    a local (callee-saved)
    x5-x7, x28  t0-t3  operands   x19 s3     0xffff_ffff, to zero-extend i32 addresses (pinned)
    x29-x31 t4-t6  scratch        x20-x27 s4-s11  locals (callee-saved)
    x10-x17 a0-a7  arguments, results, operands (a0-a5 also locals in a function that calls nothing,
                   a1-a5 locals dead at every call in one that calls)

    f0-f7, f28-f29  ft0-ft9   operands       f8-f9, f18-f27  fs0-fs11  locals (callee-saved)
    f10-f17 fa0-fa7           arguments, results, operands
    f30-f31 ft10-ft11         scratch

Scratch registers are never given to a value: the macro-assembler uses them
inside one operation (address arithmetic, constants, expansions).

Nothing else in a Store uses tp or gp (the runtime touches gp only in a metered
Store; the SIMD helper routines are built never to touch either), so compiled
code homes locals there as in s4-s11: two more locals out of the frame made
SHA-256 and quicksort a quarter faster (``bench/vs_wasm3.py``).
"""

from __future__ import annotations

from ...regs import FLOAT, INT, Reg


def _x(n: int) -> Reg:
    return Reg(INT, n)


def _f(n: int) -> Reg:
    return Reg(FLOAT, n)


ZERO, RA, SP = _x(0), _x(1), _x(2)
FUEL = _x(3)  # gp: the fuel count of metered code
FP = _x(8)
VMCTX = _x(9)
MEM0 = _x(18)
MASK32 = _x(19)
T4, T5, T6 = _x(29), _x(30), _x(31)  # scratch
FT10, FT11 = _f(30), _f(31)  # scratch

INT_ARGS = tuple(_x(n) for n in range(10, 18))  # a0-a7
FLOAT_ARGS = tuple(_f(n) for n in range(10, 18))  # fa0-fa7
INT_LOCALS = (*(_x(n) for n in range(20, 28)), _x(4))  # s4-s11, tp
INT_LOCALS_UNMETERED = (*INT_LOCALS, FUEL)  # and gp, where no fuel count needs it
# a0-a5 also home locals in a function that makes no calls (no function, no builtin but memory.copy/fill,
# whose host path keeps every register); t0-t3, a6, a7 stay operands there.
INT_LEAF_LOCALS = tuple(_x(n) for n in range(10, 16))
# a5-a1 home the locals of a function that calls when no call separates them from a read (they are dead at
# every call: codegen/prepass.call_crossing); a5 first, the argument register a call takes last.  Not a0:
# a call's result and a new GC object arrive there.
INT_CALL_LOCALS = tuple(_x(n) for n in range(15, 10, -1))
FLOAT_LOCALS = tuple(_f(n) for n in (8, 9, *range(18, 28)))  # fs0-fs11
# Operand pools, in allocation order: temporaries first, argument registers last (calls clobber them).
INT_POOL = (_x(5), _x(6), _x(7), _x(28), *reversed(INT_ARGS))
FLOAT_POOL = (*(_f(n) for n in range(0, 8)), _f(28), _f(29), *reversed(FLOAT_ARGS))


def dwarf_number(reg: Reg) -> int:
    """The register's DWARF number (RISC-V psABI): x0-x31 are 0-31, f0-f31 are 32-63."""
    return reg.num if reg.cls == INT else 32 + reg.num
