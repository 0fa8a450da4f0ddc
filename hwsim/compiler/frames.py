"""Where a compiled function keeps its frame and its locals, for a debugger (the DWARF of hwsim/debug).

One :class:`FrameInfo` per defined function, recorded by the code generator as
it lays the frame out.  Offsets are from the start of the function's code;
locations are the backend's DWARF register numbers (RV64: x0-x31 are 0-31,
f0-f31 are 32-63) or, when negative, a frame slot at that offset from the
frame pointer (``fp = sp at entry``, the canonical frame address)::

    [0, prologue_end)       frame set-up: ra and the caller's fp pushed, fp set,
                            callee-saved registers stored (``saved``); the first epilogue
                            may lie in it (a guard on the parameters that returns at once)
    [prologue_end, body)    parameters moved to their homes, declared locals zeroed
    [body, end)             every local is in its home (``homes``) for the rest of
                            the function, except in the epilogues
    epilogues               [start, end): sp is back at fp (the CFA), fp is being
                            (or has been) restored; the return or tail jump ends it
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

_HEAD = struct.Struct("<IIHHI")  # prologue_end, body, saved count, epilogue count, home count
_SAVED = struct.Struct("<Hh")  # DWARF register, fp offset
_PAIR = struct.Struct("<II")
_HOME = struct.Struct("<i")  # (read back as array("i"): a 4-byte little-endian int on every host hwsim runs on)


@dataclass(frozen=True, slots=True)
class FrameInfo:
    prologue_end: int
    body: int
    saved: tuple[tuple[int, int], ...]  # (DWARF register, fp offset of its save slot)
    epilogues: tuple[tuple[int, int], ...]  # [start, end) code offsets where the CFA is sp
    homes: tuple[int, ...]  # per wasm local (parameters first): a DWARF register (>= 0) or an fp offset (< 0)

    def to_bytes(self) -> bytes:
        parts = [_HEAD.pack(self.prologue_end, self.body, len(self.saved), len(self.epilogues), len(self.homes))]
        parts += [_SAVED.pack(reg, off) for reg, off in self.saved]
        parts += [_PAIR.pack(start, end) for start, end in self.epilogues]
        parts += [_HOME.pack(home) for home in self.homes]
        return b"".join(parts)

    @classmethod
    def read_many(cls, data: memoryview, pos: int, count: int) -> tuple[list[FrameInfo], int]:
        """``count`` frames as :meth:`to_bytes` wrote them one after another from ``data[pos:]``, and the
        position after them; ValueError when ``data`` ends first.  (One loop over offsets: a cached
        module of 20,000 functions reads its frames on every load.)"""
        frames = []
        head, head_size, limit = _HEAD.unpack_from, _HEAD.size, len(data)
        for _ in range(count):
            if pos + head_size > limit:
                raise ValueError(f"a frame's header at {pos} runs past the end")
            prologue_end, body, n_saved, n_epilogues, n_homes = head(data, pos)
            pos += head_size
            end = pos + n_saved * _SAVED.size + n_epilogues * _PAIR.size + n_homes * _HOME.size
            if end > limit:
                raise ValueError(f"a frame at {pos - head_size} runs past the end")
            saved = tuple(_SAVED.iter_unpack(data[pos : pos + n_saved * _SAVED.size])) if n_saved else ()
            pos += n_saved * _SAVED.size
            epilogues = tuple(_PAIR.iter_unpack(data[pos : pos + n_epilogues * _PAIR.size])) if n_epilogues else ()
            pos += n_epilogues * _PAIR.size
            homes: tuple[int, ...] = ()
            if n_homes:
                words = array("i")
                words.frombytes(data[pos:end])
                homes = tuple(words)
            pos = end
            frames.append(cls(prologue_end, body, saved, epilogues, homes))
        return frames, pos


NO_FRAME = FrameInfo(0, 0, (), (), ())  # a function whose locals are not described (v128 locals lowered)


class FrameTable(Sequence[FrameInfo]):
    """The frames of a module read from the code cache, decoded when a debugger first asks for one.

    A cached load does not need them (they describe the code for GDB), and reading 20,000 of them was
    two thirds of loading a large module from the cache.  The bytes were covered by the cache file's
    hash; a forged file's frames that do not fit their functions are dropped (every function then
    has :data:`NO_FRAME`, and ``problem`` says why): a debugger shows no variables, nothing else
    changes."""

    def __init__(self, data: bytes, count: int, sizes: list[int]) -> None:
        self._data, self._count, self._sizes = data, count, sizes
        self._frames: list[FrameInfo] | None = None
        self.problem: str | None = None

    def _load(self) -> list[FrameInfo]:
        frames = self._frames
        if frames is None:
            try:
                frames, end = FrameInfo.read_many(memoryview(self._data), 0, self._count)
                if end != len(self._data):
                    raise ValueError(f"{len(self._data) - end} bytes after the frames")
                for size, frame in zip(self._sizes, frames):
                    if (
                        frame.prologue_end > size
                        or frame.body > size
                        or (frame.epilogues and max(max(pair) for pair in frame.epilogues) > size)
                        or (frame.homes and max(frame.homes) >= 64)
                    ):
                        raise ValueError("a frame's offsets or registers do not fit its function")
            except ValueError as exc:
                self.problem = str(exc)
                frames = [NO_FRAME] * self._count
            self._frames = frames
        return frames

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):  # (an int or a slice, as a list's)
        return self._load()[index]

    def __iter__(self) -> Iterator[FrameInfo]:
        return iter(self._load())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # (mutable in effect, as a list)
