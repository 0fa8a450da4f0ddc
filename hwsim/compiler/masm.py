"""The macro-assembler contract between the ISA-neutral code generator and an ISA backend.

The design follows Wasmtime's Winch: :mod:`hwsim.compiler.codegen` walks a
validated function once, keeping WebAssembly's operand stack as a list of
abstract values (in a register, a constant, a local, or a spill slot), and
asks the macro-assembler for machine code one operation at a time::

    codegen (WebAssembly: values, locals, control, calls)
       |  MacroAssembler: every operation below, nothing else
       v
    isa/<name>/masm.py (registers, frame layout, instruction selection, branches, trap sites)
    isa/<name>/regs.py (register roles)   isa/<name>/abi.py (where a signature's values go)

:class:`MacroAssembler` lists every operation and attribute the code generator
and the module compiler use, one line of doc each; ``tests/test_compiler_masm_protocol.py``
checks that the RISC-V backend implements exactly these signatures and that
the code generator calls nothing else.  A new ISA implements this protocol, its
register roles and its ABI location function; nothing in the front end or the
code generator changes.

Conventions every backend follows:

* i32 values are kept sign-extended in 64-bit integer registers; f32 values
  in float registers as the ISA holds singles; references are addresses (0 is null).
* Spill slots and locals live in the frame; a frame offset (an ``int`` from
  :meth:`~MacroAssembler.slot_offset`, :meth:`~MacroAssembler.local_offset` or
  :meth:`~MacroAssembler.aux_offset`) is opaque to the code generator.
* Every trap is a distinct trap site recorded with its code and the
  WebAssembly offset, so a trap can be reported precisely.
* Branch targets are :class:`Label` objects bound once.
* ``ty`` arguments are WebAssembly value types (``hwsim.wasm.types``); ``bits``
  are a constant's bit pattern; ``word`` arguments are vmctx offsets
  (:class:`hwsim.compiler.abi.VmctxLayout`).
"""

from __future__ import annotations

import enum
from array import array
from typing import Protocol

from ..wasm.atomics import RmwOp
from ..wasm.types import MemoryType
from .abi import AbiLoc
from .frames import FrameInfo
from .regs import Reg, RegClass
from .traps import TrapCode


class Label:
    __slots__ = ("pos",)

    def __init__(self) -> None:
        self.pos: int | None = None


class BranchOutOfRange(Exception):
    """A short branch cannot reach its label: the function is compiled again with long branches."""


class CallOutOfRange(Exception):
    """A near call cannot reach its callee: the module is compiled again with far calls."""


# -- operation kinds: each value is the operator's name in the text format ---------------------------


class OpKind(enum.Enum):
    """The base of the operation kinds: members hash by identity (an ``Enum`` hashes its name in Python,
    and these key the backend's tables, looked up for every instruction)."""

    __hash__ = object.__hash__


class IntBinOp(OpKind):
    """i32/i64 binary operators (``i32.add`` is ``ADD`` at 32 bits)."""

    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV_S = "div_s"
    DIV_U = "div_u"
    REM_S = "rem_s"
    REM_U = "rem_u"
    AND = "and"
    OR = "or"
    XOR = "xor"
    SHL = "shl"
    SHR_S = "shr_s"
    SHR_U = "shr_u"
    ROTL = "rotl"
    ROTR = "rotr"


class IntUnOp(OpKind):
    """i32/i64 unary operators."""

    CLZ = "clz"
    CTZ = "ctz"
    POPCNT = "popcnt"
    EXTEND8_S = "extend8_s"
    EXTEND16_S = "extend16_s"
    EXTEND32_S = "extend32_s"  # i64 only


class WideOp(OpKind):
    """The wide-arithmetic proposal's operators: a 128-bit result as two i64 halves."""

    ADD128 = "add128"  # [a_lo a_hi b_lo b_hi] -> [lo hi]
    SUB128 = "sub128"
    MUL_WIDE_S = "mul_wide_s"  # [a b] -> [lo hi], the full signed product
    MUL_WIDE_U = "mul_wide_u"


class IntCmp(OpKind):
    """i32/i64 comparisons (``eqz`` is :meth:`MacroAssembler.int_eqz`)."""

    EQ = "eq"
    NE = "ne"
    LT_S = "lt_s"
    LT_U = "lt_u"
    GT_S = "gt_s"
    GT_U = "gt_u"
    LE_S = "le_s"
    LE_U = "le_u"
    GE_S = "ge_s"
    GE_U = "ge_u"


class FloatBinOp(OpKind):
    """f32/f64 binary operators."""

    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"
    MIN = "min"
    MAX = "max"
    COPYSIGN = "copysign"


class FloatUnOp(OpKind):
    """f32/f64 unary operators."""

    ABS = "abs"
    NEG = "neg"
    CEIL = "ceil"
    FLOOR = "floor"
    TRUNC = "trunc"
    NEAREST = "nearest"
    SQRT = "sqrt"


class FloatCmp(OpKind):
    """f32/f64 comparisons."""

    EQ = "eq"
    NE = "ne"
    LT = "lt"
    GT = "gt"
    LE = "le"
    GE = "ge"


class Conversion(OpKind):
    """Conversions between value types (one operand, one result of another type)."""

    I32_WRAP_I64 = "i32.wrap_i64"
    I32_TRUNC_F32_S = "i32.trunc_f32_s"
    I32_TRUNC_F32_U = "i32.trunc_f32_u"
    I32_TRUNC_F64_S = "i32.trunc_f64_s"
    I32_TRUNC_F64_U = "i32.trunc_f64_u"
    I64_EXTEND_I32_S = "i64.extend_i32_s"
    I64_EXTEND_I32_U = "i64.extend_i32_u"
    I64_TRUNC_F32_S = "i64.trunc_f32_s"
    I64_TRUNC_F32_U = "i64.trunc_f32_u"
    I64_TRUNC_F64_S = "i64.trunc_f64_s"
    I64_TRUNC_F64_U = "i64.trunc_f64_u"
    F32_CONVERT_I32_S = "f32.convert_i32_s"
    F32_CONVERT_I32_U = "f32.convert_i32_u"
    F32_CONVERT_I64_S = "f32.convert_i64_s"
    F32_CONVERT_I64_U = "f32.convert_i64_u"
    F32_DEMOTE_F64 = "f32.demote_f64"
    F64_CONVERT_I32_S = "f64.convert_i32_s"
    F64_CONVERT_I32_U = "f64.convert_i32_u"
    F64_CONVERT_I64_S = "f64.convert_i64_s"
    F64_CONVERT_I64_U = "f64.convert_i64_u"
    F64_PROMOTE_F32 = "f64.promote_f32"
    I32_REINTERPRET_F32 = "i32.reinterpret_f32"
    I64_REINTERPRET_F64 = "i64.reinterpret_f64"
    F32_REINTERPRET_I32 = "f32.reinterpret_i32"
    F64_REINTERPRET_I64 = "f64.reinterpret_i64"
    I32_TRUNC_SAT_F32_S = "i32.trunc_sat_f32_s"
    I32_TRUNC_SAT_F32_U = "i32.trunc_sat_f32_u"
    I32_TRUNC_SAT_F64_S = "i32.trunc_sat_f64_s"
    I32_TRUNC_SAT_F64_U = "i32.trunc_sat_f64_u"
    I64_TRUNC_SAT_F32_S = "i64.trunc_sat_f32_s"
    I64_TRUNC_SAT_F32_U = "i64.trunc_sat_f32_u"
    I64_TRUNC_SAT_F64_S = "i64.trunc_sat_f64_s"
    I64_TRUNC_SAT_F64_U = "i64.trunc_sat_f64_u"


class LoadKind(OpKind):
    """Linear-memory loads."""

    I32_LOAD = "i32.load"
    I64_LOAD = "i64.load"
    F32_LOAD = "f32.load"
    F64_LOAD = "f64.load"
    I32_LOAD8_S = "i32.load8_s"
    I32_LOAD8_U = "i32.load8_u"
    I32_LOAD16_S = "i32.load16_s"
    I32_LOAD16_U = "i32.load16_u"
    I64_LOAD8_S = "i64.load8_s"
    I64_LOAD8_U = "i64.load8_u"
    I64_LOAD16_S = "i64.load16_s"
    I64_LOAD16_U = "i64.load16_u"
    I64_LOAD32_S = "i64.load32_s"
    I64_LOAD32_U = "i64.load32_u"


class StoreKind(OpKind):
    """Linear-memory stores."""

    I32_STORE = "i32.store"
    I64_STORE = "i64.store"
    F32_STORE = "f32.store"
    F64_STORE = "f64.store"
    I32_STORE8 = "i32.store8"
    I32_STORE16 = "i32.store16"
    I64_STORE8 = "i64.store8"
    I64_STORE16 = "i64.store16"
    I64_STORE32 = "i64.store32"


# -- the contract ------------------------------------------------------------------------------------


class MacroAssembler(Protocol):
    """Every operation and attribute the code generator (and the module compiler) uses.

    One instance assembles one function.  ``wide`` selects i64 over i32,
    ``double`` f64 over f32.  Operations may use the backend's scratch
    registers freely; they never touch a register the code generator owns
    unless it is a destination.
    """

    # -- register roles -------------------------------------------------------------------------

    int_pool: tuple[Reg, ...]
    """Integer registers the code generator gives to operand values, in allocation order."""
    float_pool: tuple[Reg, ...]
    """Float registers the code generator gives to operand values, in allocation order."""
    int_local_regs: tuple[Reg, ...]
    """Callee-saved integer registers that may home locals (saved by the prologue); fewer with metering."""
    float_local_regs: tuple[Reg, ...]
    """Callee-saved float registers that may home locals (saved by the prologue)."""
    int_leaf_local_regs: tuple[Reg, ...]
    """Caller-saved integer registers that may home locals of a function that calls nothing (taken from the operand pool; not saved)."""
    int_call_local_regs: tuple[Reg, ...]
    """Caller-saved integer registers that may home the locals no call separates from a read of them, in a
    function that calls (taken from the operand pool; not saved); never a call's first result register."""
    CALL_TARGET: Reg
    """Where the code generator loads a funcref record for :meth:`call_ref` and :meth:`tail_call_ref`."""

    # -- module assembly (hwsim.compiler.compile_module) ------------------------------------------

    trap_sites: list[tuple[int, TrapCode, int]]
    """After :meth:`finish`: (code offset, trap code, wasm offset) of every trap instruction, sorted."""
    pc_map: array
    """After :meth:`finish`: flat u32 (code offset, wasm offset) pairs, where the code of each WebAssembly
    instruction starts (an entry per instruction: an ``array("I")``, not a list of tuples)."""
    return_offsets: list[int]
    """The code offset each :meth:`call_direct`, :meth:`call_ref` (two: within and across instances) and
    :meth:`call_builtin` returns to, in order: where the code generator's stack maps are keyed."""
    stack_maps: list[tuple[int, tuple[int, ...]]]
    """(return offset, reference locations) of each safepoint, recorded by the code generator (stackmaps.py)."""
    call_fixups: list[tuple[int, int, bool]]
    """(code offset, callee function index, far) of every direct call, for :meth:`patch_call`."""
    helper_fixups: list[tuple[int, int, bool]]
    """(code offset, offset in the SIMD helper code, far) of every :meth:`call_helper`, for :meth:`patch_call`."""

    def __init__(self, *, long_branches: bool = False, far_calls: bool = False, metering: bool = False) -> None:
        """An empty function; ``long_branches`` after a BranchOutOfRange, ``far_calls`` for big modules, ``metering`` with fuel."""

    def finish(self) -> bytes:
        """Resolve branches, emit the cold trap stubs, size the frame: the function's code (BranchOutOfRange)."""

    def patch_call(self, code: bytearray, site: int, target: int, far: bool) -> None:
        """Point the call at module offset ``site`` to ``target`` (CallOutOfRange when a near call cannot)."""

    VENEER_SIZE: int
    """Bytes of a veneer: a jump from anywhere in the module's code to anywhere, for a near call that cannot reach."""

    def patch_veneer(self, code: bytearray, site: int, target: int) -> None:
        """Write at module offset ``site`` a veneer to ``target`` (it keeps the return address and the arguments)."""

    # -- code positions and labels ---------------------------------------------------------------

    def offset(self) -> int:
        """The code offset of the next instruction."""

    def mark(self, wasm_offset: int) -> None:
        """The code that follows comes from the WebAssembly instruction at ``wasm_offset``."""

    def new_label(self) -> Label:
        """A label to branch to, bound later."""

    def bind(self, label: Label) -> None:
        """``label`` is here."""

    # -- the frame ---------------------------------------------------------------------------------

    def begin_frame(self, saved: list[Reg], aux_slots: int, local_slots: int) -> None:
        """Lay the frame out: ``saved`` local registers, ``aux_slots`` aux slots, ``local_slots`` locals."""

    def frame_info(self, homes: list[tuple[Reg | None, int | None]], body: int) -> FrameInfo:
        """The frame for a debugger (frames.py): ``homes`` (register, slot) per local, ``body`` where they hold."""

    def local_offset(self, index: int) -> int:
        """The frame offset of the ``index``-th local that lives in memory."""

    def alloc_aux_slots(self, n: int) -> int:
        """Reserve ``n`` aux slots (an ``if``'s params, for its ``else``); the index of the first."""

    def aux_offset(self, index: int) -> int:
        """The frame offset of aux slot ``index``."""

    def slot_offset(self, depth: int) -> int:
        """The frame offset of the spill slot of operand-stack depth ``depth``."""

    def prologue(self, early_return: tuple[IntCmp, Reg, Reg | None] | None = None) -> None:
        """Set up the frame laid out by :meth:`begin_frame` and save the local registers; return at once, before the saves, when ``early_return`` (cond, a, b or zero) holds."""

    def epilogue_and_return(self) -> None:
        """Restore the local registers, pop the frame, return."""

    def landing_pad(self) -> None:
        """Start a try_table catch clause's landing pad: put sp back at the bottom of the frame unwound to."""

    # -- moves -------------------------------------------------------------------------------------

    def mov(self, dst: Reg, src: Reg) -> None:
        """``dst = src`` (same register class; nothing when they are one register)."""

    def scratch(self, cls: RegClass) -> Reg:
        """A scratch register of class ``cls`` that the code generator may use between two operations."""

    def load_const(self, reg: Reg, ty: int, bits: int) -> None:
        """``reg =`` the constant ``bits`` of type ``ty``."""

    def zero_reg(self, reg: Reg) -> None:
        """``reg = 0`` (+0.0 for a float register)."""

    def zero_slot(self, off: int) -> None:
        """Store a zero word at frame offset ``off``."""

    def store_slot(self, reg: Reg, off: int, ty: int) -> None:
        """Store ``reg`` (a value of type ``ty``) at frame offset ``off``."""

    def load_slot(self, reg: Reg, off: int, ty: int) -> None:
        """Load the value of type ``ty`` at frame offset ``off`` into ``reg``."""

    def copy_slot(self, dst_off: int, src_off: int, ty: int) -> None:
        """Copy a frame word to another."""

    def store_const_to_slot(self, off: int, ty: int, bits: int) -> None:
        """Store the constant ``bits`` of type ``ty`` at frame offset ``off``."""

    def load_vmctx(self, dst: Reg, word: int) -> None:
        """``dst =`` the vmctx word at ``word``."""

    # -- the calling convention ----------------------------------------------------------------------

    def abi_locations(self, types: tuple[int, ...]) -> tuple[AbiLoc, ...]:
        """Where each value of ``types`` goes across a call (the ISA's ``abi.abi_locations``)."""

    def move_from_abi(self, reg: Reg, loc: AbiLoc, ty: int) -> None:
        """``reg =`` the value of type ``ty`` at ABI location ``loc`` (a parameter or a call's result)."""

    def spill_from_abi(self, off: int, loc: AbiLoc, ty: int) -> None:
        """Store the value at ABI location ``loc`` at frame offset ``off``."""

    def reg_to_abi(self, loc: AbiLoc, reg: Reg, ty: int) -> None:
        """Put ``reg`` at ABI location ``loc`` (an argument or a result)."""

    def slot_to_abi(self, loc: AbiLoc, off: int, ty: int) -> None:
        """Put the frame word at ``off`` at ABI location ``loc``."""

    def const_to_abi(self, loc: AbiLoc, ty: int, bits: int) -> None:
        """Put the constant ``bits`` of type ``ty`` at ABI location ``loc``."""

    # -- control flow --------------------------------------------------------------------------------

    def jump(self, label: Label) -> None:
        """Branch to ``label``."""

    def branch_compare(self, cond: IntCmp, a: Reg, b: Reg | None, label: Label, when: bool) -> None:
        """Branch to ``label`` when ``(a cond b)`` is ``when`` (``b`` None: zero; i32 values compare as i64, sign-extended)."""

    def jump_table(self, index: Reg, labels: list[Label], default: Label) -> None:
        """Branch to ``labels[index]`` (an i32), or to ``default`` when it is past the end."""

    def trap(self, code: TrapCode) -> None:
        """Trap with ``code`` here."""

    def select(self, dst: Reg, a: Reg, b: Reg, cond: Reg) -> None:
        """``dst = a if cond else b``."""

    # -- calls -----------------------------------------------------------------------------------------

    def call_direct(self, func_index: int) -> None:
        """Call defined function ``func_index`` of this module (linked by :meth:`patch_call`)."""

    def tail_call_direct(self, func_index: int) -> None:
        """Pop this frame and jump to defined function ``func_index``."""

    def call_ref(self) -> None:
        """Call the funcref record in :attr:`CALL_TARGET`, switching instance when it is another's."""

    def tail_call_ref(self) -> None:
        """Tail-call the funcref record in :attr:`CALL_TARGET`, in constant stack also across instances."""

    def call_builtin(self, builtin_id: int) -> None:
        """Call runtime builtin ``builtin_id`` (``hwsim.compiler.builtins``), arguments already in place."""

    def register_number(self, reg: Reg) -> int:
        """``reg``'s DWARF number, as frames and stack maps name a register (frames.py, stackmaps.py)."""

    def table_element_for_call(self, index: Reg, table_word: int, index64: bool, type_word: int) -> None:
        """:attr:`CALL_TARGET` = table element ``index``; traps when out of bounds, null or of another type."""

    def funcref_for_call(self, ref: Reg) -> None:
        """:attr:`CALL_TARGET` = the funcref in ``ref`` (``call_ref``); traps when it is null."""

    def trap_if_null(self, ref: Reg, code: TrapCode) -> None:
        """Trap ``code`` when the reference in ``ref`` is null (``ref.as_non_null``)."""

    # -- globals and memories --------------------------------------------------------------------------

    def global_get(self, dst: Reg, word: int, ty: int) -> None:
        """``dst =`` the global whose cell the vmctx word at ``word`` points to."""

    def global_set(self, src: Reg, word: int, ty: int) -> None:
        """Store ``src`` in the global whose cell the vmctx word at ``word`` points to."""

    def memory_size(self, dst: Reg, word: int) -> None:
        """``dst =`` the size in pages of the memory whose descriptor the vmctx word at ``word`` points to."""

    def heap_address(
        self, mem: int, word: int, memtype: MemoryType, addr: Reg, offset: int, size: int
    ) -> tuple[Reg, int]:
        """(base register, displacement) addressing ``size`` bytes at ``addr + offset`` of memory ``mem``, checked."""

    def load(self, kind: LoadKind, dst: Reg, base: Reg, disp: int) -> None:
        """``dst =`` the ``kind`` load at ``base + disp`` (from :meth:`heap_address`)."""

    def store(self, kind: StoreKind, src: Reg, base: Reg, disp: int) -> None:
        """The ``kind`` store of ``src`` at ``base + disp`` (from :meth:`heap_address`)."""

    def far_access(self, far: Reg, size: int, write: bool, data: Reg, segments_word: int) -> None:
        """Load (zero-extended) or store ``data`` at far pointer ``far``, checked against the segment table."""

    # -- atomics (threads proposal): sequentially consistent; ``base + disp`` from :meth:`heap_address` --

    def atomic_check_align(self, addr: Reg, offset: int, size: int) -> None:
        """Trap ``unaligned atomic`` unless ``addr + offset`` is a multiple of ``size`` (checked before bounds)."""

    def fence(self) -> None:
        """``atomic.fence``: a full memory fence."""

    def atomic_load(self, kind: LoadKind, dst: Reg, base: Reg, disp: int) -> None:
        """``dst =`` the ``kind`` load at ``base + disp``, ordered as a sequentially consistent atomic load."""

    def atomic_store(self, kind: StoreKind, src: Reg, base: Reg, disp: int) -> None:
        """The ``kind`` store of ``src`` at ``base + disp``, ordered as a sequentially consistent atomic store."""

    def atomic_rmw(
        self, op: RmwOp, size: int, wide: bool, dst: Reg, base: Reg, disp: int, value: Reg, temps: tuple[Reg, ...]
    ) -> None:
        """``dst =`` old ``size`` bytes at ``base + disp`` (zero-extended; i64 if ``wide``), now ``old op value``; ``temps``: 3 spare registers."""

    def atomic_cmpxchg(
        self,
        size: int,
        wide: bool,
        dst: Reg,
        base: Reg,
        disp: int,
        expected: Reg,
        replacement: Reg,
        temps: tuple[Reg, ...],
    ) -> None:
        """``dst =`` old ``size`` bytes at ``base + disp``, replaced by ``replacement`` if equal to ``expected`` wrapped; 4 temps."""

    def memory_fill(
        self, dst: Reg, value: Reg, n: Reg, word: int, index64: bool, builtin_id: int, static: tuple[int, ...]
    ) -> None:
        """``memory.fill`` (operand registers clobbered): in place, bounds checked first, when the descriptor's bulk-host flag is clear and ``n <= BULK_INLINE_MAX``; else builtin ``builtin_id`` (operands, then ``static``) on a cold path that keeps every other register."""

    def memory_copy(
        self,
        dst: Reg,
        src: Reg,
        n: Reg,
        words: tuple[int, int],
        index64: tuple[bool, bool],
        builtin_id: int,
        static: tuple[int, ...],
    ) -> None:
        """``memory.copy`` as memmove between the memories at vmctx ``words`` (destination, source), in place or through the builtin as :meth:`memory_fill`."""

    # -- arithmetic --------------------------------------------------------------------------------------

    def int_imm_ok(self, op: IntBinOp, wide: bool, bits: int) -> bool:
        """Can :meth:`int_binary` take the constant ``bits`` as its second operand directly."""

    def int_binary(self, op: IntBinOp, wide: bool, dst: Reg, a: Reg, b: Reg | int) -> None:
        """``dst = a op b`` (``b`` a constant's bits when :meth:`int_imm_ok`); traps for division."""

    def int_eqz(self, dst: Reg, a: Reg) -> None:
        """``dst = (a == 0)``, also ``ref.is_null``."""

    def int_compare(self, cond: IntCmp, dst: Reg, a: Reg, b: Reg) -> None:
        """``dst = (a cond b)``, 0 or 1 (i32 values are sign-extended, so one code serves both widths)."""

    def int_unary(self, op: IntUnOp, wide: bool, dst: Reg, a: Reg) -> None:
        """``dst = op(a)``."""

    def int_wide(self, op: WideOp, lo: Reg, hi: Reg, srcs: tuple[Reg, ...]) -> None:
        """``(lo, hi) = op(srcs)`` on i64 halves (``srcs`` as stacked, 4 or 2; all read before lo/hi are written)."""

    def float_binary(self, op: FloatBinOp, double: bool, dst: Reg, a: Reg, b: Reg) -> None:
        """``dst = a op b`` with WebAssembly's NaN rules."""

    def float_unary(self, op: FloatUnOp, double: bool, dst: Reg, a: Reg) -> None:
        """``dst = op(a)`` with WebAssembly's NaN rules."""

    def float_compare(self, cond: FloatCmp, double: bool, dst: Reg, a: Reg, b: Reg) -> None:
        """``dst = (a cond b)``, 0 or 1."""

    def convert(self, conv: Conversion, dst: Reg, a: Reg) -> None:
        """``dst = conv(a)``; traps for an invalid or overflowing truncation."""

    # -- metering (hwsim.compiler.codegen.fuel) -----------------------------------------------------------

    def fuel_consume(self, cost: int) -> None:
        """Subtract ``cost`` from the fuel count (a register pinned for it, see hwsim/compiler/abi.py)."""

    def fuel_consume_reg(self, units: Reg) -> None:
        """Subtract the value in ``units`` from the fuel count (a bulk operation's size, known at run time)."""

    def fuel_checkpoint(self, cost: int, builtin_id: int, stack_map: tuple[int, ...] | None = None) -> None:
        """Subtract ``cost``; if the count is then <= 0 call ``builtin_id`` (cold), resume; ``stack_map``: a safepoint's."""

    # -- SIMD: a v128 is two 64-bit halves in integer registers (hwsim/compiler/codegen/simd.py) ---------------

    def load_v128(self, lo: Reg, hi: Reg, base: Reg, disp: int) -> None:
        """``lo, hi =`` the 16 bytes at ``base + disp`` (from :meth:`heap_address`, which may change)."""

    def store_v128(self, lo: Reg, hi: Reg, base: Reg, disp: int) -> None:
        """Store ``lo, hi`` as the 16 bytes at ``base + disp`` (``base`` may be changed)."""

    def global_get_v128(self, lo: Reg, hi: Reg, word: int) -> None:
        """``lo, hi =`` the v128 global whose 16-byte cell the vmctx word at ``word`` points to."""

    def global_set_v128(self, lo: Reg, hi: Reg, word: int) -> None:
        """Store ``lo, hi`` in the v128 global whose cell the vmctx word at ``word`` points to."""

    def call_helper(self, name: str) -> None:
        """Call the helper routine for SIMD instruction ``name`` (C calling convention, args in place)."""
