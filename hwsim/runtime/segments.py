"""Far pointers: a per-instance segment descriptor table, checked inline by compiled code.

A far pointer is an i64 ``selector << 32 | offset``.  The selector indexes
the instance's segment table; each descriptor grants a range of one of the
Store's linear memories with rights::

    table (in the Store's data region; its address is in the vmctx word ``segments``)
      +0   capacity (u64)         always CAPACITY
      +16  descriptor[0..CAPACITY), 32 bytes each:
             +0 base   VA of the first byte of the segment
             +8 limit  bytes in the segment (0 for a selector not granted)
             +16 rights  bit 0 read, bit 1 write
             +24 memory  index of the memory in the granting instance (for reports)

Far loads and stores (``hwsim:far`` intrinsics, lowered in place) check, in
compiled code: selector < capacity, the right, ``offset + size <= limit``;
then they access ``base + offset`` through the page tables like any load, so
memory-control protections still apply.  Selector 0 is never granted: a
null far pointer faults.  The table is the instance's own and compiled code
only ever reads it, so no far pointer value, however corrupted or forged,
reaches a byte outside the segments granted to that instance.
"""

from __future__ import annotations

import struct

from ..compiler.traps import TrapCode
from .errors import SegmentError, Trap
from .layout import SEGMENT_CAPACITY as CAPACITY
from .layout import SEGMENT_DESC as DESC
from .layout import SEGMENT_HEADER as HEADER

READ, WRITE = 1, 2
_DESC = struct.Struct("<QQQQ")


class SegmentTable:
    def __init__(self, instance) -> None:
        self.instance = instance
        self.store = instance.store
        self.va = self.store.alloc_data(HEADER + CAPACITY * DESC)
        self.store.write_u64(self.va, CAPACITY)
        self.granted: dict[int, tuple] = {}  # selector -> (memory, offset, length, rights)

    def _memory_index(self, memory) -> int:
        for i, m in enumerate(self.instance.memories):
            if m is memory:
                return i
        raise SegmentError("the memory is not one of this instance's memories")

    def grant(self, memory, offset: int, length: int, rights: int, *, selector: int | None = None) -> int:
        """Grant ``[offset, offset+length)`` of ``memory`` (one of the instance's) with ``rights``
        (READ | WRITE); returns the selector."""
        index = self._memory_index(memory)
        if rights not in (READ, WRITE, READ | WRITE):
            raise SegmentError(f"rights must be 1 (read), 2 (write) or 3 (read-write), not {rights}")
        if offset < 0 or length <= 0 or offset + length > memory.size_bytes or length > 1 << 32:
            raise SegmentError(
                f"segment [{offset:#x}, +{length:#x}) is not inside memory {index} "
                f"({memory.size_bytes:#x} bytes) or is empty"
            )
        if selector is None:
            free = [s for s in range(1, CAPACITY) if s not in self.granted]
            if not free:
                raise SegmentError(f"all {CAPACITY - 1} selectors are in use")
            selector = free[0]
        elif not 0 < selector < CAPACITY or selector in self.granted:
            raise SegmentError(f"selector {selector} is not free (1 .. {CAPACITY - 1})")
        self.granted[selector] = (memory, offset, length, rights)
        self._write(selector, memory.base + offset, length, rights, index)
        return selector

    def revoke(self, selector: int) -> None:
        if selector not in self.granted:
            raise SegmentError(f"selector {selector} is not granted")
        del self.granted[selector]
        self._write(selector, 0, 0, 0, 0)

    def _write(self, selector: int, base: int, limit: int, rights: int, index: int) -> None:
        self.store.phys_view(self.va + HEADER + selector * DESC, DESC)[:] = _DESC.pack(base, limit, rights, index)

    def explain(self, far: int, size: int, write: bool) -> str:
        """Why compiled code refused the far access (the detail of a segment-fault trap)."""
        selector, offset = far >> 32 & 0xFFFF_FFFF, far & 0xFFFF_FFFF
        what = f"{size}-byte {'store' if write else 'load'} at selector {selector}, offset {offset:#x}"
        if selector >= CAPACITY:
            return f"{what}: selector {selector} is out of range (the table has {CAPACITY})"
        granted = self.granted.get(selector)
        if granted is None:
            return f"{what}: selector {selector} is not granted" + (" (a null far pointer)" if selector == 0 else "")
        memory, seg_offset, length, rights = granted
        index = self._memory_index(memory)
        where = f"segment {selector} is memory {index} [{seg_offset:#x}, +{length:#x}) {_rights(rights)}"
        if not rights & (WRITE if write else READ):
            return f"{what}: no {'write' if write else 'read'} right ({where})"
        return f"{what}: offset + size {offset + size:#x} is past the limit {length:#x} ({where})"


def _rights(rights: int) -> str:
    return {READ: "read-only", WRITE: "write-only", READ | WRITE: "read-write"}.get(rights, "no access")


def segment_fault(detail: str):
    return Trap(TrapCode.SEGMENT_FAULT, detail=detail)


__all__ = ["CAPACITY", "READ", "SegmentError", "SegmentTable", "WRITE"]
