"""The execution-engine interface of the spec-test runner, and the default validate-only engine.

The runner decodes and validates every module itself (that is the front end
under test) and hands valid modules to an engine to instantiate and run::

    runner --(DecodedModule, bytes, registry)--> engine.instantiate --> instance
           --(instance, "fac", [Value])--> engine.invoke ----> [Value] | Trap | Exhaustion | Thrown
           --(instance, "g")-------------> engine.get -------> Value

``registry`` maps names registered with ``(register "name" $M)`` to instances
of the same engine; the engine resolves imports against it and supplies the
standard ``spectest`` module itself unless a script registers one.

The compiler (a later issue) plugs in here.  Until then the runner uses
:class:`ValidateOnlyEngine`, which can execute nothing: commands that need
execution are counted as skipped, with the engine's reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

from ..errors import HwsimError
from ..wasm.module import DecodedModule
from .values import Value


class EngineError(HwsimError):
    """Base of the outcomes an engine reports through exceptions.

    ``reason`` uses the specification's wording (``integer divide by zero``,
    ``unknown import``, ...): the runner compares it with the script's text.
    An engine that cannot tell two of the specification's messages apart
    (one trap code for both) lists the other in ``also``.
    """

    def __init__(self, reason: str, detail: str = "", *, also: tuple[str, ...] = ()):
        self.reason = reason
        self.reasons = (reason, *also)
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class Trap(EngineError):
    """Execution trapped (during an invocation, or while instantiating: start function, segment initialisation)."""


class Exhaustion(EngineError):
    """Execution ran out of a resource, typically "call stack exhausted"."""


class Thrown(EngineError):
    """An exception (exception handling's ``throw``) reached the host uncaught: ``assert_exception``."""


class LinkError(EngineError):
    """Instantiation failed because an import is missing or has an incompatible type."""


class NotSupportedByEngine(EngineError):
    """The engine cannot run this (no executor, or a feature it lacks); the command is skipped with this reason."""


InstanceT = TypeVar("InstanceT")  # an engine's instances: opaque to the runner, which hands them back


class Engine(Protocol[InstanceT]):
    """What the spec-test runner needs from an execution engine."""

    name: str

    def instantiate(self, module: DecodedModule, binary: bytes, registry: Mapping[str, InstanceT]) -> InstanceT:
        """Instantiate a valid module (``registry``: the instances registered by name); raises LinkError,
        Trap or NotSupportedByEngine."""

    def invoke(self, instance: InstanceT, field: str, args: Sequence[Value]) -> list[Value]:
        """Call an exported function; raises Trap, Exhaustion, Thrown (an uncaught exception) or
        NotSupportedByEngine."""

    def get(self, instance: InstanceT, field: str) -> Value:
        """Read an exported global."""


NO_EXECUTOR = "needs execution: hwsim has no compiler/executor yet (validate-only engine)"


class ValidateOnlyEngine:
    """The default engine: decoding and validation happen in the runner; nothing can run yet."""

    name = "validate-only"

    def instantiate(self, module: DecodedModule, binary: bytes, registry: Mapping[str, object]) -> object:
        raise NotSupportedByEngine(NO_EXECUTOR)

    def invoke(self, instance: object, field: str, args: Sequence[Value]) -> list[Value]:
        raise NotSupportedByEngine(NO_EXECUTOR)

    def get(self, instance: object, field: str) -> Value:
        raise NotSupportedByEngine(NO_EXECUTOR)
