"""The WebAssembly front end: decode a binary module, validate it, report errors a user can act on.

::

    bytes --decode_module--> DecodedModule --validate--> (valid DecodedModule, for the compiler)
             MalformedError           InvalidError
             UnsupportedFeatureError

``load_module(data)`` does both.  Everything raised derives from
:class:`WasmError` (itself a :class:`~hwsim.errors.HwsimError`); any other
exception escaping on any input is a bug.
"""

from .._gc import gc_paused
from .decoder import decode_module
from .errors import InvalidError, MalformedError, UnsupportedFeatureError, WasmError
from .module import (
    ConstExpr,
    CustomSection,
    DataSegment,
    DecodedModule,
    ElemSegment,
    Export,
    Features,
    FuncBody,
    Global,
    Import,
    Table,
)
from .types import ExternKind, FuncType, GlobalType, Limits, MemoryType, TableType
from .validator import validate


def load_module(data, *, features: Features | None = None) -> DecodedModule:
    """Decode and validate ``data``; the returned module is valid."""
    with gc_paused():
        module = decode_module(data, features=features or Features())
        validate(module)
    return module


__all__ = [
    "ConstExpr",
    "CustomSection",
    "DataSegment",
    "ElemSegment",
    "Export",
    "ExternKind",
    "Features",
    "FuncBody",
    "FuncType",
    "Global",
    "GlobalType",
    "Import",
    "InvalidError",
    "Limits",
    "MalformedError",
    "MemoryType",
    "DecodedModule",
    "Table",
    "TableType",
    "UnsupportedFeatureError",
    "WasmError",
    "decode_module",
    "load_module",
    "validate",
]
