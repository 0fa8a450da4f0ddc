"""Checkpoints: the fuel count that metered code runs down, and what runs when it is used up.

One mechanism behind fuel, epoch deadlines, and later virtual time and preemption.  Metered code
(hwsim/compiler/codegen/fuel.py) subtracts what it executes from a signed 64-bit count and tests
it at every function entry and loop header; only when it is zero or negative does it leave the
fast path::

    compiled code (metered)                        the Store (this part of VmStore)
    -------------------------------------------    -------------------------------------------------
    entry, loop header: count <= 0 ? --ecall---->  checkpoint_reached()       (Builtin.checkpoint)
                                                     1. fuel a request parked goes back into the count
                                                     2. every checkpoint handler, in the order added:
                                                        it may refill (fuel_remaining = n), raise a
                                                        Trap (the call traps there, at the checkpoint's
                                                        wasm offset), or call wasm (a nested run)
                                                     3. asynchronous events waiting for a safe point
                                                     4. the count still <= 0: Trap OUT_OF_FUEL
    a bulk operation of n units (memory.fill,      consume_fuel(n): count -= n; <= 0: the same
    ...) that the runtime charges

Where the count is: while guest code runs, in the fuel register (the ISA's ``abi.FUEL``, gp on
RV64); whenever it stops (an ecall to a builtin or a host function, a trap, a stop, the return
to the host) the Store moves it to its fuel cell (8 bytes in the data region), and back into the
register before the guest goes on.  :attr:`fuel_remaining` reads and writes whichever holds it,
so host code, handlers and the machine's hooks (a pager, an MMIO observer) all see it exact.

:meth:`request_checkpoint` (any thread: an epoch tick, a timer) makes the next checkpoint take the
slow path.  A count in a register cannot be zeroed from another thread, and neither could a cell
the guest reads, changes and writes back (the write would be lost); so it stops the CPU, and at
the safe point (the stopped run, a host function's return, a call starting) the count is parked
and zeroed; the slow path puts it back before the handlers run, so nothing is lost.

With no handler registered a metered Store behaves as wasmtime with fuel and none set: the first
checkpoint traps ``all fuel consumed by WebAssembly``.  The public fuel and epoch API
(hwsim/runtime/metering.py) is one such handler.

It uses these attributes of the VmStore: ``fuel_view`` (the cell's bytes), ``metered``, ``checkpoint_handlers``,
``checkpoint_requests``, ``_fuel_live``, ``_parked_fuel``, ``_checkpoint_requested``, ``machine``,
``space``, ``depth``, ``_in_host``, ``_async`` and ``run_async``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..compiler.isa.riscv64.abi import FUEL
from ..compiler.traps import TrapCode
from .errors import Trap

if TYPE_CHECKING:
    from ..machine import Machine
    from ..mmu.aspace import AddressSpace
    from .threads import Scheduler

_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_FUEL_REG = FUEL.name
_CELL = struct.Struct("<q")


def _signed64(bits: int) -> int:
    bits &= (1 << 64) - 1
    return bits - (1 << 64) if bits >> 63 else bits


def _clamp64(value: int) -> int:
    return max(_I64_MIN, min(_I64_MAX, value))


class CheckpointCounter:
    """The fuel count and the checkpoint slow path of a VmStore (a mixin: VmStore sets the state)."""

    # Set by VmStore.__init__ (what it uses of the VmStore's other parts is listed in the module's docstring).
    fuel_cell: int
    fuel_view: memoryview
    metered: bool
    checkpoint_handlers: list[Callable[..., None]]
    checkpoint_requests: int
    _fuel_live: bool
    _parked_fuel: int
    _checkpoint_requested: bool
    # The VmStore's other parts this one uses (StoreSpace, CallBoundary).
    machine: Machine
    space: AddressSpace
    depth: int
    _in_host: int
    _async: list[Callable[[], object]]
    threads: Scheduler | None

    if TYPE_CHECKING:

        def run_async(self) -> None: ...

    # -- the count --------------------------------------------------------------------------------------

    def _count(self) -> int:
        """The count where it is now (the register while guest code runs, else the cell), signed."""
        if self._fuel_live:
            return _signed64(self.machine.get_reg(_FUEL_REG))
        return _CELL.unpack(self.fuel_view)[0]

    def _set_count(self, value: int) -> None:
        value = _clamp64(value)
        if self._fuel_live:
            self.machine.set_reg(_FUEL_REG, value & ((1 << 64) - 1))
        else:
            _CELL.pack_into(self.fuel_view, 0, value)

    @property
    def fuel_remaining(self) -> int:
        """The count checkpoints test (signed), with what a pending request parked.

        Set it from the host, a checkpoint handler, a host function or a machine hook to give the
        code that much before its next slow path; values saturate at the signed 64-bit limits."""
        return self._count() + self._parked_fuel

    @fuel_remaining.setter
    def fuel_remaining(self, value: int) -> None:
        self._parked_fuel = 0
        self._set_count(value)

    def fuel_to_register(self) -> None:
        """Guest code is about to run (or go on): the count goes from the cell into the register."""
        if self.metered and not self._fuel_live:
            self.machine.set_reg(_FUEL_REG, _CELL.unpack(self.fuel_view)[0] & ((1 << 64) - 1))
            self._fuel_live = True

    def fuel_to_cell(self) -> None:
        """Guest code has stopped: the count goes from the register into the cell."""
        if self._fuel_live:
            self.fuel_bits_to_cell(self.machine.get_reg(_FUEL_REG))

    def fuel_bits_to_cell(self, bits: int) -> int:
        """:meth:`fuel_to_cell` with the register already read (``bits``: an ecall reads it in its batch);
        returns the count, signed."""
        count = _signed64(bits)
        _CELL.pack_into(self.fuel_view, 0, count)
        self._fuel_live = False
        return count

    def fuel_kept_in_register(self, count: int) -> bool:
        """After a host call: whether the count is in use from its register again without a write, as it is
        when the cell still holds ``count`` (what the register held at the ecall) and no checkpoint was
        requested.  Nothing else changes that register across a host call: a nested call restores the
        registers it found (CallBoundary.invoke)."""
        if self._checkpoint_requested or _CELL.unpack(self.fuel_view)[0] != count:
            return False
        self._fuel_live = True
        return True

    # -- handlers and requests ------------------------------------------------------------------------

    def add_checkpoint_handler(self, handler: Callable[..., None]) -> Callable[[], None]:
        """Call ``handler(store)`` at every checkpoint that finds the count used up (after the handlers
        added before it); returns the function that removes it.  The module's docstring says what it
        may do; a handler that calls wasm must expect checkpoints (and itself) in that code too."""
        self.checkpoint_handlers.append(handler)

        def remove() -> None:
            if handler in self.checkpoint_handlers:
                self.checkpoint_handlers.remove(handler)

        return remove

    def request_checkpoint(self) -> None:
        """Make the next checkpoint take the slow path; safe from any thread or a signal handler.

        The CPU is asked to stop only while this Store's guest code runs; a request that lands just
        as a call starts (after its safe point) waits for that call's next slow path (the public
        epoch API bounds how long that can be, see metering.py)."""
        self.checkpoint_requests += 1
        self._checkpoint_requested = True
        if self.depth > 0 and not self._in_host and self.machine.active_space is self.space:
            self.machine.request_stop()

    def hold_back(self, units: int) -> None:
        """Make the next slow path come after at most ``units`` of work (a thread's time slice,
        runtime/threads.py): the rest of the count is parked, still in :attr:`fuel_remaining`, and the
        slow path puts it back before any handler runs."""
        count = self._count()
        if count > units:
            self._parked_fuel += count - units
            self._set_count(units)

    def park_fuel(self) -> None:
        """At a safe point: honour a pending :meth:`request_checkpoint` (park the count, zero it)."""
        if self._checkpoint_requested:
            self._checkpoint_requested = False
            self._parked_fuel += self._count()
            self._set_count(0)

    # -- the slow path ----------------------------------------------------------------------------------

    def checkpoint_reached(self) -> None:
        """The slow path of a checkpoint (or of a runtime charge): handlers, safe-point work, out of fuel."""
        self._checkpoint_requested = False
        if self.threads is not None:
            self.threads.account()  # the work of the slice, before a handler refills the count
        if self._parked_fuel:
            self.fuel_remaining = self.fuel_remaining
        for handler in list(self.checkpoint_handlers):
            handler(self)
        if self._async:
            self.run_async()
        if self.fuel_remaining <= 0:
            raise Trap(TrapCode.OUT_OF_FUEL)

    def consume_fuel(self, units: int) -> None:
        """Charge ``units`` (a bulk operation's size); the slow path when the count is then used up."""
        count = _clamp64(self._count() - units)
        self._set_count(count)
        if count <= 0:
            self.checkpoint_reached()
