"""Device models: a register framework, the device skeleton and registry, virtual time, and the models."""

from .backends import CharBackend, ConsoleBackend, FileBackend, MemoryBackend
from .base import DEVICE_TYPES, Device, IrqLine, MmioEvent, Option, OptionError, known_types, register_device
from .clock import ClockEvent, VirtualClock
from .dma import DmaEngine
from .issues import DeviceIssue, IssueKind
from .nvme import NvmeController
from .plic import Plic
from .regs import Field, RegAccess, Register, RegisterFile, RegisterLayout
from .rtc import GoldfishRtc
from .timer import Timer
from .uart import Uart
from .virtio import VirtioBlk, VirtioMmio, VirtioNet

__all__ = [
    "CharBackend",
    "ClockEvent",
    "ConsoleBackend",
    "DEVICE_TYPES",
    "Device",
    "DeviceIssue",
    "DmaEngine",
    "Field",
    "FileBackend",
    "GoldfishRtc",
    "IrqLine",
    "IssueKind",
    "MemoryBackend",
    "MmioEvent",
    "NvmeController",
    "Option",
    "OptionError",
    "Plic",
    "RegAccess",
    "Register",
    "RegisterFile",
    "RegisterLayout",
    "Timer",
    "Uart",
    "VirtioBlk",
    "VirtioMmio",
    "VirtioNet",
    "VirtualClock",
    "known_types",
    "register_device",
]
