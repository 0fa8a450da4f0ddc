"""What pyelftools raises on malformed input, in one place for every caller that hands it untrusted bytes.

pyelftools raises its own ``ELFError`` (``ELFParseError``, ``ELFCompressionError``) and ``DWARFError`` for
what it checks, and otherwise whatever its parsers trip over.  Fuzzing truncated and corrupted firmware
(tests/test_machine_elf.py) found ``AssertionError`` (an address size of 0), ``OverflowError`` (a p_filesz
past the index range), ``ZeroDivisionError`` (a line table whose line_range is 0), ``TypeError`` and
``AttributeError``.  Callers catch :data:`PARSE_ERRORS` around pyelftools calls only, and either raise a
clear error naming the file (ELF) or drop what they could not read (DWARF source lines).
"""

from __future__ import annotations

import struct

from elftools.common.exceptions import DWARFError, ELFError
from elftools.construct import ConstructError

PARSE_ERRORS: tuple[type[BaseException], ...] = (
    ELFError,
    DWARFError,
    ConstructError,
    struct.error,
    ArithmeticError,
    AssertionError,
    AttributeError,
    EOFError,
    LookupError,
    TypeError,
    ValueError,
    RuntimeError,  # RuntimeError: RecursionError, NotImplementedError
)
