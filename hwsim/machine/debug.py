"""The debugger's port on the hart: breakpoints, single steps and stop requests (the machine's side of a
GDB server, ``hwsim/debug/``).

::

    debugger (hwsim/debug)              Machine.run loop                      Unicorn
    ----------------------              ----------------                      -------
    add_breakpoint(va)  ------------------------------------------------>  code hook on va only
    set_single_step(True) ---------------------------------------------->  code hook on every pc
    request_stop() (any thread) ---------------------------------------->  emu_stop
                                        a hook fired / the request landed:
                                        emu_start returned (StopReason.DEBUG,
                                        or LIMIT with a request pending)
    handler(DebugStop) <--------------  serve(): PC set to the stop; the handler
      (reads/writes registers, memory,  talks to the debugger until it resumes
       breakpoints; returns to resume)  --> run goes on from the PC register

Guest code is never patched: a breakpoint is a Unicorn code hook limited to
its address (only the translation blocks holding it are instrumented), and a
stop made in a hook lands before the instruction (``emu_stop`` inside
``UC_HOOK_CODE``, measured with unicorn 2.1.4: the instruction does not run,
the PC is exact).  Resuming from a breakpoint's address passes that
breakpoint once.  The handler runs outside ``emu_start`` (between two
stretches of emulation, like a watched access), so it may read and write
anything the host may; a stop inside a nested run (a host function calling
back into the guest) is served there.

A trap (a fault, a CPU exception, an ``ebreak``) is shown to the handler
before :meth:`Machine.run` returns it: the debugger sees the hart at the
faulting instruction.  When the handler returns with the PC unchanged the
run reports the trap as usual; a debugger that moved the PC resumes there.
"""

from __future__ import annotations

import ctypes
import enum
from collections.abc import Callable
from dataclasses import dataclass

from unicorn import unicorn_const as uc_const

from ..errors import ConfigError
from .fault import RunResult, WatchHit

try:  # the C entry point: a code hook on every instruction costs about 2.3x less without the binding's wrappers
    from unicorn.unicorn_py3.unicorn import HOOK_CODE_CFUNC, uclib

    _raw_hooks = True
except ImportError:  # pragma: no cover - older binding layout
    _raw_hooks = False


class DebugStopKind(enum.Enum):
    """Why the hart stopped for the debugger."""

    REQUESTED = "stopped on request (before the first instruction, or an interrupt)"
    BREAKPOINT = "reached a breakpoint"
    STEP = "a single step ended"
    WATCH = "a watched access was made"
    TRAP = "the guest trapped (a fault, an exception, an ebreak)"
    POSITION = "reached the position a replay runs to (an instruction count, or a virtual time)"


@dataclass(frozen=True, slots=True)
class DebugStop:
    """One stop shown to the debugger: the PC it stopped at, and for a trap or a watched access, what."""

    kind: DebugStopKind
    pc: int
    result: RunResult | None = None  # TRAP: how the run stopped
    watch: WatchHit | None = None  # WATCH: the access, already carried out


class DebugPort:
    """What a debugger may ask of the hart (``Machine.debug``); one debugger at a time."""

    def __init__(self, uc, stop: Callable[[], None], code_changed: Callable[[], None], *, handle=None) -> None:
        """``handle``: Unicorn's engine handle, to add the instruction-count hook without the binding."""
        self._uc = uc
        self._handle = handle
        self._stop = stop  # the machine's: end emu_start with StopReason.DEBUG
        self._code_changed = code_changed  # the machine's: drop all translated code
        self._handler: Callable[[DebugStop], None] | None = None
        self._breakpoints: dict[int, int] = {}  # va -> Unicorn hook handle
        self._step_hook: int | None = None
        self._step_first = False  # the step hook's next call is the instruction being stepped
        self._skip: int | None = None  # a breakpoint to pass once: the run resumes on it
        self._hit: DebugStopKind | None = None  # what a hook stopped for
        self._watch: WatchHit | None = None
        self.requested = False  # set by request_stop (any thread), cleared when served
        self.attached = False  # a debugger is attached (a plain attribute: Machine.run reads it per run)
        # A debugger changed registers or memory (set by it): the guest may now do what its code never
        # would, and whoever classifies a stop says so rather than calling it hwsim's bug.
        self.altered = False
        self._end_run = False  # the debugger ends the run (GDB's kill)
        # The position counter (count_instructions): instructions retired since it started, and where a
        # replay stops (see the module docstring's last paragraph).
        self.icount = 0
        self._count_hook: int | None = None
        self._count_cfunc: object | None = None  # the C callback object Unicorn calls (kept alive here)
        # the instruction under way, when the count includes it (its hook ran; it may yet not retire)
        self._counted_pc: int | None = None
        self._armed = False  # a stop at a position is set (the hook then checks it)
        self._stop_at: int | None = None  # stop before the instruction at this position
        self._stop_when: Callable[[], bool] | None = None  # stop before the first instruction where it is true

    # -- the debugger's side --------------------------------------------------------------------

    def attach(self, handler: Callable[[DebugStop], None], *, stop_at_start: bool = False) -> Callable[[], None]:
        """Serve stops with ``handler(DebugStop)``; with ``stop_at_start`` the next run stops before its
        first instruction.  Returns the function that detaches (breakpoints and stepping go with it)."""
        if self._handler is not None:
            raise ConfigError("a debugger is already attached to this machine")
        self._handler = handler
        self.attached = True
        self.requested = stop_at_start

        def detach() -> None:
            if self._handler is handler:
                for va in list(self._breakpoints):
                    self.remove_breakpoint(va)
                self.set_single_step(False)
                self._handler = None
                self.attached = False
                self.requested = False
                self._watch = None

        return detach

    def add_breakpoint(self, va: int) -> None:
        if va not in self._breakpoints:
            self._breakpoints[va] = self._uc.hook_add(uc_const.UC_HOOK_CODE, self._breakpoint_hit, begin=va, end=va)

    def remove_breakpoint(self, va: int) -> bool:
        """False when there was none at ``va``.

        Unicorn 2.1.4 may go on calling a deleted code hook from code translated while it existed
        (seen: add at A, run, delete; add at B, run, delete; add at A, delete; run: the hook at A is
        called; not reproduced on a small program), with the binding's callback object already
        released.  So the translated code is dropped with the hook (retranslation costs a little at
        each stop), and the hooks ignore calls for what is no longer set."""
        handle = self._breakpoints.pop(va, None)
        if handle is None:
            return False
        self._uc.hook_del(handle)
        self._code_changed()
        return True

    @property
    def breakpoints(self) -> frozenset[int]:
        return frozenset(self._breakpoints)

    def set_single_step(self, on: bool) -> None:
        """Stop before the second instruction executed from the next resume (wherever it is: an ecall's
        host function may run other guest code first, and that is where the step ends)."""
        if on and self._step_hook is None:
            self._step_hook = self._uc.hook_add(uc_const.UC_HOOK_CODE, self._step, begin=1, end=0)
        elif not on and self._step_hook is not None:
            self._uc.hook_del(self._step_hook)
            self._step_hook = None
            self._code_changed()  # see remove_breakpoint

    @property
    def stepping(self) -> bool:
        return self._step_hook is not None

    def count_instructions(self) -> None:
        """Count the instructions the hart retires from now on (:attr:`icount`): a Unicorn code hook on
        every instruction, added before any breakpoint's so that it runs first (Unicorn calls hooks in
        the order added).  A debugger that replays runs needs it from the first instruction."""
        if self._count_hook is not None:
            return
        if _raw_hooks and self._handle is not None:  # registered with Unicorn directly, for the machine's life
            cfunc = HOOK_CODE_CFUNC(self._count)  # (its first argument is the engine's handle)
            self._count_cfunc = cfunc
            handle = ctypes.c_size_t()
            err = uclib.uc_hook_add(
                self._handle,
                ctypes.byref(handle),
                uc_const.UC_HOOK_CODE,
                ctypes.cast(cfunc, ctypes.c_void_p),
                None,
                ctypes.c_uint64(1),
                ctypes.c_uint64(0),
            )
            if err != uc_const.UC_ERR_OK:  # pragma: no cover - Unicorn refuses only bad arguments
                raise ConfigError(f"Unicorn refused the instruction-count hook (error {err})")
            self._count_hook = handle.value
        else:  # pragma: no cover - older binding layout
            self._count_hook = self._uc.hook_add(uc_const.UC_HOOK_CODE, self._count, begin=1, end=0)
        self._code_changed()  # code translated before has no call to the hook

    @property
    def counting(self) -> bool:
        return self._count_hook is not None

    def stop_at(self, icount: int | None = None, *, when: Callable[[], bool] | None = None) -> None:
        """Stop (``DebugStopKind.POSITION``) before the instruction at position ``icount``, or before the
        first instruction at which ``when()`` is true; None: no such stop.  Needs :meth:`count_instructions`."""
        if self._count_hook is None and (icount is not None or when is not None):
            raise ConfigError("a stop at a position needs the instruction count (count_instructions)")
        self._stop_at = icount
        self._stop_when = when
        self._armed = icount is not None or when is not None

    def not_retired(self, pc: int) -> None:
        """From the machine: the run stopped on the instruction at ``pc`` without retiring it (a fault, an
        exception): it leaves the count if its hook counted it."""
        if self._counted_pc == pc:
            self.icount -= 1
        self._counted_pc = None

    def request_stop(self) -> None:
        """Stop the hart at its next instruction boundary (any thread; the caller repeats it until the
        stop is served: a request landing between two runs is kept, an ``emu_stop`` there is lost)."""
        self.requested = True
        self._uc.emu_stop()

    def end_run(self) -> None:
        """From the handler: the run stops when the handler returns (``Machine.run`` returns
        ``StopReason.LIMIT``, as when a run is interrupted: the caller's interrupt reason says why)."""
        self._end_run = True

    def stop_after(self, hit: WatchHit) -> None:
        """From a watched-page handler: stop once the access ``hit`` has been carried out."""
        self._watch = hit
        self.requested = True

    # -- Unicorn's hooks (inside emu_start) --------------------------------------------------------

    def _count(self, _uc, address: int, size: int, _data) -> None:
        if self._armed and (self._stop_at == self.icount or (self._stop_when is not None and self._stop_when())):
            if self._hit is None and self._handler is not None:
                self.stop_at(None)
                self._hit = DebugStopKind.POSITION
                self._counted_pc = None
                self._stop()
                return
        self.icount += 1
        self._counted_pc = address

    def _stop_before(self, kind: DebugStopKind, address: int) -> None:
        """A hook stops the hart before the instruction at ``address``: it does not retire."""
        if self._hit is not None:
            return  # an earlier hook of this instruction stopped it already
        self._hit = kind
        if self._counted_pc == address:
            self.icount -= 1
            self._counted_pc = None
        self._stop()

    def _breakpoint_hit(self, uc, address: int, size: int, _data) -> None:
        if address not in self._breakpoints or self._handler is None:
            return  # a hook Unicorn still calls after hook_del (see remove_breakpoint)
        if self._skip == address:
            self._skip = None
            return
        self._stop_before(DebugStopKind.BREAKPOINT, address)

    def _step(self, uc, address: int, size: int, _data) -> None:
        if self._step_hook is None or self._handler is None:
            return
        if self._step_first:
            self._step_first = False
            return
        self._stop_before(DebugStopKind.STEP, address)

    # -- the machine's side (Machine.run) -------------------------------------------------------------

    def take_hit(self) -> DebugStopKind:
        kind, self._hit = self._hit or DebugStopKind.REQUESTED, None
        return kind

    def take_watch(self) -> WatchHit | None:
        hit, self._watch = self._watch, None
        return hit

    def serve(self, stop: DebugStop, read_pc: Callable[[], int], write_pc: Callable[[int], None]) -> int | None:
        """Show ``stop`` to the debugger (the PC register set to it); the PC to resume from, or None when
        the debugger ended the run (:meth:`end_run`)."""
        write_pc(stop.pc)
        self.requested = False
        self._hit = None
        if self._stop_at is not None and self._stop_at == self.icount:
            self.stop_at(None)  # the debugger sees the hart at that position (whatever stopped it)
        handler = self._handler
        if handler is not None:
            handler(stop)
        if self._end_run:
            self._end_run = False
            return None
        pc = read_pc()
        self._skip = pc if pc in self._breakpoints else None
        self._step_first = self._step_hook is not None
        self._hit = None
        return pc
