"""``hwsim build DRIVER_DIR`` and ``hwsim run BOARD DRIVER``: build and run sandboxed drivers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser(
        "build",
        help="build a C driver directory to a wasm module (zig cc, cached)",
        description="Compile DRIVER_DIR/*.c with zig cc to DRIVER_DIR/build/NAME.wasm, with "
        "drivers/include/hwsim.h; rebuilt only when a source changes.",
    )
    b.add_argument("driver_dir", metavar="DRIVER_DIR")
    b.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    b.add_argument(
        "--native",
        action="store_true",
        help="build native riscv64 firmware instead, to run unsandboxed: NAME.elf in DRIVER_DIR/build/ "
        "(in hwsim's own source tree: firmware/build/); the path is printed",
    )
    b.set_defaults(func=run_build)

    r = sub.add_parser(
        "run",
        help="run a sandboxed driver on a board",
        description="Run DRIVER (a .wasm module, or a driver directory, built on the fly) on "
        "BOARD.  The UART console is this terminal (stdin/stdout, also when piped). "
        "The run ends when the driver returns, when console input has ended and "
        "the system is idle, or at the virtual-time limit; a report goes to stderr.  "
        "The driver is given the board's assignable devices (or those --assign "
        "names), never the platform devices (interrupt controller, IOMMU, timer).  "
        "Exit status: 0; 1 when the driver trapped, probe() returned a negative "
        "value, a DMA fault or bug occurred, or it reached for a device it was not "
        "given; 124 when a time limit stopped it; 130 on Ctrl-C (the report is "
        "printed first); 2 for bad input.",
    )
    r.add_argument(
        "board",
        metavar="BOARD",
        help="a board file (e.g. boards/virt.toml) or the name of one of hwsim's own boards (virt)",
    )
    r.add_argument(
        "driver",
        metavar="DRIVER",
        help="DRIVER.wasm, a driver directory (built on the fly), or native firmware (.elf from hwsim build --native)",
    )
    r.add_argument(
        "--invoke", nargs="+", metavar=("FUNC", "ARG"), help="call FUNC with integer ARGs instead of probe()"
    )
    r.add_argument(
        "--time-limit",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="wall-clock limit: stop the driver (even in a loop that never calls the host) after "
        "SECONDS of real time, print the report, exit 124 (default: none)",
    )
    r.add_argument(
        "--virtual-time-limit",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="virtual-time limit (default 10): waits and sleeps end there; driver code still "
        "running past it is stopped, exit 124",
    )
    r.add_argument(
        "--assign",
        type=_device_list,
        default=None,
        metavar="DEV[,DEV...]",
        help="give the driver only these devices (default: every assignable device of the board)",
    )
    r.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="DEV.KEY=VALUE",
        help="set a device option of the board, e.g. blk0.image=disk.img or blk0.readonly=yes "
        "(repeatable; VALUE is read as the option's type: true/false, yes/no, on/off or 1/0 "
        "for booleans, decimal or 0x hex for integers)",
    )
    r.add_argument("--quiet", action="store_true", help="no driver log lines and no report on stderr")
    r.add_argument(
        "--trace",
        metavar="PATTERNS",
        help="trace events, e.g. 'dma*,mmio,irq' (globs over event "
        "names and categories; '-name' removes; 'list' lists them)",
    )
    r.add_argument(
        "--trace-out",
        metavar="FILE",
        help="write the trace to FILE: .json Perfetto/Chrome trace, "
        ".jsonl JSON Lines, .vcd device registers, else text "
        "(default: text on stderr)",
    )
    r.add_argument(
        "--trace-format",
        choices=("text", "jsonl", "perfetto", "vcd"),
        help="the trace format, when the file's extension does not say",
    )
    r.set_defaults(func=run_driver)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _device_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"a comma-separated list of device names, not {text!r}")
    return names


def run_build(args: argparse.Namespace) -> int:
    from ..driver import build_driver

    print(build_driver(args.driver_dir, force=args.force, native=args.native))
    return 0


def run_driver(args: argparse.Namespace) -> int:
    from ..trace import EVENTS, tracing

    if args.trace == "list":
        for spec in EVENTS.values():
            print(f"{spec.name:<14} {spec.category:<6} {' '.join(spec.fields)}")
        return 0
    if args.trace is None:
        if args.trace_out or args.trace_format:
            raise ConfigError("--trace-out and --trace-format need --trace PATTERNS")
        return _run_driver(args)
    with tracing(args.trace, args.trace_out, format=args.trace_format):
        return _run_driver(args)


def _run_driver(args: argparse.Namespace) -> int:
    from ..board import load_board
    from ..board.options import parse_options
    from ..driver import DriverRun, build_driver

    path = Path(args.driver)
    if path.is_dir():
        path = build_driver(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read driver {str(path)!r}: {exc.strerror}") from None
    board = load_board(args.board)
    system = board.build(options=parse_options(board, args.option))
    log = (lambda text: None) if args.quiet else (lambda text: print(f"[driver] {text}", file=sys.stderr))
    limits = dict(time_limit_ns=int(args.virtual_time_limit * 1e9), wall_limit_s=args.time_limit, catch_sigint=True)
    run: DriverRun | FirmwareRun
    if data[:4] == b"\x7fELF":  # native firmware, unsandboxed
        from ..driver.firmware import FirmwareRun

        if args.assign is not None:
            raise ConfigError("--assign applies to sandboxed drivers; native firmware reaches every device")
        run = FirmwareRun(system, data, log=log, name=str(path), **limits)
    else:
        run = DriverRun(system, data, log=log, assign=args.assign, **limits)
    entry = "probe"
    call_args: tuple[int, ...] = ()
    if args.invoke:
        entry = args.invoke[0]
        try:
            call_args = tuple(int(a, 0) for a in args.invoke[1:])
        except ValueError:
            raise ConfigError(f"--invoke arguments must be integers, not {args.invoke[1:]}") from None
    report = run.run(entry, call_args)
    sys.stdout.flush()
    if not args.quiet:
        print(report.format(), file=sys.stderr)
    return report.exit_status
