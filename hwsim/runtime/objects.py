"""Runtime objects that live in guest memory: linear memories, tables, globals, function references.

Each is a Python object owning a record in the Store's data region (a memory
or table descriptor, a global cell, a funcref record) that compiled code
reads directly; the Python side is the only writer of descriptors.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from ..errors import OutOfBoundsError
from ..mmu.bits import PAGE_MASK, PAGE_SHIFT, Pte
from ..wasm.types import EXNREF, EXTERNREF, F32, F64, I32, I64, V128, MemoryType, TableType
from . import layout as L
from .errors import ResourceLimitError

if TYPE_CHECKING:
    from .crossing import Crossing
    from .memctl import MemoryControl
    from .store import VmStore

_U64 = struct.Struct("<Q")
RW_USER = Pte.R | Pte.W | Pte.U
RX_USER = Pte.R | Pte.X | Pte.U
R_USER = Pte.R | Pte.U
MASK64 = (1 << 64) - 1


class MemoryInstance:
    """A linear memory: a reservation (4 GiB + guard; memory64: up to ``layout.MEMORY64_MAX_BYTES``) whose
    pages are mapped when first touched."""

    def __init__(self, store: VmStore, mtype: MemoryType, *, max_bytes: int | None = None) -> None:
        """``max_bytes``: a cap of this memory's own (a driver's window), besides its type's maximum and
        the Store's ``memory_bytes`` limit, which applies as it is whenever the memory is made or grows."""
        self.store = store
        self.type = mtype
        self.page_size = 1 << mtype.page_size_log2
        if len(store.memories) >= store.limits.max_memories:
            raise ResourceLimitError(f"the Store already holds {len(store.memories)} memories, its limit")
        self.is_64 = mtype.index_type == I64
        largest = L.MEMORY64_MAX_BYTES if self.is_64 else L.MEMORY_MAX_BYTES
        limit_pages = mtype.limits.max if mtype.limits.max is not None else None
        cap = (largest if max_bytes is None else min(largest, max_bytes)) // self.page_size
        if not self.is_64:
            # Its size in pages stays below 2^32, 1-byte pages included, as the custom-page-sizes proposal
            # says ("If len is larger than or equal to 2**32, then fail"): 2^32 - 1 one-byte pages at most.
            cap = min(cap, (1 << 32) - 1)
        # The Store's memory_bytes limit applies as it is when the memory grows (Store.set_limits).
        self.cap_pages = cap if limit_pages is None else min(limit_pages, cap)
        if mtype.limits.min > self.max_pages:
            raise ResourceLimitError(
                f"memory of {mtype.limits.min} pages exceeds the limit of {self.max_pages} pages "
                f"({self.max_pages * self.page_size} bytes)"
            )
        # A 32-bit memory: one slot, 4 GiB and the guard.  A memory64 memory (bounds checked in compiled
        # code, no guard): the slots for its maximum when it has one, else for its initial size (at least
        # one); an unbounded one extends in place when it grows past them (extend_memory).
        slots = 1
        if self.is_64:
            bound = self.cap_pages if (limit_pages is not None or max_bytes is not None) else mtype.limits.min
            slots = max(1, -(-bound * self.page_size // L.MEMORY_RESERVATION))
        self.base = store.reserve_memory(self, slots)
        self.span = slots * L.MEMORY_RESERVATION  # bytes of address space reserved
        self.reserved = self.span if self.is_64 else L.MEMORY_MAX_BYTES  # bytes it may grow to in place
        self.size_bytes = mtype.limits.min * self.page_size
        self.ctl: MemoryControl | None = None  # once a page state other than the default is needed
        self.desc = store.alloc_data(L.MEMDESC_BYTES)
        self._write_desc()
        self.resident = bytearray()  # 1 per 4 KiB page that has a frame
        self.released = bytearray()  # 1 per 4 KiB page whose frame was released (discard, unmap)
        self.last_fault_page = -2  # the page the pager mapped last for a guest touch (fault-around)

    @property
    def max_pages(self) -> int:
        """Pages the memory may grow to: its maximum, its reservation and the Store's limit now."""
        return min(self.cap_pages, self.store.limits.memory_bytes // self.page_size)

    @max_pages.setter
    def max_pages(self, pages: int) -> None:
        self.cap_pages = pages

    # -- residency and memory control ----------------------------------------------------------

    def control(self, *, virtual: bool = False) -> MemoryControl:
        """This memory's :class:`~hwsim.runtime.memctl.MemoryControl` (created on first use)."""
        from .memctl import MemoryControl, MemoryControlError

        if self.ctl is None:
            if virtual and self.resident.count(1):
                raise MemoryControlError("the memory is in use as an ordinary memory: it cannot become virtual")
            self.ctl = MemoryControl(self, virtual=virtual)
            self.update_bulk_host()
        elif virtual and not self.ctl.virtual:
            raise MemoryControlError("the memory is in use as an ordinary memory: it cannot become virtual")
        return self.ctl

    def mark_resident(self, offset: int) -> None:
        page = offset >> 12
        if page >= len(self.resident):
            self.resident += bytes(page + 1 - len(self.resident) + 64)
        self.resident[page] = 1

    def resident_runs(self, first: int, end: int):
        """``(start, stop)`` runs of resident pages within ``[first, end)``."""
        res = self.resident
        end = min(end, len(res))
        page = first
        while page < end:
            page = res.find(1, page, end)
            if page < 0:
                return
            stop = res.find(0, page, end)
            stop = end if stop < 0 else stop
            yield page, stop
            page = stop

    def clear_resident(self, start: int, stop: int) -> None:
        self.resident[start:stop] = bytes(stop - start)
        if len(self.released) < stop:
            self.released += bytes(stop - len(self.released) + 64)
        self.released[start:stop] = b"\x01" * (stop - start)

    def fault_around_candidate(self, page: int) -> bool:
        """Whether fault-around may give page ``page`` a frame before it is touched: below the current
        size, not resident, never released (a discarded or unmapped page comes back only when touched),
        and plainly read-write (no memory-control state other than READWRITE, no host page)."""
        offset = page << 12
        if offset >= self.size_bytes:
            return False
        if page < len(self.resident) and self.resident[page]:
            return False
        if page < len(self.released) and self.released[page]:
            return False
        return self.ctl is None or self.ctl.flags_for(offset) == RW_USER

    @property
    def committed_bytes(self) -> int:
        """Bytes of this memory backed by frames now."""
        return self.resident.count(1) * 4096

    def _write_desc(self) -> None:
        s = self.store
        s.write_u64(self.desc + L.MEMDESC_BASE, self.base)
        s.write_u64(self.desc + L.MEMDESC_SIZE, self.size_bytes)
        s.write_u64(self.desc + L.MEMDESC_PAGE_LOG2, self.type.page_size_log2)
        s.write_u64(self.desc + L.MEMDESC_RESERVED, self.reserved)
        self.update_bulk_host()

    @property
    def bulk_host(self) -> bool:
        """Whether memory.copy/fill here must go through the host: memory control checks page states before
        anything is written, and bulk-access observers see each operation (compiler/abi.py MEMDESC_BULK_HOST)."""
        return self.ctl is not None or bool(self.store.bulk_access_observers)

    def update_bulk_host(self) -> None:
        """Write :attr:`bulk_host` where compiled code reads it (after memory control or an observer came or went)."""
        self.store.write_u64(self.desc + L.MEMDESC_BULK_HOST, int(self.bulk_host))

    @property
    def pages(self) -> int:
        return self.size_bytes // self.page_size

    def grow(self, delta: int) -> int:
        """Grow by ``delta`` pages; the old size in pages, or -1 (the memory is unchanged)."""
        old = self.pages
        if delta < 0 or old + delta > self.max_pages:
            return -1
        size = (old + delta) * self.page_size
        if size > self.reserved:  # an unbounded memory64 memory past its slots: more slots after them
            more = -(-(size - self.reserved) // L.MEMORY_RESERVATION)
            if not self.store.extend_memory(self, more):
                return -1
            self.span += more * L.MEMORY_RESERVATION
            self.reserved = self.span
            self.store.write_u64(self.desc + L.MEMDESC_RESERVED, self.reserved)
        self.size_bytes = size
        self.store.write_u64(self.desc + L.MEMDESC_SIZE, self.size_bytes)
        return old

    def contains(self, va: int) -> bool:
        return self.base <= va < self.base + self.size_bytes

    def check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size_bytes:
            raise OutOfBoundsError(
                f"[{offset:#x}, {offset + length:#x}) is outside the memory of {self.size_bytes:#x} bytes"
            )

    def read(self, offset: int, length: int) -> bytes:
        self.check(offset, length)
        return self.store.read_user(self.base + offset, length)

    def write(self, offset: int, data: bytes) -> None:
        self.check(offset, len(data))
        self.store.write_user(self.base + offset, data)

    def fill(self, offset: int, value: int, length: int) -> None:
        self.check(offset, length)
        self.store.fill_user(self.base + offset, value & 0xFF, length)


class TableInstance:
    """A table of references: 8-byte entries (funcref record address or externref handle; 0 is null)."""

    MAX_ELEMENTS = 10_000_000  # an implementation limit, as the specification allows

    def __init__(self, store: VmStore, ttype: TableType, init: int = 0) -> None:
        self.store = store
        self.type = ttype
        self.precise: object = ttype.elem_type  # its canonical element type (wasm/typedrefs.py)
        if store.tables_made >= store.limits.max_tables:
            raise ResourceLimitError(f"the Store already holds {store.tables_made} tables, its limit")
        limit = ttype.limits.max
        self.cap = self.MAX_ELEMENTS if limit is None else min(limit, self.MAX_ELEMENTS)
        if ttype.limits.min > self.max_size:
            raise ResourceLimitError(f"table of {ttype.limits.min} elements exceeds the limit of {self.max_size}")
        store.tables_made += 1
        if ttype.elem_type == EXTERNREF:
            store.extern_roots.append(self)  # Store.gc keeps the host objects its elements hold
        elif ttype.elem_type == EXNREF:
            store.exn_roots.append(self)  # Store.gc keeps the exceptions its elements hold
        self.size = ttype.limits.min
        self.capacity = max(self.size, 4)
        self.entries = store.alloc_data(8 * self.capacity)
        self.desc = store.alloc_data(L.TABLEDESC_BYTES)
        store.write_u64(self.desc + L.TABLEDESC_BASE, self.entries)
        store.write_u64(self.desc + L.TABLEDESC_SIZE, self.size)
        if init:
            self.fill(0, init, self.size)

    @property
    def max_size(self) -> int:
        """Elements the table may grow to: its maximum, hwsim's and the Store's limit now."""
        return min(self.cap, self.store.limits.table_elements)

    def _check(self, start: int, count: int) -> None:
        if start < 0 or count < 0 or start + count > self.size:
            raise OutOfBoundsError(f"elements [{start}, {start + count}) are outside the table of {self.size} elements")

    def get(self, index: int) -> int:
        self._check(index, 1)
        return self.store.read_u64(self.entries + 8 * index)

    def set(self, index: int, value: int) -> None:
        self._check(index, 1)
        self.store.write_u64(self.entries + 8 * index, value)

    def get_all(self) -> tuple[int, ...]:
        """Every element, in one read."""
        return struct.unpack(f"<{self.size}Q", self.store.phys_view(self.entries, 8 * self.size))

    def set_many(self, start: int, values: list[int]) -> None:
        """Elements ``start``, ``start + 1``, ... set to ``values`` (one copy: an element segment)."""
        self._check(start, len(values))
        if values:
            self.store.phys_view(self.entries + 8 * start, 8 * len(values))[:] = struct.pack(
                f"<{len(values)}Q", *values
            )

    def fill(self, start: int, value: int, count: int) -> None:
        self._check(start, count)
        self.store.phys_view(self.entries + 8 * start, 8 * count)[:] = _U64.pack(value) * count

    def grow(self, delta: int, init: int) -> int:
        old = self.size
        if delta < 0 or old + delta > self.max_size:
            return -1
        new = old + delta
        if new > self.capacity:
            capacity = max(new, 2 * self.capacity)
            entries = self.store.alloc_data(8 * capacity)
            if old:
                self.store.phys_view(entries, 8 * old)[:] = self.store.phys_view(self.entries, 8 * old)
            self.entries, self.capacity = entries, capacity
            self.store.write_u64(self.desc + L.TABLEDESC_BASE, entries)
        self.size = new
        self.store.write_u64(self.desc + L.TABLEDESC_SIZE, new)
        self.fill(old, init, delta)
        return old


class GlobalInstance:
    """A global's cell: 8 bytes holding the value's bit pattern (i32 sign-extended, f32 in the low half);
    16 for a v128 (low half first)."""

    def __init__(self, store: VmStore, valtype: int, mutable: bool, bits: int) -> None:
        self.store = store
        self.valtype = valtype
        self.precise: object = valtype  # its canonical type (a typed reference's: wasm/typedrefs.py)
        self.mutable = mutable
        self.cell = store.alloc_data(16 if valtype == V128 else 8)
        self.set_bits(bits)
        if valtype == EXTERNREF:
            store.extern_roots.append(self)  # Store.gc keeps the host object it holds
        elif valtype == EXNREF:
            store.exn_roots.append(self)  # Store.gc keeps the exception it holds

    def get_bits(self) -> int:
        raw = self.store.read_u64(self.cell)
        if self.valtype == V128:
            return raw | self.store.read_u64(self.cell + 8) << 64
        if self.valtype in (I32, F32):
            return raw & 0xFFFF_FFFF
        return raw

    def set_bits(self, bits: int) -> None:
        if self.valtype == I32:
            bits &= 0xFFFF_FFFF
            value = bits | (0xFFFF_FFFF_0000_0000 if bits >> 31 else 0)
        elif self.valtype == F32:
            value = bits & 0xFFFF_FFFF
        elif self.valtype == V128:
            self.store.write_u64(self.cell + 8, (bits >> 64) & 0xFFFF_FFFF_FFFF_FFFF)
            value = bits & 0xFFFF_FFFF_FFFF_FFFF
        else:
            value = bits & 0xFFFF_FFFF_FFFF_FFFF
        self.store.write_u64(self.cell, value)


class FuncRecord:
    """A function reference: the record compiled code calls through, and what the host knows of it."""

    def __init__(
        self,
        store: VmStore,
        ftype,
        *,
        code: int,
        vmctx: int,
        instance=None,
        index: int | None = None,
        host=None,
        write: bool = True,
    ) -> None:
        """``write=False``: the caller writes the record's words (:func:`func_records`, one copy for many)."""
        self.store = store
        self.type = ftype
        self.precise_type = ftype  # canonical (a typed-reference module's: wasm/typedrefs.py)
        self.instance = instance
        self.index = index
        self.host = host  # the Python callable of a host function
        self.code = code
        self.crossing: Crossing | None = None  # its signature's Crossing, once a call needed it (calls.py)
        self.va = store.alloc_data(L.FUNCREF_BYTES)
        if write:
            store.phys_view(self.va, L.FUNCREF_BYTES)[:] = _FUNCREF.pack(code, vmctx, store.type_id(ftype))
        store.funcrefs[self.va] = self


_FUNCREF = struct.Struct("<QQQ")  # FUNCREF_CODE, FUNCREF_VMCTX, FUNCREF_TYPE
assert (L.FUNCREF_CODE, L.FUNCREF_VMCTX, L.FUNCREF_TYPE, L.FUNCREF_BYTES) == (0, 8, 16, _FUNCREF.size)
_FUNCREF_STRIDE = (L.FUNCREF_BYTES + 15) & ~15  # what alloc_data gives each record


def _data_page(store: VmStore, va: int) -> int:
    pa = store.page_pa(va)
    assert pa is not None  # the data region is mapped as it is allocated
    return pa


def func_records(store: VmStore, specs, *, vmctx: int, instance, first_index: int) -> list[FuncRecord]:
    """The records of a module's functions (``specs``: ``(type, code address, type id)`` of each), written
    with one copy per run of records allocated back to back (instantiation writes thousands)."""
    records = [
        FuncRecord(store, ftype, code=code, vmctx=vmctx, instance=instance, index=first_index + i, write=False)
        for i, (ftype, code, _tid) in enumerate(specs)
    ]
    # A run must be physically contiguous: allocations back to back in VA may lie in two chunks of the data
    # region (each chunk is contiguous frames, two chunks need not be), so a run also ends where a record
    # starts a page whose frame does not follow the run's.
    start = 0
    for end in range(1, len(records) + 1):
        if end < len(records):
            va, prev = records[end].va, records[end - 1].va
            if va == prev + _FUNCREF_STRIDE and (
                va >> PAGE_SHIFT == (prev + L.FUNCREF_BYTES - 1) >> PAGE_SHIFT
                or _data_page(store, va) == _data_page(store, prev) + ((va & ~PAGE_MASK) - (prev & ~PAGE_MASK))
            ):
                continue
        run = records[start:end]
        buf = bytearray(_FUNCREF_STRIDE * (len(run) - 1) + L.FUNCREF_BYTES)  # the padding between stays zero
        for k, (_ftype, code, tid) in enumerate(specs[start:end]):
            _FUNCREF.pack_into(buf, _FUNCREF_STRIDE * k, code, vmctx, tid)
        store.phys_view(run[0].va, len(buf))[:] = buf
        start = end
    return records


VALUE_TYPES = (I32, I64, F32, F64)
