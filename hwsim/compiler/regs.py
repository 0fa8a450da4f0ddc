"""ISA-neutral register handles: a register is a class (integer or float) and a hardware number."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RegClass(enum.IntEnum):
    """Which register file a register (and a value of a given type) belongs to."""

    INT = 0
    FLOAT = 1


INT = RegClass.INT
FLOAT = RegClass.FLOAT


@dataclass(frozen=True, slots=True)
class Reg:
    cls: RegClass
    num: int

    def __eq__(self, other: object) -> bool:
        # The generated comparison builds two tuples; the register allocator compares registers often.
        # (The generated hash stays: hash((cls, num)).)
        if other.__class__ is not Reg:
            return NotImplemented
        return self.num == other.num and self.cls == other.cls

    @property
    def name(self) -> str:
        """The architectural name by number: ``x10``, ``f10``."""
        return f"{'x' if self.cls == INT else 'f'}{self.num}"

    def __repr__(self) -> str:
        return self.name
