"""PLIC: a platform-level interrupt controller in the SiFive/QEMU-virt layout.

::

    device IrqLine --> gateway (level) --> pending bit --+--> context 0: enable & priority > threshold --> output 0
                        (one request        (cleared by  |--> context 1: ...                             --> output 1
                         until complete)     claim)

Sources are level-sensitive.  A high line makes the source pending unless a
request from it is already in service; a claim (read of CLAIMn) returns the
enabled pending source of highest priority above the context's threshold
(ties: lowest ID), clears its pending bit and puts it in service; writing
that ID back to CLAIMn completes it, and if the line is still high the source
is pending again.  Priority 0 never interrupts.

The outputs (one per context, e.g. context 0 = hart 0 M-mode, 1 = S-mode as
on QEMU virt) are levels the runner can read (``output(ctx)``) or watch
(``on_output``).  The CPU does not yet take interrupts: delivering an output
to the hart (mip.MEIP/SEIP and a trap) is the machine's job and not done yet.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..trace import TRACE
from .base import Device, IrqLine, Option, register_device
from .issues import IssueKind
from .layouts import PLIC_CONTEXT_BASE, PLIC_CONTEXT_STRIDE, plic_layout

_LAYOUTS: dict[tuple[int, int], object] = {}


def _layout(sources: int, contexts: int):
    key = (sources, contexts)
    if key not in _LAYOUTS:
        _LAYOUTS[key] = plic_layout(sources, contexts)
    return _LAYOUTS[key]


@register_device
class Plic(Device):
    TYPE = "plic"
    ROLE = "interrupt-controller"
    PLATFORM = "the routing, priority and delivery of every interrupt"
    DESCRIPTION = "platform-level interrupt controller (priorities, pending, per-context enable/threshold/claim)"
    LAYOUT = _layout(32, 2)
    HAS_IRQ = False
    OPTIONS = {
        "sources": Option(
            int, 32, "number of interrupt sources including the reserved source 0", minimum=2, maximum=1024
        ),
        "contexts": Option(
            int, 2, "number of contexts (hart/privilege pairs; hwsim allows up to 64)", minimum=1, maximum=64
        ),
    }

    def __init__(self, *, name: str, **kw) -> None:
        options = self.resolve_options({k: v for k, v in kw.items() if k in self.OPTIONS})
        self.LAYOUT = _layout(options["sources"], options["contexts"])  # per-instance map
        super().__init__(name=name, **kw)
        self.sources = self.options["sources"]
        self.contexts = self.options["contexts"]
        self._level = [False] * self.sources
        self._pending = [False] * self.sources
        self._in_service = [False] * self.sources
        self._outputs = [False] * self.contexts
        self._listeners: list[Callable[[int, bool], None]] = []
        for c in range(self.contexts):
            self.regs.on_read(f"CLAIM{c}", partial(self.claim, c))
            self.regs.on_write(f"CLAIM{c}", partial(self._write_claim, c))
            self.regs.on_write(f"THRESHOLD{c}", lambda new, old: self._update())
            for w in range((self.sources + 31) // 32):
                self.regs.on_write(f"ENABLE{c}_{w}", lambda new, old: self._update())
        for s in range(1, self.sources):
            self.regs.on_write(f"PRIORITY{s}", lambda new, old: self._update())
        for w in range((self.sources + 31) // 32):
            self.regs.on_read(f"PENDING{w}", partial(self._pending_word, w))

    @classmethod
    def required_size(cls, options) -> int:
        return PLIC_CONTEXT_BASE + PLIC_CONTEXT_STRIDE * options["contexts"]

    def _reset(self) -> None:
        self._pending = [False] * self.sources
        self._in_service = [False] * self.sources
        for s in range(1, self.sources):  # lines that are still high request again
            self._pending[s] = self._level[s]
        self._update()

    # -- wiring ------------------------------------------------------------------------------

    def line(self, source: int) -> IrqLine:
        """The input wire of ``source`` (1 .. sources-1), for a device's ``irq``."""
        if not 0 < source < self.sources:
            raise ValueError(f"interrupt source {source} is out of range 1..{self.sources - 1}")
        return IrqLine(self.set_level, source)

    def set_level(self, source: int, level: bool) -> None:
        self._level[source] = level
        if level and not self._in_service[source]:
            self._pending[source] = True
        self._update()

    def on_output(self, listener: Callable[[int, bool], None]) -> None:
        """``listener(context, level)`` whenever a context's output changes."""
        self._listeners.append(listener)

    def output(self, context: int) -> bool:
        return self._outputs[context]

    def is_pending(self, source: int) -> bool:
        return self._pending[source]

    # -- claim / complete ----------------------------------------------------------------------

    def _enabled(self, context: int, source: int) -> bool:
        return bool(self.regs[f"ENABLE{context}_{source // 32}"] >> (source % 32) & 1)

    def _best(self, context: int) -> int:
        threshold = self.regs[f"THRESHOLD{context}"]
        best, best_prio = 0, threshold
        for s in range(1, self.sources):
            if self._pending[s] and self._enabled(context, s):
                prio = self.regs[f"PRIORITY{s}"]
                if prio > best_prio:
                    best, best_prio = s, prio
        return best

    def claim(self, context: int) -> int:
        source = self._best(context)
        if source:
            self._pending[source] = False
            self._in_service[source] = True
            self._update()
        if TRACE.irq_claim is not None:
            TRACE.irq_claim(context=context, line=source)
        return source

    def complete(self, context: int, source: int) -> None:
        if TRACE.irq_complete is not None:
            TRACE.irq_complete(context=context, line=source)
        if not 0 < source < self.sources:
            self.report(
                IssueKind.BAD_VALUE,
                register=f"CLAIM{context}",
                detail=f"completion of interrupt {source}, which does not exist (sources 1..{self.sources - 1})",
            )
            return
        if not self._enabled(context, source):
            self.report(
                IssueKind.BAD_VALUE,
                register=f"CLAIM{context}",
                detail=f"completion of interrupt {source}, which is not enabled for context {context} (ignored)",
            )
            return
        if not self._in_service[source]:
            self.report(
                IssueKind.BAD_VALUE,
                register=f"CLAIM{context}",
                detail=f"completion of interrupt {source}, which was not claimed",
            )
            return
        self._in_service[source] = False
        if self._level[source]:
            self._pending[source] = True
        self._update()

    def _write_claim(self, context: int, new: int, _old: int) -> None:
        self.complete(context, new)

    def _pending_word(self, word: int) -> int:
        return sum(1 << b for b in range(32) if 32 * word + b < self.sources and self._pending[32 * word + b])

    def _update(self) -> None:
        for c in range(self.contexts):
            level = self._best(c) != 0
            if level != self._outputs[c]:
                self._outputs[c] = level
                for listener in self._listeners:
                    listener(c, level)
