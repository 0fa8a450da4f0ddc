"""Store watches (``Machine.watch_stores``): RAM pages Unicorn may not write, and a hook that carries each store out.

::

    watch_stores(pa, length, handler)                      on every hart's Unicorn engine
      its pages in the machine's RAM  ---------------->  uc_mem_protect(page, READ | EXEC)   (the first time:
                                                         Unicorn splits its RAM region; mem_map_ptr memory
                                                         keeps the same host bytes), and a WRITE_PROT
                                                         hook over that page alone (EngineHook.cover)
    a guest store to such a page
      the inline TLB compare fails (TLB_DISCARD_WRITE) --> store_helper --> UC_HOOK_MEM_WRITE_PROT, PC synced
        --> hwsim_ram_store (C, native_fill.c) or ProtectedStores.hook (Python): shown to the watches its first
            byte is in, written into the RAM buffer; returns true --> Unicorn drops its own write
    guest loads of the page, stores to every other page  --> the inline fast path
    a range outside the machine's RAM, another Unicorn, a failed self-test, a refused protect
      --> a UC_HOOK_MEM_WRITE hook over the range; while one exists, every store of code translated
          then takes Unicorn's slow path (``Machine.store_watch_reason`` says why)

Unicorn 2.1.4, read in its source (accel/tcg/cputlb.c, uc.c, softmmu/memory.c, exec.c) and checked by the
self-test below on a scratch engine (:func:`unavailable_reason`):

- ``tcg_uc_has_hookmem`` (tcg.h) sends every load and store of code translated while a MEM_READ or MEM_WRITE
  hook exists, whatever its range, through ``load_helper``/``store_helper``; a MEM_*_PROT hook does not.
- ``uc_mem_protect`` of part of a RAM region splits it (``split_region``: for ``mem_map_ptr`` memory the
  pieces are mapped again over the same host bytes; unmapping the old region invalidates its translated
  code and drops each of its pages from the TLB: ~1.6 ms for 128 MiB, once per new piece) and marks the
  piece read-only; every change of the read-only flag flushes the engine's TLB whole (``tcg_commit``).
  Unmapping calls ``get_page_addr_code`` on the region's first address, a TLB fill for a *virtual*
  address whose failure would end the run: the machine's fill hooks answer such fills with an identity
  entry while it protects (``Machine._memory_map_change``), which the same flushes drop.
- A TLB entry of a read-only RAM section carries ``TLB_DISCARD_WRITE``: stores to it leave the inline
  path.  ``store_helper`` finds the region not writable and calls the WRITE_PROT hooks that match the
  *physical* address (after ``cpu_restore_state``: the PC is the store's), with the store's first byte,
  its size and value; a hook returning true lets the store go on, and then an aligned store is dropped
  (TLB_DISCARD_WRITE), while a misaligned one (or one crossing a page) is done again byte by byte through
  ``helper_ret_stb_mmu``: each byte on a protected page comes to the hook again (size 1, same PC) and is
  dropped after it, each byte on a writable page is written by Unicorn.  So the hook writes an aligned
  store, and for a misaligned one writes the bytes as they come, showing only the whole store.  A byte
  from the same PC is the store's own only when it is its next byte: the next address on its first page,
  or, for a store crossing into a protected page, the next offset there with x1..x31 as the store found
  them (shown one by one when the whole store was not, its first byte in no watch: as if the page it began
  on were writable).  Else it is the same instruction storing again (a loop whose store crossed out of a
  protected page into a writable one, whose bytes never came back, and now crosses into a protected page
  from the page before it): a store of its own, shown.
- A store that begins on a writable page and crosses into a protected one never reaches the hook whole:
  its bytes on the protected page come one by one, and are shown so (a MEM_WRITE hook shows nothing of it);
  so are they when it begins on a protected page outside every watch (see below).
- RISC-V AMOs and SC are translated without CF_PARALLEL (``curr_cflags`` is 0): a load, the operation and a
  store through ``store_helper``, so the hook sees the value stored (SC's compare-and-swap stores the old
  value back when it fails, as a MEM_WRITE hook also sees).
- Loads: the region keeps READ, the entry's ``addr_read`` has no flag, so loads stay inline.
- While any memory hook (of any kind, PROT ones included) covers a RAM page, ``notdirty_write`` never marks
  it dirty in the TLB (``uc_mem_hook_installed``), so every store to it takes the slow path: the hook covers
  each protected page alone, never the whole RAM.
- Making the page writable again drops the read-only section (and flushes the TLB), so no entry with
  TLB_DISCARD_WRITE survives to drop a later store; the split pieces stay (a later protect of the same
  pages splits nothing).
"""

from __future__ import annotations

import ctypes
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from unicorn import Uc, UcError
from unicorn import unicorn_const as uc_const
from unicorn.riscv_const import UC_RISCV_REG_PC, UC_RISCV_REG_X1

from ..mmu.bits import PAGE_MASK, PAGE_SIZE
from . import native

try:
    from unicorn.unicorn_py3.arch.types import uc_hook_h
    from unicorn.unicorn_py3.unicorn import uclib

    _uclib: ctypes.CDLL | None = uclib
except ImportError:  # pragma: no cover - older binding layout
    _uclib = None

SUPPORTED_VERSION = (2, 1, 4)  # the store_helper whose behaviour is described above
READ_EXEC = uc_const.UC_PROT_READ | uc_const.UC_PROT_EXEC
_SHOW_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_uint64, ctypes.c_int64, ctypes.c_uint64)  # StoreHook.show


_X1_X31 = range(UC_RISCV_REG_X1, UC_RISCV_REG_X1 + 31)


class ProtectedStores:
    """One engine's WRITE_PROT hook in Python: ``hwsim_ram_store``'s rules (native_fill.c), for machines
    without the compiled helper, and for the self-test."""

    __slots__ = (
        "view",
        "base",
        "show",
        "ranges",
        "pending_pc",
        "pending",
        "pending_pa",
        "pending_first",
        "tail_next",
        "pending_shown",
        "regs",
        "stores",
        "shown",
    )

    def __init__(self, view: memoryview, base: int, show: Callable[[int, int, int], None]) -> None:
        self.view, self.base, self.show = view, base, show
        self.ranges: tuple[tuple[int, int], ...] = ()  # [start, end) of each watch
        # A misaligned store Unicorn is carrying out byte by byte: its PC, its byte stores still to come, the
        # address of its next byte on its first page and how many bytes there have not come, the page offset
        # of its next byte on the page after (a crossing store), whether it was shown whole, and x1..x31 as it
        # began (when it crosses).
        self.pending_pc = self.pending = self.pending_pa = self.pending_first = self.tail_next = 0
        self.pending_shown = False
        self.regs: list[int] = []
        self.stores = self.shown = 0

    def _pending_byte(self, uc, pa: int) -> int:
        """``pending_byte`` in native_fill.c: whether the byte store at ``pa`` is the next byte of the pending
        misaligned store, on its first page (the byte after the last: 1) or on the page after (the next
        offset there, with every register as the store found it: 2), not the same instruction's next
        store (0)."""
        if uc.reg_read(UC_RISCV_REG_PC) != self.pending_pc:
            return 0
        if self.pending_first and pa == self.pending_pa:
            self.pending_first -= 1
            self.pending_pa += 1
            return 1
        if (
            self.pending <= self.pending_first
            or pa & PAGE_MASK != self.tail_next
            or [uc.reg_read(r) for r in _X1_X31] != self.regs
        ):
            return 0
        self.pending -= self.pending_first  # (its bytes on its first page that did not come never will)
        self.pending_first = 0
        self.tail_next += 1
        return 2

    def _in_ranges(self, pa: int) -> bool:
        return any(start <= pa < end for start, end in self.ranges)

    def hook(self, uc, _access, pa: int, size: int, value: int, _data) -> bool:
        at = pa - self.base
        if not (1 <= size <= 8 and 0 <= at <= len(self.view) - size):
            return False  # not RAM this hook serves: Unicorn reports the write to protected memory
        value &= (1 << (8 * size)) - 1
        if self.pending:
            own = self._pending_byte(uc, pa) if size == 1 else 0
            if own:  # a byte of a misaligned store: shown only on the page after, when the whole was not
                self.pending -= 1
                if own == 2 and not self.pending_shown and self._in_ranges(pa):
                    self.shown += 1
                    self.show(pa, 1, value)
                self.view[at] = value
                return True
            self.pending = 0
        misaligned = pa & (size - 1)
        if misaligned:  # Unicorn goes on byte by byte: those calls write
            self.pending_pc, self.pending, self.pending_pa = uc.reg_read(UC_RISCV_REG_PC), size, pa
            self.pending_first, self.tail_next = min(size, PAGE_SIZE - (pa & PAGE_MASK)), 0
            if self.pending_first < size:  # it crosses: the registers tell its rest from the next store
                self.regs = [uc.reg_read(r) for r in _X1_X31]
        shown = self._in_ranges(pa)
        if misaligned:
            self.pending_shown = shown
        if shown:
            self.shown += 1
            self.show(pa, size, value)
        self.stores += 1
        if not misaligned:
            self.view[at : at + size] = value.to_bytes(size, "little")
        return True


class EngineHook:
    """The WRITE_PROT hook of one Unicorn engine over the protected pages of one RAM region: the compiled
    ``hwsim_ram_store`` when ``lib`` is the helper, else :class:`ProtectedStores`; one Unicorn hook per page
    (:meth:`cover`), never one over all RAM: while a memory hook covers a RAM page, Unicorn never marks it
    dirty in its TLB (``notdirty_write``: ``uc_mem_hook_installed``), so every store to it would take the slow
    path (measured: 15x slower stores)."""

    def __init__(self, uc: Uc, base: int, view: memoryview, host_address: int, show, lib) -> None:
        self._uc = uc
        self._py: ProtectedStores | None = None
        self._state: native.StoreHook | None = None
        self._ranges: ctypes.Array | None = None
        if lib is not None and _uclib is not None:
            callback = _SHOW_CFUNC(show)
            self._state = native.StoreHook(
                uc=uc._uch.value,  # type: ignore[union-attr]
                reg_read=ctypes.cast(_uclib.uc_reg_read, ctypes.c_void_p).value,
                reg_pc=UC_RISCV_REG_PC,
                reg_x1=UC_RISCV_REG_X1,
                ram=host_address,
                ram_base=base,
                ram_size=len(view),
                show=ctypes.cast(callback, ctypes.c_void_p).value,
            )
            self._function = ctypes.cast(lib.hwsim_ram_store, ctypes.c_void_p)
            self._keep = (callback, self._state)  # Unicorn and the C hook hold raw pointers to these
        else:
            self._py = ProtectedStores(view, base, show)

    def cover(self, start: int, size: int) -> int:
        """Add the hook over ``[start, start + size)``; returns its Unicorn handle (for :meth:`uncover`)."""
        if self._py is not None:
            return self._uc.hook_add(uc_const.UC_HOOK_MEM_WRITE_PROT, self._py.hook, begin=start, end=start + size - 1)
        hook = uc_hook_h()
        err = _uclib.uc_hook_add(  # type: ignore[union-attr]
            self._uc._uch,
            ctypes.byref(hook),
            uc_const.UC_HOOK_MEM_WRITE_PROT,
            self._function,
            ctypes.c_void_p(ctypes.addressof(self._state)),  # type: ignore[arg-type]
            ctypes.c_uint64(start),
            ctypes.c_uint64(start + size - 1),
        )
        if err:
            raise UcError(err)
        return hook.value

    def uncover(self, handle: int) -> None:
        if self._py is not None:
            self._uc.hook_del(handle)
            return
        err = _uclib.uc_hook_del(self._uc._uch, uc_hook_h(handle))  # type: ignore[union-attr]
        if err:
            raise UcError(err)

    @property
    def native(self) -> bool:
        return self._state is not None

    def set_ranges(self, ranges: list[tuple[int, int]]) -> None:
        """The watches' ``[start, end)`` ranges, ascending by start: the stores the hook shows."""
        if self._py is not None:
            self._py.ranges = tuple(ranges)
            return
        assert self._state is not None
        words = (ctypes.c_uint64 * max(2, 2 * len(ranges)))(*(w for r in ranges for w in r))
        self._ranges = words  # (kept alive while the C side points at it)
        self._state.ranges, self._state.n_ranges = ctypes.addressof(words), len(ranges)

    @property
    def stores(self) -> int:
        """Guest stores to protected pages this hook carried out."""
        return self._state.stores if self._state is not None else self._py.stores  # type: ignore[union-attr]

    @property
    def shown(self) -> int:
        return self._state.shown if self._state is not None else self._py.shown  # type: ignore[union-attr]


@dataclass
class StoreWatch:
    start: int
    end: int
    handler: Callable[[int, int, int], None]
    pages: tuple[int, ...]  # the pages it protects; () when it is a MEM_WRITE hook on every hart
    hooks: dict[int, tuple[int, Callable]]  # hart id -> its MEM_WRITE hook and callback (the fallback)
    live: bool = True  # False once removed: a store being shown to the watches before it is not shown to it


def page_runs(pages) -> Iterator[tuple[int, int]]:
    """``(start, size)`` of each run of consecutive pages in ``pages``."""
    runs: list[list[int]] = []
    for page in sorted(pages):
        if runs and runs[-1][1] == page:
            runs[-1][1] += PAGE_SIZE
        else:
            runs.append([page, page + PAGE_SIZE])
    for start, end in runs:
        yield start, end - start


def pages_of(start: int, end: int) -> tuple[int, ...]:
    return tuple(range(start & ~PAGE_MASK, end, PAGE_SIZE))


# -- the self-test ------------------------------------------------------------------------------------------

_BASE = 0x1000_0000  # code, a writable page, the protected page, a writable page
_PROTECTED = _BASE + 2 * PAGE_SIZE
_VALUE = 0x1122_3344_5566_7788


def _program() -> bytes:
    from ..riscv import asm as A

    a = A.Assembler(_BASE)
    a.li("a1", _PROTECTED).li("a2", _PROTECTED + PAGE_SIZE).li("a0", _VALUE)
    a.emit(
        A.sd("a0", "a1", 8),  # aligned, each size
        A.sw("a0", "a1", 16),
        A.sh("a0", "a1", 20),
        A.sb("a0", "a1", 23),
        A.sd("a0", "a1", 0x21),  # misaligned within the page
        A.sw("a0", "a1", 0x31),
        A.sd("a0", "a2", -4),  # crossing into the writable page after it
        A.sd("a0", "a1", -3),  # crossing from the writable page before it
        A.addi("a5", "a1", 0x40),
        A.amo("add", "a4", "a5", "a0", double=True),
        A.lr("a6", "a5", double=True),
        A.sc("a7", "a5", "a0", double=True),  # succeeds
        A.addi("a5", "a1", 0x50),
        A.amo("swap", "a4", "a5", "a0", double=False),
        A.ld("t0", "a1", 8),  # loads read the page
        A.sd("t0", "a1", 0x60),
    )
    return a.finish()


# Each store the hook must show (offset in the protected page, size, value), in order.
_SHOWN = [
    (8, 8, _VALUE),
    (16, 4, _VALUE & 0xFFFF_FFFF),
    (20, 2, 0x7788),
    (23, 1, 0x88),
    (0x21, 8, _VALUE),
    (0x31, 4, _VALUE & 0xFFFF_FFFF),
    (0xFFC, 8, _VALUE),
    (0, 1, 0x55),  # the bytes of the store from the page before (its first 3 bytes are there)
    (1, 1, 0x44),
    (2, 1, 0x33),
    (3, 1, 0x22),
    (4, 1, 0x11),
    (0x40, 8, _VALUE),
    (0x40, 8, _VALUE),
    (0x50, 4, _VALUE & 0xFFFF_FFFF),
    (0x60, 8, _VALUE),
]


def _run_program(protect: bool, lib) -> tuple[bytes, list[tuple[int, int, int]]]:
    code = _program()
    buffer = mmap.mmap(-1, 4 * PAGE_SIZE)
    view = memoryview(buffer)
    host = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    uc = Uc(uc_const.UC_ARCH_RISCV, uc_const.UC_MODE_RISCV64)
    uc.mem_map_ptr(_BASE, 4 * PAGE_SIZE, uc_const.UC_PROT_ALL, host)
    view[: len(code)] = code
    shown: list[tuple[int, int, int]] = []
    if protect:
        hook = EngineHook(uc, _BASE, view, host, lambda pa, size, value: shown.append((pa, size, value)), lib)
        hook.set_ranges([(_PROTECTED, _PROTECTED + PAGE_SIZE)])
        hook.cover(_PROTECTED, PAGE_SIZE)
        uc.mem_protect(_PROTECTED, PAGE_SIZE, READ_EXEC)
    uc.emu_start(_BASE, _BASE + len(code))
    memory = bytes(view)  # (the engine, the hook and the buffer go together with this frame)
    return memory, [(pa - _PROTECTED, size, value) for pa, size, value in shown]


def _self_test(lib) -> str | None:
    """Why stores to a protected page are not carried out exactly on a scratch engine (None: they are): the
    program's memory with the page protected and the hook must equal its memory on a plain page, and the
    hook must have shown :data:`_SHOWN`."""
    expect, _ = _run_program(False, None)
    got, shown = _run_program(True, lib)
    if got != expect:
        first = next(i for i in range(len(got)) if got[i] != expect[i])
        return f"the store-watch self-test left different memory at offset {first:#x} of the scratch RAM"
    if shown != _SHOWN:
        return f"the store-watch self-test showed {shown}, not {_SHOWN}"
    return None


_REASONS: dict[bool, str | None] = {}


def unavailable_reason(lib) -> str | None:
    """Why store watches fall back to MEM_WRITE hooks (None: pages are protected), for the compiled hook
    (``lib``, the helper) or the Python one (None).  Checked once per process for each."""
    key = lib is not None
    if key not in _REASONS:
        version = _uclib.uc_version(None, None) if _uclib is not None else 0
        found = (version >> 24 & 0xFF, version >> 16 & 0xFF, version >> 8 & 0xFF)
        if _uclib is None:
            _REASONS[key] = "the Unicorn binding's layout is not the expected one"
        elif found != SUPPORTED_VERSION:
            _REASONS[key] = (
                f"Unicorn {'.'.join(map(str, found))} is not {'.'.join(map(str, SUPPORTED_VERSION))}, whose "
                f"stores to read-only pages were verified"
            )
        else:
            try:
                _REASONS[key] = _self_test(lib)
            except Exception as exc:  # (the binding's UcError, a ctypes error): MEM_WRITE hooks, and why
                _REASONS[key] = f"the store-watch self-test raised {type(exc).__name__}: {exc}"
    return _REASONS[key]


# -- the machine's store watches ------------------------------------------------------------------------------


class StoreWatches:
    """The store watches of a machine, shared by its harts (``Machine.watch_stores``): pages protected on every
    hart's engine with one :class:`EngineHook` each, or a MEM_WRITE hook per hart where that cannot be."""

    def __init__(self, machine) -> None:
        self.machine = machine  # hart 0 (machine.harts lists them all)
        self.watches: dict[int, StoreWatch] = {}
        self.protected: dict[int, int] = {}  # page -> how many watches protect it
        self.hooks: dict[int, EngineHook] = {}  # hart id -> its WRITE_PROT hook (from the first protect on)
        self.covers: dict[tuple[int, int], int] = {}  # (hart id, protected page) -> the Unicorn hook over it
        self.showing = None  # the hart whose store the handlers are being shown (Machine.store_pc)
        self.showing_pc: int | None = None  # the PC of a host-carried bulk store being shown (else the hart's)
        self.fallback_reason: str | None = None  # why the last watch that could not protect its pages could not
        self._by_protection: list[StoreWatch] = []  # the watches that protect pages, ascending by start
        self._next_handle = 1

    def _library(self):
        return native.library() if self.machine.native else None

    def reason(self, start: int, end: int) -> str | None:
        """Why a watch of ``[start, end)`` would be a MEM_WRITE hook (None: its pages are protected)."""
        ram = self.machine.ram
        if not (ram.base <= start and end <= ram.base + ram.size):
            return f"[{start:#x}, {end:#x}) is not inside the machine's RAM at {ram.base:#x}"
        return unavailable_reason(self._library())

    def add(self, start: int, length: int, handler: Callable[[int, int, int], None]) -> int:
        end = start + length
        handle, self._next_handle = self._next_handle, self._next_handle + 1
        why = self.reason(start, end)
        pages: tuple[int, ...] = ()
        if why is None:
            pages = pages_of(start, end)
            new = [page for page in pages if page not in self.protected]
            try:
                self._protect(new, READ_EXEC)
            except UcError as exc:
                self._protect(new, uc_const.UC_PROT_ALL, strict=False)
                why, pages = f"Unicorn refused to protect the pages: {exc}", ()
            for page in pages:
                self.protected[page] = self.protected.get(page, 0) + 1
        watch = StoreWatch(start, end, handler, pages, {})
        self.watches[handle] = watch
        if why is None:
            self._set_ranges()
        else:
            self.fallback_reason = why
            for hart in self.machine.harts:
                watch.hooks[hart.hartid] = self._write_hook(hart, watch)
        return handle

    def remove(self, handle: int) -> bool:
        """End the watch ``handle`` (False: there is none)."""
        watch = self.watches.pop(handle, None)
        if watch is None:
            return False
        watch.live = False  # (a handler may end it while a store is shown: the handlers after it skip it)
        for hartid, (hook, _) in watch.hooks.items():
            self.machine.harts[hartid]._uc.hook_del(hook)
        freed = []
        for page in watch.pages:
            left = self.protected[page] - 1
            if left:
                self.protected[page] = left
            else:
                del self.protected[page]
                freed.append(page)
        self._set_ranges()
        self._protect(freed, uc_const.UC_PROT_ALL)  # writable again, and no TLB entry drops a store
        return True

    def attach(self, hart) -> None:
        """A hart added to the machine: the protections and hooks of the watches there are."""
        if self.protected:
            self._protect_on(hart, list(self.protected), READ_EXEC)
        for watch in self.watches.values():
            if not watch.pages:
                watch.hooks[hart.hartid] = self._write_hook(hart, watch)

    def _protect(self, pages: list[int], perms: int, *, strict: bool = True) -> None:
        if pages:
            for hart in self.machine.harts:
                try:
                    self._protect_on(hart, pages, perms)
                except UcError:
                    if strict:
                        raise

    def _protect_on(self, hart, pages: list[int], perms: int) -> None:
        hook = self.hooks.get(hart.hartid)
        if hook is None:
            ram = self.machine.ram
            hook = EngineHook(hart._uc, ram.base, ram.view, ram.host_address, self._shower(hart), self._library())
            hook.set_ranges([(w.start, w.end) for w in self._by_protection])
            self.hooks[hart.hartid] = hook
        protect = perms != uc_const.UC_PROT_ALL
        if protect:  # the hook first, then the pages
            for page in pages:
                if (hart.hartid, page) not in self.covers:
                    self.covers[hart.hartid, page] = hook.cover(page, PAGE_SIZE)
        with hart._memory_map_change():
            for start, size in page_runs(pages):
                hart._uc.mem_protect(start, size, perms)
        if not protect:  # writable again: no hook may keep Unicorn from marking the page dirty
            for page in pages:
                handle = self.covers.pop((hart.hartid, page), None)
                if handle is not None:
                    hook.uncover(handle)

    def _set_ranges(self) -> None:
        self._by_protection = sorted((w for w in self.watches.values() if w.pages), key=lambda w: w.start)
        ranges = [(w.start, w.end) for w in self._by_protection]
        for hook in self.hooks.values():
            hook.set_ranges(ranges)

    def _shower(self, hart) -> Callable[[int, int, int], None]:
        """What a hart's hook calls with a store to show: the handlers of the watches it begins in."""

        def show(pa: int, size: int, value: int) -> None:
            self.showing = hart
            try:
                for watch in self._by_protection:
                    if watch.start <= pa < watch.end and watch.live:
                        watch.handler(pa, size, value)
            except BaseException as exc:  # never let an exception unwind through Unicorn
                hart._fail_in_hook(exc)
            finally:
                self.showing = None

        return show

    def _write_hook(self, hart, watch: StoreWatch) -> tuple[int, Callable]:
        """The fallback: a MEM_WRITE hook over the watch's range on ``hart``'s engine (and the callback, kept)."""
        handler = watch.handler

        def stored(uc, _access, address, size, value, _data) -> None:
            self.showing = hart
            try:
                handler(address, size, value & ((1 << (8 * size)) - 1))
            except BaseException as exc:  # never let an exception unwind through Unicorn
                hart._fail_in_hook(exc)
            finally:
                self.showing = None

        return hart._uc.hook_add(uc_const.UC_HOOK_MEM_WRITE, stored, begin=watch.start, end=watch.end - 1), stored

    def show_host_store(self, hart, pa: int, data: bytes) -> None:
        """A store ``hart``'s host carries out for the guest: shown to the watches it begins in."""
        value = int.from_bytes(data, "little")
        self.showing = hart
        try:
            for watch in list(self.watches.values()):
                if watch.start <= pa < watch.end and watch.live:
                    watch.handler(pa, len(data), value)
        finally:
            self.showing = None

    def show_bulk_store(self, hart, pa: int, length: int, read: Callable[[int, int], bytes], pc: int) -> None:
        """A guest bulk store (memory.copy/fill/init, which the host carries out) of ``length`` bytes at
        ``pa``, not crossing a page: before it lands, its bytes inside watched ranges are shown to the
        watches as the aligned stores of at most 8 bytes a loop of stores would make, in address order;
        ``read(offset, size)`` gives the bytes that land at ``pa + offset``; :meth:`Machine.store_pc` names
        ``pc`` (the operation's call) while they are shown."""
        end = pa + length
        watching = [w for w in self.watches.values() if w.start < end and pa < w.end]
        if not watching:
            return
        cuts = sorted({pa, end, *(x for w in watching for x in (w.start, w.end) if pa < x < end)})
        self.showing, self.showing_pc = hart, pc
        try:
            for lo, hi in zip(cuts, cuts[1:]):
                if not any(w.start <= lo < w.end for w in watching):
                    continue
                at = lo
                while at < hi:
                    size = 8
                    while at % size or at + size > hi:
                        size >>= 1
                    value = int.from_bytes(read(at - pa, size), "little")
                    for watch in watching:
                        if watch.start <= at < watch.end and watch.live:
                            watch.handler(at, size, value)
                    at += size
        finally:
            self.showing = self.showing_pc = None

    @property
    def protected_stores(self) -> int:
        """Guest stores to protected pages the hooks carried out, on every hart."""
        return sum(hook.stores for hook in self.hooks.values())
