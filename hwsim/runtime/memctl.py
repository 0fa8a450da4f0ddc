"""Memory control: page states of a linear memory, made real by the Store's page tables.

Every linear memory is a reservation in the Store's Sv39 space whose 4 KiB
pages get a frame when first touched (demand paging).  Memory control gives
each page of a memory a *state*, kept in a byte per page, and the pager and
the page tables follow it::

    state        guest loads   guest stores   PTE when resident
    READWRITE    yes           yes            R W U  (the default of an ordinary memory)
    READ         yes           trap           R   U
    NONE         trap          trap           R      (U=0: the frame is kept, U-mode cannot touch it)
    UNMAPPED     trap          trap           none   (the default of a virtual-mode memory; no frame)
    STATIC_NONE  trap          trap           none   (the no-access region: trap-on-null)
    STATIC_READ  yes           trap           R   U  (the read-only region, written before the module runs)

A guest access the state forbids faults in the MMU and becomes a trap that
names the page and its state; nothing is checked in compiled code.  The
operations (page-granular, 4 KiB):

* ``discard``: zero a page-aligned range and release its frames;
* ``map`` / ``unmap`` / ``protect``: the memory-control proposal's operations;
* static regions: a no-access low region and a read-only region after it,
  declared by the module (custom section ``hwsim.memory``) or by the host.

Host writes (the embedder's ``Memory.write``, data segments) go through
physical memory and ignore READ; they refuse UNMAPPED pages.  Guest bulk
operations (``memory.copy``/``fill``/``init``) are checked like loads and
stores.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from ..compiler.traps import TrapCode
from ..errors import OutOfFrames
from ..mmu.bits import PAGE_SHIFT, PAGE_SIZE, Pte
from ..mmu.bits import PAGE_SIZE as PAGE  # noqa: F401  (the name driver/runner.py imports from here)
from .errors import HostBufferError, MemoryControlError, ResourceLimitError, Trap


class Prot(enum.IntEnum):
    """The protections ``map`` and ``protect`` take (the values the intrinsics and opcodes use)."""

    NONE = 0
    READ = 1
    READWRITE = 2


class State(enum.IntEnum):
    NONE = 0
    READ = 1
    READWRITE = 2
    UNMAPPED = 3
    STATIC_NONE = 4
    STATIC_READ = 5
    HOST = 6  # a shared mapping of a host buffer (read-write, or read-only for a read-only buffer)
    COW = 7  # a copy-on-write mapping of a host buffer, not written yet


_READABLE = frozenset({State.READ, State.READWRITE, State.STATIC_READ, State.HOST, State.COW})
# The states that refuse a guest bulk load, and a store (check_guest_access: asked at every DMA map too).
_NO_LOAD = frozenset({State.NONE, State.UNMAPPED, State.STATIC_NONE})
_NO_STORE = _NO_LOAD | {State.READ, State.STATIC_READ}
_FLAGS = {
    State.READWRITE: Pte.R | Pte.W | Pte.U,
    State.READ: Pte.R | Pte.U,
    State.STATIC_READ: Pte.R | Pte.U,
    State.NONE: Pte.R,
}
_DESCRIBE = {
    State.NONE: "has no access (memory.protect none)",
    State.READ: "is read-only (memory.protect read)",
    State.UNMAPPED: "is not mapped",
    State.STATIC_NONE: "is in the no-access region (trap-on-null)",
    State.STATIC_READ: "is in the read-only region",
    State.HOST: "is a read-only mapping of a host buffer",
    State.COW: "is a copy-on-write mapping",
}


def _trap(code: TrapCode, detail: str):
    return Trap(code, detail=detail)


class PageStates:
    """The state of each 4 KiB page of one memory; pages past the array have the default."""

    def __init__(self, default: State) -> None:
        self.default = default
        self.array = bytearray()

    def _ensure(self, end_page: int) -> None:
        if len(self.array) < end_page:
            self.array += bytes([self.default]) * (end_page - len(self.array))

    def get(self, page: int) -> State:
        return State(self.array[page]) if page < len(self.array) else self.default

    def set(self, first: int, end: int, state: State) -> None:
        self._ensure(end)
        self.array[first:end] = bytes([state]) * (end - first)

    def find(self, states, first: int, end: int) -> int:
        """The first page in ``[first, end)`` whose state is one of ``states``, or -1."""
        for page in range(first, min(end, len(self.array))):
            if self.array[page] in states:
                return page
        if end > len(self.array) and self.default in states:
            return max(first, len(self.array))
        return -1

    def runs(self, first: int, end: int):
        """``(start, stop, state)`` runs of equal state covering ``[first, end)``."""
        page = first
        while page < end:
            state = self.get(page)
            stop = page + 1
            if page < len(self.array):
                limit = min(end, len(self.array))
                while stop < limit and self.array[stop] == state:
                    stop += 1
                if stop == len(self.array) and self.default == state:
                    stop = end
            else:
                stop = end
            yield page, min(stop, end), state
            page = min(stop, end)


class MemoryControl:
    """Memory control for one :class:`~hwsim.runtime.objects.MemoryInstance` (``memory.ctl``)."""

    def __init__(self, memory, *, virtual: bool = False) -> None:
        self.memory = memory
        self.store = memory.store
        self.virtual = virtual
        self.states = PageStates(State.UNMAPPED if virtual else State.READWRITE)
        self.static_end = 0  # bytes of the static regions (no-access, then read-only)
        self.host_pages: dict[int, tuple] = {}  # page -> (HostBuffer, buffer page, writable) for HOST and COW
        self.why_unmapped: dict[int, str] = {}  # page -> why the host took it away (see revoke)
        self.ops = {"discard": 0, "map": 0, "unmap": 0, "protect": 0, "map_host": 0, "copy_on_write": 0}

    # -- queries --------------------------------------------------------------------------------

    def state_at(self, offset: int) -> State:
        return self.states.get(offset >> PAGE_SHIFT)

    def flags_for(self, offset: int) -> Pte | None:
        """PTE flags for the page holding ``offset`` when the pager maps it (None: do not map)."""
        return _FLAGS.get(self.states.get(offset >> PAGE_SHIFT))

    def explain(self, offset: int, write: bool | None = None) -> str | None:
        """Why a guest access to ``offset`` is refused by the page's state (None: it is not)."""
        state = self.state_at(offset)
        if state in _READABLE and (state in (State.READWRITE, State.COW) or not write):
            return None
        if state is State.HOST and self.host_pages[offset >> PAGE_SHIFT][2]:
            return None  # a writable shared mapping
        why = self.why_unmapped.get(offset >> PAGE_SHIFT) if state is State.UNMAPPED else None
        return f"page {offset >> PAGE_SHIFT:#x} (linear address {offset:#x}) {why or _DESCRIBE[state]}"

    def check_guest_access(self, offset: int, length: int, write: bool) -> None:
        """Trap if a guest bulk operation on ``[offset, offset+length)`` touches a forbidden page."""
        if not length:
            return
        first, end = offset >> PAGE_SHIFT, (offset + length + PAGE_SIZE - 1) >> PAGE_SHIFT
        page = self.states.find(_NO_STORE if write else _NO_LOAD, first, end)
        if page >= 0:
            at = max(offset, page << PAGE_SHIFT)
            why = self.explain(at, write)
            assert why is not None  # the page's state refuses this access
            raise _trap(TrapCode.MEMORY_ACCESS_DENIED, why + (" (store)" if write else " (load)"))
        if write and self.host_pages:
            hosted = sorted(p for p in self.host_pages if first <= p < end)
            for page in hosted:  # every page checked before any is changed: a trap leaves the mappings alone
                if self.states.get(page) is not State.COW and not self.host_pages[page][2]:
                    at = max(offset, page << PAGE_SHIFT)
                    why = self.explain(at, True)
                    assert why is not None  # a hosted page that is not COW is a read-only HOST mapping
                    raise _trap(TrapCode.MEMORY_ACCESS_DENIED, why + " (store)")
            for page in hosted:
                if self.states.get(page) is State.COW:
                    self.copy_on_write(page)  # the host carries out the store: copy first, as the MMU would

    # -- helpers --------------------------------------------------------------------------------

    def _range(self, what: str, offset: int, length: int, *, round_: bool) -> tuple[int, int]:
        """Page range ``[first, end)`` of an operation, with the proposal's traps."""
        mem = self.memory
        if round_:
            if length <= 0:
                raise _trap(TrapCode.MEMORY_CONTROL, f"{what}: size must be positive, not {length}")
            start = offset & ~(PAGE_SIZE - 1)
            stop = (offset + length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        else:
            if offset % PAGE_SIZE or length % PAGE_SIZE:
                raise _trap(
                    TrapCode.MEMORY_CONTROL,
                    f"{what}: [{offset:#x}, +{length:#x}) is not aligned to the {PAGE_SIZE}-byte page size",
                )
            start, stop = offset, offset + length
        limit = (mem.size_bytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        if offset < 0 or stop > limit:
            raise _trap(
                TrapCode.MEMORY_OUT_OF_BOUNDS,
                f"{what}: [{start:#x}, {stop:#x}) is outside the memory of {mem.size_bytes:#x} bytes",
            )
        first, end = start >> PAGE_SHIFT, stop >> PAGE_SHIFT
        if first < self.static_end >> PAGE_SHIFT and what != "discard":
            raise _trap(TrapCode.MEMORY_CONTROL, f"{what}: page {first:#x} is in a static region, which cannot change")
        return first, end

    def _release(self, first: int, end: int) -> None:
        """Unmap the resident pages of ``[first, end)`` and free their frames (one TLB flush per run).

        Pages of host buffers are unmapped, never freed; they become ordinary (zero) pages."""
        mem = self.memory
        for start, stop in mem.resident_runs(first, end):
            self.store.space.unmap(mem.base + (start << PAGE_SHIFT), (stop - start) << PAGE_SHIFT)
            mem.clear_resident(start, stop)
        if self.host_pages:
            for page in [p for p in self.host_pages if first <= p < end]:
                buffer = self.host_pages.pop(page)[0]
                buffer.mappings -= 1
                released = getattr(buffer, "released", None)
                if released is not None:
                    released(self.memory, page)
                self.states.set(page, page + 1, State.READWRITE)

    def _reprotect(self, first: int, end: int, state: State) -> None:
        mem = self.memory
        flags = _FLAGS[state]
        for start, stop in mem.resident_runs(first, end):
            self.store.space.protect(mem.base + (start << PAGE_SHIFT), (stop - start) << PAGE_SHIFT, flags)

    # -- the operations ---------------------------------------------------------------------------

    def discard(self, offset: int, length: int) -> tuple[int, int]:
        """Zero ``[offset, offset+length)`` (page-aligned) and release its frames; states are kept.
        Returns the page range released, ``(first, end)``."""
        first, end = self._range("memory.discard", offset, length, round_=False)
        if first < end:
            self._release(first, end)
        self.ops["discard"] += 1
        return first, end

    def map(self, offset: int, length: int, prot: int) -> int:
        """Make unmapped pages accessible with ``prot``; returns the rounded-down start."""
        state = _state_of(prot, "memory.map")
        first, end = self._range("memory.map", offset, length, round_=True)
        page = self.states.find({s for s in State if s is not State.UNMAPPED}, first, end)
        if page >= 0:
            raise _trap(TrapCode.MEMORY_CONTROL, f"memory.map: page {page:#x} is already mapped")
        self._forget_why(first, end)
        self.states.set(first, end, state)
        self.ops["map"] += 1
        return first << PAGE_SHIFT

    def unmap(self, offset: int, length: int) -> tuple[int, int]:
        """Make pages inaccessible and release their frames (unmapping unmapped pages is allowed).
        Returns the page range released, ``(first, end)``."""
        first, end = self._range("memory.unmap", offset, length, round_=True)
        self._release(first, end)
        self._forget_why(first, end)
        self.states.set(first, end, State.UNMAPPED)
        self.ops["unmap"] += 1
        return first, end

    def revoke(self, offset: int, length: int, why: str) -> None:
        """The host takes pages away (the guest freed them through the host, e.g. DMA-coherent memory):
        they are unmapped, their frames released, and an access to them traps saying ``why`` ("was freed
        by ... at ...")."""
        first, end = self._range("revoke", offset, length, round_=True)
        self._release(first, end)
        self.states.set(first, end, State.UNMAPPED)
        for page in range(first, end):
            self.why_unmapped[page] = why

    def _forget_why(self, first: int, end: int) -> None:
        if self.why_unmapped:
            for page in range(first, end):
                self.why_unmapped.pop(page, None)

    def protect(self, offset: int, length: int, prot: int) -> None:
        """Change the protection of mapped pages (traps if any page in the range is unmapped)."""
        state = _state_of(prot, "memory.protect")
        first, end = self._range("memory.protect", offset, length, round_=True)
        page = self.states.find({State.UNMAPPED}, first, end)
        if page >= 0:
            raise _trap(TrapCode.MEMORY_CONTROL, f"memory.protect: page {page:#x} is not mapped")
        page = self.states.find({State.HOST, State.COW}, first, end)
        if page >= 0:
            raise _trap(TrapCode.MEMORY_CONTROL, f"memory.protect: page {page:#x} maps a host buffer (unmap it first)")
        self.states.set(first, end, state)
        self._reprotect(first, end, state)
        self.ops["protect"] += 1

    # -- host buffers -------------------------------------------------------------------------------

    def map_host(
        self,
        offset: int,
        buffer,
        *,
        buffer_offset: int = 0,
        length: int | None = None,
        shared: bool = True,
        writable: bool | None = None,
    ) -> None:
        """Map ``buffer`` (a :class:`~hwsim.runtime.hostmem.HostBuffer`) at ``offset``, shared or
        copy-on-write.  Whatever the range held is replaced (as mmap's MAP_FIXED does)."""
        mem = self.memory
        length = buffer.size - buffer_offset if length is None else length
        if offset < 0 or buffer_offset < 0:
            raise HostBufferError(
                f"map_host: offset {offset:#x} and buffer offset {buffer_offset:#x} must not be negative"
            )
        if offset % PAGE_SIZE or buffer_offset % PAGE_SIZE or length <= 0 or length % PAGE_SIZE:
            raise HostBufferError(
                f"map_host: offset {offset:#x}, buffer offset {buffer_offset:#x} and length "
                f"{length:#x} must be positive multiples of {PAGE_SIZE}"
            )
        if buffer_offset + length > buffer.size:
            raise HostBufferError(f"map_host: [{buffer_offset:#x}, +{length:#x}) is outside {buffer!r}")
        first, end = self.host_range("map_host", offset, length)
        writable = shared and buffer.writable and (writable is None or writable)
        self._release(first, end)
        flags = (Pte.R | Pte.W | Pte.U) if writable else (Pte.R | Pte.U)
        try:
            for k, page in enumerate(range(first, end)):
                bpage = (buffer_offset >> PAGE_SHIFT) + k
                self.store.space.map(
                    mem.base + (page << PAGE_SHIFT), buffer.page_pa(bpage), PAGE_SIZE, flags, page_size=PAGE_SIZE
                )
                mem.mark_resident(page << PAGE_SHIFT)
                self.host_pages[page] = (buffer, bpage, writable)
                buffer.mappings += 1
        except OutOfFrames as exc:  # no frame for a page table: undo the pages mapped so far
            self._release(first, end)
            self.states.set(first, end, self.states.default)
            raise ResourceLimitError(f"map_host: no frame for the page tables ({exc})") from None
        self.states.set(first, end, State.HOST if shared else State.COW)
        self.ops["map_host"] += 1

    def host_range(self, what: str, offset: int, length: int) -> tuple[int, int]:
        """Pages ``[first, end)`` of a host mapping of ``[offset, offset+length)``: page-aligned, inside
        the memory and outside its static regions, else :class:`~hwsim.runtime.hostmem.HostBufferError`
        (its message starts with ``what``).  Nothing is changed."""
        mem = self.memory
        if offset % PAGE_SIZE or length <= 0 or length % PAGE_SIZE:
            raise HostBufferError(
                f"{what}: offset {offset:#x} and length {length:#x} must be positive multiples of {PAGE_SIZE}"
            )
        if offset < 0 or offset + length > ((mem.size_bytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)):
            raise HostBufferError(
                f"{what}: [{offset:#x}, +{length:#x}) is outside the memory of {mem.size_bytes:#x} bytes"
            )
        first, end = offset >> PAGE_SHIFT, (offset + length) >> PAGE_SHIFT
        if first < self.static_end >> PAGE_SHIFT:
            raise HostBufferError(f"{what}: page {first:#x} is in a static region")
        return first, end

    def unmap_host(self, offset: int, length: int) -> None:
        """Undo host mappings in ``[offset, offset+length)``: the pages read as zeros again (or are
        unmapped, in a virtual-mode memory); the buffer is untouched."""
        first, end = self.host_range("unmap_host", offset, length)
        self._release(first, end)
        self._forget_why(first, end)
        self.states.set(first, end, self.states.default)

    def copy_on_write(self, page: int) -> None:
        """Give a COW page a private copy of its buffer page, mapped read-write (out of RAM: a
        ResourceLimitError, and the page stays a COW mapping)."""
        if not self.store.machine.frames.available:  # one frame does: unmapping frees any page table
            raise ResourceLimitError(
                f"copy-on-write of page {page:#x}: out of physical memory (the Store's RAM is used up)"
            )
        buffer, bpage, _writable = self.host_pages.pop(page)
        buffer.mappings -= 1
        released = getattr(buffer, "released", None)
        if released is not None:
            released(self.memory, page)
        mem, space = self.memory, self.store.space
        va = mem.base + (page << PAGE_SHIFT)
        data = self.store.machine.phys.read(buffer.page_pa(bpage), PAGE_SIZE)
        space.unmap(va, PAGE_SIZE)
        space.map_anonymous(va, PAGE_SIZE, Pte.R | Pte.W | Pte.U)
        self.store.machine.phys.write(space.lookup(va).pa, data)
        self.states.set(page, page + 1, State.READWRITE)
        self.ops["copy_on_write"] += 1

    def prepare_host_write(self, offset: int, length: int) -> None:
        """Before the host writes ``[offset, offset+length)`` through physical memory: copy COW pages
        (the buffer must not change) and refuse read-only host buffers."""
        for page in range(offset >> PAGE_SHIFT, (offset + length + PAGE_SIZE - 1) >> PAGE_SHIFT):
            entry = self.host_pages.get(page)
            if entry is None:
                continue
            if self.states.get(page) is State.COW:
                self.copy_on_write(page)
            elif not entry[0].writable:
                raise HostBufferError(f"host write refused: page {page:#x} maps the read-only {entry[0]!r}")

    def write_fault(self, offset: int) -> bool:
        """The machine's write-fault hook for this memory: copy a COW page; False for anything else."""
        page = offset >> PAGE_SHIFT
        if self.states.get(page) is not State.COW:
            return False
        self.copy_on_write(page)
        return True

    def set_static(self, no_access: int, read_only: int) -> None:
        """The static regions: ``[0, no_access)`` no access, ``[no_access, no_access+read_only)`` read-only."""
        mem = self.memory
        for name, value in (("no-access", no_access), ("read-only", read_only)):
            if value < 0 or value % PAGE_SIZE:
                raise MemoryControlError(f"the {name} region must be a multiple of {PAGE_SIZE} bytes, not {value}")
        end = no_access + read_only
        if end > mem.max_pages * mem.page_size:
            raise MemoryControlError(
                f"static regions of {end:#x} bytes do not fit a memory of at most "
                f"{mem.max_pages * mem.page_size:#x} bytes"
            )
        if self.static_end:
            raise MemoryControlError("the memory's static regions are already set")
        hosted = [page for page in self.host_pages if page < end >> PAGE_SHIFT]
        if hosted:
            raise MemoryControlError(
                f"static regions of {end:#x} bytes: page {min(hosted):#x} maps a host buffer (unmap it first)"
            )
        n, r = no_access >> PAGE_SHIFT, end >> PAGE_SHIFT
        self._release(0, n)
        self.states.set(0, n, State.STATIC_NONE)
        self.states.set(n, r, State.STATIC_READ)
        self._reprotect(n, r, State.STATIC_READ)
        self.static_end = end


# -- the hwsim.memory custom section -----------------------------------------------------------------

SECTION = "hwsim.memory"
_RECORD = struct.Struct("<IIIIQQ")  # version, memory index, flags, reserved, no-access bytes, read-only bytes
FLAG_VIRTUAL = 1


@dataclass(frozen=True)
class MemoryLayout:
    memory: int
    virtual: bool
    no_access: int
    read_only: int


def parse_section(data: bytes, offset: int = 0) -> list[MemoryLayout]:
    """The records of a ``hwsim.memory`` custom section: 32 bytes each, little-endian::

        u32 version (1)  u32 memory index  u32 flags (bit 0: virtual mode)  u32 reserved (0)
        u64 no-access bytes (from 0)  u64 read-only bytes (after the no-access region)

    A C module can emit one with ``HWSIM_MEMORY_LAYOUT`` (drivers/include/hwsim_memory.h).
    """
    if len(data) % _RECORD.size:
        raise MemoryControlError(
            f"custom section {SECTION!r} at byte {offset:#x}: {len(data)} bytes is not a "
            f"whole number of {_RECORD.size}-byte records"
        )
    out: list[MemoryLayout] = []
    for at in range(0, len(data), _RECORD.size):
        version, memory, flags, reserved, no_access, read_only = _RECORD.unpack_from(data, at)
        where = f"custom section {SECTION!r}, record at byte {offset + at:#x}"
        if version != 1:
            raise MemoryControlError(f"{where}: version {version}, hwsim reads version 1")
        if flags & ~FLAG_VIRTUAL or reserved:
            raise MemoryControlError(f"{where}: unknown flags {flags:#x} or reserved field {reserved:#x}")
        record = MemoryLayout(memory, bool(flags & FLAG_VIRTUAL), no_access, read_only)
        if record in out:
            continue  # the same record from two translation units
        if any(r.memory == memory for r in out):
            raise MemoryControlError(f"{where}: memory {memory} has two different records")
        out.append(record)
    return out


def record_bytes(memory: int = 0, *, virtual: bool = False, no_access: int = 0, read_only: int = 0) -> bytes:
    """One record of the section (for tools and tests)."""
    return _RECORD.pack(1, memory, FLAG_VIRTUAL if virtual else 0, 0, no_access, read_only)


def with_layout(wasm: bytes, *records: bytes) -> bytes:
    """``wasm`` with a ``hwsim.memory`` section of ``records`` (from :func:`record_bytes`) appended.

    A custom section may end any module, so this is always valid; it is the way to give a module
    built by a toolchain that cannot emit custom sections (zig's linker) its layout.
    """
    from ..wasm.reader import write_uleb as uleb

    name = SECTION.encode()
    payload = uleb(len(name)) + name + b"".join(records)
    return bytes(wasm) + b"\x00" + uleb(len(payload)) + payload


def _state_of(prot: int, what: str) -> State:
    try:
        return State(Prot(prot).value)
    except ValueError:
        raise _trap(
            TrapCode.MEMORY_CONTROL, f"{what}: protection must be 0 (none), 1 (read) or 2 (read-write), not {prot}"
        ) from None


__all__ = [
    "MemoryControl",
    "MemoryControlError",
    "MemoryLayout",
    "PageStates",
    "Prot",
    "SECTION",
    "State",
    "parse_section",
    "record_bytes",
    "with_layout",
]
