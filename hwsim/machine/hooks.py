"""The machine's hooks: callbacks registered in order, each registration removable (QEMU's notifiers).

Nothing is assigned into the machine: every user adds its callbacks with a
``Machine.add_*`` method and keeps the function it returns to remove them.
Several users of one machine (a board charging virtual time, the runtime's
pager, a test's observer) therefore never replace one another.

===================  ====================================  =============================================
hook                 asked when                            order and outcome
===================  ====================================  =============================================
pager                a walk finds an invalid PTE (V=0)     in order of adding, until one returns True:
                                                           it mapped the page, the walk is retried (or
                                                           the Translation of the leaf it wrote, which
                                                           stands for that walk when nothing is traced)
write-fault handler  a store finds a valid page without W  the same: the first that returns True made
                                                           the page writable (copy-on-write)
ecall handler        an ``ecall`` (the PC is past it)      in order, until one does not DECLINE; none
                                                           left: the run stops (``StopReason.ECALL``)
device-access        a guest load or store is about to     all of them, in order of adding (registers
  observer           reach a device (with PC tracking)     may be read, not written, from here)
MMIO observer        a device has served a guest access    all of them, in order of adding
===================  ====================================  =============================================
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from ..errors import ConfigError


class EcallAction(enum.Enum):
    """What an ecall handler did with an ``ecall``."""

    DECLINE = "not this handler's: the next handler is asked"
    RESUME = "handled: the guest goes on after the ecall"
    STOP = "handled, and the run stops with StopReason.ECALL"


class Hooks:
    """The callbacks of one hook, in the order they were added.

    Dispatch iterates :attr:`callbacks`, a tuple that :meth:`add` and a
    remover replace rather than change, so a callback may add or remove
    callbacks while the hook runs: the change applies from the next event.
    """

    __slots__ = ("kind", "callbacks", "_entries")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.callbacks: tuple[Callable, ...] = ()
        self._entries: tuple[tuple[object, Callable], ...] = ()  # (registration token, callback)

    def add(self, callback: Callable) -> Callable[[], None]:
        """Add ``callback`` last; returns the function that removes this registration (a second call
        does nothing)."""
        if not callable(callback):
            raise ConfigError(f"a {self.kind} must be callable, not {callback!r}")
        token = object()
        self._set(self._entries + ((token, callback),))

        def remove() -> None:
            self._set(tuple(entry for entry in self._entries if entry[0] is not token))

        return remove

    def _set(self, entries: tuple[tuple[object, Callable], ...]) -> None:
        self._entries = entries
        self.callbacks = tuple(callback for _token, callback in entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<Hooks {self.kind}: {len(self)}>"
