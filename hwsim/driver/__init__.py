"""Sandboxed drivers: C (or any wasm) drivers built with zig, run on a board through the ``hwsim`` host interface."""

from .build import BuildError, build_driver
from .runner import MMIO_WINDOWS, DriverError, DriverRun, RunReport

__all__ = ["BuildError", "DriverError", "DriverRun", "MMIO_WINDOWS", "RunReport", "build_driver"]
