"""wasmtime's fuel and epoch deadlines, on a Store's fuel count and checkpoints (hwsim/runtime/checkpoints.py).

::

    Engine(Config(consume_fuel=..., epoch_interruption=...))   modules compiled with metering
      EpochCounter   value; increment() from any thread -> request_checkpoint() of each
                     Store whose deadline it reaches
    Store -> Meter   the first checkpoint handler of its VmStore
                       fuel     = reserve + the count (get_fuel never below 0, as wasmtime)
                       deadline = the epoch at which code traps ``interrupted`` (0 at first:
                                  already reached, as wasmtime's default)

At a checkpoint the Meter, out of fuel, leaves the count used up (the Store then traps ``all fuel
consumed by WebAssembly``, unless a later handler refills); otherwise it traps ``interrupted`` when
the Engine's epoch has reached the deadline, or refills the count from the reserve.  Fuel comes
first, as in wasmtime, whose function entries and loop headers check fuel before the epoch: code
out of fuel past its deadline traps out of fuel.

With epochs on, the count holds at most :data:`WINDOW` units and the rest waits in the
reserve: if an epoch tick's stop request is lost (it landed as a call was starting), the
next slow path, at most ``WINDOW`` units of work later, still sees the deadline.  A deadline
that has already passed keeps the count at zero, so the next checkpoint traps.  Without fuel
the count is only that window, refilled at each slow path.
"""

from __future__ import annotations

import threading
import weakref

from ..compiler.traps import TrapCode
from .errors import Trap

_I64_MAX = (1 << 63) - 1
WINDOW = 1 << 24  # fuel units in the count at most while epochs are on (some 10 ms of work, one slow path each)


class EpochCounter:
    """An Engine's epoch: a counter any thread may increment; Stores that wait for it are told."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()
        self._meters: weakref.WeakSet[Meter] = weakref.WeakSet()

    def watch(self, meter: Meter) -> None:
        with self._lock:
            self._meters.add(meter)

    def increment(self) -> None:
        with self._lock:
            self.value += 1
            value, meters = self.value, list(self._meters)
        for meter in meters:
            if meter.deadline <= value:
                meter.store.request_checkpoint()


class Meter:
    """Fuel and an epoch deadline for one VmStore (``fuel``: count fuel; ``epochs``: the Engine's, or None)."""

    def __init__(self, store, *, fuel: bool, epochs: EpochCounter | None) -> None:
        self.store = store
        self.fuel = fuel
        self.epochs = epochs
        self.reserve = 0
        self.deadline = 0
        store.add_checkpoint_handler(self._checkpoint)
        if epochs is not None:
            epochs.watch(self)
        self._fill(0)

    def get_fuel(self) -> int:
        return max(0, self.reserve + self.store.fuel_remaining)

    def set_fuel(self, fuel: int) -> None:
        self._fill(fuel)

    def set_epoch_deadline(self, ticks: int) -> None:
        self.deadline = (self.epochs.value if self.epochs is not None else 0) + ticks
        self._fill(self.reserve + self.store.fuel_remaining)

    def _expired(self) -> bool:
        return self.epochs is not None and self.epochs.value >= self.deadline

    def _fill(self, total: int) -> None:
        """Split ``total`` fuel between the count and the reserve (without fuel: a window of work)."""
        if not self.fuel:
            total = WINDOW
        count = min(total, _I64_MAX)  # the count is signed 64-bit; wasmtime injects at most i64::MAX too
        if self.epochs is not None:
            count = min(total, 0 if self._expired() else WINDOW)
        self.reserve = total - count
        self.store.fuel_remaining = count

    def _checkpoint(self, store) -> None:
        total = self.reserve + store.fuel_remaining
        if self.fuel and total <= 0:  # tested first, as wasmtime's checkpoints test fuel before the epoch
            self.reserve = 0
            store.fuel_remaining = total  # used up: the Store traps unless a later handler refills
            if self._expired():  # ... and if one does, the next slow path comes at once and interrupts
                store.request_checkpoint()
            return
        if self._expired():
            raise Trap(TrapCode.INTERRUPTED, detail=f"epoch deadline {self.deadline} reached")
        self._fill(total)
