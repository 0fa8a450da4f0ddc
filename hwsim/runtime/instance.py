"""Instantiation: imports checked and bound, the vmctx built, segments applied, the start function run.

The order is the specification's: imports are checked, then memories,
tables and globals are created, element segments then data segments are
applied in order (an out-of-bounds segment traps, keeping what earlier
segments wrote), and finally the start function runs.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..compiler import CompiledModule
from ..compiler.intrinsics import FAR, intrinsics_of
from ..compiler.traps import TrapCode
from ..errors import HwsimError
from ..wasm import gcops, simd
from ..wasm import opcodes as op
from ..wasm.module import ACTIVE, DECLARATIVE, DecodedModule
from ..wasm.subtyping import canonical_subtype, func_canonical_id
from ..wasm.typedrefs import canonical_matches, same_func_type
from ..wasm.types import I32, I64, ExternKind, GlobalType, MemoryType, TableType
from . import layout as L
from .builtins import released
from .calls import LoadedCode
from .errors import ResourceLimitError
from .exceptions import TagInstance
from .gcheap import new_object
from .objects import FuncRecord, GlobalInstance, MemoryInstance, TableInstance, func_records
from .store import Trap, VmStore

if TYPE_CHECKING:
    from .segments import SegmentTable

_CONSTS = frozenset((op.I32_CONST_OP, op.I64_CONST_OP, op.F32_CONST_OP, op.F64_CONST_OP, simd.V128_CONST))
_MASKS = {I32: 0xFFFF_FFFF, I64: (1 << 64) - 1}

# What an export names: a function record, a memory, a table or a global.
ExternItem = FuncRecord | MemoryInstance | TableInstance | GlobalInstance | TagInstance


class LinkError(HwsimError):
    """An import is missing or has an incompatible type."""


def _limits_match(actual, expected) -> bool:
    """Import subtyping of limits: the actual range lies within the expected one."""
    if actual.min < expected.min:
        return False
    if expected.max is None:
        return True
    return actual.max is not None and actual.max <= expected.max


class VmInstance:
    def __init__(self, store: VmStore, module: DecodedModule, compiled: CompiledModule, imports: list) -> None:
        self.store = store
        self.module = module
        self.compiled = compiled
        if len(store.instances) >= store.limits.max_instances:
            raise ResourceLimitError(f"the Store already holds {len(store.instances)} instances, its limit")
        if store.instances and store.metered != compiled.metering:
            # Unmetered code homes a local in gp, where a metered Store keeps the fuel count.
            raise HwsimError(
                "a Store runs code compiled with metering or code compiled without it, not both "
                f"(this module was compiled {'with' if compiled.metering else 'without'})"
            )
        self._bind_imports(imports)
        layout = compiled.layout
        self.vmctx = store.alloc_data(layout.size)
        store.instances[self.vmctx] = self
        self.code_base = store.load_code(compiled.code) if compiled.code else 0
        store.metered |= compiled.metering  # the Store moves the fuel count to and from its register
        store.code.append(LoadedCode(self.code_base, self.code_base + len(compiled.code), compiled, module, self.vmctx))
        # Memories, tables, globals.
        for mt in module.memories:
            self.memories.append(MemoryInstance(store, mt))
        self._apply_memory_layouts()
        self.types = list(module.types)
        self.func_types = [self.types[t] for t in module.get_func_type_indices()]
        # Function records first: table initialisers and globals may refer to them.
        precise = module.precise_types or self.types  # canonical with typed references (wasm/typedrefs.py)
        self.type_ids = [store.type_id(t) for t in precise]
        if module.gc_types is not None:
            assert module.gc_canon is not None  # lowered
            store.gc_heap.add_layouts(module.gc_types, module.gc_canon)
        first = module.num_imported_funcs
        type_indices = module.get_func_type_indices()
        specs = [
            (self.types[type_indices[first + i]], self.code_base + offset, self.type_ids[type_indices[first + i]])
            for i, offset in enumerate(compiled.func_offsets[: len(module.funcs)])
        ]
        records = func_records(store, specs, vmctx=self.vmctx, instance=self, first_index=first)
        if module.precise_types is not None:
            for record, type_index in zip(records, type_indices[first:]):
                record.precise_type = module.precise_types[type_index]
        self.funcs += records
        precise_types = module.precise_types or self.types
        self.tags += [TagInstance(store, self.types[t], precise_types[t]) for t in module.tags]  # own identities
        for g in module.globals:
            bits = self.eval_const(g.init.instrs, g.type.valtype)
            self.globals.append(GlobalInstance(store, g.type.valtype, g.type.mutable, bits))
            if module.precise_globals is not None:
                self.globals[-1].precise = module.precise_globals[len(self.globals) - 1]
        for t in module.tables:
            init = self.eval_const(t.init.instrs, t.type.elem_type) if t.init is not None else 0
            self.tables.append(TableInstance(store, t.type, init))
            if module.precise_tables is not None:
                self.tables[-1].precise = module.precise_tables[len(self.tables) - 1]
        self._segments: SegmentTable | None = None
        self._write_vmctx()
        if any(i.module == FAR for i in intrinsics_of(module).values()):
            _ = self.segments  # modules using far pointers get their table now
        self.datas = [seg.data for seg in module.datas]
        self.elems = [[self.eval_const(e.instrs, seg.elem_type) for e in seg.items] for seg in module.elems]
        self.exports = {e.name: (e.kind, e.index) for e in module.exports}

    def _bind_imports(self, imports: list) -> None:
        module = self.module
        if len(imports) != len(module.imports):
            raise LinkError(f"expected {len(module.imports)} imports, got {len(imports)}")
        self.funcs: list[FuncRecord] = []
        self.memories: list[MemoryInstance] = []
        self.tables: list[TableInstance] = []
        self.globals: list[GlobalInstance] = []
        self.tags: list[TagInstance] = []
        intrinsics = intrinsics_of(module)
        func_index = 0
        for imp, value in zip(module.imports, imports):
            where = f"import {imp.module!r} {imp.name!r}"
            desc = imp.desc  # its type follows the kind (the decoder)
            if imp.kind == ExternKind.FUNC and func_index in intrinsics:
                if value is not None:
                    raise LinkError(f"{where} is an hwsim intrinsic: hwsim provides it (pass None)")
                assert isinstance(desc, int)
                self.funcs.append(self._intrinsic_record(intrinsics[func_index], module.types[desc]))
                func_index += 1
                continue
            if imp.kind == ExternKind.FUNC:
                func_index += 1
                assert isinstance(desc, int)
                expected = module.types[desc]
                if not isinstance(value, FuncRecord):
                    raise LinkError(f"incompatible import type: {where} expects a function")
                self.store.check_owned(value, f"{where} (a function)")
                precise = module.precise_types[desc] if module.precise_types is not None else expected
                if not same_func_type(value.precise_type, precise) and not (
                    module.func_subtyping
                    and canonical_subtype(func_canonical_id(value.precise_type), func_canonical_id(precise))
                ):
                    raise LinkError(f"incompatible import type: {where} expects {expected}, got {value.type}")
                self.funcs.append(value)
            elif imp.kind == ExternKind.MEMORY:
                mt = desc
                assert isinstance(mt, MemoryType)
                if not isinstance(value, MemoryInstance):
                    raise LinkError(f"incompatible import type: {where} expects a memory")
                self.store.check_owned(value, f"{where} (a memory)")
                actual = value.type
                if (
                    actual.index_type != mt.index_type
                    or actual.page_size_log2 != mt.page_size_log2
                    or not _limits_match(type(mt.limits)(min=value.pages, max=actual.limits.max), mt.limits)
                ):
                    raise LinkError(f"incompatible import type: {where} expects {mt}, got {actual}")
                if actual.shared != mt.shared:
                    want, got = ("a shared", "an unshared") if mt.shared else ("an unshared", "a shared")
                    raise LinkError(
                        f"incompatible import type: {where} expects {want} memory ({mt}), got {got} one ({actual})"
                    )
                self.memories.append(value)
            elif imp.kind == ExternKind.TABLE:
                tt = desc
                assert isinstance(tt, TableType)
                if not isinstance(value, TableInstance):
                    raise LinkError(f"incompatible import type: {where} expects a table")
                self.store.check_owned(value, f"{where} (a table)")
                actual_tt = value.type
                if (
                    value.precise
                    != (tt.elem_type if module.precise_tables is None else module.precise_tables[len(self.tables)])
                    or actual_tt.index_type != tt.index_type
                    or not _limits_match(type(tt.limits)(min=value.size, max=actual_tt.limits.max), tt.limits)
                ):
                    raise LinkError(f"incompatible import type: {where} expects {tt}, got {actual_tt}")
                self.tables.append(value)
            elif imp.kind == ExternKind.TAG:
                assert isinstance(desc, int)
                expected = module.types[desc]
                if not isinstance(value, TagInstance):
                    raise LinkError(f"incompatible import type: {where} expects a tag")
                self.store.check_owned(value, f"{where} (a tag)")
                if not same_func_type(value.precise, module.precise_types[desc] if module.precise_types else expected):
                    raise LinkError(f"incompatible import type: {where} expects tag {expected}, got {value.type}")
                self.tags.append(value)
            else:
                gt = desc
                assert isinstance(gt, GlobalType)
                if not isinstance(value, GlobalInstance):
                    raise LinkError(f"incompatible import type: {where} expects a global")
                self.store.check_owned(value, f"{where} (a global)")
                precise = gt.valtype if module.precise_globals is None else module.precise_globals[len(self.globals)]
                if value.mutable != gt.mutable or not (
                    value.precise == precise if gt.mutable else canonical_matches(value.precise, precise)
                ):
                    raise LinkError(f"incompatible import type: {where} expects {gt}")
                self.globals.append(value)

    @property
    def segments(self) -> SegmentTable:
        """This instance's far-pointer segment table (made on first use)."""
        if self._segments is None:
            from .segments import SegmentTable

            self._segments = SegmentTable(self)
            self.store.write_u64(self.vmctx + self.compiled.layout.segments, self._segments.va)
        return self._segments

    def _apply_memory_layouts(self) -> None:
        """Virtual mode and static regions the module declares (custom section ``hwsim.memory``)."""
        from .memctl import SECTION, MemoryControlError, parse_section

        for section in self.module.get_custom_sections(SECTION):
            try:
                for layout in parse_section(section.data, section.offset):
                    if layout.memory >= len(self.memories):
                        raise MemoryControlError(
                            f"custom section {SECTION!r} names memory {layout.memory}; "
                            f"the module has {len(self.memories)}"
                        )
                    mem = self.memories[layout.memory]
                    ctl = mem.control(virtual=layout.virtual)
                    if layout.no_access or layout.read_only:
                        ctl.set_static(layout.no_access, layout.read_only)
            except MemoryControlError as exc:
                raise LinkError(str(exc)) from None

    def _intrinsic_record(self, intrinsic, ftype) -> FuncRecord:
        """The function record of an intrinsic import, for uses other than a direct call (which the
        compiler lowers in place): a host function doing the same on this instance's memory 0."""
        from ..compiler.intrinsics import PAGE_SIZE

        def host(args: list[int]) -> list[int]:
            if intrinsic.name == "page_size":
                return [PAGE_SIZE]
            if intrinsic.name.startswith("handle_"):
                return _handle_intrinsic(self, intrinsic.name, args)
            if intrinsic.module == FAR:
                return _far_intrinsic(self, intrinsic.name, args)
            mem = self.memories[0]
            is64 = mem.type.index_type == I64
            mask = (1 << (64 if is64 else 32)) - 1
            signed = [(a & mask) - ((mask + 1) if (a & mask) >> (63 if is64 else 31) else 0) for a in args]
            prot = signed[2] & 0xFFFF_FFFF if len(args) > 2 else 0
            prot = prot - (1 << 32) if prot >> 31 else prot
            ctl = mem.control()
            caller = self.store.machine  # (the host-call stub's ra: the call's return address)
            if intrinsic.name == "discard":
                pages = ctl.discard(args[0] & mask, args[1] & mask)
                released(self.store, mem, pages, "memory.discard", lambda: caller.get_reg("ra") - 4)
            elif intrinsic.name == "map":
                return [ctl.map(args[0] & mask, signed[1], prot) & mask]
            elif intrinsic.name == "unmap":
                pages = ctl.unmap(args[0] & mask, signed[1])
                released(self.store, mem, pages, "memory.unmap", lambda: caller.get_reg("ra") - 4)
            else:
                ctl.protect(args[0] & mask, signed[1], prot)
            return []

        return FuncRecord(self.store, ftype, code=L.HOSTCALL_STUB, vmctx=self.store.host_vmctx, host=host)

    def _write_vmctx(self) -> None:
        """The vmctx's words, in one copy: memory 0's base, then (layout.memory(0) onwards, back to back)
        the memory and table descriptors, global cells, function records and type ids."""
        s, layout = self.store, self.compiled.layout
        if self.memories:
            s.write_u64(self.vmctx + layout.MEM0_BASE, self.memories[0].base)
        words = [mem.desc for mem in self.memories]
        words += [table.desc for table in self.tables]
        words += [g.cell for g in self.globals]
        words += [f.va for f in self.funcs]
        words += self.type_ids
        assert layout.type_id(len(self.types)) - layout.memory(0) == 8 * len(words)  # the layout is one array
        if words:
            s.phys_view(self.vmctx + layout.memory(0), 8 * len(words))[:] = struct.pack(f"<{len(words)}Q", *words)
        if layout.gc:  # the GC record, then each type's canonical id (compiler/abi.py)
            canon = self.module.gc_canon
            assert canon is not None  # a module with typed references is lowered
            words = [s.gc_heap.vm_record(), *canon]
            s.phys_view(self.vmctx + layout.gc_record, 8 * len(words))[:] = struct.pack(f"<{len(words)}Q", *words)

    # -- constant expressions ----------------------------------------------------------------

    def eval_const(self, instrs: list, valtype: int) -> int:
        """Evaluate a constant expression to a bit pattern (references: record VA or handle, 0 null)."""
        if len(instrs) == 1 or (len(instrs) == 2 and instrs[1][0] == op.END):  # one instruction: most are
            code, imm, _ = instrs[0]
            if code == op.REF_FUNC:  # an element segment's item (thousands in a C program's table)
                return self.funcs[imm].va
            if code in _CONSTS:
                return imm
        stack: list[int] = []
        masks = _MASKS
        for code, imm, _ in instrs:
            if code in _CONSTS:
                stack.append(imm)
            elif code == op.REF_NULL:
                stack.append(0)
            elif code == op.REF_FUNC:
                stack.append(self.funcs[imm].va)
            elif code == op.GLOBAL_GET:
                stack.append(self.globals[imm].get_bits())
            elif code == op.END:
                break
            elif code == gcops.REF_I31:  # GC's heap-free constants (compiler/codegen/gc.py: the word's shape)
                stack.append(((stack.pop() & 0x7FFF_FFFF) << 1) | 1)
            elif code == gcops.ANY_CONVERT_EXTERN or code == gcops.EXTERN_CONVERT_ANY:
                pass
            elif code in gcops.OBJECT_OPS:  # an allocation (gcheap.py)
                stack.append(new_object(self.store, self.module, code, imm, stack))
            else:
                name = op.NAMES.get(code, "")
                kind, _, what = name.partition(".")
                if kind in ("i32", "i64") and what in ("add", "sub", "mul"):
                    b, a = stack.pop(), stack.pop()
                    r = a + b if what == "add" else a - b if what == "sub" else a * b
                    stack.append(r & masks[I32 if kind == "i32" else I64])
                else:
                    raise HwsimError(f"unsupported constant instruction {name or hex(code)}")
        return stack[-1] if stack else 0

    # -- initialisation ---------------------------------------------------------------------------

    def initialize(self) -> None:
        """Apply active segments, drop declarative ones, run the start function."""
        module = self.module
        for i, seg in enumerate(module.elems):
            if seg.mode == ACTIVE:
                assert seg.offset_expr is not None  # validated: an active segment has an offset
                table = self.tables[seg.table_index]
                start = self.eval_const(seg.offset_expr.instrs, table.type.index_type)
                values = self.elems[i]
                if start + len(values) > table.size:
                    raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS, detail=f"element segment {i}")
                table.set_many(start, values)
                self.elems[i] = []
            elif seg.mode == DECLARATIVE:
                self.elems[i] = []
        for i, segment in enumerate(module.datas):
            if segment.mode == ACTIVE:
                assert segment.offset_expr is not None  # validated: an active segment has an offset
                mem = self.memories[segment.memory_index]
                start = self.eval_const(segment.offset_expr.instrs, mem.type.index_type)
                if start + len(segment.data) > mem.size_bytes:
                    raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS, detail=f"data segment {i}")
                if segment.data:
                    mem.write(start, segment.data)
                self.datas[i] = b""
        if module.start is not None:
            # A host function as the start function: its Caller is this instance (as in wasmtime).
            self.store.invoke(self.funcs[module.start], [], caller_vmctx=self.vmctx)

    def export(self, name: str) -> tuple[ExternKind, ExternItem]:
        kind, index = self.exports[name]
        spaces: dict[ExternKind, Sequence[ExternItem]] = {
            ExternKind.FUNC: self.funcs,
            ExternKind.MEMORY: self.memories,
            ExternKind.TABLE: self.tables,
            ExternKind.GLOBAL: self.globals,
            ExternKind.TAG: self.tags,
        }
        return kind, spaces[kind][index]


class _Regs:
    """Argument registers for a builtin called from a host record (an intrinsic used indirectly)."""

    def __init__(self, args: list[int]) -> None:
        self.values = {f"a{i}": v for i, v in enumerate(args)}
        self.result: int | None = None

    def get_reg(self, name: str) -> int:
        return self.values.get(name, 0)

    def set_reg(self, name: str, value: int) -> None:
        self.result = value


def _handle_intrinsic(instance, name: str, args: list[int]) -> list[int]:
    from . import builtins

    regs = _Regs(args)
    getattr(builtins, name)(instance.store, instance, regs)
    return [regs.result] if regs.result is not None else []


def _far_intrinsic(instance, name: str, args: list[int]) -> list[int]:
    """A hwsim:far intrinsic used indirectly: the same checks as the inline code, on the host."""
    from ..compiler.intrinsics import FAR_ACCESS
    from . import builtins

    if name not in FAR_ACCESS:
        regs = _Regs(args)
        getattr(builtins, f"far_{name}")(instance.store, instance, regs)
        return [regs.result] if regs.result is not None else []
    size, write = FAR_ACCESS[name]
    far = args[0] & 0xFFFF_FFFF_FFFF_FFFF
    table = instance.segments
    selector, offset = far >> 32, far & 0xFFFF_FFFF
    granted = table.granted.get(selector)
    if granted is None or not granted[3] & (2 if write else 1) or offset + size > granted[2]:
        from .segments import segment_fault

        raise segment_fault(table.explain(far, size, write))
    memory, seg_offset = granted[0], granted[1]
    if write:
        memory.write(seg_offset + offset, (args[1] & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))
        return []
    value = int.from_bytes(memory.read(seg_offset + offset, size), "little")
    if size == 4 and value >> 31:
        value |= 0xFFFF_FFFF_0000_0000  # i32 values are kept sign-extended
    return [value]
