"""Per-page flushes of Unicorn's TLB: QEMU's ``tlb_flush_page`` reached through libunicorn's exports, verified.

::

    Unicorn 2.1.4's public API flushes its TLB whole (UC_CTL_TLB_FLUSH), and the ~27 refills after each
    flush cost more than the change that asked for it.  libunicorn exports QEMU's own per-page flush:

        tlb_flush_page_riscv64(CPUState *cpu, target_ulong va)   every MMU index (U, S, M), the victim
                                                                 TLB and the page's jump-cache entries

    The CPUState is not public.  It is uc_struct.cpu, found in the engine's uc_struct by its neighbours
    (uc_priv.h, Unicorn 2.1.4), which are exported functions:

        uc_struct: ... tcg_flush_tlb  uc_invalidate_tb  uc_gen_tb  tb_flush  add_inline_hook
                       del_inline_hook  context_size  context_save  context_restore  cpu  ...
                       = tcg_flush_softmmu_tlb_riscv64      = uc_add_inline_hook_riscv64 (+4)
                                                            = uc_del_inline_hook_riscv64 (+5)   (+9)

    and the CPUState found there must point back at the uc_struct (CPUState.uc).  Memory is read through
    /proc/self/mem, so a layout that does not match is an error, never a crash.  Once per process a
    self-test on a scratch engine in virtual-TLB mode caches three pages, flushes one, and checks through
    the TLB-fill hook that exactly that page is filled again (in M-mode and in U-mode).

Any of that failing (another Unicorn version, a symbol missing, the layout, the self-test), or
``HWSIM_NO_NATIVE=1``, leaves every flush whole; :func:`unavailable_reason` says why.
"""

from __future__ import annotations

import ctypes
import os
import struct

from unicorn import unicorn_const as uc_const
from unicorn.riscv_const import UC_RISCV_REG_A1, UC_RISCV_REG_A2, UC_RISCV_REG_PC, UC_RISCV_REG_PRIV

from . import native

SUPPORTED_VERSION = (2, 1, 4)  # the uc_struct layout below is Unicorn 2.1.4's (include/uc_priv.h)
_ANCHOR = "tcg_flush_softmmu_tlb_riscv64"  # uc_struct.tcg_flush_tlb
_NEIGHBOURS = {4: "uc_add_inline_hook_riscv64", 5: "uc_del_inline_hook_riscv64"}  # words after the anchor
_CPU_WORD = 9  # uc_struct.cpu, in words after the anchor
_UC_SCAN = 2048  # bytes of the uc_struct searched for the anchor (it sits at byte 368 on x86-64 Linux)
_CPU_SCAN = 48 << 10  # bytes of the CPUState searched for its uc back pointer (33192 on x86-64 Linux)

_PAGE, _MASK = 0x1000, 0xFFF
_FLUSH_PAGE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64)


def _library():
    try:
        from unicorn.unicorn_py3.unicorn import uclib
    except ImportError:  # pragma: no cover - older binding layout
        return None
    return uclib


def _version() -> tuple[int, int, int]:
    lib = _library()
    word = lib.uc_version(None, None)
    return word >> 24 & 0xFF, word >> 16 & 0xFF, word >> 8 & 0xFF


def _address(lib, name: str) -> int | None:
    try:
        return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
    except AttributeError:
        return None


def _read(address: int, size: int) -> bytes | None:
    """``size`` bytes of this process's memory at ``address``, or None where they are not mapped."""
    try:
        fd = os.open("/proc/self/mem", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.pread(fd, size, address)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data if len(data) == size else None


def find_cpu(uc) -> tuple[int | None, str | None]:
    """(the CPUState of the Unicorn engine ``uc``, None) or (None, why not).  The engine must be initialised
    (a register read or written, or memory mapped)."""
    handle = uc._uch.value or 0  # (its uc_struct)
    lib = _library()
    if lib is None:  # pragma: no cover - older binding layout
        return None, "the unicorn binding does not expose its library"
    version = _version()
    if version != SUPPORTED_VERSION:
        return None, f"Unicorn {'.'.join(map(str, version))} is not 2.1.4, whose uc_struct layout hwsim knows"
    anchor = _address(lib, _ANCHOR)
    neighbours = {k: _address(lib, name) for k, name in _NEIGHBOURS.items()}
    if anchor is None or None in neighbours.values() or _address(lib, "tlb_flush_page_riscv64") is None:
        return None, "libunicorn does not export tlb_flush_page_riscv64 and the uc_struct anchors"
    raw = _read(handle, _UC_SCAN)
    if raw is None:
        return None, "cannot read this process's memory through /proc/self/mem"
    words = struct.unpack(f"<{_UC_SCAN // 8}Q", raw)
    hits = [i for i, w in enumerate(words[: -_CPU_WORD - 1]) if w == anchor]
    if len(hits) != 1 or any(words[hits[0] + k] != address for k, address in neighbours.items()):
        return None, "uc_struct.tcg_flush_tlb and its neighbours are not where Unicorn 2.1.4 keeps them"
    cpu = words[hits[0] + _CPU_WORD]
    state = _read(cpu, _CPU_SCAN) if cpu else None
    if state is None or handle not in struct.unpack(f"<{_CPU_SCAN // 8}Q", state):
        return None, "uc_struct.cpu is not a CPUState that points back at its engine"
    return cpu, None


def flush_page_function() -> int:
    """The address of ``tlb_flush_page_riscv64(CPUState *, target_ulong)``, for the compiled helper."""
    return _address(_library(), "tlb_flush_page_riscv64") or 0


class PageFlush:
    """``flush(va)``: drop page ``va`` from one engine's TLB (every MMU index)."""

    __slots__ = ("_cpu", "_fn", "cpu")

    def __init__(self, cpu: int) -> None:
        self.cpu = cpu
        self._fn = _FLUSH_PAGE(flush_page_function())
        self._cpu = ctypes.c_void_p(cpu)

    def flush(self, va: int) -> None:
        self._fn(self._cpu, va & ~_MASK)


_REASON: str | None = None
_CHECKED = False


def _self_test() -> str | None:
    """Why per-page flushes do not work as they must on a scratch engine (None: they do)."""
    from unicorn import Uc

    from ..riscv.asm import ld

    base, pages = 0x8000_0000, (0x8000_1000, 0x8000_2000)
    uc = Uc(uc_const.UC_ARCH_RISCV, uc_const.UC_MODE_RISCV64)
    uc.ctl_set_tlb_mode(uc_const.UC_TLB_VIRTUAL)  # type: ignore[attr-defined]
    uc.mem_map(base, 0x4000)
    code = ld(5, 11, 0).to_bytes(4, "little") + ld(6, 12, 0).to_bytes(4, "little")
    uc.mem_write(base, code)
    filled: list[int] = []

    def fill(_uc, va, _access, entry, _data) -> bool:
        filled.append(va)
        entry.paddr, entry.perms = va, uc_const.UC_PROT_ALL
        return True

    uc.hook_add(uc_const.UC_HOOK_TLB_FILL, fill)
    uc.reg_write(UC_RISCV_REG_A1, pages[0])
    uc.reg_write(UC_RISCV_REG_A2, pages[1])
    cpu, why = find_cpu(uc)
    if cpu is None:
        return why
    flusher = PageFlush(cpu)
    for priv in (3, 0):  # M-mode, then U-mode: another MMU index
        uc.reg_write(UC_RISCV_REG_PRIV, priv)
        runs = []
        for flushed in (None, pages[0], pages[1], base):
            if flushed is not None:
                flusher.flush(flushed)
            filled.clear()
            uc.reg_write(UC_RISCV_REG_PC, base)
            uc.emu_start(base, base + len(code))
            runs.append(sorted(filled))
        expect = [[base, *pages], [pages[0]], [pages[1]], [base]]
        if runs != expect:
            mode = "M" if priv == 3 else "U"
            return f"the per-page flush self-test failed in {mode}-mode: refilled {runs}, not {expect}"
    return None


def unavailable_reason() -> str | None:
    """Why Unicorn's TLB is flushed whole for a page (None: per-page flushes work).  Checked once."""
    global _REASON, _CHECKED
    if not _CHECKED:
        _CHECKED = True
        if native.turned_off():
            _REASON = "HWSIM_NO_NATIVE is set"
        else:
            try:
                _REASON = _self_test()
            except Exception as exc:  # (the binding's UcError, a ctypes error): whole flushes, and why
                _REASON = f"the per-page flush self-test raised {type(exc).__name__}: {exc}"
    return _REASON


class HandedPages:
    """The pages handed to Unicorn's TLB since its last whole flush, for a hart the Python hook serves alone:
    native_fill.c's record and its ``hwsim_flush_pa``/``hwsim_flush_va``, in Python (same answers: how many
    pages were dropped, or -1 for "flush it whole", which empties the record)."""

    __slots__ = ("capacity", "pages", "lost", "supers")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.pages: dict[int, tuple[int, int]] = {}  # va page -> (pa page, size of the leaf that mapped it)
        self.lost = False  # the record overflowed: what Unicorn holds is no longer known
        self.supers = 0  # pages handed from superpages (counted when lost too)

    def clear(self) -> None:
        self.pages.clear()
        self.lost = False
        self.supers = 0

    def add(self, va: int, pa_page: int, size: int) -> None:
        if size > _PAGE:
            self.supers += 1
        page = va & ~_MASK
        if len(self.pages) >= self.capacity and page not in self.pages:
            self.lost = True
            return
        self.pages[page] = (pa_page & ~_MASK, size)

    def flush_frame(self, pa_page: int, most: int, flush) -> int:
        """Drop every page handed as ``pa_page`` with ``flush(va)`` (None: none can be dropped alone)."""
        vas = [va for va, (pa, _size) in self.pages.items() if pa == pa_page]
        if not vas and not self.lost:
            return 0
        if flush is None or self.lost or len(vas) > most:
            return -1
        for va in vas:
            flush(va)
            del self.pages[va]
        return len(vas)

    def flush_range(self, va: int, pages: int, most: int, flush) -> int:
        """Drop ``pages`` pages from ``va``, and every page handed from a superpage reaching into them."""
        if flush is None or pages > most or (self.supers and self.lost):
            return -1
        end = va + pages * _PAGE
        extra = []
        if self.supers:
            for page, (_pa, size) in self.pages.items():
                base = page & ~(size - 1)
                if size > _PAGE and base < end and va < base + size and not va <= page < end:
                    extra.append(page)
            if pages + len(extra) > most:
                return -1
        for page in range(va, end, _PAGE):
            flush(page)
            self.pages.pop(page, None)
        for page in extra:
            flush(page)
            del self.pages[page]
        return pages + len(extra)
