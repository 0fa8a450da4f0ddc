"""Drivers' MMIO, DMA, block and network work, sandboxed (wasm on hwsim) and as native firmware, side by side.

    python bench/drivers.py [--quick]

drivers/bench/bench.c is built twice: to wasm (run sandboxed: U-mode, its
memory behind hwsim's MMU, device windows mapped into it, DMA through the
IOMMU with per-device IO page tables and the DMA checker) and natively for
riscv64 (run in M-mode with physical addresses, the IOMMU in bare mode).
drivers/virtio_blk (4 KiB reads) and drivers/virtio_net (loopback round trips
of 60..1514-byte frames, one at a time) are measured the same way.
drivers/nvme (4 KiB reads, one command at a time, each with its own streaming
mapping) is measured interleaved: sandboxed and native runs alternate, and the
best of each is kept, so both see the same machine load.
Needs zig (pip install -e ".[dev]").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim.board import DEFAULT_BOARD  # noqa: E402
from hwsim.driver import DriverRun, build_driver  # noqa: E402
from hwsim.driver.firmware import FirmwareRun  # noqa: E402
from hwsim.testing import make_board  # noqa: E402


def timed(run, entry: str, n: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        report = run.run(entry, (n,))
        best = min(best, time.perf_counter() - t)
        if entry in ("dma_loop", "pingpong") and report.result != 0:
            raise SystemExit(f"{entry} failed: {report.format()}")
    return best


def interleaved(runs: dict, entry: str, n: int, repeat: int) -> dict[str, float]:
    """Best wall time of ``entry(n)`` for each run, the runs taking turns (a, b, a, b, ...)."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, run in runs.items():
            t = time.perf_counter()
            report = run.run(entry, (n,))
            best[name] = min(best[name], time.perf_counter() - t)
            if report.result != 0:
                raise SystemExit(f"{name} {entry} failed: {report.format()}")
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    mmio_n, dma_n, blk_n, net_n = (20_000, 300, 200, 200) if args.quick else (100_000, 2000, 1000, 1000)
    nvme_n, nvme_repeat = (200, 3) if args.quick else (1000, 5)
    drv, blk, net = ROOT / "drivers" / "bench", ROOT / "drivers" / "virtio_blk", ROOT / "drivers" / "virtio_net"
    nvme = ROOT / "drivers" / "nvme"
    wasm, elf = build_driver(drv).read_bytes(), build_driver(drv, native=True).read_bytes()
    blk_wasm, blk_elf = build_driver(blk).read_bytes(), build_driver(blk, native=True).read_bytes()
    net_wasm, net_elf = build_driver(net).read_bytes(), build_driver(net, native=True).read_bytes()
    nvme_wasm, nvme_elf = build_driver(nvme).read_bytes(), build_driver(nvme, native=True).read_bytes()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "disk.img"
        image.write_bytes(bytes(1 << 20))
        for name, factory in (
            ("sandboxed", lambda s, w, e: DriverRun(s, w, log=lambda t: None)),
            ("native", lambda s, w, e: FirmwareRun(s, e)),
        ):
            system, _ = make_board(DEFAULT_BOARD)
            run = factory(system, wasm, elf)
            mmio = timed(run, "mmio_loop", mmio_n)
            dma = timed(run, "dma_loop", dma_n)
            system, _ = make_board(DEFAULT_BOARD, options={"blk0": {"image": str(image)}})
            iops = blk_n / timed(factory(system, blk_wasm, blk_elf), "read_loop", blk_n)
            system, _ = make_board(DEFAULT_BOARD)
            pps = net_n / timed(factory(system, net_wasm, net_elf), "pingpong", net_n)
            rows[name] = (2 * mmio_n / mmio, dma_n * 4096 / dma / 1e6, iops, pps)
        nvme_runs = {
            "sandboxed": DriverRun(
                make_board(DEFAULT_BOARD, options={"nvme0": {"image": str(image)}})[0], nvme_wasm, log=lambda t: None
            ),
            "native": FirmwareRun(make_board(DEFAULT_BOARD, options={"nvme0": {"image": str(image)}})[0], nvme_elf),
        }
        nvme_best = interleaved(nvme_runs, "read_loop", nvme_n, nvme_repeat)
    print(
        f"{time.strftime('%Y-%m-%d')}: drivers/bench, drivers/virtio_blk and drivers/virtio_net on "
        f"boards/virt.toml, best of 3"
    )
    print(
        f"{'':10} {'MMIO accesses/s':>16} {'DMA MB/s (4 KiB copies)':>25} {'virtio-blk 4 KiB read IOPS':>28} "
        f"{'virtio-net round trips/s':>26}"
    )
    for name, (ops, mbs, iops, pps) in rows.items():
        print(f"{name:10} {ops:16,.0f} {mbs:25.1f} {iops:28,.0f} {pps:26,.0f}")
    s, n = rows["sandboxed"], rows["native"]
    print(
        f"{'ratio':10} {s[0] / n[0]:16.2f} {s[1] / n[1]:25.2f} {s[2] / n[2]:28.2f} {s[3] / n[3]:26.2f}"
        f"   (sandboxed / native)"
    )
    nvme_iops = {name: nvme_n / t for name, t in nvme_best.items()}
    print(
        f"NVMe 4 KiB read IOPS (drivers/nvme read_loop {nvme_n}, sandboxed and native runs interleaved, "
        f"best of {nvme_repeat}): sandboxed {nvme_iops['sandboxed']:,.0f}, native {nvme_iops['native']:,.0f}, "
        f"ratio {nvme_iops['sandboxed'] / nvme_iops['native']:.2f} (sandboxed / native)"
    )


if __name__ == "__main__":
    main()
