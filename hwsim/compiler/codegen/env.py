"""The module-wide facts a function's code depends on: types, memories, tables, globals, the vmctx layout."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...wasm import opcodes as op
from ...wasm.module import DecodedModule
from ...wasm.types import BLOCK_EMPTY, FuncType, GlobalType, MemoryType, TableType, block_valtype
from ..abi import VmctxLayout, lower_types, vmctx_layout
from ..intrinsics import Intrinsic, intrinsics_of


@dataclass
class ModuleEnv:
    """What every function of one module is compiled against.

    Function and block types are as compiled code holds values: a v128 is two ``V128`` halves
    (``compiler.abi.lower_types``); ``module`` keeps the WebAssembly types."""

    module: DecodedModule
    func_types: list[FuncType]  # by function index
    types: list[FuncType]
    num_imported_funcs: int
    memory_types: list[MemoryType]
    table_types: list[TableType]
    global_types: list[GlobalType]
    layout: VmctxLayout
    intrinsics: dict[int, Intrinsic] = field(default_factory=dict)  # imported function index -> lowered in place
    metering: bool = False  # checkpoints and fuel counting (codegen/fuel.py)
    wasm_func_types: list[FuncType] = field(default_factory=list)  # by function index, v128 not lowered

    def block_type(self, bt: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(params, results) of a block type immediate."""
        if bt == BLOCK_EMPTY:
            return (), ()
        if bt < 0:
            return (), lower_types((block_valtype(bt),))
        ft = self.types[bt]
        return tuple(ft.params), tuple(ft.results)

    def constant_global(self, index: int) -> int | None:
        """The value of global ``index`` if it is a defined, immutable i32/i64 global initialised by one constant."""
        first_defined = len(self.global_types) - len(self.module.globals)
        if index < first_defined:
            return None
        glob = self.module.globals[index - first_defined]
        instrs = glob.init.instrs
        if glob.type.mutable or len(instrs) != 2 or instrs[0][0] not in (op.I32_CONST_OP, op.I64_CONST_OP):
            return None
        return instrs[0][1]


def lower_func_type(ft: FuncType) -> FuncType:
    """``ft`` with each v128 as its two halves."""
    params, results = lower_types(tuple(ft.params)), lower_types(tuple(ft.results))
    if params == tuple(ft.params) and results == tuple(ft.results):
        return ft
    return FuncType(params, results)


def module_env(module: DecodedModule, *, metering: bool = False) -> ModuleEnv:
    types = [lower_func_type(ft) for ft in module.types]
    func_types = [types[t] for t in module.get_func_type_indices()]
    wasm_func_types = [module.types[t] for t in module.get_func_type_indices()]
    mems = module.get_memory_types()
    tables = module.get_table_types()
    globals_ = module.get_global_types()
    return ModuleEnv(
        module,
        func_types,
        types,
        module.num_imported_funcs,
        mems,
        tables,
        globals_,
        vmctx_layout(module),
        intrinsics_of(module),
        metering,
        wasm_func_types,
    )
