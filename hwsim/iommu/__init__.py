"""The IOMMU: device directory, IO page tables walked by the CPU's walker, IOTLB, command and fault queues."""

from .bits import IommuCause, IommuMode, cmd_iodir_inval_ddt, cmd_iofence_c, cmd_iotinval_vma
from .directory import DeviceContext, DeviceDirectory, IommuError
from .faults import DirectoryStep, DmaAccess, FaultQueue, IommuFault
from .iommu import DmaPort, DmaResult, Iommu, IommuStats

__all__ = [
    "DeviceContext",
    "DeviceDirectory",
    "DirectoryStep",
    "DmaAccess",
    "DmaPort",
    "DmaResult",
    "FaultQueue",
    "Iommu",
    "IommuCause",
    "IommuError",
    "IommuFault",
    "IommuMode",
    "IommuStats",
    "cmd_iodir_inval_ddt",
    "cmd_iofence_c",
    "cmd_iotinval_vma",
]
