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
from . import parallel
from .abi import VmctxLayout, vmctx_layout  # noqa: F401  (vmctx_layout: read here by serialize.py)
from .codegen import FuncCodegen, ModuleEnv, module_env
from .errors import CompileError
from .frames import FrameInfo
from .isa.riscv64 import simdlib
from .isa.riscv64.masm import RiscvMasm
from .masm import BranchOutOfRange, CallOutOfRange, MacroAssembler
from .stackmaps import StackMaps
from .traps import TrapCode

COMPILER_VERSION = "rv64-singlepass-23"


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


@dataclass(slots=True)
class FunctionCode:
    """One compiled function as plain data (what linking and the module's tables need; a worker process
    sends these back, :mod:`.parallel`): its code and, in code offsets from its start, its trap sites
    ``(offset, code, wasm offset)``, its pc map as flat ``(offset, wasm offset)`` pairs, its calls to
    link ``(offset, callee, far)`` and SIMD helper calls ``(offset, helper offset, far)``, its stack maps,
    its frame and its try_table regions."""

    code: bytes
    trap_sites: list[tuple[int, TrapCode, int]]
    pc_map: array
    call_fixups: list[tuple[int, int, bool]]
    helper_fixups: list[tuple[int, int, bool]]
    stack_maps: list[tuple[int, tuple[int, ...]]]
    frame: FrameInfo
    handlers: list


_BACKEND = RiscvMasm  # the backend every function is compiled with (and linked by)


def _compile_function(env: ModuleEnv, index: int, func: FuncBody, far_calls: bool) -> FunctionCode:
    """Function ``index`` compiled (again with long branches when a short one cannot reach)."""
    for long_branches in (False, True):
        masm = _BACKEND(long_branches=long_branches, far_calls=far_calls, metering=env.metering)
        codegen = FuncCodegen(env, index, func, masm)
        codegen.compile()
        try:
            code = masm.finish()
        except BranchOutOfRange:
            continue
        return FunctionCode(
            code,
            masm.trap_sites,
            masm.pc_map,
            masm.call_fixups,
            masm.helper_fixups,
            masm.stack_maps,
            codegen.frame,
            codegen.handlers,
        )
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


def compile_module(
    module: DecodedModule, *, far_calls: bool = False, metering: bool = False, jobs: int | None = None
) -> CompiledModule:
    """Compile every function.  Calls are ``jal`` (+-1 MiB); a call that cannot reach its callee in the
    final layout goes through a veneer placed after its function (:func:`_link`): no function is compiled
    twice, but for one over 1 MiB whose calls reach not even its veneers, compiled again with ``auipc``+``jalr``
    calls (``far_calls=True`` compiles every function that way).

    ``metering``: checkpoints at function entries and loop headers and wasmtime's fuel accounting
    (:mod:`.codegen.fuel`); without it the code has neither, byte for byte.

    ``jobs``: processes compiling the functions (:mod:`.parallel`; the code is the same whatever the
    number); None chooses (several only for a large module on a machine with several cores)."""
    if not module.bodies:
        raise CompileError("internal error: the module was decoded without its function bodies")
    if jobs is not None and (type(jobs) is not int or jobs < 1):
        raise CompileError(f"compile_module(jobs): the number of processes must be an integer >= 1, not {jobs!r}")
    check_limits(module)
    with gc_paused():
        return _compile_module(module, far_calls, metering, jobs)


def _compile_module(module: DecodedModule, far_calls: bool, metering: bool, jobs: int | None) -> CompiledModule:
    env = module_env(module, metering=metering)
    base_index = env.num_imported_funcs
    far = [far_calls] * len(module.funcs)
    weights = [len(f.body) for f in module.funcs]
    funcs = module.funcs
    functions = parallel.compile_all(
        lambda i: _compile_function(env, base_index + i, funcs[i], far_calls),
        weights,
        parallel.auto_jobs(sum(weights)) if jobs is None else jobs,
    )
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
    for i, (function, base) in enumerate(zip(functions, offsets)):
        fi = base_index + i
        trap_table.extend((base + off, tc, fi, wasm) for off, tc, wasm in function.trap_sites)
        pc_flat.extend(_pc_triples(base, fi, function.pc_map))
        handlers += [
            (base + r.start, base + r.end, tuple((kind, tag, base + pad) for kind, tag, pad in r.clauses))
            for r in function.handlers
        ]
        stack_maps += [(base + offset, locs) for offset, locs in function.stack_maps]
    return CompiledModule(
        bytes(code),
        offsets,
        [len(f.code) for f in functions],
        trap_table,
        PcMap(pc_flat),
        env.layout,
        env.num_imported_funcs,
        any(far) or linked.veneers > 0,
        metering,
        [f.frame for f in functions],
        sorted(handlers, key=lambda h: h[0]),
        StackMaps(stack_maps),
    )


def _pc_triples(base: int, func_index: int, pairs: array) -> array:
    """A function's flat ``(code offset, wasm offset)`` pairs as PcMap triples, the code at ``base``: a
    column at a time (an entry per wasm instruction, so no tuple per entry; the offsets moved by a list
    comprehension, faster than ``map`` over ``base.__add__``)."""
    n = len(pairs) // 2
    triples = array("I", bytes(12 * n))
    if n:
        triples[0::3] = array("I", [offset + base for offset in pairs[0::2]])
        triples[1::3] = array("I", [func_index]) * n
        triples[2::3] = pairs[1::2]
    return triples


@dataclass
class _Linked:
    """The module's code laid out and its calls linked (:func:`_link`)."""

    code: bytearray
    offsets: list[int]  # code offset of each function
    veneers: int  # how many
    unreachable: list[int]  # functions (0-based among the defined ones) with a call that reaches not even a veneer


def _link(functions: list[FunctionCode], num_imported: int, masm: MacroAssembler | None = None) -> _Linked:
    """Lay the functions out, each followed by its island of veneers, then the SIMD helper routines (once, when
    some function calls one), and point every call at its callee.

    A near call (``jal``, +-1 MiB) that cannot reach goes through a veneer in its function's island, which
    jumps anywhere (the function is never compiled again).  Islands move the functions after them, which may
    put more calls out of reach: the layout is made again until every call reaches (islands only grow, so
    this ends).  A call that reaches not even its island (a function over 1 MiB) is reported in
    ``unreachable``, for that function to be compiled with far calls."""
    masm = masm or _BACKEND()  # (its patch_call, patch_veneer and VENEER_SIZE)
    islands: list[dict[tuple[bool, int], int]] = [{} for _ in functions]  # (helper?, target) -> veneer number
    needs_helpers = any(f.helper_fixups for f in functions)
    veneer = masm.VENEER_SIZE
    while True:
        offsets, island_at, pos = [], [], 0
        for function, island in zip(functions, islands):
            offsets.append(pos)
            pos += len(function.code)
            island_at.append(pos)
            pos += veneer * len(island)
        helpers = pos + (-pos % 16) if needs_helpers else None
        if helpers is not None:
            pos = helpers + len(simdlib.CODE)
        if pos >= 1 << 32:
            raise CompileError("module code too large (4 GiB or more)")
        parts: list[bytes] = []
        for function, island in zip(functions, islands):
            parts += (function.code, bytes(veneer * len(island)))
        code = bytearray(b"".join(parts))
        if helpers is not None:
            code.extend(bytes(helpers - len(code)) + simdlib.CODE)
        grown, unreachable = False, []
        for i, (function, base) in enumerate(zip(functions, offsets)):
            island = islands[i]
            calls = [(off, False, func_index, far) for off, func_index, far in function.call_fixups]
            calls += [(off, True, helper, far) for off, helper, far in function.helper_fixups]
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
        for island, at in zip(islands, island_at):
            for (to_helper, callee), n in island.items():
                target = helpers + callee if to_helper else offsets[callee - num_imported]  # type: ignore[operator]
                masm.patch_veneer(code, at + veneer * n, target)
        return _Linked(code, offsets, sum(map(len, islands)), unreachable)


__all__ = ["COMPILER_VERSION", "CompileError", "CompiledModule", "FunctionCode", "PcMap", "TrapCode", "compile_module"]
