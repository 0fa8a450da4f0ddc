"""The compiler: validated WebAssembly to machine code for the emulated CPU.

::

    DecodedModule --compile_module--> CompiledModule: position-independent code for all
      |                          functions + trap table + pc -> wasm-offset map
      +-- per function: codegen.FuncCodegen (ISA-neutral, single pass)
                          drives isa/riscv64/masm.RiscvMasm (instruction selection)
                          through the masm.MacroAssembler protocol

    abi.py       the ABI shared with the runtime: vmctx layout, records, the ABI area, value locations
    masm.py      the MacroAssembler protocol and its operation kinds (IntBinOp, Conversion, ...)
    codegen/     env, prepass, context (value stack, registers), control, call, fuel (metering), visitor
    isa/riscv64/ regs (register roles), abi (where a signature's values go), masm (the backend)
"""

from __future__ import annotations

import bisect
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from .._gc import gc_paused
from ..wasm.module import DecodedModule, FuncBody
from ..wasm.types import ExternKind
from .abi import VmctxLayout, vmctx_layout  # noqa: F401  (vmctx_layout: read here by serialize.py)
from .codegen import FuncCodegen, ModuleEnv, module_env
from .errors import CompileError
from .frames import FrameInfo
from .isa.riscv64 import simdlib
from .isa.riscv64.masm import RiscvMasm
from .masm import BranchOutOfRange, CallOutOfRange, MacroAssembler
from .stackmaps import StackMaps
from .traps import TrapCode

COMPILER_VERSION = "rv64-singlepass-21"


class PcMap:
    """The pc -> wasm map: ``(code offset, func index, wasm offset)`` triples sorted by code offset, kept
    as one flat array of u32 (a large module has an entry per wasm instruction: a tuple each would be
    most of the time it takes to load the module from the code cache)."""

    __slots__ = ("flat", "offsets")

    def __init__(self, entries: Iterable[tuple[int, int, int]] | array = ()) -> None:
        if isinstance(entries, array):
            flat = entries
        else:
            flat = array("I")
            for entry in entries:
                flat.extend(entry)
        self.flat = flat
        self.offsets = flat[0::3]

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> PcMap:
        """From little-endian u32 triples (the code cache's layout)."""
        flat = array("I")
        flat.frombytes(data)
        if sys.byteorder == "big":
            flat.byteswap()
        return cls(flat)

    def to_bytes(self) -> bytes:
        if sys.byteorder == "big":
            swapped = array("I", self.flat)
            swapped.byteswap()
            return swapped.tobytes()
        return self.flat.tobytes()

    def funcs(self) -> array:
        return self.flat[1::3]

    def __len__(self) -> int:
        return len(self.offsets)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        it = iter(self.flat)
        return zip(it, it, it)

    def __getitem__(self, i: int) -> tuple[int, int, int]:
        flat, j = self.flat, 3 * (i % len(self) if i < 0 else i)
        return flat[j], flat[j + 1], flat[j + 2]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PcMap):
            return self.flat == other.flat
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    def __repr__(self) -> str:
        return f"PcMap({len(self)} entries)"


@dataclass
class CompiledModule:
    code: bytes
    func_offsets: list[int]  # code offset of each defined function (index - imported functions)
    func_sizes: list[int]
    trap_table: list[tuple[int, TrapCode, int, int]]  # (code offset, code, func index, wasm offset), sorted
    pc_map: PcMap  # (code offset, func index, wasm offset), sorted
    layout: VmctxLayout
    num_imported_funcs: int
    far_calls: bool = False
    metering: bool = False  # checkpoints and fuel counting (codegen/fuel.py)
    frames: Sequence[FrameInfo] = field(default_factory=list)  # per defined function: frame and locals (frames.py)
    # try_table regions (exception handling, docs/exceptions.md): (start, end, ((clause kind, tag index or -1,
    # landing pad offset), ...)) in code offsets, sorted by start; nested regions lie inside their outer one
    handlers: list[tuple[int, int, tuple[tuple[int, int, int], ...]]] = field(default_factory=list)
    stack_maps: StackMaps = field(default_factory=StackMaps)  # per safepoint, its frame's GC references (stackmaps.py)
    _trap_keys: list[int] = field(default_factory=list, repr=False)
    _pc_keys: array = field(default_factory=lambda: array("I"), repr=False)

    def __post_init__(self) -> None:
        self._trap_keys = [t[0] for t in self.trap_table]
        if not isinstance(self.pc_map, PcMap):
            self.pc_map = PcMap(self.pc_map)
        self._pc_keys = self.pc_map.offsets

    def trap_at(self, offset: int) -> tuple[TrapCode, int, int] | None:
        """(code, func index, wasm offset) of the trap instruction at ``offset``, if it is one."""
        i = bisect.bisect_left(self._trap_keys, offset)
        if i < len(self._trap_keys) and self._trap_keys[i] == offset:
            _, code, func, wasm = self.trap_table[i]
            return code, func, wasm
        return None

    def wasm_location(self, offset: int) -> tuple[int, int] | None:
        """(func index, wasm offset) of the instruction that generated the code at ``offset``."""
        i = bisect.bisect_right(self._pc_keys, offset) - 1
        if i < 0:
            return None
        _, func, wasm = self.pc_map[i]
        return func, wasm

    def handlers_at(self, offset: int) -> list[tuple[tuple[int, int, int], ...]]:
        """The catch clauses of the try_table regions holding the call at ``offset``, innermost first."""
        found = []
        for start, end, clauses in self.handlers:
            if start > offset:
                break
            if offset < end:
                found.append(clauses)
        found.reverse()
        return found

    def func_at(self, offset: int) -> int | None:
        i = bisect.bisect_right(self.func_offsets, offset) - 1
        if i < 0 or offset >= self.func_offsets[i] + self.func_sizes[i]:
            return None
        return i + self.num_imported_funcs


def _compile_function(
    env: ModuleEnv, index: int, func: FuncBody, far_calls: bool
) -> tuple[MacroAssembler, bytes, FrameInfo, list]:
    """The function's assembler (trap sites, pc map, calls to link), its code, its frame and its try_table
    regions."""
    for long_branches in (False, True):
        masm = RiscvMasm(long_branches=long_branches, far_calls=far_calls, metering=env.metering)
        codegen = FuncCodegen(env, index, func, masm)
        codegen.compile()
        try:
            return masm, masm.finish(), codegen.frame, codegen.handlers
        except BranchOutOfRange:
            continue
    raise CompileError(f"function {index}: a branch is out of range even in long form")


# Implementation limits (the specification allows them; these are wasmparser's, so wasmtime rejects the same
# modules).  Past them, code generation would need unbounded time and memory (a frame slot per local).
MAX_PARAMS = 1000  # per function type
MAX_RESULTS = 1000  # per function type
MAX_LOCALS = 50_000  # per function, parameters included


def check_limits(module: DecodedModule) -> None:
    """Raise CompileError when ``module`` exceeds an implementation limit (before any allocation)."""
    for i, ft in enumerate(module.types):
        if len(ft.params) > MAX_PARAMS or len(ft.results) > MAX_RESULTS:
            raise CompileError(
                f"implementation limit: type {i} has {len(ft.params)} parameters and "
                f"{len(ft.results)} results (hwsim compiles at most {MAX_PARAMS} and {MAX_RESULTS})"
            )
    imported = sum(1 for imp in module.imports if imp.kind == ExternKind.FUNC)
    for i, f in enumerate(module.funcs):
        count = len(module.types[f.type_index].params) + f.num_locals
        if count > MAX_LOCALS:
            raise CompileError(
                f"implementation limit: function {imported + i} has {count} locals, parameters "
                f"included (hwsim compiles at most {MAX_LOCALS})"
            )


def compile_module(module: DecodedModule, *, far_calls: bool = False, metering: bool = False) -> CompiledModule:
    """Compile every function.  Calls are ``jal`` (+-1 MiB); a call that cannot reach its callee in the
    final layout goes through a veneer placed after its function (:func:`_link`): no function is compiled
    twice, but for one over 1 MiB whose calls reach not even its veneers, compiled again with ``auipc``+``jalr``
    calls (``far_calls=True`` compiles every function that way).

    ``metering``: checkpoints at function entries and loop headers and wasmtime's fuel accounting
    (:mod:`.codegen.fuel`); without it the code has neither, byte for byte."""
    if not module.bodies:
        raise CompileError("internal error: the module was decoded without its function bodies")
    check_limits(module)
    with gc_paused():
        return _compile_module(module, far_calls, metering)


def _compile_module(module: DecodedModule, far_calls: bool, metering: bool) -> CompiledModule:
    env = module_env(module, metering=metering)
    base_index = env.num_imported_funcs
    far = [far_calls] * len(module.funcs)
    functions = [_compile_function(env, base_index + i, f, far[i]) for i, f in enumerate(module.funcs)]
    while True:
        linked = _link(functions, base_index)
        if not linked.unreachable:
            break
        # A function over 1 MiB whose own veneers are out of its calls' reach: compiled again with far
        # calls (each round turns one more function far, so this ends).
        i = linked.unreachable[0]
        far[i] = True
        functions[i] = _compile_function(env, base_index + i, module.funcs[i], True)
    code, offsets = linked.code, linked.offsets
    trap_table: list[tuple[int, TrapCode, int, int]] = []
    pc_flat = array("I")  # PcMap's layout, built directly (an entry per wasm instruction)
    handlers = []
    stack_maps = []
    for i, ((masm, _, _, regions), base) in enumerate(zip(functions, offsets)):
        fi = base_index + i
        trap_table.extend((base + off, tc, fi, wasm) for off, tc, wasm in masm.trap_sites)
        pc_flat.extend(_pc_triples(base, fi, masm.pc_map))
        handlers += [
            (base + r.start, base + r.end, tuple((kind, tag, base + pad) for kind, tag, pad in r.clauses))
            for r in regions
        ]
        stack_maps += [(base + offset, locs) for offset, locs in masm.stack_maps]
    return CompiledModule(
        bytes(code),
        offsets,
        [len(c) for _, c, _, _ in functions],
        trap_table,
        PcMap(pc_flat),
        env.layout,
        env.num_imported_funcs,
        any(far) or linked.veneers > 0,
        metering,
        [frame for _, _, frame, _ in functions],
        sorted(handlers, key=lambda h: h[0]),
        StackMaps(stack_maps),
    )


def _pc_triples(base: int, func_index: int, pairs: list[tuple[int, int]]) -> array:
    """A function's ``(code offset, wasm offset)`` pairs as PcMap triples, the code at ``base``: a column
    at a time (an entry per wasm instruction, so not a Python loop)."""
    triples = array("I", bytes(12 * len(pairs)))
    if pairs:
        offsets, wasm_offsets = zip(*pairs)
        triples[0::3] = array("I", map(base.__add__, offsets))
        triples[1::3] = array("I", [func_index]) * len(pairs)
        triples[2::3] = array("I", wasm_offsets)
    return triples


@dataclass
class _Linked:
    """The module's code laid out and its calls linked (:func:`_link`)."""

    code: bytearray
    offsets: list[int]  # code offset of each function
    veneers: int  # how many
    unreachable: list[int]  # functions (0-based among the defined ones) with a call that reaches not even a veneer


def _link(functions: list[tuple[MacroAssembler, bytes, FrameInfo, list]], num_imported: int) -> _Linked:
    """Lay the functions out, each followed by its island of veneers, then the SIMD helper routines (once, when
    some function calls one), and point every call at its callee.

    A near call (``jal``, +-1 MiB) that cannot reach goes through a veneer in its function's island, which
    jumps anywhere (the function is never compiled again).  Islands move the functions after them, which may
    put more calls out of reach: the layout is made again until every call reaches (islands only grow, so
    this ends).  A call that reaches not even its island (a function over 1 MiB) is reported in
    ``unreachable``, for that function to be compiled with far calls."""
    islands: list[dict[tuple[bool, int], int]] = [{} for _ in functions]  # (helper?, target) -> veneer number
    needs_helpers = any(masm.helper_fixups for masm, _, _, _ in functions)
    veneer = max((masm.VENEER_SIZE for masm, _, _, _ in functions), default=0)
    while True:
        offsets, island_at, pos = [], [], 0
        for (_, function_code, _, _), island in zip(functions, islands):
            offsets.append(pos)
            pos += len(function_code)
            island_at.append(pos)
            pos += veneer * len(island)
        helpers = pos + (-pos % 16) if needs_helpers else None
        if helpers is not None:
            pos = helpers + len(simdlib.CODE)
        if pos >= 1 << 32:
            raise CompileError("module code too large (4 GiB or more)")
        parts: list[bytes] = []
        for (_, function_code, _, _), island in zip(functions, islands):
            parts += (function_code, bytes(veneer * len(island)))
        code = bytearray(b"".join(parts))
        if helpers is not None:
            code.extend(bytes(helpers - len(code)) + simdlib.CODE)
        grown, unreachable = False, []
        for i, ((masm, _, _, _), base) in enumerate(zip(functions, offsets)):
            island = islands[i]
            calls = [(off, False, func_index, far) for off, func_index, far in masm.call_fixups]
            calls += [(off, True, helper, far) for off, helper, far in masm.helper_fixups]
            for off, to_helper, callee, far in calls:
                target = helpers + callee if to_helper else offsets[callee - num_imported]  # type: ignore[operator]
                try:
                    masm.patch_call(code, base + off, target, far)
                    continue
                except CallOutOfRange:
                    pass
                n = island.get((to_helper, callee))
                if n is None:  # a new veneer: the layout changes
                    island[to_helper, callee] = len(island)
                    grown = True
                    continue
                try:
                    masm.patch_call(code, base + off, island_at[i] + veneer * n, far)
                except CallOutOfRange:
                    unreachable.append(i)
                    break
        if grown:
            continue
        for (masm, _, _, _), island, at in zip(functions, islands, island_at):
            for (to_helper, callee), n in island.items():
                target = helpers + callee if to_helper else offsets[callee - num_imported]  # type: ignore[operator]
                masm.patch_veneer(code, at + veneer * n, target)
        return _Linked(code, offsets, sum(map(len, islands)), unreachable)


__all__ = ["COMPILER_VERSION", "CompileError", "CompiledModule", "PcMap", "TrapCode", "compile_module"]
