"""Drivers' MMIO, DMA, block and network work, sandboxed (wasm on hwsim) and as native firmware, side by side.

    python bench/drivers.py [--quick]

drivers/bench/bench.c is built twice: to wasm (run sandboxed: U-mode, its
memory behind hwsim's MMU, device windows mapped into it, DMA through the
IOMMU with per-device IO page tables and the DMA checker) and natively for
riscv64 (run in M-mode with physical addresses, the IOMMU in bare mode).
drivers/virtio_blk (4 KiB reads) and drivers/virtio_net (loopback round trips
of 60..1514-byte frames, one at a time) are measured the same way.
drivers/nvme (4 KiB reads, one command at a time, each with its own streaming
mapping) too.  Every workload is measured interleaved: sandboxed and native
runs alternate, and the best of each is kept, so both see the same machine
load (timing all sandboxed runs first let load swing a ratio 2.6x).
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


def interleaved(runs: dict, entry: str, n: int, repeat: int, *, check: bool = True) -> dict[str, float]:
    """Best wall time of ``entry(n)`` for each run, the runs taking turns (a, b, a, b, ...), so that both
    see the same machine load; ``check``: the entry returns 0 on success."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, run in runs.items():
            t = time.perf_counter()
            report = run.run(entry, (n,))
            best[name] = min(best[name], time.perf_counter() - t)
            if check and report.result != 0:
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
    repeat = 3

    def pair(wasm_bytes: bytes, elf_bytes: bytes, options: dict | None = None) -> dict:
        """The same driver sandboxed and native, each on a board of its own."""
        return {
            "sandboxed": DriverRun(make_board(DEFAULT_BOARD, options=options)[0], wasm_bytes, log=lambda t: None),
            "native": FirmwareRun(make_board(DEFAULT_BOARD, options=options)[0], elf_bytes),
        }

    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "disk.img"
        image.write_bytes(bytes(1 << 20))
        bench_runs = pair(wasm, elf)
        mmio = interleaved(bench_runs, "mmio_loop", mmio_n, repeat, check=False)
        dma = interleaved(bench_runs, "dma_loop", dma_n, repeat)
        blk_best = interleaved(pair(blk_wasm, blk_elf, {"blk0": {"image": str(image)}}), "read_loop", blk_n, repeat)
        net_best = interleaved(pair(net_wasm, net_elf), "pingpong", net_n, repeat)
        rows = {
            name: (
                2 * mmio_n / mmio[name],
                dma_n * 4096 / dma[name] / 1e6,
                blk_n / blk_best[name],
                net_n / net_best[name],
            )
            for name in ("sandboxed", "native")
        }
        nvme_best = interleaved(
            pair(nvme_wasm, nvme_elf, {"nvme0": {"image": str(image)}}), "read_loop", nvme_n, nvme_repeat
        )
    print(
        f"{time.strftime('%Y-%m-%d')}: drivers/bench, drivers/virtio_blk and drivers/virtio_net on "
        f"boards/virt.toml, sandboxed and native runs interleaved, best of {repeat}"
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
