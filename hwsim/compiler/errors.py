"""The compiler's two error families: a module it cannot compile (a limit), and a bug in the compiler."""

from __future__ import annotations

from ..errors import HwsimError


class CompileError(HwsimError):
    """The compiler cannot compile a valid module: an implementation limit (see compile_module)."""


class CompilerBug(CompileError):
    """An internal inconsistency in the compiler: a bug in hwsim, never the module's fault."""
