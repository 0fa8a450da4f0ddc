"""The WebAssembly front end's exception tree.

::

    HwsimError
     +-- WasmError                  anything wrong with a wasm binary
          +-- MalformedError        not a well-formed binary (decoding failed)
          +-- InvalidError          well-formed but rejected by validation
          +-- UnsupportedFeatureError
                                    uses a proposal hwsim does not implement

Every error carries a ``reason`` (the words, which start with the phrase the
WebAssembly reference interpreter uses, such as ``type mismatch`` or
``unexpected end``) and where it is: the byte ``offset`` in the module and,
when the problem is inside a function, its index, its name (from the ``name``
section, when there is one) and the instruction.  ``str(error)`` joins them::

    type mismatch: i32.add expects [i32 i32] but the stack has [i32 i64]
        (at offset 0x2f in function 3 "add", instruction i32.add)

(on one line).
"""

from __future__ import annotations

from typing import Self

from ..errors import WasmtimeError


class WasmError(WasmtimeError):
    """Base of every error about a WebAssembly binary."""

    def __init__(
        self,
        reason: str,
        *,
        offset: int | None = None,
        func_index: int | None = None,
        func_name: str | None = None,
        instr: str | None = None,
    ):
        self.reason = reason
        self.offset = offset
        self.func_index = func_index
        self.func_name = func_name
        self.instr = instr
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = []
        if self.offset is not None:
            where.append(f"at offset {self.offset:#x}")
        if self.func_index is not None:
            func = f"in function {self.func_index}"
            if self.func_name is not None:
                func += f' "{self.func_name}"'
            where.append(func)
        text = self.reason
        if where:
            text += " (" + " ".join(where)
            if self.instr is not None:
                text += f", instruction {self.instr}"
            text += ")"
        elif self.instr is not None:
            text += f" (instruction {self.instr})"
        return text

    def locate(self, *, func_index: int | None = None, func_name: str | None = None, instr: str | None = None) -> Self:
        """Fill in location fields that are still unknown, and refresh the message; returns ``self``."""
        if self.func_index is None and func_index is not None:
            self.func_index = func_index
        if self.func_name is None and func_name is not None:
            self.func_name = func_name
        if self.instr is None and instr is not None:
            self.instr = instr
        self.args = (self._compose(),)
        return self

    def __str__(self) -> str:
        return self.args[0] if self.args else self._compose()


class MalformedError(WasmError):
    """The bytes are not a well-formed WebAssembly binary (the decoder rejected them)."""


class InvalidError(WasmError):
    """The module is well-formed but not valid (the validator rejected it)."""


class UnsupportedFeatureError(WasmError):
    """The module uses a WebAssembly feature outside hwsim's scope (GC, typed function references, ...).

    ``feature`` names the proposal; the message reads
    ``unsupported feature: SIMD (opcode 0xfd) at offset ...``.
    """

    def __init__(
        self,
        feature: str,
        what: str,
        *,
        offset: int | None = None,
        func_index: int | None = None,
        func_name: str | None = None,
        instr: str | None = None,
    ):
        self.feature = feature
        self.what = what
        super().__init__(
            f"unsupported feature: {feature} ({what})",
            offset=offset,
            func_index=func_index,
            func_name=func_name,
            instr=instr,
        )
