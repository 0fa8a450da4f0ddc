"""Intrinsic imports: functions a module imports from hwsim that the compiler lowers in place.

Memory control without new opcodes, so C and Rust can use it today::

    module "hwsim:memory"  (on the module's memory 0; ``addr`` is i32, or i64 for a memory64)
      discard(addr, len)             memory.discard
      map(addr, len, prot) -> addr   memory.map      prot: 0 none, 1 read, 2 read-write
      unmap(addr, len)               memory.unmap
      protect(addr, len, prot)       memory.protect
      page_size() -> i32             4096, the granule of all of the above
      handle_new(pages: i32) -> externref               a new memory handle (hwsim/runtime/handles.py)
      handle_map(h: externref, addr, writable: i32)     map it into memory 0 (one writer or many readers)
      handle_move(h: externref, addr)                   unmap it wherever it is, map it writable here
      handle_unmap(h: externref)                        unmap it from memory 0
      handle_pages(h: externref) -> i32

A direct ``call`` of such an import compiles to exactly what the
corresponding instruction compiles to (no import trampoline).  The import
still gets a function record that does the same, so ``ref.func``, tables and
re-exports work; the embedder does not supply it (pass ``None``, or nothing
through a Linker).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import HwsimError
from ..wasm.types import EXTERNREF, I32, I64, FuncType

MEMORY = "hwsim:memory"
FAR = "hwsim:far"
# hwsim:far: far pointers (i64 selector << 32 | offset) through the instance's segment table
#   load_u8/load_u16/load_i32 (far: i64) -> i32, load_i64 (far) -> i64        checked inline
#   store_u8/store_u16/store_i32 (far, i32), store_i64 (far, i64)             checked inline
#   grant(memory: i32, offset: i32, length: i32, rights: i32) -> selector: i32  rights 1 read, 2 write, 3 both
#   revoke(selector: i32)
FAR_ACCESS = {
    "load_u8": (1, False),
    "load_u16": (2, False),
    "load_i32": (4, False),
    "load_i64": (8, False),
    "store_u8": (1, True),
    "store_u16": (2, True),
    "store_i32": (4, True),
    "store_i64": (8, True),
}
FAR_FUNCTIONS = (*FAR_ACCESS, "grant", "revoke")
MEMORY_FUNCTIONS = (
    "discard",
    "map",
    "unmap",
    "protect",
    "page_size",
    "handle_new",
    "handle_map",
    "handle_move",
    "handle_unmap",
    "handle_pages",
)
MODULES = (MEMORY, FAR)
PAGE_SIZE = 4096


@dataclass(frozen=True)
class Intrinsic:
    module: str
    name: str

    def signature(self, memory_index_type: int | None) -> FuncType | None:
        """The type the import must have, given memory 0's index type (None: the module has none)."""
        if self.module == FAR:
            if self.name in FAR_ACCESS:
                size, store = FAR_ACCESS[self.name]
                wide = I64 if size == 8 else I32
                return FuncType((I64, wide), ()) if store else FuncType((I64,), (wide,))
            return {"grant": FuncType((I32, I32, I32, I32), (I32,)), "revoke": FuncType((I32,), ())}.get(self.name)
        if self.module == MEMORY:
            if self.name == "page_size":
                return FuncType((), (I32,))
            if self.name == "handle_new":
                return FuncType((I32,), (EXTERNREF,))
            if self.name == "handle_pages":
                return FuncType((EXTERNREF,), (I32,))
            if memory_index_type is None:
                return None
            at = memory_index_type
            return {
                "discard": FuncType((at, at), ()),
                "map": FuncType((at, at, I32), (at,)),
                "unmap": FuncType((at, at), ()),
                "protect": FuncType((at, at, I32), ()),
                "handle_map": FuncType((EXTERNREF, at, I32), ()),
                "handle_move": FuncType((EXTERNREF, at), ()),
                "handle_unmap": FuncType((EXTERNREF,), ()),
            }.get(self.name)
        return None


class IntrinsicError(HwsimError):
    """An intrinsic import that does not exist or has the wrong type."""


def intrinsics_of(module) -> dict[int, Intrinsic]:
    """Function index -> intrinsic, for the module's imports from hwsim's intrinsic modules.

    Raises :class:`IntrinsicError` for an unknown name or a type that does not match.
    """
    out: dict[int, Intrinsic] = {}
    func_index = 0
    mems = [imp.desc for imp in module.imports if imp.kind.name == "MEMORY"] + list(module.memories)
    at = mems[0].index_type if mems else None
    for imp in module.imports:
        if imp.kind.name != "FUNC":
            continue
        if imp.module in MODULES:
            intrinsic = Intrinsic(imp.module, imp.name)
            want = intrinsic.signature(at)
            if want is None and imp.module == FAR:
                raise IntrinsicError(f"{imp.module} has no function {imp.name!r} (it has: {', '.join(FAR_FUNCTIONS)})")
            if want is None:
                if at is None and imp.module == MEMORY and imp.name in MEMORY_FUNCTIONS:
                    raise IntrinsicError(f"{imp.module}::{imp.name} acts on memory 0, and the module has none")
                raise IntrinsicError(
                    f"{imp.module} has no function {imp.name!r} (it has: {', '.join(MEMORY_FUNCTIONS)})"
                )
            got = module.types[imp.desc]
            if tuple(got.params) != tuple(want.params) or tuple(got.results) != tuple(want.results):
                raise IntrinsicError(f"{imp.module}::{imp.name} has type {want}, the module imports it as {got}")
            out[func_index] = intrinsic
        func_index += 1
    return out


__all__ = ["FAR", "FAR_ACCESS", "Intrinsic", "IntrinsicError", "MEMORY", "MODULES", "PAGE_SIZE", "intrinsics_of"]
