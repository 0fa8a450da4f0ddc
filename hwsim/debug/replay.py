"""Reverse execution by replay: where a run is (its position), where a replay goes, and how it restarts.

A run under ``hwsim run --gdb`` is deterministic given the board, the
driver, the options and the seed (virtual time is counted from executed
code, devices draw their timing from the seed, host input is recorded:
``driver/replay.py``), so any earlier point of it can be reached again by
running it again from the start.  A *position* is the number of
instructions the hart has retired since the run began (``DebugPort.icount``,
exact: a code hook on every instruction, only under ``--gdb``)::

    GDB                      GdbServer                                hwsim run (cli/driver.py)
    ---                      ---------                                -------------------------
    reverse-stepi  -- bs --> plan: position P-1         raise ReplayRestart  --> the run is abandoned
    reverse-continue - bc -> plan: run to P recording        |                  a new one is built (same
                             breakpoint/watch hits,          |                  board, seed, options;
                             then to the last one            v                  host effects gated)
    monitor replay-to T  --> plan: first position at  server.restart(run) --> counts from 0, stops
                             virtual time >= T                                  (silently) at the plan's
                                                                                position, then GDB is
                                                                                answered there
                                                         (server.run_replayable: the runner's loop)

Nothing is checkpointed: each reverse step runs the driver again from its
first instruction, which for the shipped drivers costs a few tens of
milliseconds (docs/debugging.md).  A plan's target must lie in the recorded
history: positions 0 up to the furthest the run has been.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from ..machine import DebugStop

__all__ = ["Arrival", "ReplayPlan", "ReplayRestart", "format_ns", "parse_virtual_time"]


class Arrival(enum.Enum):
    """What GDB is told once a replay arrives."""

    STEP = "a reverse step: a plain stop reply"
    HIT = "reverse-continue: the stop reply of the breakpoint or watchpoint hit"
    BEGIN = "the beginning of history: T05 with replaylog:begin"
    MONITOR = "a monitor command: its text and OK, no stop reply"


@dataclass
class ReplayPlan:
    """Where a replay goes: position ``icount``, or the first position at virtual time ``time_ns`` or
    later; ``record_until``: a first pass of reverse-continue, recording the debugger's stops before
    that position (``hits``)."""

    arrival: Arrival
    icount: int | None = None
    time_ns: int | None = None
    record_until: int | None = None
    hit: DebugStop | None = None  # HIT: the stop to report (and the PC the replay must arrive at)
    hits: list[tuple[int, DebugStop]] = field(default_factory=list)


class ReplayRestart(BaseException):
    """Raised from the debugger's handler to abandon the run and start it again (a ``BaseException``:
    nothing between the handler and the runner, which catches it, may take it for an error)."""

    def __init__(self, plan: ReplayPlan) -> None:
        super().__init__(plan.arrival.name)
        self.plan = plan


_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_TIME = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|ms|s)\s*\Z")


def parse_virtual_time(text: str) -> int:
    """``"12us"`` -> 12000: a virtual time with its unit (ns, us, ms, s), in nanoseconds; ValueError."""
    m = _TIME.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a time with a unit (ns, us, ms or s), such as 12us or 0.5ms")
    number, unit = m.groups()
    whole, _, frac = number.partition(".")
    scale = _UNITS[unit]
    ns = int(whole or "0") * scale + (int(frac) * scale // 10 ** len(frac) if frac else 0)
    return ns


def format_ns(ns: int) -> str:
    """Virtual time as ``monitor time`` shows it: milliseconds with 6 decimals (1 ns)."""
    return f"{ns / 1e6:.6f} ms"
