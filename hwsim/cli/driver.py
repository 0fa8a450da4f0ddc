"""``hwsim build DRIVER_DIR`` and ``hwsim run BOARD DRIVER``: build and run sandboxed drivers."""

from __future__ import annotations

import argparse
import shlex
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
    b.add_argument(
        "--debug-elf",
        nargs="?",
        const="",
        metavar="PATH",
        help="also write the ELF a debugger reads for the driver (its generated code, symbols and DWARF, "
        "as 'hwsim run --gdb' offers it) to PATH, by default beside the module as NAME.debug.elf; the path "
        "is printed",
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
    r.add_argument(
        "--seed",
        type=_seed,
        default=None,
        metavar="S",
        help="vary device timing (latencies, completion orders, interrupt delays) with seed S; the same "
        "seed replays the same run (default: nominal timing)",
    )
    r.add_argument(
        "--hart-seed",
        type=_seed,
        default=None,
        metavar="S",
        help="native firmware on a board with several harts ([board] harts = N): interleave the harts "
        "with seed S; the same seed replays the same interleaving (default: --seed, else 0)",
    )
    r.add_argument(
        "--schedule",
        type=_schedule,
        default=None,
        metavar="random|pct[:D[:K]]",
        help="native firmware on several harts: how the hart seed picks each turn's hart: random (the "
        "default: a runnable hart drawn each turn) or pct (PCT: random hart priorities, D-1 priority "
        "change points (D: 3 unless given) over the run's length, K steps, else measured by one run)",
    )
    r.add_argument(
        "--irq-hart",
        type=int,
        default=None,
        metavar="H",
        help="native firmware on several harts: run the interrupt handler on hart H, in its turns "
        "interleaved with the other harts (default: on hart 0, between two turns)",
    )
    r.add_argument(
        "--explore",
        type=_count,
        default=None,
        metavar="N",
        help="run N seeded variations of device timing (seeds S..S+N-1, S from --seed or 0); stop at the "
        "first failing seed, print it with the command that replays it, exit 1; exit 0 when all pass",
    )
    r.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="with --explore: run the seeds on a Dask cluster (the scheduler's tcp://HOST:PORT, or the file "
        "'dask scheduler --scheduler-file' wrote); the answer is the one a run here gives (docs/scaling.md)",
    )
    r.add_argument("--chunk", type=_count, default=50, help="with --cluster: seeds per task (default 50)")
    r.add_argument(
        "--results",
        metavar="FILE",
        type=Path,
        help="with --cluster: append each finished chunk to this JSON Lines file, and skip the chunks it "
        "already holds (resume an interrupted exploration)",
    )
    r.add_argument(
        "--faults",
        action="store_true",
        help="with --explore (or --seed): also inject device faults (each kind a device offers, rarely, "
        "chosen by the seed)",
    )
    r.add_argument(
        "--inject",
        action="append",
        default=[],
        type=_fault_spec,
        metavar="DEV.KIND[@N,...|%P]",
        help="make a device fail: blk0.ioerr@3 (the 3rd request), net0.drop%%10 (10%% of frames, per seed), "
        "dma0.error (always); repeatable; 'hwsim run BOARD DRIVER --inject list' lists the kinds",
    )
    r.add_argument(
        "--gdb",
        metavar="[HOST:]PORT",
        help="wait for GDB on PORT (HOST defaults to 127.0.0.1; port 0 picks a free one, printed) and run "
        "under its control: the hart stops before the first instruction; 'target remote HOST:PORT' in "
        "gdb-multiarch gives it the registers and the code's symbols (docs/debugging.md)",
    )
    r.add_argument(
        "--debug-elf",
        nargs="?",
        const="",
        metavar="PATH",
        help="write the ELF a debugger reads for this run (generated code, symbols, DWARF) to PATH, by "
        "default beside the driver as NAME.debug.elf, for gdb-multiarch without --gdb or a later session",
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


def _seed(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a non-negative integer, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is a non-negative integer, not {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a positive number of runs, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"a positive number of runs, not {text!r}")
    return value


def _fault_spec(text: str):
    if text == "list":
        return text
    from ..devices.faults import FaultSpec

    try:
        return FaultSpec.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _device_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"a comma-separated list of device names, not {text!r}")
    return names


def run_build(args: argparse.Namespace) -> int:
    from ..board import DEFAULT_BOARD, load_board
    from ..driver import DriverRun, build_driver

    path = build_driver(args.driver_dir, force=args.force, native=args.native)
    print(path)
    if args.debug_elf is not None:
        data = path.read_bytes()
        if args.native:  # native firmware is its own debug ELF
            exec_file = data
        else:  # the code a run generates: loaded as a run on the default board loads it
            run = DriverRun(load_board(DEFAULT_BOARD).build(), data, log=lambda text: None)
            exec_file = _exec_file(run, path, data).data
        print(_write_debug_elf(args.debug_elf, path, exec_file))
    return 0


def _write_debug_elf(where: str, path: Path, data: bytes) -> Path:
    """Write the debug ELF to ``where`` ('' : beside the driver module, NAME.debug.elf); its path."""
    target = Path(where) if where else path.with_name(f"{path.stem}.debug.elf")
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"cannot write the debug ELF {str(target)!r}: {exc.strerror}") from None
    return target


def _exec_file(run, path: Path, data: bytes):
    """The executable a debugger is given for ``run``: the ELF of the generated code of a sandboxed
    driver (hwsim/driver/debugging.py), native firmware's own file."""
    from ..debug import ExecFile
    from ..driver import DriverRun
    from ..driver.debugging import driver_exec_file

    if isinstance(run, DriverRun):
        return driver_exec_file(run.vm, f"/hwsim/{path.stem}.elf", source_dirs=_source_dirs(path))
    return ExecFile(str(path.resolve()), data)


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


def _list_faults(system) -> int:
    points = [
        (f"{name}.{kind}", what) for name, device in system.devices.items() for kind, what in device.FAULTS.items()
    ]
    width = max((len(point) for point, _ in points), default=0)
    for point, what in points:
        print(f"{point:<{width}}  {what}")
    return 0


def _schedule(text: str):
    from ..machine.schedules import parse_schedule

    try:
        return parse_schedule(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _resolve_schedule(args, board, options, data: bytes, entry: str, call_args: tuple):
    """``--schedule`` with PCT's run length measured when not given (None: the default, random)."""
    from ..driver.explore import estimate_steps
    from ..machine.schedules import PctSchedule

    schedule = args.schedule
    if schedule is None:
        return None
    if data[:4] != b"\x7fELF":
        raise ConfigError("--schedule applies to native firmware: a sandboxed driver runs on hart 0")
    if isinstance(schedule, PctSchedule) and schedule.steps is None:
        steps = estimate_steps(
            board,
            data,
            options=options,
            entry=entry,
            args=call_args,
            time_limit_ns=int(args.virtual_time_limit * 1e9),
            irq_hart=args.irq_hart,
        )
        schedule = PctSchedule(schedule.depth, steps, measured=True)
        if not args.quiet:
            print(f"schedule: pct, depth {schedule.depth}, over {steps} steps (one run with seed 0)", file=sys.stderr)
    return schedule


def _replay_command(args: argparse.Namespace, seed: int) -> str:
    """``hwsim run ...`` as given, with ``--explore N`` (and ``--cluster``, ``--chunk``) replaced by ``--seed S``."""
    argv, skip = [], False
    for item in sys.argv[1:]:
        if skip:
            skip = False
            continue
        if item in ("--explore", "--seed", "--cluster", "--chunk", "--results"):
            skip = True
            continue
        if item.startswith(("--explore=", "--seed=", "--cluster=", "--chunk=", "--results=")):
            continue
        argv.append(item)
    words = ["hwsim", *argv, "--seed", str(seed)]
    return " ".join(shlex.quote(w) for w in words)


def _explore(args, board, options, data: bytes, entry: str, call_args: tuple) -> int:
    from ..driver.explore import explore

    if data[:4] == b"\x7fELF" and args.assign is not None:
        raise ConfigError("--assign applies to sandboxed drivers; native firmware reaches every device")
    if args.hart_seed is not None:
        raise ConfigError("--explore chooses the hart seed: seed S interleaves the harts with S too")
    uart_input = b"" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read()
    first = args.seed or 0
    if args.cluster:
        return _explore_on_cluster(args, board, options, data, entry, call_args, uart_input, first)
    result = explore(
        board,
        data,
        range(first, first + args.explore),
        options=options,
        entry=entry,
        args=call_args,
        inject=[s for s in args.inject if s != "list"],
        faults=args.faults,
        uart_input=uart_input,
        assign=args.assign,
        time_limit_ns=int(args.virtual_time_limit * 1e9),
        wall_limit_s=args.time_limit,
        schedule=_resolve_schedule(args, board, options, data, entry, call_args),
        irq_hart=args.irq_hart,
    )
    rate = f"{len(result.seeds)} runs in {result.seconds:.1f} s ({result.runs_per_second:.1f} runs/s)"
    if result.ok:
        print(
            f"explore: all {len(result.seeds)} seeds passed ({first}..{first + args.explore - 1}); {rate}",
            file=sys.stderr,
        )
        return 0
    seed = result.failed_seed
    assert seed is not None and result.report is not None  # not ok: a seed failed, with its report
    if not args.quiet:
        print(result.report.format(), file=sys.stderr)
    print(f"explore: seed {seed} fails (after {len(result.seeds) - 1} passing); {rate}", file=sys.stderr)
    print(f"replay: {_replay_command(args, seed)}", file=sys.stderr)
    return 1


def _explore_on_cluster(args, board, options, data: bytes, entry: str, call_args: tuple, uart_input: bytes, first: int):
    from ..driver.explore import explore_on_cluster
    from ._progress import Progress, per_worker

    bar = Progress(args.explore, "runs", quiet=args.quiet, label="explore")
    try:
        result = explore_on_cluster(
            args.cluster,
            board,
            data,
            first,
            args.explore,
            chunk=args.chunk,
            on_chunk=lambda result, done, total: bar.update(result.runs, f"chunks {done}/{total}"),
            journal=args.results,
            options=options,
            entry=entry,
            args=call_args,
            inject=tuple(s for s in args.inject if s != "list"),
            faults=args.faults,
            uart_input=uart_input,
            assign=args.assign,
            time_limit_ns=int(args.virtual_time_limit * 1e9),
            wall_limit_s=args.time_limit,
            schedule=_resolve_schedule(args, board, options, data, entry, call_args),
            irq_hart=args.irq_hart,
        )
    finally:
        bar.close()
    if result.workers:
        print(f"explore: per worker: {per_worker(result.workers, 'runs')}", file=sys.stderr)
    if result.resumed:
        print(f"explore: {result.resumed} chunks taken from {args.results}", file=sys.stderr)
    rate = f"{result.runs} runs on the cluster in {result.seconds:.1f} s"
    if result.reruns:
        rate += f"; {result.reruns} chunks ran again after their worker was lost"
    for s, e, why in result.lost:
        print(f"explore: seeds {s}..{e} NOT CHECKED: {why}", file=sys.stderr)
    if result.failed_seed is None:
        if result.lost:
            return 1
        print(
            f"explore: all {args.explore} seeds passed ({first}..{first + args.explore - 1}); {rate}", file=sys.stderr
        )
        return 0
    if not args.quiet:
        print(result.report, file=sys.stderr)
    print(f"explore: seed {result.failed_seed} fails (every seed before it passed); {rate}", file=sys.stderr)
    print(f"replay: {_replay_command(args, result.failed_seed)}", file=sys.stderr)
    return 1


def _source_dirs(path: Path) -> list[Path]:
    """Where a driver's C files are: its directory (DRIVER/build/NAME.wasm -> DRIVER), then hwsim.h's."""
    from ..driver.build import BuildError, include_dir

    driver_dir = path.parent.parent if path.parent.name == "build" else path.parent
    dirs = [driver_dir]
    try:
        dirs.append(include_dir(driver_dir))
    except BuildError:
        pass
    return dirs


# The trace events kept for GDB's 'monitor trace' when --trace chose none: all but the MMU's (one per
# page walk and TLB miss would drown the rest)
GDB_TRACE_EVENTS = "*,-page_walk,-tlb_miss,-tlb_flush"


def _run_under_gdb(address: str, build_system, make_run, log, exec_file_of, entry: str, call_args: tuple):
    """Wait for GDB on ``address``, then run with the hart under its control; the run's report.

    ``make_run(build_system(), log)`` builds the run on a new board (reverse execution builds it again:
    debug/replay.py), its host effects said once (driver/replay.py); ``exec_file_of(run)``: the
    executable GDB is offered (the first run's)."""
    from ..debug import GdbServer, listen, parse_address, run_replayable
    from ..driver import DriverRun
    from ..driver.control import StopCause
    from ..driver.debugging import monitor_commands, wasm_trap_explainer
    from ..driver.replay import HostEffects
    from ..trace import TRACE, RingSink

    host, port = parse_address(address)
    listener = listen(host, port)
    ring = RingSink()  # the trace so far, for 'monitor trace': the --trace events, else all but the MMU's
    own_trace = not TRACE.enabled
    effects = HostEffects(log)
    if own_trace:
        TRACE.enable(GDB_TRACE_EVENTS, ring)
    else:
        effects.gate_trace(TRACE.sinks)  # --trace's sinks: each event once, however often the run is replayed
        TRACE.sinks.append(ring)

    def build():
        system = build_system()
        run = make_run(system, effects.adopt(system))
        sandboxed = isinstance(run, DriverRun)
        clock = run.system.clock
        parts = dict(
            explain=wasm_trap_explainer(run.vm) if sandboxed else None,
            kill=run.vm.interrupt if sandboxed else run.interrupt,
            monitor=monitor_commands(
                run.system, assigned=run.assigned if sandboxed else None, dma=run.dma if sandboxed else None, trace=ring
            ),
            now_ns=lambda: clock.ticks_to_ns(clock.now),
        )
        return run, parts

    try:
        run, parts = build()
        exec_file = exec_file_of(run)
        server = GdbServer(run.system.machine, exec_file=exec_file, replay=True, **parts)
        bound = listener.getsockname()[1]
        print(
            f"hwsim: waiting for GDB on {host}:{bound} (gdb-multiarch -ex 'target remote {host}:{bound}')",
            file=sys.stderr,
            flush=True,
        )
        server.accept(listener)
    finally:
        listener.close()
    report = None
    try:

        def rebuild():
            ring.clear()  # the trace of the run being replayed starts again
            run, parts = build()
            return run, run.system.machine, parts

        report = run_replayable(server, run, lambda run: run.run(entry, call_args), rebuild)
        if server.killed:
            report.stopped = StopCause.USER  # stopped by the user, from the debugger: exit status 130
    finally:
        effects.commit()
        if report is not None:
            server.finish(report.exit_status, f"hwsim: {report.format().splitlines()[1]}")
        else:
            server.finish(1, "hwsim: the run failed (hwsim's error message is on its terminal)")
        if own_trace:
            TRACE.disable()
        else:
            TRACE.sinks.remove(ring)
    return report


def _run_driver(args: argparse.Namespace) -> int:
    from ..board import load_board
    from ..board.options import parse_options
    from ..devices.faults import FaultPlan
    from ..driver import DriverRun, build_driver

    path = Path(args.driver)
    if path.is_dir():
        path = build_driver(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read driver {str(path)!r}: {exc.strerror}") from None
    board = load_board(args.board)
    options = parse_options(board, args.option)
    if "list" in args.inject:
        return _list_faults(board.build(options=options))
    if args.faults and args.explore is None and args.seed is None:
        raise ConfigError("--faults needs --explore N or --seed S (the seed chooses the faults)")
    entry = "probe"
    call_args: tuple[int, ...] = ()
    if args.invoke:
        entry = args.invoke[0]
        try:
            call_args = tuple(int(a, 0) for a in args.invoke[1:])
        except ValueError:
            raise ConfigError(f"--invoke arguments must be integers, not {args.invoke[1:]}") from None
    if args.cluster and args.explore is None:
        raise ConfigError("--cluster runs an exploration: give --explore N")
    if args.results and not args.cluster:
        raise ConfigError("--results resumes an exploration on a cluster; give --explore N --cluster ADDRESS")
    if args.explore is not None:
        if args.gdb is not None:
            raise ConfigError("--gdb debugs one run; --explore makes many")
        return _explore(args, board, options, data, entry, call_args)
    if args.gdb is not None and args.time_limit is not None:
        raise ConfigError("--time-limit counts wall-clock time, which a debugger stops; use --virtual-time-limit")
    faults = FaultPlan(tuple(args.inject), seed=args.seed, explore=args.faults)
    system = board.build(options=options, seed=args.seed, faults=faults)
    log = (lambda text: None) if args.quiet else (lambda text: print(f"[driver] {text}", file=sys.stderr))
    limits = dict(time_limit_ns=int(args.virtual_time_limit * 1e9), wall_limit_s=args.time_limit, catch_sigint=True)
    if data[:4] == b"\x7fELF" and args.assign is not None:  # native firmware, unsandboxed
        raise ConfigError("--assign applies to sandboxed drivers; native firmware reaches every device")
    if data[:4] != b"\x7fELF" and args.hart_seed is not None:
        raise ConfigError("--hart-seed applies to native firmware: a sandboxed driver runs on hart 0")
    if data[:4] != b"\x7fELF" and args.irq_hart is not None:
        raise ConfigError("--irq-hart applies to native firmware: a sandboxed driver runs on hart 0")
    schedule = _resolve_schedule(args, board, options, data, entry, call_args)

    from ..driver.firmware import FirmwareRun

    def make_run(system, log) -> DriverRun | FirmwareRun:
        if data[:4] == b"\x7fELF":
            return FirmwareRun(
                system,
                data,
                log=log,
                name=str(path),
                hart_seed=args.hart_seed,
                schedule=schedule,
                irq_hart=args.irq_hart,
                **limits,
            )
        return DriverRun(system, data, log=log, assign=args.assign, **limits)

    def exec_file_of(run):
        exec_file = _exec_file(run, path, data)
        if args.debug_elf is not None:
            written = _write_debug_elf(args.debug_elf, path, exec_file.data)
            print(f"hwsim: debug ELF written to {written}", file=sys.stderr)
        return exec_file

    if args.gdb is not None:
        systems = iter([system])  # the first run's, then a new one for each replay

        def build_system():  # (a fault plan has state: its draws and counts, so each run has its own)
            plan = FaultPlan(tuple(args.inject), seed=args.seed, explore=args.faults)
            return next(systems, None) or board.build(options=options, seed=args.seed, faults=plan)

        report = _run_under_gdb(args.gdb, build_system, make_run, log, exec_file_of, entry, call_args)
    else:
        run = make_run(system, log)
        if args.debug_elf is not None:
            exec_file_of(run)
        report = run.run(entry, call_args)
    sys.stdout.flush()
    if not args.quiet:
        print(report.format(), file=sys.stderr)
    return report.exit_status
