"""The emulated machine: CPUs (harts), physical memory map, frame allocator, the harts' scheduler."""

from .debug import DebugPort, DebugStop, DebugStopKind
from .fault import CpuFault, RunResult, StopReason, WatchHit
from .frames import FrameAllocator, FrameError
from .harts import HartScheduler, HartsOutcome, HartsResult, HartState, HartStats
from .hooks import EcallAction
from .machine import DEFAULT_RAM_BASE, DEFAULT_RAM_SIZE, MAX_HARTS, Machine, VirtualAccessError
from .physmem import MmioRegion, PhysicalMemory, RamRegion

__all__ = [
    "CpuFault",
    "DEFAULT_RAM_BASE",
    "DEFAULT_RAM_SIZE",
    "DebugPort",
    "DebugStop",
    "DebugStopKind",
    "EcallAction",
    "FrameAllocator",
    "FrameError",
    "HartScheduler",
    "HartState",
    "HartStats",
    "HartsOutcome",
    "HartsResult",
    "MAX_HARTS",
    "Machine",
    "MmioRegion",
    "PhysicalMemory",
    "RamRegion",
    "RunResult",
    "StopReason",
    "VirtualAccessError",
    "WatchHit",
]
