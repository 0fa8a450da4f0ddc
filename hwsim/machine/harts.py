"""Several harts of one machine run in turns on one host thread, under a seeded scheduler.

::

    HartScheduler(machine, seed=7, clint=timer)
      each turn:  pick a runnable hart (random.Random(seed), among them by ID; or by PCT
                  priorities, machine/schedules.py)
                  give it a budget of budget[0]..budget[1] instructions (the same RNG)
                  its msip set and MSIE on (and MIE, or below M-mode)? -> take the interrupt
                  Machine.run(pc, until=its exit, max_insns=budget)  (Unicorn's count: exact)
      a hart:     RUNNABLE --wfi--> PARKED --an interrupt it enables is pending--> RUNNABLE
                  RUNNABLE --its exit address--> DONE
      the run:    every hart DONE | a hart stops (ecall nobody serves, fault, exception, breakpoint)
                  | every hart left PARKED with nothing to wake it (DEADLOCK) | max_turns (LIMIT)
                  | request_stop (REQUESTED) | a call() returned (RETURNED);
                  run() again goes on where it ended
      call(h, pc): hart h's registers, state and PC saved; it runs pc in its turns; at the
                  return address they are put back (an interrupt handler on hart h)

Every hart is a :class:`~hwsim.machine.Machine` over the same RAM buffer and device windows
(``Machine.add_hart``).  Each decision comes from the seed and from what the harts do, and the
budget is counted exactly by Unicorn, so a seed replays the same interleaving: ``trace_hash``
hashes every turn (hart, budget, how it ended, the PC).  Budgets of a few instructions put a
preemption point between a load and the store after it: a racy read-modify-write loses updates.

Inter-processor interrupts: the CLINT's ``MSIP<i>`` register (``devices/timer.py``) drives hart
``i``'s machine software interrupt.  Unicorn cannot raise mip.MSIP itself (its CSR interface does
not write it), so the scheduler enters the trap handler (``Machine.take_interrupt``) at the start
of the hart's turn: an IPI is taken at the target's next turn, a self-IPI at the sender's next
turn (at most one budget late).  Interrupts Unicorn can raise (mip.SSIP, written by an M-mode
handler or the host) it takes itself, with delegation.  ``wfi`` parks the hart (Unicorn stops
after it); a parked hart wakes when an interrupt it enables in ``mie`` is pending, whatever
mstatus.MIE says, as the privileged spec has it.  A turn that ends by its budget right after a
``wfi`` word (a jump target just past one) is taken for a ``wfi`` too: a rare spurious wait.

TLB shootdowns: every hart traps its S-mode ``sfence.vma`` (``Machine.trap_guest_fences``) so a
fence reaches that hart's model TLB and Unicorn's, and no other hart's.  A hart that changes a
PTE and wants the others to see it sends IPIs; each target's handler fences.  Until it does, the
target keeps its cached translation, as hardware would.  :class:`HartStats` counts per hart the
IPIs sent and received, the interrupts taken, the fences, the turns and the ``wfi`` parks.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import random
from dataclasses import dataclass

from ..errors import ConfigError, HwsimError
from ..riscv.asm import WFI
from ..riscv.priv import IRQ_M_SOFT, Access, Priv
from ..trace import TRACE
from .fault import RunResult, StopReason
from .machine import Machine
from .schedules import RandomSchedule, Schedule

DEFAULT_BUDGET = (1, 64)
DEFAULT_MAX_TURNS = 1_000_000


class HartState(enum.Enum):
    """Where a hart is, for the scheduler."""

    IDLE = "not started"
    RUNNABLE = "runnable"
    PARKED = "waiting for an interrupt (wfi)"
    DONE = "reached its exit address"


class HartsOutcome(enum.Enum):
    """How :meth:`HartScheduler.run` ended; the value is the message."""

    DONE = "every started hart reached its exit address"
    STOPPED = "a hart stopped (an ecall nobody served, a fault, an exception or a breakpoint)"
    DEADLOCK = "every hart left waits for an interrupt (wfi) and nothing can raise one"
    REQUESTED = "a stop was requested (request_stop)"
    RETURNED = "a call made with call() returned"
    LIMIT = "the turn limit was reached"


@dataclass(slots=True)
class HartStats:
    """What one hart did in a run."""

    hartid: int
    turns: int = 0
    ipis_sent: int = 0  # MSIP writes that raised another hart's (or its own) software interrupt
    ipis_received: int = 0
    interrupts: int = 0  # machine software interrupts it took
    fences: int = 0  # sfence.vma it executed (and the machine carried out on its TLBs)
    wfi_parks: int = 0


@dataclass(frozen=True, slots=True)
class HartsResult:
    """The end of a run: how, which hart stopped it and its RunResult, the stats and the trace hash."""

    outcome: HartsOutcome
    turns: int
    trace_hash: str
    stats: tuple[HartStats, ...]
    hartid: int | None = None  # the hart that stopped the run (STOPPED)
    result: RunResult | None = None

    def format_stats(self) -> str:
        """The per-hart counters as a small table."""
        rows = ["hart  turns  ipis-sent  ipis-received  interrupts  fences  wfi"]
        for s in self.stats:
            rows.append(
                f"{s.hartid:>4}  {s.turns:>5}  {s.ipis_sent:>9}  {s.ipis_received:>13}  "
                f"{s.interrupts:>10}  {s.fences:>6}  {s.wfi_parks:>3}"
            )
        return "\n".join(rows)


@dataclass(slots=True)
class _Hart:
    """The scheduler's record of one hart."""

    machine: Machine
    stats: HartStats
    state: HartState = HartState.IDLE
    pc: int = 0
    until: int | None = None
    msip: bool = False  # its CLINT msip line (Unicorn's mip cannot hold MSIP)
    calls: list = dataclasses.field(default_factory=list)  # [(state, pc, until, context)] under call()


class HartScheduler:
    """Run a machine's harts in seeded turns (see the module docstring)."""

    def __init__(
        self,
        machine: Machine,
        *,
        seed: int,
        budget: tuple[int, int] = DEFAULT_BUDGET,
        clint=None,
        schedule: Schedule | None = None,
    ) -> None:
        """``machine``: any hart of the machine (its ``harts`` are scheduled).  ``budget``: the least
        and most instructions of one turn.  ``clint``: the CLINT device (``devices/timer.py``) whose
        ``software_irqs[i]`` is hart ``i``'s machine software interrupt (None: no IPIs).  ``schedule``:
        how a turn's hart is picked (``machine/schedules.py``; None: ``RandomSchedule``)."""
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(f"the hart seed must be an integer, not {seed!r}")
        low, high = budget
        if not 1 <= low <= high:
            raise ConfigError(f"a turn's budget must be 1 <= least <= most instructions, not {budget}")
        self.seed = seed
        self.budget = (low, high)
        self._rng = random.Random(seed)
        self._harts = [_Hart(m, HartStats(m.hartid)) for m in machine.harts]
        self.schedule: Schedule = schedule if schedule is not None else RandomSchedule()
        self._picker = self.schedule.start(self._rng, [hart.machine.hartid for hart in self._harts])
        self._current: _Hart | None = None
        self._hash = hashlib.blake2b(digest_size=16)
        self._turns = 0
        self._stop_requested = False
        self._unobserve: list = []
        if clint is not None:
            lines = clint.software_irqs
            if len(lines) < len(self._harts):
                raise ConfigError(f"the CLINT has {len(lines)} msip registers for {len(self._harts)} harts")
            for hart, line in zip(self._harts, lines):
                self._unobserve.append(line.observe(lambda level, hart=hart: self._msip(hart, level)))
                hart.msip = line.level
        for hart in self._harts:
            hart.machine.trap_guest_fences()

    def close(self) -> None:
        """Stop following the CLINT's lines (a scheduler for the same machine may follow)."""
        for stop in self._unobserve:
            stop()
        self._unobserve = []

    def request_stop(self) -> None:
        """End :meth:`run` after the turn running now, which ends at once (thread- and signal-safe, as
        ``Machine.request_stop``); :meth:`run` then returns REQUESTED, and may be called again."""
        self._stop_requested = True
        current = self._current
        if current is not None:
            current.machine.request_stop()

    @property
    def harts(self) -> list[Machine]:
        return [hart.machine for hart in self._harts]

    def start(self, hartid: int, pc: int, *, until: int | None = None, priv: Priv = Priv.M) -> None:
        """Let hart ``hartid`` run from ``pc`` at ``priv``, until its PC reaches ``until`` (None: never).
        Its ``a0`` holds its hart ID, as SBI hands it to a kernel: Unicorn 2.1.4 keeps the ``mhartid``
        CSR read-only at 0 on every hart."""
        hart = self._hart(hartid)
        hart.pc, hart.until, hart.state = pc, until, HartState.RUNNABLE
        m = hart.machine
        m.set_reg("a0", hartid)
        m.set_reg("priv", int(priv))

    def call(self, hartid: int, pc: int, *, until: int, sp: int, args: tuple = ()) -> None:
        """Have hart ``hartid`` call ``pc`` (``args`` in a0.., ``sp``, return address ``until``) from
        where it is, in its turns among the others' (an interrupt handler on that hart).  When it
        reaches ``until``, its registers, state and PC are put back and :meth:`run` returns RETURNED."""
        if self._current is not None:
            raise HwsimError("a bug: HartScheduler.call during a turn (call it between two runs)")
        hart = self._hart(hartid)
        m = hart.machine
        hart.calls.append((hart.state, hart.pc, hart.until, m.save_context()))
        hart.pc, hart.until, hart.state = pc, until, HartState.RUNNABLE
        for i, value in enumerate(args):
            m.set_reg(f"a{i}", value)
        m.set_reg("sp", sp)
        m.set_reg("ra", until)
        self._trace(hart, "calls", f"{pc:#x} (an interrupt handler)")

    @property
    def current(self) -> Machine | None:
        """The hart whose turn runs now (None between turns)."""
        return self._current.machine if self._current is not None else None

    def state(self, hartid: int) -> HartState:
        return self._hart(hartid).state

    def _hart(self, hartid: int) -> _Hart:
        if not 0 <= hartid < len(self._harts):
            raise ConfigError(f"no hart {hartid}: the machine has {len(self._harts)} (0 .. {len(self._harts) - 1})")
        return self._harts[hartid]

    def _msip(self, target: _Hart, level: bool) -> None:
        target.msip = level
        if level:
            target.stats.ipis_received += 1
            sender = self._current
            if sender is not None:
                sender.stats.ipis_sent += 1
            if TRACE.hart is not None:
                source = f"hart {sender.machine.hartid}" if sender is not None else "the host"
                self._trace(target, "receives", f"an IPI from {source}")

    def _wakes(self, hart: _Hart) -> bool:
        """An interrupt ``hart`` enables in mie is pending (what ends a wfi)."""
        m = hart.machine
        pending = m.get_reg("mip") | (hart.msip << IRQ_M_SOFT)
        return bool(pending & m.get_reg("mie"))

    def _after_wfi(self, hart: _Hart, pc: int) -> bool:
        try:
            word = hart.machine.read_virt(pc - 4, 4, access=Access.FETCH)
        except HwsimError:  # the bytes before are not executable: no wfi there
            return False
        return int.from_bytes(word, "little") == WFI

    def run(self, *, max_turns: int = DEFAULT_MAX_TURNS) -> HartsResult:
        """Run turns until every started hart is done, one stops, a deadlock, a requested stop or
        ``max_turns``; calling it again goes on from there."""
        outcome = HartsOutcome.LIMIT
        stopper: _Hart | None = None
        result: RunResult | None = None
        for _ in range(max_turns):
            if self._stop_requested:
                self._stop_requested = False
                outcome = HartsOutcome.REQUESTED
                break
            for hart in self._harts:
                if hart.state is HartState.PARKED and self._wakes(hart):
                    hart.state = HartState.RUNNABLE
                    self._trace(hart, "wakes", "(an interrupt it enables is pending)")
            runnable = [hart for hart in self._harts if hart.state is HartState.RUNNABLE]
            if not runnable:
                waiting = any(hart.state is HartState.PARKED for hart in self._harts)
                outcome = HartsOutcome.DEADLOCK if waiting else HartsOutcome.DONE
                break
            hart = self._harts[self._picker.pick([h.machine.hartid for h in runnable], self._turns + 1)]
            res = self._turn(hart, self._rng.randint(*self.budget))
            if res.reason is StopReason.EXIT and hart.calls:
                hart.state, hart.pc, hart.until, context = hart.calls.pop()
                hart.machine.restore_context(context)
                self._trace(hart, "returns", f"to {hart.pc:#x}")
                outcome = HartsOutcome.RETURNED
                break
            if res.reason is StopReason.EXIT:
                hart.state = HartState.DONE
                self._trace(hart, "done", f"at {res.pc:#x}")
            elif res.reason is StopReason.LIMIT:
                if self._after_wfi(hart, res.pc):
                    hart.state = HartState.PARKED
                    hart.stats.wfi_parks += 1
                    self._trace(hart, "waits", f"(wfi at {res.pc - 4:#x})")
            else:
                outcome, stopper, result = HartsOutcome.STOPPED, hart, res
                self._trace(hart, "stops", res.reason.value)
                break
        return HartsResult(
            outcome,
            self._turns,
            self._hash.hexdigest(),
            tuple(dataclasses.replace(hart.stats) for hart in self._harts),
            stopper.machine.hartid if stopper is not None else None,
            result,
        )

    def _turn(self, hart: _Hart, budget: int) -> RunResult:
        """One turn of ``hart``: its pending software interrupt first, then up to ``budget`` instructions."""
        m = hart.machine
        took = hart.msip and m.interrupt_enabled(IRQ_M_SOFT)
        if took:
            m.set_reg("pc", hart.pc)
            hart.pc = m.take_interrupt(IRQ_M_SOFT)
            hart.stats.interrupts += 1
            self._trace(hart, "takes", f"the machine software interrupt (handler {hart.pc:#x})")
        self._trace(hart, "runs", f"from {hart.pc:#x}, up to {budget} instructions")
        self._current = hart
        TRACE.current_hart = m.hartid  # the events of this turn are this hart's (a Perfetto track each)
        fences = m.guest_fences
        try:
            res = m.run(hart.pc, until=hart.until, max_insns=budget)
        finally:
            self._current = None
            TRACE.current_hart = None
        hart.stats.fences += m.guest_fences - fences
        hart.stats.turns += 1
        self._turns += 1
        self._hash.update(b"%d %d %d %s %x;" % (m.hartid, budget, took, res.reason.name.encode(), res.pc))
        hart.pc = res.pc
        return res

    def _trace(self, hart: _Hart, event: str, detail: str) -> None:
        if TRACE.hart is not None:
            TRACE.hart(hartid=hart.machine.hartid, event=event, detail=detail)
