"""A pause of Python's cyclic garbage collector around a burst of allocation (decoding or compiling a module)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside the block.

    Decoding and compiling a module allocate millions of small objects that live until the end (decoded
    instructions, operands, pc-map entries), and each collection would walk them all again: a fifth of a
    large module's compile time.  Reference counting frees objects as usual; garbage in cycles waits for
    the first collection after the block.  A collector already disabled (or paused by an outer block)
    stays disabled."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
