"""ISA-neutral register handles: a register is a class (integer or float) and a hardware number."""

from __future__ import annotations

import enum


class RegClass(enum.IntEnum):
    """Which register file a register (and a value of a given type) belongs to."""

    INT = 0
    FLOAT = 1


INT = RegClass.INT
FLOAT = RegClass.FLOAT


class Reg:
    """A register: its class and hardware number.  Interned (one object per class and number), so registers
    compare and hash by identity, in C: the register allocator compares them often."""

    __slots__ = ("cls", "num")
    cls: RegClass
    num: int

    def __new__(cls, reg_class: RegClass | int, num: int) -> Reg:
        key = (int(reg_class), num)
        reg = _INTERNED.get(key)
        if reg is None:
            reg = _INTERNED[key] = object.__new__(cls)
            object.__setattr__(reg, "cls", RegClass(reg_class))
            object.__setattr__(reg, "num", num)
        return reg

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a register is immutable (cannot set {name})")

    def __reduce__(self) -> tuple:
        return Reg, (int(self.cls), self.num)

    @property
    def name(self) -> str:
        """The architectural name by number: ``x10``, ``f10``."""
        return f"{'x' if self.cls == INT else 'f'}{self.num}"

    def __repr__(self) -> str:
        return self.name


_INTERNED: dict[tuple[int, int], Reg] = {}
