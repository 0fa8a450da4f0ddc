"""The runtime's exceptions, in a leaf module every runtime module imports at its top (no cycles).

::

    HwsimError (hwsim.errors)
      Trap                  a WebAssembly trap: a TrapCode and where (function, offset, C line, pc)
      ResourceLimitError    (a WasmtimeError) a memory, table, instance, code size or RAM past a Store limit
      MemoryControlError    the host misusing memory control (from wasm the same misuse traps)
      HostBufferError       a host buffer that cannot be made or mapped as asked
      HandleError           a memory-handle mapping against the one-writer-or-many-readers rule
      SegmentError          a far-pointer segment grant that cannot be made
      HeapCorruptError      a GC reference or object header the heap cannot have made (memory overwritten)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..compiler.traps import TrapCode
from ..errors import HwsimError, WasmtimeError

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
    """A WebAssembly trap: ``code`` says why; ``frames`` where (the wasm backtrace, innermost first).

    ``str(trap)`` and ``trap.message`` are Wasmtime's text (wasmtime-py's tests compare it)::

        error while executing at wasm backtrace:
            0:     0x2d - module!bar
                            at drv.c:12 (probe)        (with DWARF: the C line of the innermost frame)
            1:     0x28 - module!foo

        Caused by:
            0: page 0x0 (linear address 0x4) is in the no-access region   (hwsim's detail, if any)
            1: wasm trap: wasm `unreachable` instruction executed

    ``trap.summary`` is hwsim's one line, with the RISC-V side: ``unreachable at wasm function 2 (bar),
    bytecode offset 0x2d, pc 0x100040 `ebreak``` (``pc`` and ``insn`` are attributes too).
    """

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
        self.summary = text
        super().__init__(text)

    def __str__(self) -> str:
        if self.code is TrapCode.HOST:
            return self._message
        causes = [self.detail] if self.detail else []
        causes.append(f"wasm trap: {self.code.wasmtime_text}")
        if self.frames:
            lines = ["error while executing at wasm backtrace:"]
            for i, frame in enumerate(self.frames):
                func = frame.func_name or f"<wasm function {frame.func_index}>"
                lines.append(f"{i:>5}: {frame.module_offset:#8x} - {frame.module_name or '<unknown>'}!{func}")
                if i == 0 and self.source:
                    lines.append(f"{'':20}at {self.source}")
            head = "\n".join(lines)
        elif len(causes) == 1:
            return causes[0]
        else:
            head = causes.pop(0)
        if len(causes) == 1:
            return f"{head}\n\nCaused by:\n    {causes[0]}\n"
        return f"{head}\n\nCaused by:\n" + "".join(f"    {i}: {c}\n" for i, c in enumerate(causes))

    @property
    def message(self) -> str:
        """``str(trap)``, as wasmtime-py's (the message of ``Trap("x")`` is "x")."""
        return str(self)

    @property
    def trap_code(self) -> TrapCode | None:
        """The code as wasmtime-py gives it: None for a trap made from a message, and
        ``TABLE_OUT_OF_BOUNDS`` for a ``call_indirect`` past the table's end (one code in wasmtime, two
        in hwsim: ``code`` is ``UNDEFINED_ELEMENT``, the specification's word)."""
        if self.code is TrapCode.HOST:
            return None
        return TrapCode.TABLE_OUT_OF_BOUNDS if self.code is TrapCode.UNDEFINED_ELEMENT else self.code


class ResourceLimitError(WasmtimeError):
    """A memory, table or instance exceeds the Store's limits (a WasmtimeError, as in wasmtime-py)."""


class HeapCorruptError(HwsimError):
    """A reference or an object header the GC heap cannot have made: memory it owns was overwritten (the
    collector found it; the heap is left as it was, the collection not done)."""


class MemoryControlError(HwsimError):
    """A host-side misuse of memory control (the guest's misuse traps instead)."""


class HostBufferError(HwsimError):
    """A host buffer cannot be made (bad size, unreadable file) or mapped as asked."""


class HandleError(HwsimError):
    """A mapping that would break a handle's ownership rules, or a bad range."""


class SegmentError(HwsimError):
    """A grant that cannot be made (no free selector, range outside the memory, bad rights)."""
