"""virtio 1.x: the virtio-mmio transport (version 2), split virtqueues, virtio-blk and virtio-net."""

from .blk import DiskImage, VirtioBlk
from .mmio import VirtioMmio
from .net import LoopbackBackend, NetBackend, NetStats, PcapBackend, VirtioNet
from .queue import Chain, SplitQueue, VirtqueueError

__all__ = [
    "Chain",
    "DiskImage",
    "LoopbackBackend",
    "NetBackend",
    "NetStats",
    "PcapBackend",
    "SplitQueue",
    "VirtioBlk",
    "VirtioMmio",
    "VirtioNet",
    "VirtqueueError",
]
