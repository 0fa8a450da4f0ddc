"""The runtime's exceptions, in a leaf module every runtime module imports at its top (no cycles).

::

    HwsimError (hwsim.errors)
      Trap                  a WebAssembly trap: a TrapCode and where (function, offset, C line, pc)
      ResourceLimitError    a memory, table, instance, code size or RAM past a Store limit
      MemoryControlError    the host misusing memory control (from wasm the same misuse traps)
      HostBufferError       a host buffer that cannot be made or mapped as asked
      HandleError           a memory-handle mapping against the one-writer-or-many-readers rule
      SegmentError          a far-pointer segment grant that cannot be made
"""

from __future__ import annotations

from dataclasses import dataclass

from ..compiler.traps import TrapCode
from ..errors import HwsimError

__all__ = ["HandleError", "HostBufferError", "MemoryControlError", "ResourceLimitError", "SegmentError", "Trap"]


@dataclass(frozen=True)
class Frame:
    """One frame of a trap's wasm backtrace (wasmtime-py's ``Frame``): the function, its name and its
    module's (from the name section, or None), and where: the offset in the module's binary and from
    the start of the function's body."""

    func_index: int
    func_name: str | None
    module_name: str | None
    module_offset: int
    func_offset: int


class Trap(HwsimError):
    """A WebAssembly trap: ``code`` says why; where it happened is in the message and attributes."""

    def __init__(
        self,
        code: TrapCode | str,
        *,
        func_index: int | None = None,
        func_name: str | None = None,
        wasm_offset: int | None = None,
        pc: int | None = None,
        insn: str | None = None,
        detail: str = "",
        source: str | None = None,
    ) -> None:
        if isinstance(code, str):  # Trap("message"): raised by host code, as in wasmtime-py
            self._message = code
            code = TrapCode.HOST
        else:
            self._message = code.message
        self.code = code
        self.frames: list[Frame] = []  # innermost first; filled in when the trap leaves compiled code
        self.detail = detail
        self.source = source
        self.func_index = func_index
        self.func_name = func_name
        self.wasm_offset = wasm_offset
        self.pc = pc
        self.insn = insn
        where = []
        if source:
            where.append(source)
        if func_index is not None:
            name = f" ({func_name})" if func_name else ""
            where.append(f"wasm function {func_index}{name}")
        if wasm_offset is not None:
            where.append(f"bytecode offset {wasm_offset:#x}")
        if pc is not None:
            where.append(f"pc {pc:#x}" + (f" `{insn}`" if insn else ""))
        text = self._message
        if where:
            text += " at " + ", ".join(where)
        if detail:
            text += f" ({detail})"
        super().__init__(text)

    @property
    def message(self) -> str:
        return self._message

    @property
    def trap_code(self) -> TrapCode | None:
        """The code, under wasmtime-py's name (None for a trap made from a message, as there)."""
        return None if self.code is TrapCode.HOST else self.code


class ResourceLimitError(HwsimError):
    """A memory, table or instance exceeds the Store's limits."""


class MemoryControlError(HwsimError):
    """A host-side misuse of memory control (the guest's misuse traps instead)."""


class HostBufferError(HwsimError):
    """A host buffer cannot be made (bad size, unreadable file) or mapped as asked."""


class HandleError(HwsimError):
    """A mapping that would break a handle's ownership rules, or a bad range."""


class SegmentError(HwsimError):
    """A grant that cannot be made (no free selector, range outside the memory, bad rights)."""
