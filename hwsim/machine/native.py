"""The compiled TLB-fill helper (``native_fill.c``): built with zig at first use, loaded with ctypes, optional.

::

    Unicorn TLB miss --> hwsim_fill (C, per-hart HartState) --served--> Unicorn's TLB entry
                              |  model TLB: NativeTlb (the entries live in C)
                              |  anything it does not serve: a fault, tracing, a watched page, a stop
                              v
                         Machine._tlb_fill (Python), over the same NativeTlb

    guest load/store in an MMIO window --> hwsim_mmio_access (C, per-hart AccessHook): a window
                              without rights and this hook letting every access through make Unicorn
                              sync the PC, which the hook keeps for Machine.mmio_pc (no Python)

    guest store to a RAM page mapped READ|EXEC --> hwsim_ram_store (C, per-hart StoreHook): carries it
                              out in the RAM buffer, shows it to the store watches (storewatch.py)

The helper is built once per source digest with ``python -m ziglang cc`` (a pip dependency: no
compiler on the user's machine) into ``~/.cache/hwsim/native/`` (``$XDG_CACHE_HOME`` honoured).
When it cannot be built or loaded, or ``HWSIM_NO_NATIVE=1``, every machine uses the Python hook
and :func:`unavailable_reason` says why; the two paths agree on every observable (counters, TLB
contents and order, A/D bits, faults), which ``tests/test_machine_native.py`` checks.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import struct
import sys
from pathlib import Path

from .._zig import zig_cc
from ..errors import HwsimError
from ..mmu.tlb import Tlb, TlbStats
from ..mmu.walker import Translation
from ..trace import TRACE

SOURCE = Path(__file__).with_name("native_fill.c")
ABI = 7  # HWSIM_NATIVE_ABI in native_fill.c


class NativeBuildError(HwsimError):
    """The helper could not be built or loaded (the Python path is used instead)."""


class TlbRecord(ctypes.Structure):
    """``tlb_record`` in native_fill.c: one model-TLB entry."""

    _fields_ = [
        ("va", ctypes.c_uint64),
        ("pa", ctypes.c_uint64),
        ("page_size", ctypes.c_uint64),
        ("pte_addr", ctypes.c_uint64),
        ("pte", ctypes.c_uint64),
        ("tag", ctypes.c_int64),
        ("level", ctypes.c_int64),
        ("global_", ctypes.c_int64),
    ]

    def translation(self) -> Translation:
        return Translation(self.va, self.pa, self.level, self.page_size, self.pte_addr, self.pte, bool(self.global_))


class NativeTlbStats(ctypes.Structure):
    """``tlb_stats`` in native_fill.c, read in place: the same fields as :class:`~hwsim.mmu.tlb.TlbStats`."""

    _fields_ = [(name, ctypes.c_uint64) for name in TlbStats.__slots__]

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in TlbStats.__slots__}


class HartState(ctypes.Structure):
    """``hart_state`` in native_fill.c: what the C hook needs of one hart."""

    _fields_ = [
        ("uc", ctypes.c_void_p),
        ("reg_read", ctypes.c_void_p),
        ("reg_write", ctypes.c_void_p),
        ("fallback", ctypes.c_void_p),
        ("ram", ctypes.c_void_p),
        ("ram_base", ctypes.c_uint64),
        ("ram_size", ctypes.c_uint64),
        ("tlb", ctypes.c_void_p),
        ("traced", ctypes.c_void_p),
        ("defer", ctypes.c_int64),
        ("ad_fault", ctypes.c_int64),
        ("reg_priv", ctypes.c_int64),
        ("reg_satp", ctypes.c_int64),
        ("reg_mstatus", ctypes.c_int64),
        ("fills", ctypes.c_uint64),
        ("walks", ctypes.c_uint64),
        ("watched", ctypes.c_void_p),  # the watched physical pages, ascending (see Machine._set_watch)
        ("n_watched", ctypes.c_int64),
        # The pages handed to Unicorn's TLB since its last whole flush (va, pa, leaf size), for per-page
        # flushes (Machine.flush_cpu_tlb_range, watch_page; see cputlb.py)
        ("handed", ctypes.c_void_p),
        ("n_handed", ctypes.c_int64),
        ("cap_handed", ctypes.c_int64),
        ("handed_lost", ctypes.c_int64),
        ("n_super", ctypes.c_int64),
        ("flush_page", ctypes.c_void_p),  # QEMU's tlb_flush_page, or None: every flush is whole
        ("cpu", ctypes.c_void_p),
    ]

    def forget_handed(self) -> None:
        """Unicorn's TLB was flushed whole: it holds nothing the record lists."""
        self.n_handed = self.handed_lost = self.n_super = 0


class StoreHook(ctypes.Structure):
    """``store_hook`` in native_fill.c: what one hart's hook over RAM pages watched by protection needs
    (storewatch.py)."""

    _fields_ = [
        ("uc", ctypes.c_void_p),
        ("reg_read", ctypes.c_void_p),
        ("reg_pc", ctypes.c_int64),
        ("reg_x1", ctypes.c_int64),  # (x1..x31 follow it)
        ("ram", ctypes.c_void_p),
        ("ram_base", ctypes.c_uint64),
        ("ram_size", ctypes.c_uint64),
        ("ranges", ctypes.c_void_p),  # [start, end) of each watch, ascending by start
        ("n_ranges", ctypes.c_int64),
        ("show", ctypes.c_void_p),  # the watches' handlers, through a ctypes callback
        # a misaligned store Unicorn is carrying out byte by byte (hwsim_ram_store, pending_byte)
        ("pending_pc", ctypes.c_uint64),
        ("pending", ctypes.c_int64),
        ("pending_pa", ctypes.c_uint64),
        ("pending_first", ctypes.c_int64),
        ("tail_next", ctypes.c_int64),
        ("pending_shown", ctypes.c_int64),
        ("regs", ctypes.c_uint64 * 31),
        ("stores", ctypes.c_uint64),
        ("shown", ctypes.c_uint64),
    ]


class AccessHook(ctypes.Structure):
    """``access_hook`` in native_fill.c: what one hart's PC-syncing hook over the MMIO windows needs, and
    the PC of the last device access it saw."""

    _fields_ = [("reg_read", ctypes.c_void_p), ("reg_pc", ctypes.c_int64), ("pc", ctypes.c_uint64)]


_u64, _i64, _int, _ptr = ctypes.c_uint64, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
_SIGNATURES = {
    "hwsim_native_abi": ((), _int),
    "hwsim_tlb_new": ((_i64,), _ptr),
    "hwsim_tlb_free": ((_ptr,), None),
    "hwsim_tlb_find_record": ((_ptr, _ptr), _int),
    "hwsim_tlb_insert_record": ((_ptr, _ptr), None),
    "hwsim_tlb_flush": ((_ptr, _int, _u64, _int, _i64), _i64),
    "hwsim_tlb_entries": ((_ptr, _ptr, _i64), _i64),
    "hwsim_walk": ((_ptr, _u64, _int, _u64, _int, _int, _int, _int, _ptr), _int),
    "hwsim_handed_add": ((_ptr, _u64, _u64, _u64), None),
    "hwsim_flush_pa": ((_ptr, _u64, _i64), _i64),
    "hwsim_flush_va": ((_ptr, _u64, _i64, _i64), _i64),
    "hwsim_mmio_access": ((_ptr, _int, _u64, _int, _i64, _ptr), ctypes.c_bool),  # (a hook: Unicorn calls it)
    "hwsim_ram_store": ((_ptr, _int, _u64, _int, _i64, _ptr), ctypes.c_bool),  # (a hook too: storewatch.py)
}

# Nonzero while a trace wants every walk (page_walk, tlb_miss): the C hook then defers to Python.
TRACED = ctypes.c_int32(0)


def _trace_changed() -> None:
    TRACED.value = int(TRACE.page_walk is not None or TRACE.tlb_miss is not None)


TRACE.on_change(_trace_changed)
_trace_changed()


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hwsim" / "native"


def build(*, force: bool = False) -> Path:
    """The helper's shared library, built (or found built) for this source, platform and ABI."""
    source = SOURCE.read_bytes()
    key = hashlib.sha256(source + f"{sys.platform} {platform.machine()} abi {ABI}".encode()).hexdigest()
    suffix = ".dll" if sys.platform == "win32" else ".dylib" if sys.platform == "darwin" else ".so"
    output = cache_dir() / f"native_fill-{key[:16]}{suffix}"
    return zig_cc(
        ["-shared", "-fPIC", "-O2", "-fno-sanitize=undefined", str(SOURCE)],
        output,
        key,
        force=force,
        what="the TLB-fill helper",
        hint="zig is not installed (pip install ziglang)",
        error=NativeBuildError,
    )


def load_library(path: Path) -> ctypes.CDLL:
    """The helper at ``path`` with its signatures declared; NativeBuildError if it is not the expected helper."""
    try:
        lib = ctypes.CDLL(str(path))
        for name, (args, result) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, result
    except (OSError, AttributeError) as exc:
        raise NativeBuildError(f"cannot load the TLB-fill helper {path}: {exc}") from None
    if lib.hwsim_native_abi() != ABI:
        raise NativeBuildError(f"the TLB-fill helper {path} has ABI {lib.hwsim_native_abi()}, not {ABI}")
    return lib


def turned_off() -> bool:
    """Whether ``HWSIM_NO_NATIVE`` asks for the pure-Python paths (this helper, per-page TLB flushes)."""
    return os.environ.get("HWSIM_NO_NATIVE", "") not in ("", "0")


_LIB: ctypes.CDLL | None = None
_REASON: str | None = None  # why there is no helper (None: not looked for yet, or there is one)
_LOOKED = False


def library() -> ctypes.CDLL | None:
    """The loaded helper, or None (then :func:`unavailable_reason` says why).  Built at the first call."""
    global _LIB, _REASON, _LOOKED
    if not _LOOKED:
        _LOOKED = True
        if turned_off():
            _REASON = "HWSIM_NO_NATIVE is set"
        else:
            try:
                _LIB = load_library(build())
            except (NativeBuildError, OSError) as exc:
                _REASON = str(exc)
    return _LIB


def unavailable_reason() -> str | None:
    """Why machines use the Python TLB-fill hook (None: they use the compiled helper)."""
    library()
    return _REASON


_RECORD = struct.Struct("=8Q")  # a TlbRecord's words (the tag as its 64 bits; a bool packs as 0 or 1)
_U64 = (1 << 64) - 1


class NativeTlb(Tlb):
    """:class:`~hwsim.mmu.tlb.Tlb` with its entries in C, where the compiled hook looks them up and fills
    them: the same interface and semantics (LRU, ASID tags, global entries, the sfence.vma forms, stats)."""

    def __init__(self, lib: ctypes.CDLL, *, capacity: int = 1024) -> None:
        if capacity <= 0:
            raise ValueError(f"TLB capacity must be positive, not {capacity}")
        handle = lib.hwsim_tlb_new(capacity)
        if not handle:
            raise ValueError(f"TLB capacity {capacity} is too large for the native TLB (at most {1 << 24})")
        self.capacity = capacity
        self._lib = lib
        self.handle: int = handle
        self._handle_arg = ctypes.c_void_p(handle)  # (a ctypes object: no conversion per call)
        self._find, self._insert, self._flush = (
            lib.hwsim_tlb_find_record,
            lib.hwsim_tlb_insert_record,
            lib.hwsim_tlb_flush,
        )
        # One record carries a call's operands in and its entry out; its words, to set them in one go.
        self._out = TlbRecord()
        self._out_ref = ctypes.byref(self._out)
        self._words = memoryview(self._out).cast("B").cast("Q")
        # tlb_t starts with its tlb_stats, then its entry count: read in place.
        self.stats = NativeTlbStats.from_address(handle)  # type: ignore[assignment]
        self._size = ctypes.c_int64.from_address(handle + ctypes.sizeof(NativeTlbStats))

    def __del__(self) -> None:
        handle, self.handle = getattr(self, "handle", 0), 0
        if handle:
            self._lib.hwsim_tlb_free(handle)

    def __len__(self) -> int:
        return self._size.value

    def entries(self) -> list[tuple[int, Translation]]:
        n = len(self)
        out = (TlbRecord * max(n, 1))()
        got = self._lib.hwsim_tlb_entries(self.handle, out, n)
        return [(r.tag, r.translation()) for r in out[:got]]

    def _found(self, asid: int, va: int, flags: int, count: int) -> Translation | None:
        """hwsim_tlb_find: count 0 probes, 1 counts a hit, 2 counts a hit or a miss (see native_fill.c)."""
        words = self._words  # the record's fields: va, pa, page_size, pte_addr, pte, tag, level, global
        words[0], words[4], words[5], words[6] = va, flags, asid & _U64, count  # (GLOBAL, -1, as its bits)
        if self._find(self._handle_arg, self._out_ref):
            return self._out.translation()
        return None

    def probe(self, asid: int, va: int) -> Translation | None:
        return self._found(asid, va, 0, 0)

    def hit(self, asid: int, va: int, flags: int = 0) -> Translation | None:
        return self._found(asid, va, flags, 1)

    def lookup(self, asid: int, va: int) -> Translation | None:
        return self._found(asid, va, 0, 2)

    def insert(self, asid: int, tr: Translation) -> None:
        _RECORD.pack_into(
            self._out, 0, tr.va, tr.pa, tr.page_size, tr.pte_addr, tr.pte, asid & _U64, tr.level, tr.global_
        )
        self._insert(self._handle_arg, self._out_ref)

    def flush(self, va: int | None = None, asid: int | None = None) -> int:
        return self._flush(self.handle, va is not None, va or 0, asid is not None, asid or 0)
