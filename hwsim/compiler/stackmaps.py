"""Stack maps: where a compiled frame keeps its GC references at each safepoint (docs/gc.md).

A safepoint is a place where a collection can happen while the function is on the stack: each call of a
wasm or host function (``call``, ``call_ref``, ``call_indirect``; the callee may allocate) and each
allocating builtin (``gc_alloc`` and the other ``array.new*`` ones); and where a wasi-thread can be stopped
while another one collects: a blocking builtin (``memory.atomic.wait*``) and a metered checkpoint at a
function entry or a loop header (its slow path's return offset; such a map is recorded even when empty, so
the collector can tell it from a checkpoint that is not a safepoint).  Every operand value is spilled to
the frame before such a call (codegen/call.py) or block, so the references the frame holds there are in

    frame slots        spilled operand-stack values, and locals without a register   (fp offset, < 0)
    local registers    callee-saved registers homing locals (a callee may save them)  (DWARF register, >= 0)

A location is written as frames.FrameInfo writes a local's home.  A map is keyed by the code offset the
call returns to (the return address a frame record holds; the ``ecall``'s next instruction for a
builtin), module-relative; a safepoint holding no reference has no entry::

    u32 count, then per safepoint: u32 return offset, u16 n, n x i32 location   (little-endian)

Every word of a reference-typed location is listed, whatever it holds: the collector
(runtime/gcheap.py) keeps an object only when the word is one's address (null, i31s and host handles
are not); a value of any other type is never looked at, however much it looks like an address.
"""

from __future__ import annotations

import bisect
import struct
from array import array
from collections.abc import Iterable, Iterator

from ..wasm.types import EXNREF, FUNCREF, NULLEXNREF, NULLFUNCREF, is_ref

_ENTRY = struct.Struct("<IH")
_COUNT = struct.Struct("<I")
_NOT_GC = frozenset((FUNCREF, EXNREF, NULLFUNCREF, NULLEXNREF))


def holds_gc_word(ty: int) -> bool:
    """May a value of (run-time) type ``ty`` be a GC object's address?  externref's word and every type of
    the any hierarchy (lowered to it); not funcref (a function record) nor exnref (a handle)."""
    return is_ref(ty) and ty not in _NOT_GC


class StackMaps:
    """The stack maps of one compiled module: per safepoint, the locations of its frame's references."""

    __slots__ = ("locations", "offsets")

    def __init__(self, entries: Iterable[tuple[int, tuple[int, ...]]] = ()) -> None:
        ordered = sorted(entries)
        self.offsets = [offset for offset, _ in ordered]
        self.locations = [locs for _, locs in ordered]

    def at(self, offset: int) -> tuple[int, ...]:
        """The reference locations of the safepoint returning to code offset ``offset`` (none: ``()``)."""
        i = bisect.bisect_left(self.offsets, offset)
        if i < len(self.offsets) and self.offsets[i] == offset:
            return self.locations[i]
        return ()

    def has(self, offset: int) -> bool:
        """Is there a map (maybe empty) at ``offset``?  A metered checkpoint's slow path always has one."""
        i = bisect.bisect_left(self.offsets, offset)
        return i < len(self.offsets) and self.offsets[i] == offset

    def __len__(self) -> int:
        return len(self.offsets)

    def __iter__(self) -> Iterator[tuple[int, tuple[int, ...]]]:
        return iter(zip(self.offsets, self.locations))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StackMaps):
            return NotImplemented
        return self.offsets == other.offsets and self.locations == other.locations

    def __repr__(self) -> str:
        return f"StackMaps({len(self)} safepoints)"

    def to_bytes(self) -> bytes:
        parts = [_COUNT.pack(len(self.offsets))]
        for offset, locs in zip(self.offsets, self.locations):
            parts += [_ENTRY.pack(offset, len(locs)), array("i", locs).tobytes()]
        return b"".join(parts)

    @classmethod
    def read(cls, data: memoryview, code_size: int) -> tuple[StackMaps, int]:
        """The maps :meth:`to_bytes` wrote at the start of ``data`` and the bytes they took; ValueError
        naming the problem when they run past ``data``, are out of order or lie outside the code."""
        if len(data) < _COUNT.size:
            raise ValueError("the stack maps' count runs past the end")
        (count,) = _COUNT.unpack_from(data)
        pos, last = _COUNT.size, -1
        maps = cls()
        for _ in range(count):
            if pos + _ENTRY.size > len(data):
                raise ValueError(f"a stack map at {pos} runs past the end")
            offset, n = _ENTRY.unpack_from(data, pos)
            pos += _ENTRY.size
            if not last < offset <= code_size:
                raise ValueError(f"stack map offset {offset:#x} is out of order or outside the code")
            if pos + 4 * n > len(data):
                raise ValueError(f"the stack map at {offset:#x} runs past the end")
            locs = array("i")
            locs.frombytes(data[pos : pos + 4 * n])
            pos += 4 * n
            if any(loc >= 32 or (loc < 0 and loc & 7) for loc in locs):
                raise ValueError(f"the stack map at {offset:#x} names a location that cannot hold a reference")
            maps.offsets.append(offset)
            maps.locations.append(tuple(locs))
            last = offset
        return maps, pos
