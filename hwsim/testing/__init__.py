"""The hwsim pytest plugin (entry point ``pytest11``): fixtures to test drivers against simulated devices.

::

    def test_echo(hwsim_driver):
        run = hwsim_driver("drivers/uart16550", uart_input=b"hi\\n")
        assert run.report.ok
        assert run.console == b"hi\\n"

    def test_catches_overrun(hwsim_driver):
        run = hwsim_driver("drivers/examples/buggy/overrun")
        assert run.dma_problems == ["OVERRUN"]

``hwsim_board(path=DEFAULT_BOARD, **options)`` builds a board with the UART on
an in-memory backend (``uart_input`` feeds it); ``hwsim_driver(driver, ...)``
builds the driver if it is a directory, runs its ``probe`` (or ``entry`` with
``args``) and returns a :class:`DriverResult`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ..board import DEFAULT_BOARD, load_board
from ..devices.backends import MemoryBackend
from ..driver import DriverRun, RunReport, build_driver


@dataclass
class DriverResult:
    run: DriverRun
    report: RunReport
    uart: MemoryBackend | None

    @property
    def console(self) -> bytes:
        """What the driver sent through the UART."""
        return bytes(self.uart.output) if self.uart is not None else b""

    @property
    def dma_problems(self) -> list[str]:
        """The DMA checker's findings, by name (e.g. ``["OVERRUN"]``)."""
        return [r.problem.name for r in self.report.dma_reports]

    @property
    def log(self) -> list[str]:
        return self.run.log


def make_board(path=DEFAULT_BOARD, *, uart_input: bytes = b"", options: dict | None = None):
    """A built board whose UARTs use in-memory backends; ``uart_input`` is queued on ``uart0``."""
    board = load_board(path)
    overrides = dict(options or {})
    system = board.build(options=overrides)
    uart = None
    for name, device in system.devices.items():
        if hasattr(device, "backend") and getattr(device, "TYPE", "") == "ns16550a":
            backend = MemoryBackend(uart_input if name == "uart0" else b"")
            device.backend = backend
            if name == "uart0":
                uart = backend
    return system, uart


@pytest.fixture
def hwsim_board():
    def factory(path=DEFAULT_BOARD, *, uart_input: bytes = b"", **options):
        system, _ = make_board(path, uart_input=uart_input, options=options)
        return system
    return factory


@pytest.fixture
def hwsim_driver():
    def factory(driver, *, board=DEFAULT_BOARD, uart_input: bytes = b"", options: dict | None = None,
                entry: str = "probe", args: tuple = ()) -> DriverResult:
        path = Path(driver)
        wasm = build_driver(path) if path.is_dir() else path
        system, uart = make_board(board, uart_input=uart_input, options=options)
        run = DriverRun(system, Path(wasm).read_bytes(), log=lambda text: None)
        return DriverResult(run, run.run(entry, args), uart)
    return factory
