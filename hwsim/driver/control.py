"""Run control: a wall-clock limit and Ctrl-C that stop a driver at its next safe point, with its report.

::

    main thread                         watchdog thread
    -----------                         ---------------
    emu_start (GIL released)            select(wakeup fd, timeout = time left)
      ... guest code spins ...            SIGINT byte  -> store.interrupt("Ctrl-C")
                                          time is up   -> store.interrupt("wall-clock limit")
    emu_start returns                     (repeated every POLL_S while the run goes on: a stop
    invoke raises Trap(INTERRUPTED)        that lands between two runs is lost)

Python runs a signal handler only between bytecodes of the main thread, and
while Unicorn runs guest code without calling back into Python there are
none: a plain ``KeyboardInterrupt`` would wait for the loop to end, or be
swallowed inside a ctypes callback.  So the C-level handler's byte on the
wakeup fd wakes a watchdog thread, which asks the Store to stop; the run
then ends with a trap, the report is printed and ``hwsim run`` exits 130
(124 for a time limit, as GNU ``timeout`` does).  A second Ctrl-C raises
``KeyboardInterrupt`` as usual.
"""

from __future__ import annotations

import enum
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

POLL_S = 0.05


class StopCause(enum.Enum):
    """Why a run was stopped from outside the driver; the value is the exit status of ``hwsim run``."""

    TIME_LIMIT = 124
    USER = 130


class RunControl:
    """While active (``with``), a wall-clock limit and Ctrl-C interrupt the target's guest code.

    ``target`` has ``interrupt(reason)`` (thread- and signal-safe) and ``machine``: a Store, or a
    native firmware run."""

    def __init__(self, target, *, wall_limit_s: float | None = None, catch_sigint: bool = False) -> None:
        self.target = target
        self.wall_limit_s = wall_limit_s
        self.catch_sigint = catch_sigint and threading.current_thread() is threading.main_thread()
        self.cause: StopCause | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._sockets: tuple[socket.socket, socket.socket] | None = None
        self._old_handler: Callable[[int, FrameType | None], Any] | int | None = None
        self._old_wakeup = -1
        self._sigints = 0

    def stop(self, cause: StopCause, reason: str) -> None:
        """Interrupt the run now (first cause wins)."""
        if self.cause is None:
            self.cause = cause
            self.target.interrupt(reason)

    # -- the context --------------------------------------------------------------------------------

    def __enter__(self) -> RunControl:
        if self.wall_limit_s is None and not self.catch_sigint:
            return self
        if self.catch_sigint:
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            self._sockets = (reader, writer)
            self._old_wakeup = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
            self._old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        self._thread = threading.Thread(target=self._watch, name="hwsim-run-control", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self._sockets is not None:
            signal.set_wakeup_fd(self._old_wakeup)
            signal.signal(signal.SIGINT, self._old_handler)
            for sock in self._sockets:
                sock.close()

    def _on_sigint(self, signum, frame) -> None:
        self._sigints += 1
        if self._sigints > 1:
            raise KeyboardInterrupt
        self.stop(StopCause.USER, "interrupted by Ctrl-C")

    def _watch(self) -> None:
        deadline = time.monotonic() + self.wall_limit_s if self.wall_limit_s is not None else None
        reader = self._sockets[0] if self._sockets is not None else None
        while not self._done.is_set():
            if self.cause is not None:  # keep asking until the run has stopped
                self.target.machine.request_stop()
                self._done.wait(POLL_S)
                continue
            timeout = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))
            if reader is not None:
                ready, _, _ = select.select([reader], [], [], timeout)
                if ready and self._drain(reader):
                    self.stop(StopCause.USER, "interrupted by Ctrl-C")
                    continue
            else:
                self._done.wait(timeout)
            if deadline is not None and time.monotonic() >= deadline:
                self.stop(StopCause.TIME_LIMIT, f"wall-clock limit of {self.wall_limit_s:g} s reached")

    @staticmethod
    def _drain(reader: socket.socket) -> bool:
        """True when a SIGINT byte was waiting (other signals' bytes are dropped)."""
        got = False
        try:
            while data := reader.recv(64):
                got |= signal.SIGINT in data
        except BlockingIOError:
            pass
        return got
