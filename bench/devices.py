"""Device and IOMMU costs, measured side by side in one run.

    python bench/devices.py [--quick]

Guest MMIO: U-mode loops of byte loads from a RAM page, from the UART's SCR
(1-byte register through the register framework), from the DMA engine's ID
(32-bit register), and from a bare Python device with no framework, all on
the virt board through page tables.  DMA: host-side ``Iommu.dma`` reads and
writes with a warm IOTLB, against a plain copy of the same bytes out of the
RAM buffer (no IOMMU), and guest-driven DMA-engine transfers with the
engine's virtual time off (bandwidth 0: the host's cost of a transfer).  Ratios
are against measurements made in this run; nothing is compared with a stored number.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwsim.board import DEFAULT_BOARD, load_board  # noqa: E402
from hwsim.mmu import AddressSpace, Pte  # noqa: E402
from hwsim.riscv import asm as A  # noqa: E402
from hwsim.riscv.priv import Priv  # noqa: E402

CODE, DATA, UART, DMA, RAW = 0x1_0000, 0x2_0000, 0x4_0000, 0x5_0000, 0x7_0000
RAW_PA = 0x1010_0000
RW_U = Pte.R | Pte.W | Pte.U


class RawDevice:
    """The cheapest possible device: a constant, no register framework."""

    def mmio_read(self, offset, size):
        return 0x5A

    def mmio_write(self, offset, size, value):
        pass


def setup():
    system = load_board(DEFAULT_BOARD).build(options={"uart0": {"backend": "memory"}, "dma0": {"bandwidth": 0}})
    m = system.machine
    m.phys.add_mmio(RAW_PA, 0x1000, RawDevice(), name="raw")
    space = m.new_address_space(asid=1)
    code_pa = m.frames.alloc()
    space.map(CODE, code_pa, 0x1000, Pte.R | Pte.X | Pte.U)
    space.map(DATA, m.frames.alloc(), 0x1000, RW_U)
    space.map(UART, 0x1000_0000, 0x1000, RW_U)
    space.map(DMA, 0x1002_0000, 0x2000, RW_U)
    space.map(RAW, RAW_PA, 0x1000, RW_U)
    m.activate(space, priv=Priv.U)
    return system, code_pa


def run_program(system, code_pa, build) -> float:
    m = system.machine
    a = A.Assembler(CODE)
    build(a)
    a.label("exit")
    m.phys.write(code_pa, a.finish())
    m.code_changed()
    t0 = time.perf_counter()
    r = m.run(CODE, until=a.labels["exit"])
    dt = time.perf_counter() - t0
    assert r.ok, r
    return dt


def load_loop(base: int, offset: int, n: int, load=A.lbu):
    def build(a):
        a.li("a1", base).li("t1", n)
        a.label("loop").emit(load("t0", "a1", offset), A.addi("t1", "t1", -1))
        a.branch("bne", "t1", "zero", "loop")

    return build


def bench_mmio(system, code_pa, n_ram: int, n_mmio: int) -> None:
    print("guest loads (U-mode, through page tables), per second")
    ram = n_ram / run_program(system, code_pa, load_loop(DATA, 0, n_ram))
    rows = [("RAM byte load", ram)]
    for label, base, off, load in (
        ("raw Python device (no framework)", RAW, 0, A.lbu),
        ("UART SCR (1-byte register)", UART, 7, A.lbu),
        ("DMA ID (32-bit register)", DMA, 0, A.lw),
    ):
        rate = n_mmio / run_program(system, code_pa, load_loop(base, off, n_mmio, load))
        rows.append((label, rate))
    for label, rate in rows:
        print(f"  {label:36s} {rate:14,.0f}/s   RAM/this = {ram / rate:10,.1f}x")
    assert system.issues() == []


def dma_space(system):
    """Device 1 at the IOMMU: 1 MiB readable at IOVA 0x1000_0000, 1 MiB writable at 0x2000_0000 (4 KiB pages)."""
    m = system.machine
    iommu = system.iommu
    iommu.create_directory()
    space = AddressSpace(m.phys, m.frames)
    size = 1 << 20
    src = m.frames.alloc(size >> 12)
    dst = m.frames.alloc(size >> 12)
    space.map(0x1000_0000, src, size, Pte.R | Pte.U, page_size=4096)
    space.map(0x2000_0000, dst, size, RW_U, page_size=4096)
    iommu.attach(1, space, pscid=1)
    return space, src, size


def bench_dma(system, rounds: int) -> None:
    m = system.machine
    iommu = system.iommu
    space, src, size = dma_space(system)
    data = bytes(range(256)) * (size // 256)
    print("host-side DMA through the IOMMU (IOTLB warm), MB/s")

    def rate(fn, chunk):
        fn(chunk)  # warm
        t0 = time.perf_counter()
        for _ in range(rounds):
            fn(chunk)
        return rounds * size / (time.perf_counter() - t0) / 1e6

    def raw_copy(chunk):
        view = m.phys.view(src, size)
        for off in range(0, size, chunk):
            bytes(view[off : off + chunk])

    def dma_read(chunk):
        for off in range(0, size, chunk):
            assert iommu.dma(1, 0x1000_0000 + off, chunk, write=False).ok

    def dma_write(chunk):
        for off in range(0, size, chunk):
            assert iommu.dma(1, 0x2000_0000 + off, chunk, write=True, data=data[off : off + chunk]).ok

    for chunk in (4096, 64 << 10):
        base = rate(raw_copy, chunk)
        r = rate(dma_read, chunk)
        w = rate(dma_write, chunk)
        print(
            f"  {chunk >> 10:3d} KiB requests: plain RAM copy {base:9,.0f}   dma read {r:8,.0f} "
            f"(copy/dma = {base / r:5.1f}x)   dma write {w:8,.0f} (copy/dma = {base / w:5.1f}x)"
        )
    hits = iommu.iotlb.stats
    print(f"  IOTLB: {hits.hits:,} hits, {hits.misses:,} misses")
    return space


def guest_transfers(system, code_pa, length: int, transfers: int) -> float:
    """Seconds per guest-driven transfer of ``length`` bytes (IOVA 0x1000_0000 -> 0x2000_0000, device 1):
    START, one STATUS read, the acknowledgement.  With the engine's virtual time off (bandwidth 0, as
    :func:`setup` builds it) a transfer is done at START, so this is the host's cost of a transfer
    (3 MMIO accesses, a read and a write request through the IOMMU), not a virtual-time wait."""
    dev = system.device("dma0")

    def build(a):
        a.li("s0", DMA).li("s1", transfers)
        a.li("t0", 0x1000_0000).emit(A.sd("t0", "s0", 0x08))
        a.li("t0", 0x2000_0000).emit(A.sd("t0", "s0", 0x10))
        a.li("t0", length).emit(A.sw("t0", "s0", 0x18))
        a.label("again").li("t0", 1).emit(A.sw("t0", "s0", 0x1C))
        a.label("poll").emit(A.lw("a0", "s0", 0x20), A.andi("t1", "a0", 0b110))
        a.branch("beq", "t1", "zero", "poll")
        a.emit(A.sw("a0", "s0", 0x20), A.addi("s1", "s1", -1))
        a.branch("bne", "s1", "zero", "again")

    done = dev.regs["DONE_COUNT"]
    dt = run_program(system, code_pa, build)
    assert dev.regs["DONE_COUNT"] - done == transfers, dev.regs["ERROR_CODE"]
    return dt / transfers


def bench_guest_dma(system, code_pa, transfers: int) -> None:
    print("guest-driven DMA engine, instant transfers (memory to memory through the IOMMU)")
    for length in (4 << 10, 64 << 10):
        per = guest_transfers(system, code_pa, length, transfers)
        print(f"  {length >> 10:3d} KiB: {per * 1e6:7.1f} us per transfer = {length / per / 1e6:8,.0f} MB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    q = 10 if args.quick else 1
    system, code_pa = setup()
    bench_mmio(system, code_pa, 20_000_000 // q, 400_000 // q)
    bench_dma(system, max(2, 20 // q))
    bench_guest_dma(system, code_pa, 2000 // q)


if __name__ == "__main__":
    main()
