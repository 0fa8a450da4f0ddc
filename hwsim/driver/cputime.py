"""Virtual time from the instructions a driver executes.

A driver's code runs metered (checkpoints at function entries and loop headers, fuel counted as
wasmtime counts it: about one unit per wasm instruction).  The run gives the code a stretch of fuel;
each time it is used up, the checkpoint's slow path lands here: the board's clock moves on by the
time those instructions take (``[clock] instructions_per_us``), device events that fall due fire,
and interrupts are delivered at that safe point.  So a loop that spins on coherent memory sees a
delayed completion arrive, and time passes for code that never touches a register.

A stretch is one quantum (1,000 units: 1 us at the default rate) after code that touched a device
or called the host; while the code keeps to itself, each stretch doubles (to at most ``MAX_STRETCH``
quanta), but never goes past the fuel that brings the clock to the next device event: a driver
spinning on memory for a 40 us completion, or computing for 40 us, takes the slow path about 6 times
rather than 40, and an event still fires at the first checkpoint at or after its tick.  Inside a long
stretch, time is brought up to date (:meth:`CpuTime.sync`, from the fuel count, which is only read)
before every device access and every host call, so a device or the host never sees a clock that
lags the instructions by more than a quantum; a device access or host call that schedules an earlier
event ends the stretch at the next checkpoint -- unless the stretch's fuel runs out before that event's
tick anyway (its own checkpoint then plans the next stretch, which reaches the event at the same unit):
ending a stretch early stops the CPU (a checkpoint can only be forced between two runs of Unicorn),
about as costly as a host call, and a virtio driver's QueueNotify after building a frame did it on
almost every frame.

Deterministic: the fuel a stretch of code uses depends only on the code and its inputs.  Time is
charged at checkpoints and before device accesses and host calls; MMIO accesses, waits and sleeps
charge their own time as before.
"""

from __future__ import annotations

from collections.abc import Callable

QUANTUM = 1000  # fuel units between two charges (1 us of virtual time at the default rate)
MAX_STRETCH = 1000  # a stretch is at most this many quanta (1 ms at the default rate)


class CpuTime:
    """Charges the fuel ``vm`` (a metered VmStore) uses to ``clock``, at ``per_us`` units per microsecond.
    ``machine``: bring time up to date before each device access (see the module docstring)."""

    def __init__(self, vm, clock, per_us: int, *, quantum: int = QUANTUM, machine=None) -> None:
        self.vm = vm
        self.clock = clock
        self.per_us = per_us
        self.quantum = quantum
        self.units = 0  # fuel charged so far
        self._charged_ticks = 0  # ticks already added for self.units
        self._granted = quantum  # the count when it was last set or read
        self._long = False  # the code runs a long stretch (see the module docstring)
        self._event: int | None = None  # the next event's tick when the stretch was planned
        self._factor = 1  # quanta in the next stretch, at most (doubles while the code keeps to itself)
        self._touched = False  # a host call (or, in a long stretch, a device access) since the last checkpoint
        self.slow_paths = 0  # checkpoints that charged (for benches and tests)
        vm.fuel_remaining = quantum
        self.remove = vm.add_checkpoint_handler(self._checkpoint)
        self._machine = machine
        self._accesses = self._device_accesses()  # the machine's device accesses at the last checkpoint
        self._unobserve: Callable[[], object] | None = None  # removes the two observers a long stretch sets
        if machine is not None:
            remove_checkpoint = self.remove

            def remove() -> None:
                remove_checkpoint()
                self._observe(False)

            self.remove = remove

    def _device_accesses(self) -> int:
        """Guest loads and stores a device served so far, on every hart (0 without a machine)."""
        machine = self._machine
        return sum(hart.mmio_accesses for hart in machine.harts) if machine is not None else 0

    @property
    def charged_ns(self) -> int:
        """The virtual time charged for executed instructions so far."""
        return self.clock.ticks_to_ns(self._charged_ticks)

    def _charge(self, remaining: int) -> None:
        """Charge the units used since the count was last ``_granted``; ``remaining`` is the count now."""
        self.units += self._granted - remaining
        self._granted = remaining
        # ticks = units / per_us us * frequency; exact in integers, so no drift over a long run
        due = self.units * self.clock.frequency_hz // (self.per_us * 1_000_000)
        if due > self._charged_ticks:
            self.clock.advance_to(self.clock.now + (due - self._charged_ticks))
            self._charged_ticks = due

    def _checkpoint(self, vm) -> None:
        self.slow_paths += 1
        self._charge(vm.fuel_remaining)
        # Stretches double while the code keeps to itself; a device access or host call starts over.
        # (a device access outside a long stretch is seen in the machine's count: no observer per access)
        accesses = self._device_accesses()
        touched = self._touched or accesses != self._accesses
        self._factor = 1 if touched else min(2 * self._factor, MAX_STRETCH)
        self._touched, self._accesses = False, accesses
        vm.fuel_remaining = self._granted = self._stretch()

    def _stretch(self) -> int:
        """The fuel to give the code now: up to the current factor of quanta, no further than the units
        that bring the clock to the next event (so it fires at the first checkpoint at or after its tick)."""
        clock = self.clock
        self._event = event = clock.next_deadline
        stretch = self.quantum * self._factor
        if event is not None:
            # The charged ticks reach event - now more than now: units with units * f // d >= that target.
            f, d = clock.frequency_hz, self.per_us * 1_000_000
            target = self._charged_ticks + (event - clock.now)
            stretch = max(1, min(stretch, -(-target * d // f) - self.units))
        self._long = stretch > self.quantum
        self._observe(self._long)
        return stretch

    def _observe(self, on: bool) -> None:
        """Watch device accesses before and after they are served (only long stretches need it: it costs
        each one)."""
        if on and self._unobserve is None and self._machine is not None:
            before = self._machine.add_device_access_observer(self._before_access)
            after = self._machine.add_mmio_observer(self._after_access)
            self._unobserve = lambda: (before(), after())
        elif not on and self._unobserve is not None:
            self._unobserve()
            self._unobserve = None

    def settle(self) -> None:
        """The code returned to the host: charge every unit it used."""
        self._charge(self.vm.fuel_remaining)

    def sync(self) -> None:
        """Before a host call: inside a long stretch, charge what the code has used so far."""
        self._touched = True
        if self._long:
            self._charge(self.vm.fuel_remaining)

    def after_host_call(self) -> None:
        """A host call returned (the count is in its cell): if the next event moved, plan again."""
        if self._long and self.clock.next_deadline != self._event:
            self._charge(self.vm.fuel_remaining)
            self.vm.fuel_remaining = self._granted = self._stretch()

    def _before_access(self) -> None:
        """Just before a device access inside a long stretch: charge what the code used (the count is
        read, never written, from a memory hook)."""
        if self._long:
            self._charge(self.vm.fuel_remaining)

    def _after_access(self, _region, _offset, _size, _write, _value) -> None:
        """A device access inside a long stretch moved the next event (scheduled an earlier one, or let
        it fire): the stretch ends at the next checkpoint, which plans again and delivers interrupts --
        unless it ends before the next event's tick anyway (see :meth:`_ends_before`)."""
        self._touched = True
        if self._long and (deadline := self.clock.next_deadline) != self._event:
            if self._ends_before(deadline):
                self._event = deadline
                return
            self._long = False
            self.vm.request_checkpoint()

    def _ends_before(self, deadline: int | None) -> bool:
        """Whether the running stretch's last unit is charged before tick ``deadline`` (None: no event).

        Then nothing is gained by ending it early: its own checkpoint plans the next stretch, which
        reaches ``deadline`` at the same unit (the first whose charge brings the clock to it) as a
        stretch planned now would.  Ending it stops the CPU (a checkpoint can only be forced between
        two runs of Unicorn), which costs about as much as a host call's round trip."""
        if deadline is None:
            return True
        clock = self.clock
        # units + _granted: the units charged when the stretch's fuel is used up (each charge moves units from
        # one to the other); the ticks they bring the clock to, reckoned as _stretch plans one.
        end = (self.units + self._granted) * clock.frequency_hz // (self.per_us * 1_000_000)
        return clock.now + (end - self._charged_ticks) < deadline
