"""Virtual time from the instructions a driver executes.

A driver's code runs metered (checkpoints at function entries and loop headers, fuel counted as
wasmtime counts it: about one unit per wasm instruction).  The run gives the code a quantum of
fuel; each time it is used up, the checkpoint's slow path lands here: the board's clock moves on by
the time those instructions take (``[clock] instructions_per_us``), device events that fall due
fire, and interrupts are delivered at that safe point.  So a loop that spins on coherent memory
sees a delayed completion arrive, and time passes for code that never touches a register.

Deterministic: the fuel a stretch of code uses depends only on the code and its inputs.  Time is
charged at checkpoints, so it moves in steps of at most one quantum (plus one loop iteration or
function body); MMIO accesses, waits and sleeps charge their own time as before.
"""

from __future__ import annotations

QUANTUM = 1000  # fuel units between two charges (1 us of virtual time at the default rate)


class CpuTime:
    """Charges the fuel ``vm`` (a metered VmStore) uses to ``clock``, at ``per_us`` units per microsecond."""

    def __init__(self, vm, clock, per_us: int, *, quantum: int = QUANTUM) -> None:
        self.vm = vm
        self.clock = clock
        self.per_us = per_us
        self.quantum = quantum
        self.units = 0  # fuel used so far
        self._charged_ticks = 0  # ticks already added for self.units
        vm.fuel_remaining = quantum
        self.remove = vm.add_checkpoint_handler(self._checkpoint)

    @property
    def charged_ns(self) -> int:
        """The virtual time charged for executed instructions so far."""
        return self.clock.ticks_to_ns(self._charged_ticks)

    def _checkpoint(self, vm) -> None:
        self.units += self.quantum - vm.fuel_remaining  # the count was set to a quantum each time
        # ticks = units / per_us us * frequency; exact in integers, so no drift over a long run
        due = self.units * self.clock.frequency_hz // (self.per_us * 1_000_000)
        if due > self._charged_ticks:
            self.clock.advance_to(self.clock.now + (due - self._charged_ticks))
            self._charged_ticks = due
        vm.fuel_remaining = self.quantum
