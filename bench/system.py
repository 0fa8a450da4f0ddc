"""The system paths around generated code, each measured beside its ceiling in one run.

    python bench/system.py [--quick] [--rounds N] [--only NAME,NAME]

A *ceiling* is the same work done with nothing of hwsim in the way (raw Unicorn, a plain
memoryview copy); *hwsim* is the path through hwsim's public API.  Each path runs its ceiling
and hwsim side by side, round after round (interleaved, so a busy machine slows both), and keeps
the best time of each.  The table gives both, their ratio, the path's target, and whether it is met:

    path                          ceiling      hwsim   ratio   target   met?

A target is either a ratio to the ceiling (``<= 2.0x``) or an absolute time (``<= 10 us``).

Adding a path: write a function ``(rounds, quick) -> Row`` (or a list of rows sharing a setup) and append it to :data:`PATHS`
(one function per path, so that paging, DMA or MMIO rows are added without touching the others).
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unicorn import Uc  # noqa: E402
from unicorn import riscv_const as rv  # noqa: E402
from unicorn import unicorn_const as uc_const  # noqa: E402
from unicorn.unicorn_py3.unicorn import uclib  # noqa: E402

from hwsim.riscv import asm as A  # noqa: E402
from hwsim.runtime import api  # noqa: E402
from hwsim.runtime.internal import vm_instance, vm_store  # noqa: E402


@dataclass(frozen=True)
class Row:
    """One line of the table: times in seconds; the target is a ratio (``max_ratio``) or a time (``max_s``)."""

    path: str
    ceiling_s: float
    hwsim_s: float
    max_ratio: float | None = None
    max_s: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.hwsim_s / self.ceiling_s

    @property
    def target(self) -> str:
        if self.max_ratio is not None:
            return f"<= {self.max_ratio:g}x"
        assert self.max_s is not None  # a row has one target or the other
        return f"<= {_time(self.max_s)}"

    @property
    def met(self) -> bool:
        if self.max_ratio is not None:
            return self.ratio <= self.max_ratio
        assert self.max_s is not None
        return self.hwsim_s <= self.max_s


def _time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def interleaved(rounds: int, **runs: Callable[[], float]) -> dict[str, float]:
    """Each ``name: fn`` (``fn()`` returns seconds per operation), run in turn ``rounds`` times; the best of each."""
    best = {name: float("inf") for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            best[name] = min(best[name], fn())
    return best


# -- wasm -> host: an ecall round trip -------------------------------------------------------------

_RAW_CODE = 0x10_0000


def _raw_ecall_loop(n: int) -> Callable[[], float]:
    """Raw Unicorn: ``ecall`` in a loop, into a Python interrupt hook that reads a0 and writes a0 + 1."""
    uc = Uc(uc_const.UC_ARCH_RISCV, uc_const.UC_MODE_RISCV64)
    a = A.Assembler(_RAW_CODE)
    a.li("t1", n).label("loop").emit(A.ECALL, A.addi("t1", "t1", -1))
    a.branch("bne", "t1", "zero", "loop").label("exit")
    code = a.finish()
    uc.mem_map(_RAW_CODE, 0x1000, uc_const.UC_PROT_ALL)
    uc.mem_write(_RAW_CODE, code)
    a0, handle, value = rv.UC_RISCV_REG_A0, uc._uch, ctypes.c_uint64()
    ref = ctypes.byref(value)

    def hook(uc, intno, _data):  # the binding's C entry points: its reg_read/reg_write cost 2x more
        uclib.uc_reg_read(handle, a0, ref)
        value.value += 1
        uclib.uc_reg_write(handle, a0, ref)

    uc.hook_add(uc_const.UC_HOOK_INTR, hook)
    exit_ = a.labels["exit"]

    def run() -> float:
        t = time.perf_counter()
        uc.emu_start(_RAW_CODE, exit_)
        return (time.perf_counter() - t) / n

    return run


_HOSTCALL_WAT = """
(module
  (import "env" "h" (func $h (param i32) (result i32)))
  (func (export "loop") (param $n i32) (result i32) (local $i i32) (local $s i32)
    (loop $l
      (local.set $s (i32.add (local.get $s) (call $h (local.get $i))))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
    (local.get $s))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
"""


def _hwsim_instance():
    engine = api.Engine(cache=False)
    store = api.Store(engine)
    module = api.Module(engine, _HOSTCALL_WAT)
    h = api.Func(store, api.FuncType([api.ValType.i32()], [api.ValType.i32()]), lambda x: x + 1)
    return store, api.Instance(store, module, [h]).exports(store)


def wasm_to_host(rounds: int, quick: bool) -> Row:
    """A wasm loop calling an imported Python function ``(i32) -> i32``, per call."""
    n = 2_000 if quick else 20_000
    store, exports = _hwsim_instance()
    loop = exports["loop"]

    def hwsim() -> float:
        t = time.perf_counter()
        loop(store, n)
        return (time.perf_counter() - t) / n

    best = interleaved(rounds, ceiling=_raw_ecall_loop(n), hwsim=hwsim)
    return Row("wasm->host call (ecall)", best["ceiling"], best["hwsim"], max_ratio=2.0)


# -- host -> wasm: a call of a trivial function ------------------------------------------------------


def _raw_call(n: int) -> Callable[[], float]:
    """Raw Unicorn: set two argument registers and ra (one batch), run ``addw a0, a0, a1; ret`` to the exit,
    read a0 (the binding's C entry points)."""
    uc = Uc(uc_const.UC_ARCH_RISCV, uc_const.UC_MODE_RISCV64)
    a = A.Assembler(_RAW_CODE)
    a.emit(A.addw("a0", "a0", "a1"), A.jalr(0, A.REG["ra"], 0))
    uc.mem_map(_RAW_CODE, 0x2000, uc_const.UC_PROT_ALL)
    uc.mem_write(_RAW_CODE, a.finish())
    exit_ = _RAW_CODE + 0x1000
    handle, value = uc._uch, ctypes.c_uint64()
    ref = ctypes.byref(value)
    ids = (ctypes.c_int * 3)(rv.UC_RISCV_REG_A0, rv.UC_RISCV_REG_A1, rv.UC_RISCV_REG_RA)
    values = (ctypes.c_uint64 * 3)()
    ptrs = (ctypes.c_void_p * 3)(*(ctypes.addressof(values) + 8 * i for i in range(3)))
    write_batch, read, start = uclib.uc_reg_write_batch, uclib.uc_reg_read, uc.emu_start
    a0 = rv.UC_RISCV_REG_A0

    def run() -> float:
        t = time.perf_counter()
        for i in range(n):
            values[0], values[1], values[2] = i, 2, exit_
            write_batch(handle, ids, ptrs, 3)
            start(_RAW_CODE, exit_)
            read(handle, a0, ref)
        return (time.perf_counter() - t) / n

    return run


def host_to_wasm(rounds: int, quick: bool) -> Row:
    """An exported ``(i32, i32) -> i32`` add, called from Python, per call."""
    n = 500 if quick else 5_000
    store, exports = _hwsim_instance()
    add = exports["add"]

    def hwsim() -> float:
        t = time.perf_counter()
        for i in range(n):
            add(store, i, 2)
        return (time.perf_counter() - t) / n

    best = interleaved(rounds, ceiling=_raw_call(n), hwsim=hwsim)
    return Row("host->wasm call (trivial)", best["ceiling"], best["hwsim"], max_s=10e-6)


# -- instantiation of a module of many functions ------------------------------------------------------


def _many_functions_wat(count: int) -> str:
    """``count`` small functions, all in a table (as a C program's function pointers), a few exported."""
    funcs = "\n".join(
        f"  (func $f{i} (param i32) (result i32) (i32.add (local.get 0) (i32.const {i})))" for i in range(count)
    )
    names = " ".join(f"$f{i}" for i in range(count))
    return f"""(module
  (memory 1)
  (global $g (mut i32) (i32.const 0))
  (table {count} funcref)
  (elem (i32.const 0) func {names})
{funcs}
  (export "f0" (func $f0))
  (export "last" (func $f{count - 1})))"""


def instantiation(rounds: int, quick: bool, count: int = 1_000) -> Row:
    """Instantiating a compiled module of ``count`` functions (a table holding each) in a fresh Store.

    The ceiling moves the same bytes into guest RAM with nothing else: the compiled code and, per
    function, its record and table entry (three and one 8-byte words), each as one memoryview copy."""
    engine = api.Engine(cache=False)
    module = api.Module(engine, _many_functions_wat(count))
    code = vm_instance(api.Instance(api.Store(engine), module, [])).compiled.code
    records = bytes(8 * 4 * count)

    def ceiling() -> float:
        store = api.Store(engine)
        phys = vm_store(store).machine.phys
        base = phys.ram_regions[0].base
        t = time.perf_counter()
        phys.view(base, len(code))[:] = code
        phys.view(base + len(code), len(records))[:] = records
        return time.perf_counter() - t

    def hwsim() -> float:
        store = api.Store(engine)
        t = time.perf_counter()
        api.Instance(store, module, [])
        return time.perf_counter() - t

    best = interleaved(rounds, ceiling=ceiling, hwsim=hwsim)
    return Row(f"instantiate {count:,} functions", best["ceiling"], best["hwsim"], max_s=5e-3)


# -- devices: MMIO and DMA (machinery from bench/devices.py) --------------------------------------------


def _sibling(name: str):
    """bench/NAME.py, loaded by path (it is beside this file; bench/ is not a package), once."""
    import importlib.util

    module = sys.modules.get(f"bench_{name}")
    if module is None:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).resolve().parent / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"bench_{name}"] = module
        spec.loader.exec_module(module)
    return module


def _device_board():
    """bench/devices.py and its board."""
    devices = _sibling("devices")
    system, code_pa = devices.setup()
    return devices, system, code_pa


def mmio(rounds: int, quick: bool) -> Row:
    """A guest load from a device register (the DMA engine's ID, through the register framework)
    beside a load from a bare Python device on the same bus (the ceiling: Unicorn's MMIO callback and
    hwsim's bus, with no register logic)."""
    devices, system, code_pa = _device_board()
    n = 20_000 if quick else 100_000
    best = interleaved(
        rounds,
        ceiling=lambda: devices.run_program(system, code_pa, devices.load_loop(devices.RAW, 0, n)) / n,
        hwsim=lambda: devices.run_program(system, code_pa, devices.load_loop(devices.DMA, 0, n, A.lw)) / n,
    )
    return Row("MMIO register read", best["ceiling"], best["hwsim"], max_ratio=1.25, note="ceiling: bare device")


def _dma_copy(length: int, max_s: float, label: str) -> Callable[[int, bool], Row]:
    def row(rounds: int, quick: bool) -> Row:
        """A guest-driven DMA-engine copy through the IOMMU beside a memoryview copy of the bytes."""
        devices, system, code_pa = _device_board()
        _space, src, _size = devices.dma_space(system)
        ram = system.machine.phys.view(src, 2 * length)
        transfers = 50 if quick else 200

        def ceiling() -> float:
            t = time.perf_counter()
            for _ in range(transfers):
                ram[length:] = ram[:length]
            return (time.perf_counter() - t) / transfers

        best = interleaved(
            rounds, ceiling=ceiling, hwsim=lambda: devices.guest_transfers(system, code_pa, length, transfers)
        )
        return Row(label, best["ceiling"], best["hwsim"], max_s=max_s, note="no DMA checker")

    row.__name__ = f"dma_copy_{length >> 10}k"
    return row


def _checked_dma_rows(rounds: int, quick: bool) -> list[Row]:
    """drivers/bench's ``dma_copies(n, length)``: a sandboxed driver's DMA-engine copies, through the IOMMU
    and the DMA checker (every device request checked against the driver's live mappings), beside the
    same C as native firmware (physical DMA, no checker), on the default board with instant transfers
    (``bandwidth = 0``: the host's cost, not virtual time).  Per copy: ``n`` copies less a run of none
    (the two mappings made and undone once per run), best of the rounds of each."""
    from hwsim.board import DEFAULT_BOARD
    from hwsim.driver import DriverRun, build_driver
    from hwsim.driver.firmware import FirmwareRun
    from hwsim.testing import make_board

    root = Path(__file__).resolve().parents[1] / "drivers" / "bench"
    wasm, elf = build_driver(root).read_bytes(), build_driver(root, native=True).read_bytes()
    options = {"dma0": {"bandwidth": 0}}
    runs = {
        "sandboxed": DriverRun(make_board(DEFAULT_BOARD, options=options)[0], wasm, log=lambda t: None),
        "native": FirmwareRun(make_board(DEFAULT_BOARD, options=options)[0], elf),
    }
    n = 200 if quick else 1000  # (enough copies that a run of none, subtracted, is small beside them)
    rows = []
    for length, max_s in ((4 << 10, 10e-6), (64 << 10, (64 << 10) / 1e9)):

        def timed(run, copies: int, length: int = length) -> float:
            t = time.perf_counter()
            report = run.run("dma_copies", (copies, length))
            dt = time.perf_counter() - t
            if report.result != 0:
                raise SystemExit(f"dma_copies({copies}, {length}) failed: {report.format()}")
            return dt

        for run in runs.values():
            timed(run, 1)  # untimed: the first run of an entry pays for things made once
        copies_n = n
        while True:  # (on a loaded machine a run of none can take longer than n copies: then more copies)
            best = interleaved(
                rounds,
                **{f"{name} {copies}": (lambda run=run, copies=copies: timed(run, copies))
                   for name, run in runs.items() for copies in (0, copies_n)},
            )  # fmt: skip
            per = {name: (best[f"{name} {copies_n}"] - best[f"{name} 0"]) / copies_n for name in runs}
            if min(per.values()) > 0 or copies_n >= 16 * n:
                break
            copies_n *= 2
        label = f"DMA copy {length >> 10} KiB, checked"
        rows.append(Row(label, per["native"], per["sandboxed"], max_s=max_s, note="driver + checker; beside: native C"))
    return rows


# -- paging: a TLB miss that walks, a first touch that pages in ----------------------------------------


def tlb_miss(rounds: int, quick: bool) -> Row:
    """A guest load that misses every TLB and walks hwsim's page tables (in the compiled helper, or in
    Python without it: the note says which), per page, beside Unicorn's TLB-fill hook returning a fixed
    mapping from Python (bench/paging.py)."""
    from hwsim.machine import native

    paging = _sibling("paging")
    pages = 1024 if quick else 4096
    best = interleaved(
        rounds, ceiling=lambda: paging.bare_hook_us(pages) * 1e-6, hwsim=lambda: paging.tlb_miss_us(pages) * 1e-6
    )
    why = native.unavailable_reason()
    note = "ceiling: bare fill hook; " + ("compiled helper" if why is None else f"Python hook ({why})")
    return Row("TLB miss with a walk", best["ceiling"], best["hwsim"], max_ratio=3.0, note=note)


def first_touch(rounds: int, quick: bool) -> Row:
    """A wasm store into a page never touched: fill, walk to V=0, the Store's pager, a frame (bench/paging.py)."""
    paging = _sibling("paging")
    pages = 1024 if quick else 2048
    best = interleaved(
        rounds, ceiling=lambda: paging.bare_hook_us(pages) * 1e-6, hwsim=lambda: paging.first_touch_us(pages) * 1e-6
    )
    return Row("first touch of a page", best["ceiling"], best["hwsim"], max_s=20e-6, note="ceiling: bare fill hook")


# -- compile: a zig-built module of about 1 MB, cold and from the code cache -------------------------------


def _compile_rows(rounds: int, quick: bool) -> list[Row]:
    """``Module(engine, wasm)`` on a zig-built module (bench/decode_throughput.py's generated C, 0.9 MB),
    compiled with an empty code cache and then found in it, beside wasmtime compiling the same bytes
    (a peer, not a ceiling: it is native code).  Targets: 1 MB/s cold, 20 MB/s cached."""
    import shutil
    import tempfile

    import wasmtime

    from hwsim.compiler import parallel

    data = _sibling("decode_throughput").build(4000).read_bytes()
    peer = wasmtime.Engine()

    def cold() -> float:
        with tempfile.TemporaryDirectory() as cache_dir:
            t = time.perf_counter()
            api.Module(api.Engine(cache_dir=cache_dir), data)
            return time.perf_counter() - t

    def cold_one_process() -> float:  # (workers are used only when a core is idle: this row never uses one)
        jobs, parallel.MAX_JOBS = parallel.MAX_JOBS, 1
        try:
            return cold()
        finally:
            parallel.MAX_JOBS = jobs

    cache_dir = tempfile.mkdtemp(prefix="hwsim-bench-cache-")
    api.Module(api.Engine(cache_dir=cache_dir), data)  # fills the cache

    def cached() -> float:
        t = time.perf_counter()
        api.Module(api.Engine(cache_dir=cache_dir), data)
        return time.perf_counter() - t

    def wasmtime_compile() -> float:
        t = time.perf_counter()
        wasmtime.Module(peer, data)
        return time.perf_counter() - t

    try:
        best = interleaved(
            max(2, rounds // 2) if quick else rounds,
            peer=wasmtime_compile,
            cold=cold,
            serial=cold_one_process,
            cached=cached,
        )
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)  # 4 MB of code per run, else left in the temp directory
    label = f"{len(data) / 1e6:.2f} MB"
    return [
        Row(f"compile {label}, cold", best["peer"], best["cold"], max_s=len(data) / 1e6, note="beside: wasmtime"),
        Row(
            f"compile {label}, cold, serial",
            best["peer"],
            best["serial"],
            max_s=len(data) / 1e6,
            note="beside: wasmtime",
        ),
        Row(f"compile {label}, cached", best["peer"], best["cached"], max_s=len(data) / 20e6, note="beside: wasmtime"),
    ]


# -- start-up: a whole command, process start to exit ------------------------------------------------------


def startup(rounds: int, quick: bool) -> Row:
    """``hwsim run virt drivers/uart16550`` as its own process, warm caches, beside ``python -c "import unicorn"``
    (the library every run loads): bench/startup.py's measurement."""
    import os

    bench = _sibling("startup")
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    floor, run = bench.COMMANDS['python -c "import unicorn"'], bench.COMMANDS["hwsim run virt drivers/uart16550"]
    bench.timed(run, env)  # untimed: bytecode written, driver built and cached
    best = interleaved(rounds, ceiling=lambda: bench.timed(floor, env), hwsim=lambda: bench.timed(run, env))
    return Row("hwsim run drivers/uart16550", best["ceiling"], best["hwsim"], max_s=0.3, note="ceiling: import unicorn")


# -- drivers: sandboxed beside the same C built as native firmware -----------------------------------------


def _driver_rows(rounds: int, quick: bool) -> list[Row]:
    """drivers/virtio_blk (4 KiB reads) and drivers/virtio_net (loopback round trips) sandboxed beside the
    same C as native riscv64 firmware on the same board (bench/drivers.py's runs), per operation.  The target,
    sandboxed at least 0.8x native speed, is a time ratio of at most 1.25x."""
    import tempfile

    from hwsim.board import DEFAULT_BOARD
    from hwsim.driver import DriverRun, build_driver
    from hwsim.driver.firmware import FirmwareRun
    from hwsim.testing import make_board

    interleave = _sibling("drivers").interleaved
    root = Path(__file__).resolve().parents[1] / "drivers"
    n = 100 if quick else 500
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "disk.img"
        image.write_bytes(bytes(1 << 20))
        for label, driver, entry, options in (
            ("virtio-blk 4 KiB read", "virtio_blk", "read_loop", {"blk0": {"image": str(image)}}),
            ("virtio-net round trip", "virtio_net", "pingpong", None),
        ):
            wasm, elf = build_driver(root / driver).read_bytes(), build_driver(root / driver, native=True).read_bytes()
            runs = {
                "sandboxed": DriverRun(make_board(DEFAULT_BOARD, options=options)[0], wasm, log=lambda t: None),
                "native": FirmwareRun(make_board(DEFAULT_BOARD, options=options)[0], elf),
            }
            best = interleave(runs, entry, n, rounds)
            rows.append(Row(label, best["native"] / n, best["sandboxed"] / n, max_ratio=1.25, note="ceiling: native"))
    return rows


# -- the table ---------------------------------------------------------------------------------------------

# One function per path (or per group of paths sharing a setup: it returns a list), in the table's order.
PATHS: list[Callable[[int, bool], Row | list[Row]]] = [
    wasm_to_host,
    host_to_wasm,
    instantiation,
    _compile_rows,
    tlb_miss,
    first_touch,
    mmio,
    _dma_copy(4 << 10, 10e-6, "DMA engine copy, 4 KiB"),
    _dma_copy(64 << 10, (64 << 10) / 1e9, "DMA engine copy, 64 KiB"),
    _checked_dma_rows,
    _driver_rows,
    startup,
]


def select(only: str | None) -> list[Callable[[int, bool], Row | list[Row]]]:
    """The paths named in ``only`` (comma-separated function names, in the table's order); all for None."""
    if only is None:
        return list(PATHS)
    by_name = {path.__name__: path for path in PATHS}
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in by_name]
    if unknown or not names:
        raise SystemExit(
            f"--only: unknown path {', '.join(unknown) or '(none given)'}; the paths: {', '.join(by_name)}"
        )
    return [path for path in PATHS if path.__name__ in names]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (a few seconds)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds per path (default 15, quick 5)")
    ap.add_argument("--only", default=None, help="comma-separated path functions to run (e.g. wasm_to_host,tlb_miss)")
    args = ap.parse_args()
    rounds = args.rounds or (5 if args.quick else 15)
    paths = select(args.only)
    print(f"{time.strftime('%Y-%m-%d')}: system paths beside their ceilings, best of {rounds} interleaved rounds")
    print(f"{'path':30} {'ceiling':>10} {'hwsim':>10} {'ratio':>7} {'target':>10} {'met?':>5}")
    for path in paths:
        made = path(rounds, args.quick)
        for row in made if isinstance(made, list) else [made]:
            print(
                f"{row.path:30} {_time(row.ceiling_s):>10} {_time(row.hwsim_s):>10} {row.ratio:6.1f}x "
                f"{row.target:>10} {'yes' if row.met else 'NO':>5}" + (f"  {row.note}" if row.note else ""),
                flush=True,
            )


if __name__ == "__main__":
    main()
