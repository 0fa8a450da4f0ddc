"""The emulated machine: CPU, physical memory map, frame allocator."""

from .debug import DebugPort, DebugStop, DebugStopKind
from .fault import CpuFault, RunResult, StopReason, WatchHit
from .frames import FrameAllocator, FrameError
from .hooks import EcallAction
from .machine import DEFAULT_RAM_BASE, DEFAULT_RAM_SIZE, Machine, VirtualAccessError
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
    "Machine",
    "MmioRegion",
    "PhysicalMemory",
    "RamRegion",
    "RunResult",
    "StopReason",
    "VirtualAccessError",
    "WatchHit",
]
