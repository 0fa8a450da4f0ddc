"""Native firmware: the same driver sources built for riscv64, run unsandboxed on the board.

The ELF is loaded at its physical addresses (firmware/link.ld: 0x8400_0000)
and runs in M-mode without translation; MMIO uses the devices' physical
addresses, DMA uses physical addresses with the IOMMU in bare mode.  The
``hwsim.h`` functions are ecalls (firmware/hwsim_native.c): a7 names the
service.  This is the baseline that shows what the sandbox costs.
"""

from __future__ import annotations

import io

from elftools.elf.elffile import ELFFile

from ..errors import ConfigError
from ..machine.elf import ElfImage
from ..mmu.bits import PAGE_SIZE
from ..riscv.priv import Priv
from .runner import DriverError, RunReport

STACK_SIZE = 256 << 10
SERVICES = {1: "mmio_map", 2: "irq_wait", 3: "log", 4: "now_ns", 5: "sleep_ns", 6: "dma_map", 7: "dma_unmap",
            8: "dma_sync_cpu", 9: "dma_sync_device", 10: "dma_alloc", 11: "dma_free"}


class FirmwareRun:
    def __init__(self, system, elf: bytes, *, log=None) -> None:
        self.system = system
        self.m = system.machine
        self.log_sink = log or (lambda text: None)
        self.log: list[str] = []
        self.image = self._load(elf)
        if "probe" not in self.image.symbols:
            raise DriverError("the firmware has no probe symbol")
        heap = self.image.symbols.get("__heap_start", 0)
        self.heap = (heap + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        self.stack_top = self.m.frames.alloc(STACK_SIZE // PAGE_SIZE) + STACK_SIZE
        self.exit = self.m.frames.alloc()  # the return address of probe: reached, never executed
        if system.iommu is not None:
            system.iommu.set_mode("bare")  # DMA addresses are physical
        self.m.on_ecall(self._service)

    def _load(self, data: bytes) -> ElfImage:
        elf = ELFFile(io.BytesIO(data))
        if elf["e_machine"] != "EM_RISCV" or elf.elfclass != 64:
            raise ConfigError("firmware must be a 64-bit RISC-V ELF file")
        image = ElfImage(elf.header["e_entry"])
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_LOAD" or not seg["p_memsz"]:
                continue
            start, size = seg["p_vaddr"], seg["p_memsz"]
            first = start & ~(PAGE_SIZE - 1)
            try:
                self.m.frames.reserve(first, start + size - first)
            except Exception as exc:
                raise ConfigError(f"firmware segment at {start:#x} does not fit the board's RAM: {exc}") from None
            self.m.phys.fill(start, size)
            self.m.phys.write(start, seg.data()[:seg["p_filesz"]])
            image.segments.append((start, size, seg["p_flags"]))
        symtab = elf.get_section_by_name(".symtab")
        if symtab is not None:
            for sym in symtab.iter_symbols():
                if sym.name:
                    image.symbols[sym.name] = sym["st_value"]
        self.m.code_changed()
        return image

    def _string(self, ptr: int, length: int) -> str:
        return self.m.phys.read(ptr, length).decode("utf-8", errors="replace")

    def _service(self, m) -> bool:
        n = m.get_reg("a7")
        a = [m.get_reg(f"a{i}") for i in range(5)]
        what = SERVICES.get(n)
        result = 0
        if what == "mmio_map":
            name = self._string(a[0], a[1])
            self.system.device(name)
            result = next(r.base for r in m.phys.mmio_regions if r.name == name)
        elif what == "irq_wait":
            from .runner import DriverRun
            result = DriverRun.irq_wait_for(self.system, self.system.device(self._string(a[0], a[1])),
                                            10 * self.system.clock.frequency_hz)
        elif what == "log":
            text = self._string(a[0], a[1])
            self.log.append(text)
            self.log_sink(text)
        elif what == "now_ns":
            result = self.system.clock.ticks_to_ns(self.system.clock.now)
        elif what == "sleep_ns":
            self.system.clock.advance(a[0] * self.system.clock.frequency_hz // 1_000_000_000)
        elif what == "dma_map":
            result = a[2]  # physical: the IOMMU is in bare mode
        elif what == "dma_alloc":
            size = (a[2] + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
            self.m.frames.reserve(self.heap, size)
            result, self.heap = self.heap, self.heap + size
            m.phys.write_u64(a[3], result)
        elif what in ("dma_unmap", "dma_sync_cpu", "dma_sync_device", "dma_free"):
            pass
        else:
            raise DriverError(f"firmware made an ecall with unknown service a7={n}")
        m.set_reg("a0", result)
        return False

    def run(self, entry: str = "probe", args: tuple = ()) -> RunReport:
        m = self.m
        if entry not in self.image.symbols:
            raise DriverError(f"the firmware has no symbol {entry!r}")
        m.activate(None, priv=Priv.M)
        m.set_reg("sp", self.stack_top)
        m.set_reg("ra", self.exit)
        for i, value in enumerate(args):
            m.set_reg(f"a{i}", value)
        report = RunReport(log=self.log)
        before = m.mmio_accesses
        iommu = self.system.iommu
        requests = iommu.stats.requests if iommu is not None else 0
        result = m.run(self.image.symbols[entry], until=self.exit)
        if result.ok:
            value = m.get_reg("a0") & 0xFFFF_FFFF
            report.result = value - (1 << 32) if value >> 31 else value
        else:
            where = self.image.symbol_at(result.pc) or f"{result.pc:#x}"
            raise DriverError(f"firmware stopped in {where}: {result.describe()}")
        report.mmio_accesses = m.mmio_accesses - before
        if iommu is not None:
            report.dma_requests = iommu.stats.requests - requests
        report.device_issues = self.system.issues()
        report.virtual_ns = self.system.clock.ticks_to_ns(self.system.clock.now)
        return report
