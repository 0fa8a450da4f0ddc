"""ISA-neutral register handles: a register is a class (integer or float) and a hardware number."""

from __future__ import annotations

from dataclasses import dataclass

INT = 0
FLOAT = 1


@dataclass(frozen=True, slots=True)
class Reg:
    cls: int
    num: int

    @property
    def name(self) -> str:
        """The architectural name by number: ``x10``, ``f10``."""
        return f"{'x' if self.cls == INT else 'f'}{self.num}"

    def __repr__(self) -> str:
        return self.name
