"""Helpers shared by the GC tests: counting the calls of a runtime builtin."""

from __future__ import annotations

from hwsim.compiler.builtins import Builtin
from hwsim.runtime import builtins as runtime_builtins


def count_builtin_calls(monkeypatch, builtin: Builtin) -> list[int]:
    """A list that grows by one at each call of ``builtin`` (which still runs) for the rest of the test."""
    calls: list[int] = []
    real = runtime_builtins.DISPATCH[builtin]

    def counted(store, instance, m) -> None:
        calls.append(1)
        real(store, instance, m)

    monkeypatch.setitem(runtime_builtins.DISPATCH, builtin, counted)
    return calls
