"""``hwsim wasm run PROGRAM.wasm [ARGS...]``: run a WASI command (preview 1) on the emulated CPU.

The shape and exit codes are Wasmtime's (``wasmtime run``): the program's exit status
(``proc_exit``, 0 when ``_start`` returns); a trap prints ``Error: failed to run main module`` and
the trap (with the C line when the module has DWARF) and exits 134 (128 + SIGABRT, as Wasmtime on
Unix; 1 for a trap in a thread that ``wasi::thread-spawn`` started, as wasmtime's wasi-threads).
With wasi-threads (``--wasi-threads`` or ``-S threads``, on by default when the program imports
``wasi::thread-spawn`` or a shared memory) the threads run on the one hart under a seeded scheduler (``--thread-seed``;
hwsim/runtime/threads.py), or on ``--harts N`` (thread t on hart t mod N, turns of ``--hart-turn``
instructions); ``proc_exit`` in any thread, or ``_start`` returning, ends them all.
Errors before the program runs (no such file, an invalid module, an unknown import) are
hwsim's: ``hwsim: error: ...``, exit 2.  Ctrl-C stops the program at its next safe point: exit 130.
"""

from __future__ import annotations

import argparse
import sys

TRAP_EXIT = 128 + 6  # SIGABRT, Wasmtime's exit status for a trap on Unix
THREAD_TRAP_EXIT = 1  # wasmtime-wasi-threads: a trap in a spawned thread exits the process with 1


def _env(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    if not eq:  # wasmtime: --env NAME inherits the host's value
        import os

        if name not in os.environ:
            raise argparse.ArgumentTypeError(f"--env {name}: no such variable in the environment to inherit")
        value = os.environ[name]
    return name, value


_DIR_MODES = ("ro", "rw")  # the spelling wasmtime's maintainers proposed (wasmtime#9608): HOST::GUEST::ro


def _dir(text: str) -> tuple[str, str, str]:
    host, sep, rest = text.partition("::")
    guest, sep2, mode = rest.partition("::")
    if not host or (sep2 and mode not in _DIR_MODES):
        raise argparse.ArgumentTypeError(f"expected HOST[::GUEST[::ro|rw]], not {text!r}")
    return host, guest if sep else host, mode or "rw"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, not {text!r}")
    return value


def _wasi_option(text: str) -> tuple[str, bool]:
    name, eq, value = text.partition("=")
    if name != "threads":
        raise argparse.ArgumentTypeError(f"unknown WASI option {name!r} (hwsim knows `threads`)")
    if not eq or value in ("y", "yes", "true"):
        return name, True
    if value in ("n", "no", "false"):
        return name, False
    raise argparse.ArgumentTypeError(f"-S threads: expected y or n, not {value!r}")


def _wants_threads(module) -> bool:
    """Is ``module`` built for wasi-threads: does it import ``wasi::thread-spawn`` or a shared memory?"""
    from ..runtime import MemoryType

    return any(
        (imp.module, imp.name) == ("wasi", "thread-spawn") or (isinstance(imp.type, MemoryType) and imp.type.is_shared)
        for imp in module.imports
    )


def _define_shared_memories(linker, store, module, engine) -> None:
    """What wasmtime's wasi-threads does: each memory the program imports becomes a new SharedMemory
    (a memory that is not shared is refused: the threads would not share it)."""
    from ..errors import HwsimError
    from ..runtime import MemoryType, SharedMemory

    for imp in module.imports:
        if isinstance(imp.type, MemoryType):
            if not imp.type.is_shared:
                raise HwsimError(
                    f"memory `{imp.module}::{imp.name}` is not shared; a wasi-threads program must import "
                    "a shared memory"
                )
            linker.define(store, imp.module, imp.name, SharedMemory(engine, imp.type))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "wasm",
        help="run WebAssembly programs (WASI preview 1) on the emulated CPU",
        description="WebAssembly programs on the emulated CPU.",
    )
    wsub = p.add_subparsers(dest="wasm_command", metavar="SUBCOMMAND")
    r = wsub.add_parser(
        "run",
        help="run a WASI command (wasm32-wasi, preview 1)",
        description="Run PROGRAM.wasm's _start with WASI preview 1, as `wasmtime run`: the exit status is "
        "the program's; a trap prints the trap and exits 134.  Stdio is the terminal's; the program "
        "sees no host directory but those given with --dir.",
    )
    r.add_argument(
        "--env",
        action="append",
        default=[],
        type=_env,
        metavar="NAME=VALUE",
        help="set an environment variable for the program (repeatable; NAME alone passes the host's value)",
    )
    r.add_argument(
        "--dir",
        action="append",
        default=[],
        type=_dir,
        metavar="HOST::GUEST[::ro]",
        help="preopen the host directory HOST as GUEST inside the program (repeatable; HOST alone: same name); "
        "::ro makes the tree read-only (nothing created, removed, renamed or opened for writing)",
    )
    r.add_argument(
        "--wasi-threads",
        dest="wasi_threads",
        action="store_true",
        default=None,
        help="wasi-threads: the program's `wasi::thread-spawn` starts threads (on by default when the "
        "program imports it or a shared memory); they interleave on the one hart under a seeded scheduler, in virtual time",
    )
    r.add_argument(
        "-S",
        dest="wasi_options",
        action="append",
        default=[],
        type=_wasi_option,
        metavar="threads[=y|n]",
        help="wasmtime's spelling: -S threads turns wasi-threads on, -S threads=n off",
    )
    r.add_argument(
        "--thread-seed",
        type=int,
        default=0,
        metavar="N",
        help="the thread scheduler's seed: the same seed, the same interleaving (default 0)",
    )
    r.add_argument(
        "--time-slice",
        type=int,
        default=None,
        metavar="UNITS",
        help="threads' mean time slice in fuel units (about one per wasm operator; default 20000): each "
        "slice is 1 to twice it, drawn from the seed",
    )
    r.add_argument(
        "--preempt-insns",
        type=int,
        default=0,
        metavar="N",
        help="also preempt threads at any instruction, after 1 to 2N of them (drawn from the seed): races "
        "in straight-line code show up; slow (the CPU counts every instruction)",
    )
    r.add_argument(
        "--harts",
        type=int,
        default=1,
        metavar="N",
        help="run on a machine of N harts (1 to 8): thread t runs on hart t mod N; a change of mapping or "
        "protection on one hart reaches the others by a TLB shootdown (IPIs and their fences)",
    )
    r.add_argument(
        "--hart-turn",
        type=int,
        default=None,
        metavar="N",
        help="with --harts: each hart's turn is 1 to 2N instructions, drawn from the seed, so threads on "
        "different harts interleave between any two instructions (slow: a short N makes many turns); "
        "without it the harts take turns where one hart's threads switch (time slices, waits)",
    )
    r.add_argument(
        "--virtual-time",
        action="store_true",
        help="the program's clocks read virtual time (10 ns per unit of fuel executed; realtime from "
        "--clock-epoch) and its sleeps take none of the host's: it reads the same times in every run",
    )
    r.add_argument(
        "--clock-epoch",
        type=_seconds,
        default=0.0,
        metavar="S",
        help="with --virtual-time: where the realtime clock starts, in seconds since 1970-01-01 (default 0)",
    )
    r.add_argument(
        "--random-seed",
        type=int,
        default=None,
        metavar="N",
        help="random_get gives bytes from a generator seeded with N, the same in every run (not for secrets)",
    )
    r.add_argument(
        "--invoke",
        metavar="FUNCTION",
        help="call the exported FUNCTION instead of _start, with ARGS as its arguments (integers, or floats "
        "for f32/f64 parameters), and print its results, a line each, as `wasmtime run --invoke`; a "
        "reactor's _initialize runs first",
    )
    r.add_argument("--time-limit", type=_seconds, default=None, metavar="S", help="trap after S seconds of running")
    r.add_argument(
        "--stats",
        action="store_true",
        help="after the run, print to stderr: pages of linear memory touched, TLB lookups and misses, "
        "page-table walks, physical frames in use",
    )
    r.add_argument(
        "--save-snapshot",
        metavar="FILE",
        help="at the end, save the program's page tables (the Store's address space) as a snapshot: "
        "look at them with 'hwsim mmu dump --snapshot FILE' or walk an address with 'hwsim mmu walk'",
    )
    r.add_argument(
        "--trace",
        metavar="PATTERNS",
        help="trace events, e.g. 'host' (every WASI call with its arguments and errno), 'mmu' (page "
        "walks, TLB misses and flushes), 'trap'; globs over event names and categories, '-name' removes, "
        "'list' lists them",
    )
    r.add_argument(
        "--trace-out",
        metavar="FILE",
        help="write the trace to FILE: .json Perfetto/Chrome trace, .jsonl JSON Lines, else text "
        "(default: text on stderr)",
    )
    r.add_argument(
        "--trace-format",
        choices=("text", "jsonl", "perfetto"),
        help="the trace format, when FILE's extension does not say",
    )
    r.add_argument("program", metavar="PROGRAM.wasm", help="a WASI command module (.wasm or .wat)")
    r.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="the program's arguments")
    r.set_defaults(func=run_wasm)
    p.set_defaults(func=lambda _args: p.print_help() or 2)


def run_wasm(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..trace import EVENTS, tracing

    if args.trace == "list":
        for spec in EVENTS.values():
            print(f"{spec.name:<14} {spec.category:<6} {' '.join(spec.fields)}")
        return 0
    if args.trace is None:
        if args.trace_out or args.trace_format:
            raise ConfigError("--trace-out and --trace-format need --trace PATTERNS")
        return _run(args)
    import time

    from ..trace import TRACE

    start = time.perf_counter_ns()
    TRACE.clock = lambda: time.perf_counter_ns() - start  # a WASI program lives in host time (docs/wasi.md)
    with tracing(args.trace, args.trace_out, format=args.trace_format):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ..errors import HwsimError
    from ..machine import MAX_HARTS
    from ..runtime import Engine, Linker, Module, Store, Trap, TrapCode
    from ..wasi import ExitTrap, WasiConfig

    threads = args.wasi_threads
    for _name, value in args.wasi_options:
        threads = value
    # Threads are preempted at checkpoints, and virtual time counts fuel: such programs are metered.
    engine = Engine(metering=bool(threads) or args.virtual_time)
    try:
        module = Module.from_file(engine, args.program)
        if threads is None and _wants_threads(module):
            threads = True
            engine = Engine(metering=True)
            module = Module.from_file(engine, args.program)
    except OSError as exc:
        raise HwsimError(f"cannot read {args.program}: {exc.strerror}") from None
    config = WasiConfig()
    if threads:
        config.threads = True
        config.thread_seed = args.thread_seed
        config.instruction_slice = args.preempt_insns
        if args.hart_turn is not None:
            config.hart_turn = args.hart_turn
        if args.time_slice is not None:
            config.time_slice = args.time_slice
    if not 1 <= args.harts <= MAX_HARTS:
        raise HwsimError(f"--harts must be 1 to {MAX_HARTS}, not {args.harts}")
    if args.hart_turn is not None and (args.harts == 1 or args.hart_turn < 1):
        raise HwsimError(f"--hart-turn N sets the turns of several harts: N >= 1 and --harts > 1, not {args.hart_turn}")
    if args.clock_epoch and not args.virtual_time:
        raise HwsimError("--clock-epoch sets where virtual time starts: give --virtual-time too")
    config.virtual_time = args.virtual_time
    config.clock_epoch = int(args.clock_epoch * 1e9)
    if args.random_seed is not None:
        if not 0 <= args.random_seed < 1 << 64:
            raise HwsimError(f"--random-seed must be 0 to 2**64-1, not {args.random_seed}")
        config.random_seed = args.random_seed
    config.argv = [args.program] if args.invoke else [args.program, *args.args]
    config.env = args.env
    from ..wasi import DirPerms, FilePerms

    for host, guest, mode in args.dir:
        if mode == "ro":
            config.preopen_dir(host, guest, DirPerms.READ_ONLY, FilePerms.READ_ONLY)
        else:
            config.preopen_dir(host, guest)
    config.inherit_stdin()
    config.inherit_stdout()
    config.inherit_stderr()
    store = Store(engine, time_limit=args.time_limit, harts=args.harts)
    store.set_wasi(config)
    linker = Linker(engine)
    linker.define_wasi()
    if threads:
        _define_shared_memories(linker, store, module, engine)
    instance = linker.instantiate(store, module)
    exports = instance.exports(store)
    if args.invoke:
        start = _invocation(store, exports, args)
    else:
        start = exports.get("_start")
        if start is None:
            raise HwsimError(
                f"{args.program}: no `_start` export; not a WASI command (a reactor or a library? call one of "
                f"its functions with --invoke FUNCTION)"
            )
    from ..driver.control import RunControl, StopCause
    from ..runtime.internal import vm_store

    control = RunControl(vm_store(store), catch_sigint=True)  # Ctrl-C stops the guest at a safe point
    status = 0
    try:
        with control:
            start(store)
    except ExitTrap as exc:
        status = exc.code & 0xFF
    except Trap as trap:
        sys.stdout.flush()
        if control.cause is StopCause.USER:
            print(f"hwsim: interrupted: {trap.summary}", file=sys.stderr)
            return StopCause.USER.value
        scheduler = vm_store(store).threads
        if scheduler is not None and scheduler.ended_in and trap.code is not TrapCode.INTERRUPTED:
            # a spawned thread trapped: wasmtime exits 1 (a time limit stops the process, whichever thread ran)
            print(
                f"Error: thread {scheduler.ended_in} trapped\n\nCaused by:\n    0: {_indent(str(trap))}",
                file=sys.stderr,
            )
            return THREAD_TRAP_EXIT
        print(
            f"Error: failed to run main module `{args.program}`\n\nCaused by:\n    0: {_indent(str(trap))}",
            file=sys.stderr,
        )
        status = TRAP_EXIT
    finally:
        sys.stdout.flush()
        if args.stats:
            _print_stats(store, exports)
        if args.save_snapshot:
            _save_snapshot(store, args)
        store.close()
    return status


def _invocation(store, exports, args: argparse.Namespace):
    """``run(store)`` for --invoke: the reactor's _initialize if it has one, then the function with the
    arguments parsed for its parameter types, its results printed a line each."""
    from ..errors import ConfigError
    from ..runtime import Func, ValType

    func = exports.get(args.invoke)
    if not isinstance(func, Func):
        names = ", ".join(name for name, item in exports.items() if isinstance(item, Func)) or "none"
        raise ConfigError(f"{args.program}: no exported function `{args.invoke}` (its functions: {names})")
    params = func.type(store).params
    if len(args.args) != len(params):
        raise ConfigError(
            f"--invoke {args.invoke}: the function takes {len(params)} arguments "
            f"({', '.join(str(t) for t in params) or 'none'}), not {len(args.args)}"
        )
    values: list[int | float] = []
    for text, ty in zip(args.args, params):
        try:
            if ty in (ValType.f32(), ValType.f64()):
                values.append(float(text))
            elif ty in (ValType.i32(), ValType.i64()):
                values.append(int(text, 0))
            else:
                raise ConfigError(f"--invoke {args.invoke}: a {ty} parameter cannot be given on the command line")
        except ValueError:
            raise ConfigError(f"--invoke {args.invoke}: {text!r} is not a valid {ty}") from None
    init = exports.get("_initialize")

    def run(store) -> None:
        if isinstance(init, Func):
            init(store)
        results = func(store, *values)
        for value in results if isinstance(results, list) else [] if results is None else [results]:
            print(value)

    return run


def _indent(text: str) -> str:
    """The trap's lines under ``    0: `` (blank lines left blank)."""
    lines = text.rstrip().splitlines()
    return "\n".join([lines[0], *(f"       {line}" if line.strip() else "" for line in lines[1:])])


def _print_stats(store, exports) -> None:
    from ..runtime import Memory, SharedMemory
    from ..runtime.internal import vm_memory, vm_store

    machine = store.machine
    tlb = machine.tlb.stats
    lines = []
    for name, item in exports.items():
        if isinstance(item, (Memory, SharedMemory)):
            inner = vm_memory(item)  # (a SharedMemory is placed in this Store: its importer's)
            pages = inner.committed_bytes // 4096
            size = inner.size_bytes
            lines.append(f"memory `{name}`: {pages} pages touched of {size // 4096} ({size} bytes)")
    lines.append(f"TLB: {tlb.lookups} lookups, {tlb.misses} misses, {tlb.flushes} flushes")
    lines.append(f"physical frames in use: {machine.frames.committed} (peak {machine.frames.peak})")
    if len(machine.harts) > 1:
        lines.append(f"harts: {len(machine.harts)}; TLB shootdowns: {sum(h.shootdowns for h in machine.harts)}")
        scheduler = vm_store(store).threads
        for hart in machine.harts:
            turns = f"{scheduler.hart_turns[hart.hartid]} turns, " if scheduler is not None else ""
            lines.append(
                f"hart {hart.hartid}: {turns}{hart.shootdowns} shootdowns started, {hart.shootdown_ipis} "
                f"shootdown IPIs received, {hart.shootdown_ns / 1000:.1f} us in their fences"
            )
    print("\n".join(f"hwsim: {line}" for line in lines), file=sys.stderr)


def _save_snapshot(store, args: argparse.Namespace) -> None:
    from ..mmu.snapshot import regions_of, save_snapshot
    from ..runtime.internal import vm_store

    space = vm_store(store).space
    phys = store.machine.phys
    source = f"hwsim wasm run {args.program}: the Store's address space at exit"
    n = save_snapshot(args.save_snapshot, phys, space.satp, regions_of(phys), source=source)
    print(f"hwsim: saved {n} page tables to {args.save_snapshot}", file=sys.stderr)
