"""SIMD helper routines: machine code (built from ``simdlib.c``) that modules using v128 carry once each.

::

    simdlib.c --zig cc (RV64IMAFD, medany, no relaxation)--> ELF --.text+.rodata--> _blob.py
                                                                                     CODE, SYMBOLS
    compile_module: functions ... | padding | CODE (when a function calls a helper)
                    jal ra, CODE + SYMBOLS["i8x16_swizzle"]

The code is position independent (PC-relative addressing only) and follows
the RISC-V calling convention: it may clobber the caller-saved registers, so
compiled code spills its operand registers before a call, as for any call
(see docs/architecture.md, *SIMD*).  ``python -m
hwsim.compiler.isa.riscv64.simdlib`` rebuilds ``_blob.py`` after ``simdlib.c``
changes (``ziglang`` must be installed); the build is reproducible, and
``tests/test_compiler_simd.py`` checks the checked-in blob against a rebuild.
"""

from __future__ import annotations

from ._blob import CODE, SYMBOLS

__all__ = ["CODE", "SYMBOLS", "helper_offset"]


def helper_offset(name: str) -> int:
    """The offset in :data:`CODE` of the routine for WebAssembly instruction ``name`` (``i8x16.swizzle``)."""
    return SYMBOLS[name.replace(".", "_")]
