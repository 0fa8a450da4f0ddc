"""The hwsim pytest plugin (entry point ``pytest11``): fixtures to test drivers against simulated devices.

::

    def test_echo(hwsim_driver):
        run = hwsim_driver("drivers/uart16550", uart_input=b"hi\\n")
        assert run.report.ok
        assert run.console == b"hi\\n"

    def test_catches_overrun(hwsim_driver):
        run = hwsim_driver("drivers/examples/buggy/overrun")
        assert run.dma_problems == ["OVERRUN"]

    def test_network(hwsim_driver):
        run = hwsim_driver("drivers/virtio_net", entry="receive", args=(2,), net_input=[frame1, frame2])
        assert run.report.result == 2 and run.net_output == []

``hwsim_board(path=DEFAULT_BOARD, **options)`` builds a board with the UART on
an in-memory backend (``uart_input`` feeds it); ``hwsim_driver(driver, ...)``
builds the driver if it is a directory, runs its ``probe`` (or ``entry`` with
``args``) and returns a :class:`DriverResult`.  A relative ``driver`` is looked
for from the working directory, then from the pytest rootdir (the examples above
are hwsim's own drivers, in its source tree; a missing driver is a
:class:`~hwsim.errors.ConfigError` naming where it was looked for).  With ``net_input`` (a list of
frames, or a pcap file) or ``net_capture=True``, ``net0`` uses the pcap
backend: the frames arrive 1 ms apart from the driver's DRIVER_OK, and what
the driver transmits is in ``result.net_output``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..board import DEFAULT_BOARD, load_board
from ..board.options import check_overrides
from ..devices.backends import MemoryBackend
from ..devices.pcap import read_frames, write_pcap
from ..driver import DriverRun, RunReport, build_driver
from ..errors import ConfigError


@dataclass
class DriverResult:
    run: DriverRun
    report: RunReport
    uart: MemoryBackend | None
    net_capture: Path | None = None

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

    @property
    def net_output(self) -> list[bytes]:
        """The frames the driver transmitted on ``net0`` (with ``net_input`` or ``net_capture``)."""
        if self.net_capture is None:
            raise ConfigError("no frames were captured: pass net_input=... or net_capture=True to hwsim_driver")
        return read_frames(self.net_capture)


def net_options(net_input=None, *, capture: bool = False, directory: str | Path | None = None) -> dict:
    """Options that put a virtio-net device on the pcap backend: ``net_input`` (frames, 1 ms apart, or a
    pcap file) as its ``rx``, and with ``capture`` a new ``tx`` file; both in ``directory`` (default: a
    new temporary directory)."""
    if net_input is None and not capture:
        return {}
    directory = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="hwsim-net-"))
    options = {"backend": "pcap", "tx": str(directory / "tx.pcap") if capture else ""}
    if isinstance(net_input, (str, Path)):
        options["rx"] = str(net_input)
    elif net_input is not None:
        rx = directory / "rx.pcap"
        write_pcap(rx, list(net_input))
        options["rx"] = str(rx)
    else:
        options["rx"] = ""
    return options


def make_board(path=DEFAULT_BOARD, *, uart_input: bytes = b"", options: dict | None = None):
    """A built board whose UARTs use in-memory backends; ``uart_input`` is queued on ``uart0``."""
    board = load_board(path)
    overrides = dict(options or {})
    check_overrides(board, overrides, where="hwsim options")
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


def find_driver(driver: str | Path, root: Path | None = None) -> Path:
    """The driver a test names: ``driver`` as given (relative paths from the working directory), else
    relative to ``root`` (the pytest rootdir); a :class:`ConfigError` naming every place looked at."""
    path = Path(driver)
    candidates = [path]
    if not path.is_absolute() and root is not None and root.resolve() != Path.cwd().resolve():
        candidates.append(root / path)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    looked = ", ".join(str(c.absolute()) for c in candidates)
    raise ConfigError(
        f"hwsim_driver: no such driver {str(driver)!r} (a .wasm module or a C driver directory); "
        f"looked for {looked}.  hwsim's own drivers are in its source tree (drivers/), not in an "
        f"installed hwsim"
    )


@pytest.fixture
def hwsim_driver(tmp_path_factory, pytestconfig):
    def factory(
        driver,
        *,
        board=DEFAULT_BOARD,
        uart_input: bytes = b"",
        options: dict | None = None,
        entry: str = "probe",
        args: tuple = (),
        net_input=None,
        net_capture: bool = False,
    ) -> DriverResult:
        path = find_driver(driver, pytestconfig.rootpath)
        wasm = build_driver(path) if path.is_dir() else path
        options = dict(options or {})
        capture = None
        if net_input is not None or net_capture:
            net = net_options(net_input, capture=True, directory=tmp_path_factory.mktemp("hwsim-net"))
            options["net0"] = {**options.get("net0", {}), **net}
            capture = Path(net["tx"])
        system, uart = make_board(board, uart_input=uart_input, options=options)
        try:
            data = Path(wasm).read_bytes()
        except OSError as exc:
            raise ConfigError(f"hwsim_driver: cannot read driver {str(wasm)!r}: {exc.strerror}") from None
        run = DriverRun(system, data, log=lambda text: None)
        return DriverResult(run, run.run(entry, args), uart, capture)

    return factory
