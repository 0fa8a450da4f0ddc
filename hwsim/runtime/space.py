"""The Store's guest address space and the host's access to it (a part of :class:`~.store.VmStore`).

::

    VmStore address space (layout.py has the map)       host access (a walk per page, cached
    --------------------------------------------        until a mapping changes: page_pa)
    runtime page, ABI area    mapped at creation         read_u64 / write_u64 / phys_view
    code region               load_code                  read_user / write_user / fill_user /
    data region               alloc_data (vmctx, ...)    copy_user (guest memory: pages made on
    linear memories           reserve_memory, pager      first write, zeros when never touched)
    host buffers              host_buffer                frame_of (a page's frame, made if needed)

The translation cache: every host access finds its page's frame with :meth:`StoreSpace.page_pa`,
which walks the tables once per page and keeps the answer until the address space changes a
mapping (``AddressSpace.on_change``: unmap, protect, remap and destroy drop the whole cache); a
page found unmapped is never cached.  So host code never reaches a frame the guest has lost.

Demand paging: the machine asks :meth:`StoreSpace._pager` when a walk finds
an invalid PTE in a memory's reservation; copy-on-write asks
:meth:`StoreSpace._write_fault`.  Both decline for another Store's address
space (several Stores may share one board's machine).

It uses the attributes of the VmStore declared at the top of :class:`StoreSpace`,
and its ``check_deadline`` (a gigabyte fill honours the time limit).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import OutOfFrames
from ..mmu.bits import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE
from . import layout as L
from .errors import MemoryControlError, ResourceLimitError
from .objects import MASK64, R_USER, RW_USER, RX_USER, MemoryInstance

if TYPE_CHECKING:
    from ..machine import Machine
    from ..mmu.aspace import AddressSpace
    from ..mmu.walker import Translation
    from ..riscv.priv import Access
    from .hostmem import HostBuffer
    from .store import StoreLimits

_U64 = struct.Struct("<Q")
# Frames fault-around leaves alone, so a guest near the end of RAM never loses a frame to a guess.
FAULT_AROUND_RESERVE = 1024
# ``observer(memory base, offset, length, write, pc)``, see StoreSpace.add_bulk_access_observer
BulkAccessObserver = Callable[[int, int, int, bool, int], None]
# ``observer(memory base, offset, length, operation, pc)``, see StoreSpace.add_release_observer
ReleaseObserver = Callable[[int, int, int, str, int], None]


class StoreSpace:
    """Address space and host memory access of a VmStore (a mixin: VmStore sets the state)."""

    # The VmStore's state this part uses (VmStore.__init__ sets it).
    machine: Machine
    space: AddressSpace
    limits: StoreLimits
    memory_slots: list[MemoryInstance | None]
    memories: list[MemoryInstance]
    code_next: int
    data_next: int
    data_mapped: int
    next_host_pa: int
    out_of_frames: bool
    stack_low: int
    bulk_access_observers: list[BulkAccessObserver]
    release_observers: list[ReleaseObserver]
    fault_around: int  # pages mapped ahead of a sequential touch (0: off)
    _host_pages: dict[int, int]  # guest page number -> physical address of the page (see page_pa)
    _host_views: dict[int, tuple[memoryview, int]]  # guest page number -> (RAM view, delta), see _u64_view

    if TYPE_CHECKING:  # CallBoundary's, in VmStore

        def check_deadline(self, where: str = "in a bulk memory operation") -> None: ...

    # -- the host's translation cache -------------------------------------------------------------
    #
    # Every host access to guest memory goes through these: a page's translation is looked up once
    # (a walk of the tables in Python, ~10 us) and kept until the address space changes a mapping
    # (unmap, protect, a remap, the space destroyed), when the whole cache is dropped
    # (``AddressSpace.on_change``, registered by VmStore).  Only mapped pages are cached: mapping a
    # page that was invalid needs no invalidation.  As with a TLB, a PTE rewritten behind the
    # AddressSpace's back (a raw write into the tables) is not seen until the next change.

    def translation_changed(self, _asid: int = 0, _va: int | None = None, _size: int = 0) -> None:
        """Drop every cached translation (an ``AddressSpace.on_change`` listener)."""
        self._host_pages.clear()
        self._host_views.clear()

    def page_pa(self, va: int) -> int | None:
        """The physical address of the page holding ``va`` (cached), or None when it is not mapped."""
        page = va >> PAGE_SHIFT
        pa = self._host_pages.get(page)
        if pa is None:
            mapping = self.space.lookup(va)
            if mapping is None:
                return None
            pa = self._host_pages[page] = mapping.pa + ((va & ~PAGE_MASK) - mapping.va)
        return pa

    def _u64_view(self, va: int) -> tuple[memoryview, int]:
        """``(RAM view, delta)`` such that ``view[va + delta]`` is the byte at ``va`` (data-region pages)."""
        page = va >> PAGE_SHIFT
        entry = self._host_views.get(page)
        if entry is None:
            pa = self.page_pa(va)
            assert pa is not None  # the data region and the ABI area are mapped as they are allocated
            region = self.machine.phys.ram_at(pa, PAGE_SIZE)
            entry = self._host_views[page] = (region.view, pa - region.base - (va & ~PAGE_MASK))
        return entry

    def phys_view(self, va: int, size: int) -> memoryview:
        """A view of data-region memory (always mapped, physically contiguous per allocation)."""
        return self.machine.phys.view(self._data_pa(va), size)

    def _data_pa(self, va: int) -> int:
        pa = self.page_pa(va)
        assert pa is not None  # the data region is mapped as it is allocated
        return pa + (va & PAGE_MASK)

    def read_u64(self, va: int) -> int:
        view, delta = self._host_views.get(va >> PAGE_SHIFT) or self._u64_view(va)
        return _U64.unpack_from(view, va + delta)[0]

    def write_u64(self, va: int, value: int) -> None:
        view, delta = self._host_views.get(va >> PAGE_SHIFT) or self._u64_view(va)
        _U64.pack_into(view, va + delta, value & MASK64)

    def alloc_data(self, size: int) -> int:
        """Zeroed bytes in the data region (16-aligned, never freed), physically contiguous.

        The region grows in chunks of contiguous frames; an allocation that does not fit in
        the current chunk starts a new one, so no allocation straddles two chunks.
        """
        size = (size + 15) & ~15
        if self.data_next + size > self.data_mapped:
            chunk = (max(size, 16 * PAGE_SIZE) + PAGE_SIZE - 1) & ~PAGE_MASK
            start = self.data_mapped
            if start + chunk > L.DATA_END:
                raise ResourceLimitError("the Store's data region (vmctx, tables, globals) is full")
            self._map_new_frames(start, chunk // PAGE_SIZE, RW_USER, "the Store's data region (vmctx, tables, globals)")
            self.data_next, self.data_mapped = start, start + chunk
        va = self.data_next
        self.data_next += size
        return va

    def load_code(self, code: bytes) -> int:
        pages = (len(code) + PAGE_SIZE - 1) // PAGE_SIZE or 1
        used = self.code_next - L.CODE_BASE
        if used + pages * PAGE_SIZE > self.limits.code_bytes:
            raise ResourceLimitError(
                f"the module's {len(code)} bytes of compiled code exceed the Store's code limit "
                f"({self.limits.code_bytes} bytes, {used} in use)"
            )
        va = self.code_next
        if va + pages * PAGE_SIZE > L.CODE_END:
            raise ResourceLimitError("the Store's code region is full")
        pa = self._map_new_frames(va, pages, RX_USER, f"{len(code)} bytes of compiled code")
        self.machine.phys.write(pa, code)
        self.code_next = va + pages * PAGE_SIZE + PAGE_SIZE  # an unmapped page between modules
        return va

    def alloc_readonly(self, size: int, what: str) -> tuple[int, int]:
        """Zeroed pages the guest may read but not write (r--, in the code region, an unmapped page after
        them; never freed): ``(va, pa)``, physically contiguous.  The host writes them through ``pa``."""
        pages = (size + PAGE_SIZE - 1) // PAGE_SIZE or 1
        va = self.code_next
        if va + pages * PAGE_SIZE > L.CODE_END:
            raise ResourceLimitError(f"the Store's code region is full ({what})")
        pa = self._map_new_frames(va, pages, R_USER, what)
        self.machine.phys.write(pa, bytes(pages * PAGE_SIZE))
        self.code_next = va + pages * PAGE_SIZE + PAGE_SIZE
        return va, pa

    def _map_new_frames(self, va: int, pages: int, flags: int, what: str) -> int:
        """Map ``pages`` new contiguous frames at ``va``; their physical address.  Out of RAM (for the
        frames or for page tables) is a ResourceLimitError that leaves nothing behind."""
        try:
            pa = self.machine.frames.alloc(pages)
        except OutOfFrames as exc:
            raise ResourceLimitError(f"{what}: {exc}") from None
        try:
            self.space.map(va, pa, pages * PAGE_SIZE, flags, page_size=PAGE_SIZE)
        except OutOfFrames as exc:
            self.space.unmap(va, pages * PAGE_SIZE)
            self.machine.frames.free(pa, pages)
            raise ResourceLimitError(f"{what}: {exc}") from None
        return pa

    def reserve_memory(self, memory: MemoryInstance, slots: int = 1) -> int:
        """Reserve ``slots`` consecutive reservation slots (``layout.MEMORY_RESERVATION`` each) for ``memory``
        in one region of ``layout.MEMORY_REGIONS``; its base address.  Slots are handed out in order and
        never reused (a Store keeps its memories)."""
        index = len(self.memory_slots)
        first = 0
        for start, end in L.MEMORY_REGIONS:
            count = (end - start) // L.MEMORY_RESERVATION
            if index < first + count and index + slots <= first + count:
                self.memory_slots.extend([memory] * slots)
                self.memories.append(memory)
                return start + (index - first) * L.MEMORY_RESERVATION
            if index < first + count:  # the rest of this region is too small: skip it
                self.memory_slots.extend([None] * (first + count - index))
                index = first + count
            first += count
        need = f"; this one needs {slots} in a row" if slots > 1 else ""
        raise ResourceLimitError(
            f"out of virtual address space for linear memories: a Store holds at most {first} "
            f"(each reserves {L.MEMORY_RESERVATION >> 20} MiB){need}"
        )

    def extend_memory(self, memory: MemoryInstance, slots: int) -> bool:
        """Give ``memory`` (the last one reserved) ``slots`` more slots right after its reservation, if its
        region has them; whether it did."""
        index = len(self.memory_slots)
        if not self.memory_slots or self.memory_slots[-1] is not memory:
            return False
        first = 0
        for start, end in L.MEMORY_REGIONS:
            count = (end - start) // L.MEMORY_RESERVATION
            if first < index <= first + count:
                if index + slots > first + count:
                    return False
                self.memory_slots.extend([memory] * slots)
                return True
            first += count
        return False

    def memory_at(self, va: int) -> MemoryInstance | None:
        for start, end in L.MEMORY_REGIONS:
            if start <= va < end:
                index = (va - start) // L.MEMORY_RESERVATION
                if start != L.MEMORY_REGIONS[0][0]:
                    index += (L.MEMORY_REGIONS[0][1] - L.MEMORY_REGIONS[0][0]) // L.MEMORY_RESERVATION
                if index < len(self.memory_slots):
                    mem = self.memory_slots[index]
                    if mem is not None and mem.base <= va < mem.base + mem.span:
                        return mem
                return None
        return None

    def _map_page(self, va: int, *, host: bool = False) -> Translation | bool:
        """Give the page holding ``va`` a zeroed frame, with the flags its memory's page state says.

        ``host``: for a host write (which goes through physical memory and may fill read-only
        pages); a page the state keeps unmapped is an error then, not a fault.  Returns the new
        leaf's Translation for ``va`` (True when only a walk can say), or False when not mapped.
        """
        flags = RW_USER
        mem = self.memory_at(va)
        if mem is not None and mem.ctl is not None:
            state_flags = mem.ctl.flags_for(va - mem.base)
            if state_flags is None:
                if host:
                    raise MemoryControlError(f"host write refused: {mem.ctl.explain(va - mem.base)}")
                return False
            flags = state_flags
        try:
            tr = self.space.map_anonymous_page(va, flags)
        except OutOfFrames:
            if not host:  # a guest fault the pager could not serve: _trap_from reports it (host paths raise)
                self.out_of_frames = True
            return False
        if mem is not None:
            mem.mark_resident(va - mem.base)
        return True if tr is None else tr

    def frame_of(self, va: int) -> int | None:
        """The physical page behind guest page ``va``, given a frame first if it has none (as the pager
        would on a touch; the page's memory state decides); None when no frame can be had."""
        pa = self.page_pa(va)
        if pa is None:
            if not self._map_page(va):
                return None
            pa = self.page_pa(va)
            assert pa is not None  # _map_page mapped it
        return pa

    def _pager(self, va: int, access: Access) -> Translation | bool:
        """Demand paging: memory pages below the memory's size (as their page state allows), the stack.

        Fault-around (``fault_around`` pages, 0 = off): when a guest touch of a memory page follows a
        touch of the page just before it, the next pages of the same memory are mapped too, up to the
        first that :meth:`MemoryInstance.fault_around_candidate` refuses (the memory's end, a guard,
        a page with another state, a released page) and never when frames run short.
        """
        if self.machine.active_space is not self.space:  # a fault in another Store's space
            return False
        mem = self.memory_at(va)
        if mem is not None:
            if va - mem.base >= mem.size_bytes:
                return False
            mapped = self._map_page(va)
            if mapped and self.fault_around:
                page = (va - mem.base) >> PAGE_SHIFT
                if page == mem.last_fault_page + 1:
                    self._fault_around(mem, page)
                mem.last_fault_page = page
            return mapped
        if self.stack_low <= va < L.STACK_TOP or L.in_thread_stack(va):
            return self._map_page(va)
        return False

    def _fault_around(self, mem: MemoryInstance, page: int) -> None:
        frames = self.machine.frames
        for ahead in range(page + 1, page + 1 + self.fault_around):
            # each page may need up to two new tables besides its frame; keep a reserve for real touches
            if frames.available < FAULT_AROUND_RESERVE + 3 or not mem.fault_around_candidate(ahead):
                return
            va = mem.base + (ahead << PAGE_SHIFT)
            try:
                self.space.map_anonymous_page(va, RW_USER)
            except OutOfFrames:  # cannot happen above the reserve; never a fault of the guest's
                return
            mem.mark_resident(ahead << PAGE_SHIFT)

    def _write_fault(self, va: int) -> bool:
        """A guest store to a valid page without W: copy-on-write, when the page is a COW mapping."""
        if self.machine.active_space is not self.space:
            return False
        mem = self.memory_at(va)
        return mem is not None and mem.ctl is not None and mem.ctl.write_fault(va - mem.base)

    def host_buffer(
        self,
        *,
        size: int | None = None,
        data: bytes | None = None,
        path: str | os.PathLike | None = None,
        writable: bool = False,
    ) -> HostBuffer:
        """A :class:`~hwsim.runtime.hostmem.HostBuffer`: ``size`` zeroed bytes, a copy of ``data``,
        or the pages of the file at ``path``."""
        from .hostmem import HOST_BUFFERS_BASE, HostBuffer, HostBufferError

        if not self.next_host_pa:
            top = max(r.end for r in self.machine.phys.regions)
            self.next_host_pa = max(HOST_BUFFERS_BASE, (top + (1 << 30)) & ~((1 << 30) - 1))
        if sum(x is not None for x in (size, data, path)) != 1:
            raise HostBufferError("host_buffer: give exactly one of size, data or path")
        if path is not None:
            return HostBuffer.from_file(self, path, writable=writable)
        if data is not None:
            return HostBuffer.from_bytes(self, data, writable=writable)
        assert size is not None  # exactly one of the three was given
        return HostBuffer.zeroed(self, size)

    def read_user(self, va: int, size: int) -> bytes:
        """Read guest memory; pages never touched read as zeros."""
        offset = va & PAGE_MASK
        if size <= PAGE_SIZE - offset:  # within one page (a host call's string or struct): no copy loop
            pa = self.page_pa(va)
            return bytes(size) if pa is None else self.machine.phys.read(pa + offset, size)
        out = bytearray()
        while size > 0:
            chunk = min(size, PAGE_SIZE - (va & PAGE_MASK))
            pa = self.page_pa(va)
            if pa is None:
                out += bytes(chunk)
            else:
                out += self.machine.phys.read(pa + (va & PAGE_MASK), chunk)
            va += chunk
            size -= chunk
        return bytes(out)

    def add_bulk_access_observer(self, observer: BulkAccessObserver) -> Callable[[], None]:
        """``observer(memory_base, offset, length, write, pc)`` for every guest bulk memory operation
        (memory.copy/fill/init, carried out by the host, so the machine's page watch cannot see them), in
        the order added; returns a function that removes it.  While any is registered, compiled code hands
        every memory.copy/fill to the host (it runs small ones itself otherwise), so each is seen."""
        self.bulk_access_observers.append(observer)
        self._update_bulk_host()

        def remove() -> None:
            self.bulk_access_observers.remove(observer)
            self._update_bulk_host()

        return remove

    def add_release_observer(self, observer: ReleaseObserver) -> Callable[[], None]:
        """``observer(memory_base, offset, length, operation, pc)`` after every guest ``memory.discard`` or
        ``memory.unmap`` (``operation``) that released ``[offset, offset+length)`` (page-aligned) of a memory:
        its frames left the guest's page table, and what the guest touches there next is a fresh zero page.
        ``pc`` is the guest's instruction.  Returns a function that removes the observer."""
        self.release_observers.append(observer)

        def remove() -> None:
            self.release_observers.remove(observer)

        return remove

    def _update_bulk_host(self) -> None:
        """Compiled code carries out small bulk operations itself unless told otherwise: it is told while an
        observer is registered (see MemoryInstance.bulk_host)."""
        for memory in self.memories:
            memory.update_bulk_host()

    def _before_host_write(self, va: int, size: int) -> None:
        mem = self.memory_at(va)
        if mem is not None and mem.ctl is not None and mem.ctl.host_pages:
            mem.ctl.prepare_host_write(va - mem.base, size)

    def _host_pa(self, va: int) -> int:
        """The physical address of ``va`` for a host write, its page given a frame first if it has none."""
        pa = self.page_pa(va)
        if pa is None:
            if not self._map_page(va, host=True):
                raise ResourceLimitError("out of physical memory for the Store's RAM")
            pa = self.page_pa(va)
            assert pa is not None  # _map_page mapped it
        return pa + (va & PAGE_MASK)

    def write_user(self, va: int, data: bytes) -> None:
        self._before_host_write(va, len(data))
        view = memoryview(data)
        pages = 0
        while view:
            pages += 1
            if not pages & 0xFF:
                self.check_deadline()
            chunk = min(len(view), PAGE_SIZE - (va & PAGE_MASK))
            self.machine.phys.write(self._host_pa(va), view[:chunk])
            va += chunk
            view = view[chunk:]

    def fill_user(self, va: int, byte: int, size: int) -> None:
        self._before_host_write(va, size)
        pages = 0
        while size > 0:
            pages += 1
            if not pages & 0xFF:
                self.check_deadline()
            chunk = min(size, PAGE_SIZE - (va & PAGE_MASK))
            pa = self.page_pa(va)
            if pa is not None or byte:  # untouched pages already read as zero
                at = pa + (va & PAGE_MASK) if pa is not None else self._host_pa(va)
                self.machine.phys.fill(at, chunk, byte)
            va += chunk
            size -= chunk

    def copy_user(self, dst: int, src: int, size: int) -> None:
        """``memory.copy`` between guest addresses (overlap allowed, as memmove), a page-sized chunk at a
        time: host memory stays bounded whatever ``size`` is, and untouched source pages (zeros) copied
        onto untouched destination pages cost nothing."""
        self._before_host_write(dst, size)
        backwards = src < dst < src + size
        done = pages = 0
        mask = PAGE_MASK
        while done < size:
            pages += 1
            if not pages & 0xFF:
                self.check_deadline()
            left = size - done
            if backwards:
                s_end, d_end = src + left, dst + left
                chunk = min(left, ((s_end - 1) & mask) + 1, ((d_end - 1) & mask) + 1)
                s, d = s_end - chunk, d_end - chunk
            else:
                s, d = src + done, dst + done
                chunk = min(left, PAGE_SIZE - (s & mask), PAGE_SIZE - (d & mask))
            s_pa, d_pa = self.page_pa(s), self.page_pa(d)
            if s_pa is None:
                if d_pa is not None:
                    self.machine.phys.fill(d_pa + (d & mask), chunk, 0)
            else:
                data = self.machine.phys.read(s_pa + (s & mask), chunk)
                at = d_pa + (d & mask) if d_pa is not None else self._host_pa(d)
                self.machine.phys.write(at, data)
            done += chunk
