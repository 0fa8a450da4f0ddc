"""Where a virtio-blk 4 KiB read's time goes, sandboxed (C compiled to wasm by hwsim) and native (the same C
as riscv64 firmware): one cProfile'd run of each, split by where the time is spent (self time per category).

    python bench/virtio_profile.py [--n 200] [--driver virtio_blk|virtio_net]
    python bench/virtio_profile.py --ablate [--n 500] [--rounds 5]

``--ablate`` profiles nothing: it times (interleaved, best of ``--rounds``, unprofiled) the native run and
the sandboxed one as it is, without the virtio protocol checker (``VirtioChecker``: its store watches on the
rings), without metering (an engine with ``metering=False``: no checkpoints, so no CPU time is charged), and
without both -- what each diagnostic costs beside the sandbox proper (wasm, IOMMU translation, the DMA
checker, host calls).  The native firmware charges no CPU time and has no protocol checker.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
from pathlib import Path

# (category, test on (file, function)); the first that matches takes a function's self time.
CATEGORIES = [
    ("guest code (emu_start self)", lambda f, n: n == "emu_start" or "_uc_" in n),
    ("IOMMU requests / ring reads", lambda f, n: "/iommu/" in f or n in ("_ring_read", "_ring_write")),
    ("store-watch callbacks", lambda f, n: f.endswith("storewatch.py")),
    ("DMA checker", lambda f, n: f.endswith("driver/dma.py") or "/dma_check" in f),
    ("IRQ/PLIC", lambda f, n: f.endswith("plic.py") or f.endswith("driver/irq.py")),
    ("device model", lambda f, n: "/devices/" in f),
    ("MMIO callbacks", lambda f, n: "mmio" in n.lower() or f.endswith("machine/hooks.py")),
    (
        "host calls (calls._ecall, api.host, driver)",
        lambda f, n: f.endswith("runtime/calls.py") or f.endswith("runtime/api.py") or "/hwsim/driver/" in f,
    ),
    (
        "MMU / address space (host reads of wasm memory)",
        lambda f, n: "/hwsim/mmu/" in f or f.endswith("runtime/space.py"),
    ),
    ("checkpoints", lambda f, n: f.endswith("runtime/checkpoints.py")),
    ("other hwsim Python", lambda f, n: "/hwsim/" in f),
    ("other (stdlib, unicorn wrapper, ctypes)", lambda f, n: True),
]
COUNTED = {  # calls counted per operation: (file suffix, function)
    "host calls (calls._ecall)": ("runtime/calls.py", "_ecall"),
    "host functions (api.host)": ("runtime/api.py", "host"),
    "firmware service calls (native's host calls)": ("driver/firmware.py", "_do_service_call"),
    "IOMMU _request": ("iommu.py", "_request"),
    "virtio _ring_read": ("queue.py", "_ring_read"),
    "store-watch show": ("storewatch.py", "show"),
}


def profile(run, entry: str, n: int) -> pstats.Stats:
    run.run(entry, (n,))  # warm: compile, first touch
    prof = cProfile.Profile()
    prof.enable()
    report = run.run(entry, (n,))
    prof.disable()
    if report.result != 0:
        raise SystemExit(f"{entry} failed: {report.format()}")
    return pstats.Stats(prof)


def split(stats: pstats.Stats) -> tuple[dict[str, float], dict[str, int], float]:
    times = {name: 0.0 for name, _ in CATEGORIES}
    counts = dict.fromkeys(COUNTED, 0)
    total = 0.0
    for (file, _line, func), (_cc, ncalls, tottime, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        for name, test in CATEGORIES:
            if test(file, func):
                times[name] += tottime
                break
        for key, (suffix, fname) in COUNTED.items():
            if func == fname and file.endswith(suffix):
                counts[key] += ncalls
    return times, counts, total


def ablate(driver: str, n: int, rounds: int) -> None:
    """The sandboxed run without its diagnostics, beside native: see the module docstring."""
    import importlib.util

    from hwsim.board import DEFAULT_BOARD
    from hwsim.driver import DriverRun, build_driver
    from hwsim.driver.firmware import FirmwareRun
    from hwsim.driver.virtio import VirtioChecker
    from hwsim.runtime import api
    from hwsim.testing import make_board

    spec = importlib.util.spec_from_file_location("drivers_bench", Path(__file__).with_name("drivers.py"))
    assert spec is not None and spec.loader is not None
    drivers_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(drivers_bench)

    root = Path(__file__).resolve().parents[1] / "drivers" / driver
    entry = "read_loop" if driver == "virtio_blk" else "pingpong"
    wasm, elf = build_driver(root).read_bytes(), build_driver(root, native=True).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "disk.img"
        image.write_bytes(bytes(1 << 20))
        options = {"blk0": {"image": str(image)}} if driver == "virtio_blk" else None

        def sandboxed(*, protocol: bool, metering: bool) -> DriverRun:
            board = make_board(DEFAULT_BOARD, options=options)[0]
            attach = VirtioChecker.attach
            if not protocol:  # the checker never sees the devices: no queue observers, no ring watches
                VirtioChecker.attach = lambda self, name, device: None  # type: ignore[method-assign]
            try:
                return DriverRun(board, wasm, engine=api.Engine(metering=metering), log=lambda t: None)
            finally:
                VirtioChecker.attach = attach  # type: ignore[method-assign]

        runs = {
            "native": FirmwareRun(make_board(DEFAULT_BOARD, options=options)[0], elf),
            "sandboxed": sandboxed(protocol=True, metering=True),
            "sandboxed, no protocol checker": sandboxed(protocol=False, metering=True),
            "sandboxed, no metering": sandboxed(protocol=True, metering=False),
            "sandboxed, neither": sandboxed(protocol=False, metering=False),
        }
        for run in runs.values():
            run.run(entry, (20,))  # warm: compile, first touch
        best = drivers_bench.interleaved(runs, entry, n, rounds)
    print(f"{driver} {entry}, n={n}, best of {rounds} interleaved rounds, unprofiled; per operation")
    native = best["native"] / n
    for name, t in best.items():
        print(f"  {name:34} {t / n * 1e6:8.1f} us  {t / n / native:5.2f}x native")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--driver", default="virtio_blk", choices=["virtio_blk", "virtio_net"])
    ap.add_argument("--top", type=int, default=0, help="also print the top N functions by self time")
    ap.add_argument("--ablate", action="store_true", help="time the sandboxed run without each diagnostic instead")
    ap.add_argument("--rounds", type=int, default=5, help="--ablate: interleaved rounds, best of")
    args = ap.parse_args()
    if args.ablate:
        ablate(args.driver, args.n, args.rounds)
        return
    from hwsim.board import DEFAULT_BOARD
    from hwsim.driver import DriverRun, build_driver
    from hwsim.driver.firmware import FirmwareRun
    from hwsim.testing import make_board

    root = Path(__file__).resolve().parents[1] / "drivers" / args.driver
    entry = "read_loop" if args.driver == "virtio_blk" else "pingpong"
    wasm, elf = build_driver(root).read_bytes(), build_driver(root, native=True).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "disk.img"
        image.write_bytes(bytes(1 << 20))
        options = {"blk0": {"image": str(image)}} if args.driver == "virtio_blk" else None
        runs = {
            "sandboxed": DriverRun(make_board(DEFAULT_BOARD, options=options)[0], wasm, log=lambda t: None),
            "native": FirmwareRun(make_board(DEFAULT_BOARD, options=options)[0], elf),
        }
        result = {name: split(stats := profile(run, entry, args.n)) + (stats,) for name, run in runs.items()}
    n = args.n
    print(f"{args.driver} {entry}, n={n}, one cProfile'd run each; per operation (us) and share of the run")
    print(f"{'category':44} {'sandboxed':>16} {'native':>16}")
    for name, _ in CATEGORIES:
        cells = []
        for run in runs:
            times, _c, total, _s = result[run]
            cells.append(f"{times[name] / n * 1e6:8.1f} {times[name] / total * 100:5.1f}%")
        print(f"{name:44} {cells[0]:>16} {cells[1]:>16}")
    print(f"{'total (profiled)':44} " + " ".join(f"{result[r][2] / n * 1e6:8.1f} {100:5.0f}% " for r in runs))
    print("calls per operation:")
    for key in COUNTED:
        print(f"  {key:42} " + " ".join(f"{result[r][1][key] / n:16.1f}" for r in runs))
    if args.top:
        for run in runs:
            print(f"--- {run}: top {args.top} by self time")
            result[run][3].sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
