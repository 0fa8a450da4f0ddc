"""The board loader's exception, in a leaf module (board.py and system.py both raise it)."""

from __future__ import annotations

from ..errors import HwsimError

__all__ = ["BoardError"]


class BoardError(HwsimError, ValueError):
    """A board file is malformed; the message names the file, the table/key and the problem."""

    def __init__(self, path: str, table: str | None, key: str | None, problem: str) -> None:
        where = ""
        if table is not None:
            where = f" [{table}]" + (f" {key}" if key is not None else "")
        elif key is not None:
            where = f" {key}"
        super().__init__(f"{path}:{where}: {problem}" if where else f"{path}: {problem}")
        self.path, self.table, self.key, self.problem = path, table, key, problem
