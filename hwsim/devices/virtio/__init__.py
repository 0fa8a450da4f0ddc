"""virtio 1.x: the virtio-mmio transport (version 2), split virtqueues, and virtio-blk."""

from .blk import DiskImage, VirtioBlk
from .mmio import VirtioMmio
from .queue import Chain, SplitQueue, VirtqueueError

__all__ = ["Chain", "DiskImage", "SplitQueue", "VirtioBlk", "VirtioMmio", "VirtqueueError"]
