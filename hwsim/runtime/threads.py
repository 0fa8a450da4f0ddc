"""Guest threads on the Store's harts: their contexts and stacks, the seeded scheduler, waiting in virtual time.

wasi-threads (hwsim/wasi/threads.py) spawns each thread as a new instance of the module, sharing
its imported shared memory; the threads of a Store run inside the call from the host that started
the first one (the *root* call, usually ``_start``), one at a time on one host thread, thread t on
hart t mod N of the Store's N harts (the Store is bound to its hart first: ``VmStore.bind_hart``;
with several harts, ``hart_turn`` gives each hart's turn an instruction budget)::

    root call (calls.py invoke, depth 1)
      run thread A ... stop ---------------------------------------------+
        at a checkpoint whose time slice is used up (fuel, metering)     |  Scheduler.switch:
        at memory.atomic.wait / a WASI call that would block (Blocked)   |   save A's context (registers,
        when A's entry function returns (a thread other than the root)   |   pc, the ABI area); pick the
      run thread B ... <-------------------------------------------------+   next runnable thread with the
                                                                             seeded RNG; restore its context

Each thread has its own wasm stack (a 8 MiB slot above the root's, with an 8 MiB unmapped guard
under it: ``layout.thread_stack_top``) and its own register context; the Store's fuel count is one
(the hart's), and so is its *virtual time*: each unit of fuel executed is ``ns_per_unit`` ns, and
when every thread is blocked the clock jumps to the earliest timeout.  A slice is a random number
of fuel units (1 to twice ``time_slice``), drawn from the seed, so the same seed gives the same
interleaving: every decision (slice lengths, which thread runs next) comes from ``random.Random(seed)``
and from what the threads do, never from the host's clock.

Preemption needs checkpoints (a metered Engine: ``Engine(metering=True)``, fuel or epochs); without
them threads switch only when they block or end.  A switch happens only while the hart runs the
root call's own frames (no host function calling back into wasm in between): a preemption point
inside such a nested call is passed over, and a wait there cannot block (it traps).
"""

from __future__ import annotations

import enum
import hashlib
import random
import select
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..compiler.traps import TrapCode
from ..trace import TRACE
from . import layout as L
from .errors import Trap

if TYPE_CHECKING:
    from .objects import FuncRecord
    from .store import VmStore

NS_PER_UNIT = 10  # virtual ns per unit of fuel executed (a 100 MHz wasm machine)
TIME_SLICE = 20_000  # fuel units per time slice, on average
MAX_THREADS = 128  # threads spawned at most at once (thread-spawn returns -1 past it)
_ABI_BYTES = L.ABI_AREA_SIZE - L.ABI_AREA_RESERVED  # a thread's part of the ABI area (the rest is constant)


class Wake(enum.Enum):
    """Why a blocked thread runs again."""

    NOTIFIED = "notified"  # memory.atomic.notify
    TIMED_OUT = "timed out"  # its timeout passed in virtual time
    READY = "ready"  # the host descriptor it waits for is ready


class Blocked(Exception):
    """Raised inside an ecall (a builtin or a host function) to block the calling thread.

    ``complete(why)`` runs when the thread goes on, on its own registers: it returns the call's
    results (a builtin's a0, a host function's result list), which the scheduler writes back.
    ``deadline_ns``: a timeout in virtual time (None: none); ``key``: the address a
    ``memory.atomic.wait`` waits on; ``fd``: a host descriptor a WASI read waits for."""

    def __init__(
        self,
        what: str,
        complete: Callable[[Wake], list[int]],
        *,
        deadline_ns: int | None = None,
        key: tuple[int, int] | None = None,
        fd: int | None = None,
    ) -> None:
        super().__init__(what)
        self.what = what
        self.complete = complete
        self.deadline_ns = deadline_ns
        self.key = key
        self.fd = fd
        self.finish: Callable[[list[int]], None] | None = None  # set by the ecall: write the results


class Stop(enum.Enum):
    """Where a thread that is not running stopped: what the collector can know of its frames (gcheap.py)."""

    BLOCKED = "blocked in an ecall"  # a blocking builtin or a host function: a safepoint
    CHECKPOINT = "at a checkpoint"  # its time slice ran out at a metered checkpoint (a safepoint if mapped)
    ANYWHERE = "at any instruction"  # its instruction budget ran out (insn_slice, hart_turn): no safepoint


class ThreadState(enum.Enum):
    RUNNABLE = "runnable"
    BLOCKED = "blocked"
    DONE = "done"


class GuestThread:
    """One wasm thread: its entry, stack slot, saved context and what it waits for."""

    __slots__ = (
        "tid",
        "hart",
        "slot",
        "entry",
        "args",
        "context",
        "abi",
        "pc",
        "state",
        "blocked",
        "wake",
        "seq",
        "stop",
    )

    def __init__(self, tid: int, slot: int, entry: FuncRecord | None, args: list[int], seq: int, hart: int = 0) -> None:
        self.tid = tid
        self.hart = hart  # the hart it runs on, always (tid mod the Store's harts: no migration)
        self.slot = slot  # 0: the root call's stack; k >= 1: layout.thread_stack_top(k)
        self.entry = entry  # None for the root thread (it is already running)
        self.args = args
        self.context: object | None = None  # the hart's saved registers (Machine.save_context)
        self.abi = b""  # the ABI area as the thread left it
        self.pc = 0
        self.state = ThreadState.RUNNABLE
        self.blocked: Blocked | None = None
        self.wake: Wake | None = None  # why a blocked thread was made runnable
        self.seq = seq  # order of blocking, for FIFO wake-ups
        self.stop: Stop | None = None  # where it stopped, while switched out

    def __repr__(self) -> str:
        return f"<thread {self.tid} {self.state.value}>"


class Scheduler:
    """The threads of one Store and the decisions between them (``store.threads``)."""

    def __init__(
        self,
        store: VmStore,
        *,
        seed: int = 0,
        time_slice: int = TIME_SLICE,
        max_threads: int = MAX_THREADS,
        ns_per_unit: int = NS_PER_UNIT,
        insn_slice: int = 0,
        hart_turn: int = 0,
    ) -> None:
        self.store = store
        self.harts = store.home.harts  # the Store's machine's harts: thread t runs on hart t mod len(harts)
        self.configure(
            seed=seed,
            time_slice=time_slice,
            max_threads=max_threads,
            ns_per_unit=ns_per_unit,
            insn_slice=insn_slice,
            hart_turn=hart_turn,
        )
        self.rng = random.Random(seed)
        self.now_ns = 0  # virtual time, running on across root calls
        self.threads: dict[int, GuestThread] = {}
        self.current: GuestThread | None = None
        self.active = False  # a root call is running with threads
        self.switch_pending = False
        self.stop = Stop.CHECKPOINT  # why the running thread is about to be switched out
        self.ended_in: int | None = None  # the thread running when the last root call ended (0: the root's)
        self.next_tid = 1
        self.switches = 0
        self.hart_turns = [0] * len(self.harts)  # stretches each hart ran a thread, in the last root call
        self.spawn_failure = ""  # why the last thread-spawn returned -1 (set by hwsim/wasi/threads.py)
        self._seq = 0
        self._mark = 0  # the fuel count at the last accounting
        self._trace = hashlib.sha256()
        store.add_checkpoint_handler(self._checkpoint)

    def configure(
        self,
        *,
        seed: int = 0,
        time_slice: int = TIME_SLICE,
        max_threads: int = MAX_THREADS,
        ns_per_unit: int = NS_PER_UNIT,
        insn_slice: int = 0,
        hart_turn: int = 0,
    ) -> None:
        """The scheduler's settings (WasiConfig's; taken at the next root call).  ``insn_slice`` > 0 also
        preempts at any instruction, after 1 to twice that many (Unicorn counts each one: slow).
        ``hart_turn`` > 0: the same on a Store of several harts (each hart's turn is 1 to twice that many
        instructions), in place of ``insn_slice``; on one hart it does nothing."""
        if not 1 <= max_threads <= L.THREAD_STACKS - 1:
            raise ValueError(f"max_threads must be 1 to {L.THREAD_STACKS - 1}, not {max_threads}")
        if time_slice < 1 or ns_per_unit < 0:
            raise ValueError(f"time_slice must be >= 1 and ns_per_unit >= 0, not {time_slice}, {ns_per_unit}")
        self.seed = seed
        self.time_slice = time_slice
        self.max_threads = max_threads
        self.ns_per_unit = ns_per_unit
        if insn_slice < 0 or hart_turn < 0:
            raise ValueError(f"insn_slice and hart_turn must be >= 0, not {insn_slice}, {hart_turn}")
        self.insn_slice = hart_turn if hart_turn and len(self.harts) > 1 else insn_slice

    # -- the root call --------------------------------------------------------------------------------

    def begin(self) -> None:
        """The root call starts: its code is thread 0 (the main thread)."""
        self.rng = random.Random(self.seed)
        self.threads = {0: GuestThread(0, 0, None, [], 0)}
        self.current = self.threads[0]
        self.active = True
        self.switch_pending = False
        self.switches = 0
        self.hart_turns = [0] * len(self.harts)
        self._trace = hashlib.sha256()
        self._mark = self.store.fuel_remaining
        self._new_slice()

    def end(self) -> None:
        """The root call has ended (returned, trapped or exited): every other thread ends with it."""
        self.active = False
        self.store.gc_heap.wants_safepoints = False  # (no thread is left stopped anywhere)
        if len(self.harts) > 1:
            TRACE.current_hart = None
        self.ended_in = self.current.tid if self.current is not None else None
        self.threads = {}
        self.current = None
        self.switch_pending = False

    @property
    def trace_hash(self) -> str:
        """A hash of every scheduling decision of the last root call (same seed, same hash)."""
        return self._trace.hexdigest()

    def _log(self, event: str, tid: int, detail: str = "") -> None:
        """A scheduling decision: into the trace hash, and the ``thread`` trace event when traced."""
        self._trace.update(repr((event, tid, detail, self.now_ns)).encode())
        if TRACE.thread is not None:
            TRACE.thread(tid=tid, event=event, detail=detail, now_ns=self.now_ns)

    # -- spawning ---------------------------------------------------------------------------------------

    def live_spawned(self) -> int:
        """How many spawned threads have not ended."""
        return sum(1 for t in self.threads.values() if t.tid and t.state is not ThreadState.DONE)

    def spawn(self, tid: int, entry: FuncRecord, args: list[int]) -> None:
        """A new runnable thread ``tid`` calling ``entry(*args)`` when first picked (on a free stack slot)."""
        self.threads = {k: t for k, t in self.threads.items() if t.state is not ThreadState.DONE}
        used = {t.slot for t in self.threads.values()}
        slot = next(k for k in range(1, L.THREAD_STACKS) if k not in used)
        hart = tid % len(self.harts)
        self.threads[tid] = GuestThread(tid, slot, entry, args, 0, hart)
        self._log("spawn", tid, f"slot {slot}" + (f", hart {hart}" if len(self.harts) > 1 else ""))
        if self.insn_slice:  # the running stretch has no instruction budget yet (alone, it had none): end it
            self.store.machine.stop()  # after this ecall, so the next stretch gets one

    def allocate_tid(self) -> int | None:
        """The next thread id (1 to 0x1FFFFFFF, as wasmtime), or None when they are used up."""
        if self.next_tid > 0x1FFF_FFFF:
            return None
        tid = self.next_tid
        self.next_tid += 1
        return tid

    # -- time -------------------------------------------------------------------------------------------

    def account(self) -> None:
        """Advance virtual time by the fuel executed since the last call."""
        now = self.store.fuel_remaining
        if now < self._mark:
            self.now_ns += (self._mark - now) * self.ns_per_unit
        self._mark = now

    def _new_slice(self) -> None:
        self.store.hold_back(self.rng.randint(1, 2 * self.time_slice))
        self._mark = self.store.fuel_remaining

    def _checkpoint(self, store: VmStore) -> None:
        """A checkpoint's slow path (a handler after the Meter): the slice is used up; switch."""
        if not self.active or store.depth != 1:
            return
        self.account()
        if len(self.threads) > 1:  # (alone, the root thread just goes on)
            self.switch_pending = True
            self.stop = Stop.CHECKPOINT
            store.machine.stop()
        self._new_slice()

    def instruction_budget(self) -> int:
        """With ``insn_slice``: the instructions the next stretch of the hart may run before a switch
        (1 to twice ``insn_slice``, from the RNG); 0: no such limit."""
        if not self.insn_slice or len(self.threads) < 2:
            return 0
        heap = self.store.gc_heap
        if heap.wants_safepoints:  # a collection waits for every thread to stop at a safepoint (gcheap.py):
            if any(t.stop is Stop.ANYWHERE for t in self.stopped()):
                self.store.hold_back(1)  # this one runs on to its next checkpoint instead
                return 0
            heap.wants_safepoints = False  # they all are: the next allocation past the limit collects
        return self.rng.randint(1, 2 * self.insn_slice)

    def preempt(self) -> None:
        """The stretch's instructions are used up: switch at this instruction (the run has stopped)."""
        self.account()
        self.switch_pending = True
        self.stop = Stop.ANYWHERE

    # -- blocking and waking ------------------------------------------------------------------------

    def block(self, blocked: Blocked) -> None:
        """The running thread blocks (inside its ecall); the hart switches when the ecall returns."""
        thread = self.current
        assert thread is not None
        self.account()
        self._seq += 1
        thread.seq = self._seq
        thread.state = ThreadState.BLOCKED
        thread.blocked = blocked
        deadline = "" if blocked.deadline_ns is None else f" until {blocked.deadline_ns} ns"
        self._log("block", thread.tid, f"{blocked.what}{deadline}")
        self.switch_pending = True
        self.stop = Stop.BLOCKED
        self.store.machine.stop()

    def can_block(self) -> bool:
        """May the running code block (threads on, and no host function between it and the root call)?"""
        return self.active and self.store.depth == 1

    def notify(self, key: tuple[int, int], count: int) -> int:
        """Wake up to ``count`` threads waiting on ``key`` (oldest first); how many."""
        waiting = sorted(
            (
                t
                for t in self.threads.values()
                if t.state is ThreadState.BLOCKED and t.blocked is not None and t.blocked.key == key
            ),
            key=lambda t: t.seq,
        )
        woken = waiting[:count]
        for t in woken:
            self._mark_woken(t, Wake.NOTIFIED)
        self._log("notify", self.current.tid if self.current else -1, f"{key[1]:#x}: {len(woken)} woken")
        return len(woken)

    # -- switching --------------------------------------------------------------------------------------

    def running_spawned(self) -> bool:
        """Is the running thread a spawned one (not the root call's)?"""
        return self.current is not None and self.current.tid != 0

    def thread_finished(self) -> int:
        """The running thread's entry returned (not the root's): it ends; the pc to go on at."""
        thread = self.current
        assert thread is not None
        thread.state = ThreadState.DONE
        self._log("exit", thread.tid)
        self.account()
        self.current = None
        return self._switch_to(self._pick())

    def switch(self, pc: int) -> int:
        """The running thread stopped at ``pc`` for a switch: save it, pick the next one; its pc."""
        self.switch_pending = False
        thread = self.current
        assert thread is not None
        self.account()
        m = self.store.machine
        thread.context = m.save_context()
        thread.pc = pc
        thread.stop = self.stop
        thread.abi = self.store.read_user(L.ABI_AREA, _ABI_BYTES)
        self.current = None
        nxt = self._pick()
        if nxt is thread and thread.blocked is None:
            self.current = thread
            self.hart_turns[thread.hart] += 1
            self._log("run", thread.tid, "again")
            m.restore_context(thread.context)
            return pc
        return self._switch_to(nxt)

    def _pick(self) -> GuestThread:
        """The next thread to run: wake what is due, then one runnable thread chosen by the RNG."""
        while True:
            self._wake_due()
            runnable = sorted(
                (t for t in self.threads.values() if t.state is ThreadState.RUNNABLE), key=lambda t: t.tid
            )
            if runnable:
                return runnable[0] if len(runnable) == 1 else self.rng.choice(runnable)
            blocked = [t for t in self.threads.values() if t.state is ThreadState.BLOCKED]
            deadlines = [t.blocked.deadline_ns for t in blocked if t.blocked and t.blocked.deadline_ns is not None]
            if deadlines:  # everyone waits: the clock jumps to the first timeout
                self.now_ns = max(self.now_ns, min(deadlines))
                continue
            fds = [t.blocked.fd for t in blocked if t.blocked is not None and t.blocked.fd is not None]
            if fds:  # only the world outside can go on: wait for it (in host time)
                self.store.check_deadline("while every thread waited for input")
                select.select(fds, [], [], 0.05)
                continue
            raise Trap(
                TrapCode.DEADLOCK,
                detail=f"every thread waits forever ({', '.join(self._describe(t) for t in blocked)})",
            )

    def stopped(self) -> list[GuestThread]:
        """The threads switched out with frames on their stacks (not the running one, not new or ended ones)."""
        return [
            t
            for t in self.threads.values()
            if t is not self.current and t.state is not ThreadState.DONE and t.context is not None
        ]

    def _describe(self, thread: GuestThread) -> str:
        what = thread.blocked.what if thread.blocked is not None else "?"
        return f"thread {thread.tid}: {what}"

    def _wake_due(self) -> None:
        fds = {}
        for t in self.threads.values():
            b = t.blocked
            if t.state is not ThreadState.BLOCKED or b is None:
                continue
            if b.deadline_ns is not None and b.deadline_ns <= self.now_ns:
                self._mark_woken(t, Wake.TIMED_OUT)
            elif b.fd is not None:
                fds[b.fd] = t
        if fds:
            ready, _, _ = select.select(list(fds), [], [], 0)
            for fd in sorted(ready):
                self._mark_woken(fds[fd], Wake.READY)

    def _mark_woken(self, thread: GuestThread, why: Wake) -> None:
        thread.state = ThreadState.RUNNABLE
        thread.wake = why
        self._log("wake", thread.tid, why.value)

    def _switch_to(self, thread: GuestThread) -> int:
        """Put ``thread``'s context on the hart (or set up its entry call); the pc it goes on at."""
        store = self.store
        store.bind_hart(self.harts[thread.hart])
        if len(self.harts) > 1:
            TRACE.current_hart = thread.hart  # the events from now on are this hart's (a Perfetto track each)
        m = store.machine
        self.switches += 1
        self.hart_turns[thread.hart] += 1
        self.current = thread
        self._log("run", thread.tid)
        if thread.context is None:  # a new thread: enter its function as invoke enters one
            entry = thread.entry
            assert entry is not None
            crossing = store.crossing_of(entry)  # (this hart's)
            vmctx = store.read_u64(entry.va + L.FUNCREF_VMCTX)
            sp = L.thread_stack_top(thread.slot)
            crossing.enter(store, thread.args, [sp, L.EXIT_ADDRESS, 0, vmctx, store.read_u64(vmctx), 0xFFFF_FFFF])
            thread.args = []
            return entry.code
        m.restore_context(thread.context)
        thread.context = None
        thread.stop = None
        store.write_user(L.ABI_AREA, thread.abi)
        blocked = thread.blocked
        if blocked is not None:  # it blocked in an ecall: finish that call now
            why = thread.wake or Wake.TIMED_OUT
            thread.blocked = None
            thread.wake = None
            results = blocked.complete(why)
            if blocked.finish is not None:
                blocked.finish(results)
        return thread.pc
