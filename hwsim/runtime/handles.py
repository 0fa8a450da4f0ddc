"""Mappable memory handles: pages that move between instances with linear ownership.

A :class:`MemoryHandle` owns a run of physical frames.  It can be mapped into
linear memories (page tables point at its frames, nothing is copied) under
two rules, which are what makes it safe to hand buffers between mutually
distrustful modules:

* **one writer**: mapped writable in at most one memory, and then nowhere else;
* **many readers**: mapped read-only in any number of memories while no one
  has it writable.

``move(memory, offset)`` is the linear hand-over: the handle is unmapped from
wherever it is and mapped writable at the destination, so the sender loses
access in the same step (its pages then read as zeros, or trap in a
virtual-mode memory).  Breaking a rule raises :class:`HandleError` from the
host API and traps (``invalid memory-control operation``) from wasm, where
handles are ``externref`` values used through the ``hwsim:memory`` intrinsics
``handle_new``, ``handle_map``, ``handle_move``, ``handle_unmap`` and
``handle_pages``.

Every other misuse is refused before anything changes, with the error of its
layer (each a trap from wasm, see :mod:`hwsim.runtime.builtins`)::

    misuse                                          host API              from wasm
    a rule broken, a freed handle, a double free    HandleError           trap
    a range not page-aligned, outside the memory    HostBufferError       trap
      or in a static region (as map_host)
    a memory or handle of another Store             StoreMismatchError    trap
    no frames for the handle (out of RAM)           ResourceLimitError    trap
    a null or non-handle externref                                        trap
"""

from __future__ import annotations

import itertools

from ..errors import ArgumentTypeError, OutOfFrames
from ..mmu.bits import PAGE_SIZE
from .errors import HandleError, ResourceLimitError
from .objects import MemoryInstance


def _memory(memory, what: str) -> MemoryInstance:
    """The memory behind ``memory``: the public :class:`~hwsim.Memory` an instance exports, or the
    runtime's own; anything else is a TypeError naming the call."""
    inner = getattr(memory, "_inner", memory)
    if not isinstance(inner, MemoryInstance):
        raise ArgumentTypeError(f"MemoryHandle.{what}(memory): expected a Memory, not {type(memory).__name__}")
    return inner


_SERIALS = itertools.count(1)  # handles are named "handle 1", "handle 2", ... in the order they are made


class MemoryHandle:
    def __init__(self, store, pages: int, *, name: str = "") -> None:
        """``pages`` 4 KiB pages of ``store`` (the public :class:`~hwsim.Store`, or the runtime's own)."""
        store = getattr(store, "_store", store)  # the engine Store behind a public one
        if not hasattr(store, "check_owned"):
            raise ArgumentTypeError(f"MemoryHandle(store): expected a Store, not {type(store).__name__}")
        if not isinstance(pages, int):
            raise ArgumentTypeError(f"a handle's size is a number of pages, not {pages!r}")
        if pages <= 0:
            raise HandleError(f"a handle needs a positive number of pages, not {pages}")
        self.store = store
        self.pages = pages
        self.size = pages * PAGE_SIZE
        self.name = name or f"handle {next(_SERIALS)}"
        try:
            self.base_pa = store.machine.frames.alloc(pages)
        except OutOfFrames as exc:
            raise ResourceLimitError(f"a memory handle of {pages} pages: {exc}") from None
        self.writable = True  # as a buffer: map_host may map it writable (the rules decide when)
        self.mappings = 0  # pages mapped now (kept by MemoryControl)
        self.places: dict[int, list] = {}  # id(memory) -> [memory, first page, writable, pages mapped]
        self.freed = False

    # The buffer interface MemoryControl.map_host uses.
    def page_pa(self, page: int) -> int:
        return self.base_pa + page * PAGE_SIZE

    def released(self, memory, page: int) -> None:
        """MemoryControl unmapped one of our pages from ``memory`` (by any operation)."""
        place = self.places.get(id(memory))
        if place is not None:
            place[3] -= 1
            if place[3] <= 0:
                del self.places[id(memory)]

    # -- the rules ------------------------------------------------------------------------------------

    def _where(self, memory) -> str:
        owner = getattr(memory, "owner_name", None)
        return owner or f"memory at {memory.base:#x}"

    def check_usable(self, memory=None) -> None:
        """Raise unless the handle is live and (when given) ``memory`` is of the handle's Store."""
        if self.freed:
            raise HandleError(f"{self.name} was freed")
        if memory is not None:
            memory.store.check_owned(self, self.name)

    def map(self, memory, offset: int, *, writable: bool) -> None:
        """Map the whole handle at ``offset`` of ``memory`` (page-aligned), read-only or writable."""
        memory = _memory(memory, "map")
        self.check_usable(memory)
        memory.control().host_range(self.name, offset, self.size)
        others = [p for key, p in self.places.items() if key != id(memory)]
        if writable and others:
            raise HandleError(
                f"{self.name} cannot be mapped writable: it is mapped in "
                f"{', '.join(self._where(p[0]) for p in others)} (move it, or unmap it there first)"
            )
        if not writable:
            writers = [p for p in others if p[2]]
            if writers:
                raise HandleError(
                    f"{self.name} cannot be shared read-only: {self._where(writers[0][0])} has it writable"
                )
        if id(memory) in self.places:
            raise HandleError(f"{self.name} is already mapped in this memory")
        memory.control().map_host(offset, self, shared=True, writable=writable)
        self.places[id(memory)] = [memory, offset >> 12, writable, self.pages]

    def move(self, memory, offset: int) -> None:
        """Unmap from its (single, writable or no) current place and map writable here (the destination
        is checked first: a move that cannot happen leaves the handle where it was)."""
        memory = _memory(memory, "move")
        self.check_usable(memory)
        memory.control().host_range(self.name, offset, self.size)
        if any(not p[2] for p in self.places.values()):
            raise HandleError(
                f"{self.name} is shared read-only in {_memories(len(self.places))}: it cannot move until they unmap it"
            )
        for place in list(self.places.values()):
            self._unmap_place(place)
        self.map(memory, offset, writable=True)

    def unmap(self, memory) -> None:
        memory = _memory(memory, "unmap")
        self.check_usable(memory)
        place = self.places.get(id(memory))
        if place is None:
            raise HandleError(f"{self.name} is not mapped in {self._where(memory)}")
        self._unmap_place(place)

    def _unmap_place(self, place) -> None:
        """Unmap the pages of ``place`` that still map this handle (a host mapping or an unmap may
        have replaced some since, and those are left alone)."""
        memory, first = place[0], place[1]
        ctl = memory.ctl
        ours = [page for page in range(first, first + self.pages) if ctl.host_pages.get(page, (None,))[0] is self]
        for _, run in itertools.groupby(enumerate(ours), lambda e: e[1] - e[0]):  # one unmap per run of pages
            pages = [page for _, page in run]
            ctl.unmap_host(pages[0] << 12, len(pages) << 12)

    def free(self) -> None:
        """Give the frames back (only once it is mapped nowhere; freeing twice is an error)."""
        if self.freed:
            raise HandleError(f"{self.name} was already freed")
        if self.places:
            raise HandleError(f"{self.name} is still mapped in {_memories(len(self.places))}")
        self.store.machine.frames.free(self.base_pa, self.pages)
        self.freed = True

    def __repr__(self) -> str:
        return f"<MemoryHandle {self.name} ({self.pages} pages, mapped in {len(self.places)})>"


def _memories(n: int) -> str:
    return "1 memory" if n == 1 else f"{n} memories"


__all__ = ["HandleError", "MemoryHandle"]
