"""GDB's ``monitor`` commands (``qRcmd``): hwsim's own state, shown on GDB's console.

A command is a name and a function ``(machine, words) -> text``; the server
runs the one named and prints its text.  :data:`MACHINE_COMMANDS` are the
machine's (any run); a runner adds its own (``extra`` of ``GdbServer``: the
board's virtual time for ``hwsim run``).  Errors in a command's arguments
are its text, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable

from ..machine import Machine
from ..mmu.report import format_walk
from ..riscv.priv import Access

Command = Callable[[Machine, list[str]], str]


class MonitorError(Exception):
    """A command's arguments are wrong: the message is shown."""


def _walk(machine: Machine, words: list[str]) -> str:
    """mmu walk VA [load|store|fetch]: the page-table walk of VA as the hart would do it now"""
    if len(words) < 2 or words[0] != "walk" or len(words) > 3:
        raise MonitorError("usage: monitor mmu walk VA [load|store|fetch]")
    try:
        va = int(words[1], 0)
        access = Access(words[2]) if len(words) == 3 else Access.LOAD
    except ValueError:
        raise MonitorError(f"usage: monitor mmu walk VA [load|store|fetch] (not {' '.join(words[1:])!r})") from None
    result = machine.translate(va, access)
    if result is None:
        return f"{va:#x}: no translation (the hart is in M-mode, or satp is Bare): the address is physical"
    return "\n".join(format_walk(result))


def _help(commands: dict[str, Command]) -> Command:
    def show(machine: Machine, words: list[str]) -> str:
        return "\n".join(f"{name:<8} {(fn.__doc__ or '').strip()}" for name, fn in sorted(commands.items()))

    show.__doc__ = "this list"
    return show


MACHINE_COMMANDS: dict[str, Command] = {"mmu": _walk}


def run_command(commands: dict[str, Command], machine: Machine, line: str) -> str:
    """The text of ``line`` run as a monitor command."""
    words = line.split()
    table = {**commands, "help": _help(commands)}
    if not words:
        words = ["help"]
    command = table.get(words[0])
    if command is None:
        return f"unknown monitor command {words[0]!r}; 'monitor help' lists them"
    try:
        return command(machine, words[1:])
    except MonitorError as exc:
        return str(exc)
