"""A GDB server on the emulated hart: the remote protocol's commands, served while the hart is stopped.

::

    GDB --- TCP --- Connection (rsp.py: framing; reader thread: 0x03 -> request_stop)
                        |
                    GdbServer: attached to Machine.debug (machine/debug.py)
                        |  the hart stops (start, breakpoint, step, interrupt, watched access, trap)
                        v
                    _serve(stop): stop reply if GDB waits for one, then packets until one resumes
                        (registers and memory: target.py; executable: qXfer:exec-file + vFile;
                        Z0/Z1 breakpoints, Z2-Z4 watchpoints on the machine's watched pages;
                        monitor commands: qRcmd, monitor.py; bs/bc and monitor replay-to: replay.py)

One client at a time, all-stop, one thread (the hart).  The server answers
every packet: a malformed one gets ``E16`` (EINVAL), a memory access the
guest could not make ``E0e`` (EFAULT), an unknown command the empty reply
(the protocol's "not supported").  ``D`` (detach) removes breakpoints and
lets the run go on to its end and report; ``k`` asks the run to stop (the
``kill`` callback) and detaches.  When the run ends with GDB still attached,
GDB is told the exit status (``W``).

With ``replay=True`` (``hwsim run``) the server counts the instructions the
hart retires and offers reverse execution (``bs``, ``bc``, ``monitor
replay-to``): it raises :class:`~.replay.ReplayRestart`, the runner builds
the run again and hands it to :meth:`GdbServer.restart`, and the server
runs it silently to the planned position (``replay.py``).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from ..errors import ConfigError
from ..machine import DebugStop, DebugStopKind, Machine, WatchHit
from ..mmu.bits import PAGE_MASK, PAGE_SIZE
from ..riscv.priv import Access
from . import target as tgt
from .monitor import MACHINE_COMMANDS, Command, MonitorError, run_command
from .replay import Arrival, ReplayPlan, ReplayRestart, format_ns, parse_virtual_time
from .rsp import BAD_PACKET, MAX_PACKET, Connection, escape_binary

R = TypeVar("R")
T = TypeVar("T")
E_FAULT = b"E0e"  # EFAULT: the guest could not make that access
E_INVAL = b"E16"  # EINVAL: a malformed packet
MAX_WATCH = 1 << 16  # bytes one watchpoint may cover
MAX_BREAKPOINTS = 4096  # each is a Unicorn hook: a client may not set them without end
MAX_WATCHPOINTS = 64
E_NOSPC = b"E1c"  # ENOSPC: too many breakpoints or watchpoints
_WATCH_KINDS = {
    "2": frozenset({Access.STORE}),
    "3": frozenset({Access.LOAD}),
    "4": frozenset({Access.LOAD, Access.STORE}),
}
_FD = 3  # the one file descriptor vFile:open hands out (for the executable)
_O_ACCMODE = 3
_EACCES, _ENOENT, _EBADF, _EINVAL = 13, 2, 9, 22
# GDB does not know a monitor command moved the hart: it keeps the registers and frames it read before
REFRESH_HINT = "(GDB keeps the registers it read before: 'maintenance flush register-cache' reads them again)"
ACCEPT_TIMEOUT_S = None  # wait for GDB as long as it takes (tests pass their own)


@dataclass(frozen=True, slots=True)
class ExecFile:
    """The executable offered to GDB (``qXfer:exec-file`` and ``vFile``): its name and bytes."""

    name: str
    data: bytes


class _Malformed(Exception):
    """A packet whose arguments do not parse (answered E16)."""


class _Resume(Exception):
    """A command that resumes the hart: end the stop."""


def parse_address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` -> (host, port); host defaults to 127.0.0.1 (only this machine)."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"--gdb takes [HOST:]PORT, not {text!r}") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"--gdb: port {number} is out of range")
    return host or "127.0.0.1", number


def listen(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port; read it from ``getsockname()``)."""
    try:
        sock = socket.create_server((host, port), reuse_port=False)
    except OSError as exc:
        raise ConfigError(f"cannot listen for GDB on {host}:{port}: {exc.strerror}") from None
    return sock


class GdbServer:
    """Serves one GDB connection on ``machine``'s hart (attach with :meth:`serve`)."""

    def __init__(
        self,
        machine: Machine,
        *,
        exec_file: ExecFile | None = None,
        explain: Callable[[DebugStop], tuple[int, str] | None] | None = None,
        kill: Callable[[str], None] | None = None,
        monitor: Mapping[str, Command] | None = None,
        replay: bool = False,
        now_ns: Callable[[], int] | None = None,
    ) -> None:
        """``explain(stop)`` may name a trap's signal and a line of text for GDB's console (the driver
        runner knows wasm trap codes); ``kill(reason)`` stops the run (GDB's ``kill``); ``monitor``
        adds ``monitor`` commands to the machine's (monitor.py).  ``replay``: the runner can build the
        run again (it catches :class:`ReplayRestart` and calls :meth:`restart`), so reverse execution
        is offered; ``now_ns()``: the run's virtual time (for ``monitor when`` and ``replay-to``)."""
        self.machine = machine
        self.replay = replay
        self.now_ns = now_ns
        self._own_monitor = {"when": self._monitor_when, "replay-to": self._monitor_replay_to}
        self.monitor = {**MACHINE_COMMANDS, **(monitor or {}), **self._own_monitor}
        self.exec_file = exec_file
        self.explain = explain
        self.kill = kill
        self.conn: Connection | None = None
        self._detach: Callable[[], None] | None = None
        self._waiting = False  # GDB resumed the hart and waits for a stop reply
        self._interrupted = False  # an interrupt (0x03) came while the hart ran
        self._last_stop = b"S05"
        self._open_fd = False
        self._watchpoints: dict[tuple[frozenset[Access], int, int], list[tuple[int, Callable]]] = {}
        self._lock = threading.Lock()
        self.stops = 0
        self.killed = False  # GDB's kill ended the run
        self._breakpoints: set[int] = set()  # every run of a replayed session gets them again
        self._plan: ReplayPlan | None = None  # where the run being replayed stops for GDB
        self._history_end = 0  # the furthest position (instructions retired) the session has been at
        self._history_end_ns = 0  # and its virtual time
        self._altered_at: int | None = None  # the debugger changed registers or memory at this position
        self.restarts = 0  # runs started again for a replay
        self._rewatch = False  # the watchpoints are to be set again at the first stop

    # -- the connection's life ----------------------------------------------------------------------

    def serve(self, sock: socket.socket) -> None:
        """Take the connected client ``sock``; the hart stops before its next instruction for it."""
        if self.conn is not None:
            raise ConfigError("this GDB server already has a client")
        self.conn = Connection(sock, on_interrupt=self._on_interrupt, on_idle=self._on_idle)
        self._detach = self.machine.debug.attach(self._serve, stop_at_start=True)
        if self.replay:
            self.machine.debug.count_instructions()

    def restart(
        self,
        machine: Machine,
        *,
        explain: Callable[[DebugStop], tuple[int, str] | None] | None = None,
        kill: Callable[[str], None] | None = None,
        monitor: Mapping[str, Command] | None = None,
        now_ns: Callable[[], int] | None = None,
    ) -> None:
        """The run was built again after a :class:`ReplayRestart`: attach to its ``machine`` (breakpoints
        and watchpoints set again, the instruction count from 0) and stop where the plan says."""
        self.machine = machine
        self.explain, self.kill, self.now_ns = explain, kill, now_ns
        self.monitor = {**MACHINE_COMMANDS, **(monitor or {}), **self._own_monitor}
        self.restarts += 1
        debug = machine.debug
        self._detach = debug.attach(self._serve, stop_at_start=True)
        debug.count_instructions()
        for va in sorted(self._breakpoints):
            debug.add_breakpoint(va)
        self._rewatch = bool(self._watchpoints)  # at the first stop (_watch_again)
        plan = self._plan
        if plan is not None and plan.time_ns is not None:
            now, when = self._now, plan.time_ns
            debug.stop_at(when=lambda: now() >= when)
        elif plan is not None:
            debug.stop_at(plan.icount)

    @property
    def replaying(self) -> bool:
        """A replay is under way: the run has not reached the planned position yet."""
        return self._plan is not None

    def _now(self) -> int:
        return self.now_ns() if self.now_ns is not None else 0

    def abandoned(self, why: str) -> None:
        """The run ended before the replay arrived (it did not repeat the recorded run): tell GDB."""
        if self._plan is not None and self.conn is not None:
            self._plan = None
            self.conn.send(b"O" + (f"hwsim: the replay diverged: {why}\n").encode().hex().encode())
            self._waiting = True  # the run's end (W) is GDB's answer

    def accept(self, listener: socket.socket, timeout: float | None = ACCEPT_TIMEOUT_S) -> None:
        """Wait for GDB on ``listener`` and :meth:`serve` it."""
        listener.settimeout(timeout)
        try:
            sock, _peer = listener.accept()
        except TimeoutError:
            raise ConfigError(f"no debugger connected within {timeout} s") from None
        self.serve(sock)

    @property
    def connected(self) -> bool:
        return self.conn is not None and not self.conn.closed.is_set()

    def finish(self, exit_status: int, note: str | None = None) -> None:
        """The run ended: tell GDB (``note`` on its console and ``W`` with the exit status, if it waits
        for the hart), detach and close."""
        if self.conn is not None and self._waiting:
            if note:
                self.conn.send(b"O" + (note + "\n").encode().hex().encode())
            self.conn.send(b"W%02x" % (exit_status & 0xFF))
        self._end()

    def _end(self) -> None:
        for watches in self._watchpoints.values():
            for page, handler in watches:
                self.machine.unwatch_page(page, handler)
        self._watchpoints.clear()
        if self._detach is not None:
            self._detach()
            self._detach = None
        if self.conn is not None:
            self.conn.close()

    # -- the reader thread's side ---------------------------------------------------------------------

    def _on_interrupt(self) -> None:
        # GDB sends it after a resume command, which the main thread may not have taken yet: then the
        # stop is requested when it does.
        with self._lock:
            self._interrupted = True
            if self._waiting:
                self.machine.debug.request_stop()

    def _on_idle(self) -> None:
        with self._lock:
            if self._interrupted and self._waiting and self.machine.debug.requested:
                self.machine.debug.request_stop()  # it may have landed between two runs: again

    # -- a stop ----------------------------------------------------------------------------------------------

    def _serve(self, stop: DebugStop) -> None:
        conn = self.conn
        if conn is None or conn.closed.is_set():
            self._end()  # GDB went away: let the run go on
            return
        if self._rewatch:
            self._watch_again()
        extra = b""
        plan = self._plan
        if plan is not None:
            if self._arrived(stop, plan):
                stop, extra = self._arrive(stop, plan)
            elif self._interrupted:  # GDB's interrupt ends the replay where it is (SIGINT, or the monitor's text)
                self._plan = None
                self.machine.debug.stop_at(None)
            else:
                return  # on the way to the replay's position: GDB sees nothing
            if plan.arrival is Arrival.MONITOR:
                self._interrupted = False
                self._note_history()
                self._last_stop = self._stop_reply(stop, False)
                text = f"{self._position()}\n{REFRESH_HINT}\n"
                conn.send(b"O" + text.encode().hex().encode())
                conn.send(b"OK")
                self._packets(conn)
                return
        self.stops += 1
        self._note_history()
        with self._lock:
            interrupted, self._interrupted = self._interrupted, False
            waiting, self._waiting = self._waiting, False
        self._last_stop = self._stop_reply(stop, interrupted, extra)
        if waiting:
            if stop.kind is DebugStopKind.TRAP:
                text = self._trap_text(stop)
                if text:
                    conn.send(b"O" + (text + "\n").encode().hex().encode())
            conn.send(self._last_stop)
        self._packets(conn)

    def _packets(self, conn: Connection) -> None:
        """Answer GDB's packets until one resumes the hart (or ends the session)."""
        while True:
            payload = conn.recv()
            if payload is None:  # GDB went away without detaching: the run goes on
                self._end()
                return
            try:
                reply = self._command(payload)
            except _Resume:
                with self._lock:
                    self._waiting = True
                    if self._interrupted:
                        self.machine.debug.request_stop()
                return
            except _Malformed:
                reply = E_INVAL
            except tgt.MemoryRefused:
                reply = E_FAULT
            except tgt.RegisterError:
                reply = E_INVAL
            if reply is None:  # detached or killed
                return
            conn.send(reply)

    # -- replay (replay.py) ------------------------------------------------------------------------------

    def _arrived(self, stop: DebugStop, plan: ReplayPlan) -> bool:
        """A stop of a run being replayed: has it reached the plan's position?  (Records the stops GDB
        would have seen, for reverse-continue.)"""
        icount = self.machine.debug.icount
        if plan.record_until is not None and icount < plan.record_until:
            if stop.kind in (DebugStopKind.BREAKPOINT, DebugStopKind.WATCH):
                plan.hits.append((icount, stop))
        if plan.time_ns is not None:
            return self._now() >= plan.time_ns
        return icount == plan.icount

    def _arrive(self, stop: DebugStop, plan: ReplayPlan) -> tuple[DebugStop, bytes]:
        """The replay reached its position: the stop to report, and what its reply adds.  The first pass of
        a reverse-continue plans the second (raises ReplayRestart)."""
        self._plan = None
        self.machine.debug.stop_at(None)
        if plan.record_until is not None:
            if plan.hits:
                icount, hit = plan.hits[-1]
                if hit.kind is DebugStopKind.WATCH and hit.watch is not None:
                    # Going backwards a watchpoint stops where the access is undone: before its instruction
                    # (GDB then shows the value after it as old, the value before it as new).
                    icount, hit = icount - 1, DebugStop(DebugStopKind.WATCH, hit.watch.pc, watch=hit.watch)
                self._replay(ReplayPlan(Arrival.HIT, icount=icount, hit=hit))
            self._replay(ReplayPlan(Arrival.BEGIN, icount=0))
        if plan.hit is not None:
            if stop.pc != plan.hit.pc:
                self._say(
                    f"hwsim: the replay diverged: the hit was at pc {plan.hit.pc:#x}, the replay is at {stop.pc:#x}"
                )
            return plan.hit, b""
        if plan.arrival is Arrival.BEGIN:
            return DebugStop(DebugStopKind.POSITION, stop.pc), b"replaylog:begin;"
        return DebugStop(DebugStopKind.STEP, stop.pc), b""

    def _replay(self, plan: ReplayPlan) -> NoReturn:
        """Start the run again and stop at ``plan``'s position (raises ReplayRestart for the runner)."""
        self._plan = plan
        raise ReplayRestart(plan)

    def _note_history(self) -> None:
        icount = self.machine.debug.icount
        if icount >= self._history_end:
            self._history_end, self._history_end_ns = icount, self._now()

    def _position(self) -> str:
        debug = self.machine.debug
        return (
            f"icount {debug.icount}, virtual time {format_ns(self._now())}, pc {self.machine.get_reg('pc'):#x}"
            f" (history: icount 0 to {self._history_end}, virtual time up to {format_ns(self._history_end_ns)})"
        )

    def _say(self, text: str) -> None:
        assert self.conn is not None  # a command came from it
        self.conn.send(b"O" + (text + "\n").encode().hex().encode())

    def _not_replayable(self) -> str | None:
        """Why reverse execution is refused now, or None."""
        if not self.replay or not self.machine.debug.counting:
            return (
                "this run is not replayable: the GDB server was started without a way to run it again "
                "(hwsim run BOARD DRIVER --gdb PORT makes one)"
            )
        if self._altered_at is not None:
            return (
                "this run is not replayable: the debugger changed registers or memory at icount "
                f"{self._altered_at}, which a replay from the start would not repeat"
            )
        return None

    def _altered(self) -> None:
        self.machine.debug.altered = True
        if self._altered_at is None:
            self._altered_at = self.machine.debug.icount

    def _cmd_backward(self, args: str) -> bytes:
        """``bs`` (reverse-stepi) and ``bc`` (reverse-continue)."""
        if args not in ("s", "c"):
            raise _Malformed
        why = self._not_replayable()
        if why is not None:
            self._say(f"hwsim: {why}")
            return b"E01"
        self._note_history()
        icount = self.machine.debug.icount
        if icount == 0:
            self._last_stop = self._stop_reply(
                DebugStop(DebugStopKind.POSITION, self.machine.get_reg("pc")), False, b"replaylog:begin;"
            )
            return self._last_stop
        self._waiting = True
        if args == "s":
            self._replay(ReplayPlan(Arrival.STEP, icount=icount - 1))
        self._replay(ReplayPlan(Arrival.HIT, icount=icount, record_until=icount))

    def _monitor_when(self, machine: Machine, words: list[str]) -> str:
        """where the run is: instructions retired (icount) and virtual time"""
        if words:
            raise MonitorError("usage: monitor when")
        if not self.machine.debug.counting:
            return self._not_replayable() or ""
        self._note_history()
        return self._position()

    def _monitor_replay_to(self, machine: Machine, words: list[str]) -> str:
        """replay-to TIME | icount N: run again from the start to a virtual time (12us, 3ms) or a position"""
        usage = "usage: monitor replay-to TIME (a virtual time with its unit: 12us, 0.5ms) | icount N"
        if len(words) == 2 and words[0] == "icount":
            try:
                icount = int(words[1], 0)
            except ValueError:
                raise MonitorError(f"{usage} (not {words[1]!r})") from None
            plan = ReplayPlan(Arrival.MONITOR, icount=icount)
        elif len(words) == 1:
            try:
                plan = ReplayPlan(Arrival.MONITOR, time_ns=parse_virtual_time(words[0]))
            except ValueError as exc:
                raise MonitorError(f"{usage}: {exc}") from None
        else:
            raise MonitorError(usage)
        why = self._not_replayable()
        if why is not None:
            return why
        self._note_history()
        if plan.icount is not None and not 0 <= plan.icount <= self._history_end:
            return (
                f"icount {plan.icount} is outside the recorded history (icount 0 to {self._history_end}): "
                "continue or stepi to run further"
            )
        if plan.time_ns is not None and plan.time_ns > self._history_end_ns:
            return (
                f"virtual time {format_ns(plan.time_ns)} is outside the recorded history (up to "
                f"{format_ns(self._history_end_ns)}): continue or stepi to run further"
            )
        self._replay(plan)

    def _stop_reply(self, stop: DebugStop, interrupted: bool, extra: bytes = b"") -> bytes:
        sig = tgt.stop_signal(stop, interrupted=interrupted)
        if stop.kind is DebugStopKind.TRAP and self.explain is not None:
            named = self.explain(stop)
            if named is not None:
                sig = named[0]
        parts = [b"T%02x" % sig, b"%02x:%s;" % (tgt.PC_REGNUM, stop.pc.to_bytes(8, "little").hex().encode())]
        if stop.kind is DebugStopKind.BREAKPOINT:
            parts.append(b"swbreak:;")
        elif stop.kind is DebugStopKind.WATCH and stop.watch is not None:
            kind = b"watch" if stop.watch.access is Access.STORE else b"rwatch"
            parts.append(b"%s:%x;" % (kind, stop.watch.va))
        parts.append(extra)
        parts.append(b"thread:1;")
        return b"".join(parts)

    def _trap_text(self, stop: DebugStop) -> str:
        if self.explain is not None:
            named = self.explain(stop)
            if named is not None:
                return named[1]
        result = stop.result
        if result is None:
            return ""
        if result.fault is not None:
            return f"hwsim: {result.fault.kind} at pc {result.pc:#x}: {result.fault.message}"
        return f"hwsim: {result.reason.value} at pc {result.pc:#x}"

    # -- commands -------------------------------------------------------------------------------------------

    def _command(self, payload: bytes) -> bytes | None:
        if payload == BAD_PACKET:
            return E_INVAL
        try:
            text = payload.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
            raise _Malformed from None
        head = text[:1]
        handler = _SIMPLE.get(head)
        if handler is not None:
            return handler(self, text[1:])
        for prefix, method in _PREFIXED:
            if text.startswith(prefix):
                return method(self, text[len(prefix) :])
        return b""

    def _cmd_status(self, _args: str) -> bytes:
        return self._last_stop

    def _cmd_read_registers(self, _args: str) -> bytes:
        return tgt.read_all(self.machine).hex().encode()

    def _cmd_write_registers(self, args: str) -> bytes:
        tgt.write_all(self.machine, _unhex(args))
        self._altered()
        return b"OK"

    def _cmd_read_register(self, args: str) -> bytes:
        return tgt.read_register(self.machine, _int(args)).hex().encode()

    def _cmd_write_register(self, args: str) -> bytes:
        number, _, value = args.partition("=")
        tgt.write_register(self.machine, _int(number), _unhex(value))
        self._altered()
        return b"OK"

    def _cmd_read_memory(self, args: str) -> bytes:
        address, length = _address_length(args)
        if length == 0:
            return b""
        return tgt.read_memory(self.machine, address, min(length, MAX_PACKET // 2)).hex().encode()

    def _cmd_write_memory(self, args: str) -> bytes:
        where, sep, hexdata = args.partition(":")
        if not sep:
            raise _Malformed
        address, length = _address_length(where)
        data = _unhex(hexdata)
        if len(data) != length:
            raise _Malformed
        if data:
            tgt.write_memory(self.machine, address, data)
            self._altered()
        return b"OK"

    def _cmd_continue(self, args: str) -> bytes:
        self._resume(step=False, address=args)
        raise _Resume

    def _cmd_step(self, args: str) -> bytes:
        self._resume(step=True, address=args)
        raise _Resume

    def _cmd_continue_signal(self, args: str) -> bytes:
        _sig, _, address = args.partition(";")
        self._resume(step=False, address=address)
        raise _Resume

    def _cmd_step_signal(self, args: str) -> bytes:
        _sig, _, address = args.partition(";")
        self._resume(step=True, address=address)
        raise _Resume

    def _resume(self, *, step: bool, address: str) -> None:
        if address:
            self.machine.set_reg("pc", _int(address))
            self._altered()
        self.machine.debug.set_single_step(step)

    def _cmd_vcont(self, args: str) -> bytes:
        if args == "?":
            return b"vCont;c;C;s;S"
        if not args.startswith(";"):
            raise _Malformed
        for action in args[1:].split(";"):
            what, _, thread = action.partition(":")
            if thread not in ("", "1", "-1", "p1.1", "p1.-1"):
                continue  # another thread: there is one
            if what in ("c", "s") or (what[:1] in ("C", "S") and len(what) == 3):
                self._resume(step=what[0] in "sS", address="")
                raise _Resume
            if what == "t":
                return b"OK"
            raise _Malformed
        raise _Malformed

    def _cmd_breakpoint(self, args: str, insert: bool) -> bytes:
        kind, _, rest = args.partition(",")
        address_text, _, size_text = rest.partition(",")
        address = _int(address_text)
        if kind in ("2", "3", "4"):
            return self._watchpoint(_WATCH_KINDS[kind], address, _int(size_text), insert)
        if kind not in ("0", "1"):
            return b""
        if insert:
            debug = self.machine.debug
            if address not in debug.breakpoints and len(debug.breakpoints) >= MAX_BREAKPOINTS:
                return E_NOSPC
            debug.add_breakpoint(address)
            self._breakpoints.add(address)
        else:
            self.machine.debug.remove_breakpoint(address)
            self._breakpoints.discard(address)
        return b"OK"

    def _watchpoint(self, accesses: frozenset[Access], va: int, size: int, insert: bool) -> bytes:
        """A watchpoint on ``size`` bytes at ``va``: the machine's watched pages (physical, found now
        through the page tables) stop the hart after each matching access."""
        key = (accesses, va, size)
        if not insert:
            for page, watcher in self._watchpoints.pop(key, ()):
                self.machine.unwatch_page(page, watcher)
            return b"OK"
        if key in self._watchpoints or not 0 < size <= MAX_WATCH:
            return E_INVAL
        if len(self._watchpoints) >= MAX_WATCHPOINTS:
            return E_NOSPC
        self._watch_pages(key, self._pages_of(va, size))  # MemoryRefused: E0e
        return b"OK"

    def _pages_of(self, va: int, size: int) -> list[int]:
        """The physical pages behind ``size`` bytes at ``va`` now (paged in if the guest may touch them)."""
        pages = []
        at = va & ~PAGE_MASK
        while at < va + size:
            pages.append(tgt.physical_page(self.machine, at))
            at += PAGE_SIZE
        return pages

    def _watch_again(self) -> None:
        """At the first stop of a replayed run (the hart in the driver's address space): watch what the
        watchpoints cover again, found through the page tables as when they were set (a page the
        debugger paged in may be in another frame than in the first run)."""
        self._rewatch = False
        for key in list(self._watchpoints):
            _accesses, va, size = key
            try:
                self._watch_pages(key, self._pages_of(va, size))
            except tgt.MemoryRefused:
                del self._watchpoints[key]
                self._say(f"hwsim: the watchpoint at {va:#x} is gone: the replayed run cannot reach that memory")

    def _watch_pages(self, key: tuple[frozenset[Access], int, int], pages: list[int]) -> None:
        """Watch the physical ``pages`` behind watchpoint ``key`` on the machine."""
        accesses, va, size = key
        end = va + size
        debug = self.machine.debug

        def handler(hit: WatchHit) -> None:
            if hit.va < end and va < hit.va + hit.size and hit.access in accesses:
                debug.stop_after(WatchHit(hit.pc, max(hit.va, va), hit.pa, hit.size, hit.access, hit.priv, hit.value))

        kinds = tuple(accesses)
        self._watchpoints[key] = [(pa, handler) for pa in pages]
        for pa in pages:
            self.machine.watch_page(pa, handler, kinds)

    def _cmd_insert(self, args: str) -> bytes:
        return self._cmd_breakpoint(args, True)

    def _cmd_remove(self, args: str) -> bytes:
        return self._cmd_breakpoint(args, False)

    def _cmd_detach(self, _args: str) -> bytes | None:
        assert self.conn is not None  # a command came from it
        self.conn.send(b"OK")
        self._end()
        return None

    def _cmd_kill(self, _args: str) -> bytes | None:
        self.killed = True
        if self.kill is not None:
            self.kill("killed by the debugger")
        self.machine.debug.end_run()  # the run stops here (the kill callback says why)
        if self.conn is not None:
            self.conn.send(b"OK")
        self._end()
        return None

    def _cmd_thread(self, _args: str) -> bytes:
        return b"OK"

    def _cmd_query(self, args: str) -> bytes:
        name, _, rest = args.partition(":")
        if name == "Supported":
            return (
                b"PacketSize=%x;qXfer:features:read+;qXfer:exec-file:read+;vContSupported+;"
                b"QStartNoAckMode+;swbreak+;hwbreak+%s"
                % (MAX_PACKET, b";ReverseStep+;ReverseContinue+" if self.replay else b"")
            )
        if name == "Attached":
            return b"1"  # attached to a running program: GDB's quit detaches, it does not kill
        if name == "C":
            return b"QC1"
        if name == "fThreadInfo":
            return b"m1"
        if name == "sThreadInfo":
            return b"l"
        if name == "Offsets":
            return b"Text=0;Data=0;Bss=0"
        if name == "Symbol":
            return b"OK"
        if name == "Xfer":
            return self._xfer(rest)
        if args.startswith("Rcmd,"):
            text = run_command(self.monitor, self.machine, _unhex(args[5:]).decode("utf-8", errors="replace"))
            if text:
                assert self.conn is not None  # a command came from it
                self.conn.send(b"O" + (text.rstrip("\n") + "\n").encode().hex().encode())
            return b"OK"
        return b""

    def _xfer(self, args: str) -> bytes:
        parts = args.split(":")
        if len(parts) != 4 or parts[1] != "read":
            return b""
        obj, _read, annex, window = parts
        offset, length = _address_length(window)
        if obj == "features":
            if annex != "target.xml":
                return E_INVAL
            data = tgt.target_xml()
        elif obj == "exec-file":
            if self.exec_file is None:
                return E_INVAL
            data = self.exec_file.name.encode()
        else:
            return b""
        chunk = data[offset : offset + length]
        return (b"l" if offset + length >= len(data) else b"m") + escape_binary(chunk)

    def _cmd_set(self, args: str) -> bytes:
        if args == "StartNoAckMode":
            # This packet was acknowledged on arrival; the client sends nothing more before our OK, so
            # acknowledgements stop now (later, the reader thread could ack the client's next packet).
            assert self.conn is not None  # a command came from it
            self.conn.ack = False
            return b"OK"
        return b""

    def _cmd_vfile(self, args: str) -> bytes:
        op, _, rest = args.partition(":")
        fields = rest.split(",")
        try:
            if op == "setfs":
                return b"F0"
            if op == "open":
                name = bytes.fromhex(fields[0]).decode("utf-8", errors="replace")
                flags = int(fields[1], 16)
                if self.exec_file is None or name != self.exec_file.name:
                    return b"F-1,%x" % _ENOENT
                if flags & _O_ACCMODE:
                    return b"F-1,%x" % _EACCES
                self._open_fd = True
                return b"F%x" % _FD
            if op == "pread":
                fd, count, offset = (int(f, 16) for f in fields)
                if fd != _FD or not self._open_fd or self.exec_file is None:
                    return b"F-1,%x" % _EBADF
                data = self.exec_file.data[offset : offset + min(count, MAX_PACKET // 2)]
                return b"F%x;" % len(data) + escape_binary(data)
            if op == "fstat":
                if int(fields[0], 16) != _FD or not self._open_fd or self.exec_file is None:
                    return b"F-1,%x" % _EBADF
                stat = _fileio_stat(len(self.exec_file.data))
                return b"F%x;" % len(stat) + escape_binary(stat)
            if op == "close":
                if int(fields[0], 16) != _FD or not self._open_fd:
                    return b"F-1,%x" % _EBADF
                self._open_fd = False
                return b"F0"
        except (ValueError, IndexError):
            return b"F-1,%x" % _EINVAL
        return b""


def run_replayable(
    server: GdbServer, run: R, go: Callable[[R], T], rebuild: Callable[[], tuple[R, Machine, dict]]
) -> T:
    """``go(run)`` with ``server`` (made with ``replay=True``) attached to the run's machine; each time the
    debugger asks for a replay (:class:`ReplayRestart`), ``rebuild()`` gives a new run, its machine and the
    keyword arguments of :meth:`GdbServer.restart`, and the new run goes.  What the last ``go`` returns."""
    while True:
        try:
            result = go(run)
        except ReplayRestart:
            run, machine, parts = rebuild()
            server.restart(machine, **parts)
            continue
        if server.replaying:
            server.abandoned(f"the run ended at icount {server.machine.debug.icount} before the replay arrived")
        return result


def _fileio_stat(size: int) -> bytes:
    """GDB's File-I/O ``struct stat`` (big-endian): a regular, read-only file of ``size`` bytes."""
    fields = [0, 0, 0o100444, 1, 0, 0, 0]  # dev, ino, mode, nlink, uid, gid, rdev (4 bytes each)
    out = b"".join(f.to_bytes(4, "big") for f in fields)
    out += size.to_bytes(8, "big") + (4096).to_bytes(8, "big") + ((size + 511) // 512).to_bytes(8, "big")
    return out + bytes(12)  # atime, mtime, ctime


def _int(text: str) -> int:
    """A hex field: an address, a length, a register number (never past 64 bits)."""
    try:
        value = int(text, 16)
    except ValueError:
        raise _Malformed from None
    if not 0 <= value < 1 << 64:
        raise _Malformed
    return value


def _unhex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise _Malformed from None


def _address_length(text: str) -> tuple[int, int]:
    address, sep, length = text.partition(",")
    if not sep:
        raise _Malformed
    return _int(address), _int(length)


_SIMPLE: dict[str, Callable[[GdbServer, str], bytes | None]] = {
    "?": GdbServer._cmd_status,
    "g": GdbServer._cmd_read_registers,
    "G": GdbServer._cmd_write_registers,
    "p": GdbServer._cmd_read_register,
    "P": GdbServer._cmd_write_register,
    "m": GdbServer._cmd_read_memory,
    "M": GdbServer._cmd_write_memory,
    "c": GdbServer._cmd_continue,
    "s": GdbServer._cmd_step,
    "C": GdbServer._cmd_continue_signal,
    "S": GdbServer._cmd_step_signal,
    "Z": GdbServer._cmd_insert,
    "z": GdbServer._cmd_remove,
    "D": GdbServer._cmd_detach,
    "b": GdbServer._cmd_backward,
    "k": GdbServer._cmd_kill,
    "H": GdbServer._cmd_thread,
    "T": GdbServer._cmd_thread,
    "q": GdbServer._cmd_query,
    "Q": GdbServer._cmd_set,
}
_PREFIXED: tuple[tuple[str, Callable[[GdbServer, str], bytes | None]], ...] = (
    ("vCont", GdbServer._cmd_vcont),
    ("vFile:", GdbServer._cmd_vfile),
    ("vKill", GdbServer._cmd_kill),
)
