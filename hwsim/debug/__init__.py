"""Debugging guest code with GDB: a remote-protocol server on the emulated hart (see docs/debugging.md)."""

from .elf import CodeRegion, CodeSymbol, write_elf
from .monitor import MACHINE_COMMANDS, Command, MonitorError, run_command
from .replay import ReplayRestart
from .server import ExecFile, GdbServer, listen, parse_address, run_replayable
from .target import MemoryRefused, RegisterError, read_memory, stop_signal, target_xml, write_memory

__all__ = [
    "CodeRegion",
    "CodeSymbol",
    "Command",
    "ExecFile",
    "GdbServer",
    "MACHINE_COMMANDS",
    "MonitorError",
    "MemoryRefused",
    "RegisterError",
    "ReplayRestart",
    "listen",
    "parse_address",
    "read_memory",
    "run_command",
    "run_replayable",
    "stop_signal",
    "target_xml",
    "write_elf",
    "write_memory",
]
