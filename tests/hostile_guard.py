"""The invariant every hostile-driver test checks: nothing outside the driver's own frames changed.

``RamGuard(run)`` is taken after the driver is loaded and before it runs.  It
plants canary frames (random bytes, allocated next to where the driver's pages
will come from: "another owner's" memory) and records every allocated frame.
``check()`` after the run asserts:

* every frame allocated before the run that is not the driver's is unchanged,
  byte for byte: code, the runtime page, canaries, the IOMMU's own frames,
  anything else.  Frames the run legitimately changes are left out: the
  driver's memory pages, the Store's data area (vmctx, globals, stack, ABI
  area) and page tables;
* page tables are checked by structure instead: in the CPU's table every
  U-mode leaf lies in the driver's memory reservation (mapping RAM that is no
  canary, code or page table) or is a window onto a device assigned to the
  driver; in each device's IO page table every leaf maps one of the driver's
  memory frames;
* the IOMMU still translates (ddtp mode and every device context as the DMA
  checker set them).
"""

from __future__ import annotations

import hashlib
import random

from hwsim.mmu.bits import PAGE_SIZE, Pte
from hwsim.runtime import layout as L

CANARIES = 16


def _digest(phys, pa: int) -> bytes:
    return hashlib.blake2b(phys.read(pa, PAGE_SIZE), digest_size=16).digest()


class RamGuard:
    def __init__(self, run, *, seed: int = 0) -> None:
        self.run = run
        self.machine = run.system.machine
        self.store = run.store._store
        frames = self.machine.frames
        rng = random.Random(seed)
        self.canaries = []
        for _ in range(CANARIES):
            pa = frames.alloc()
            self.machine.phys.write(pa, rng.randbytes(PAGE_SIZE))
            self.canaries.append(pa)
        self.iommu = run.system.iommu
        self.ddtp = self.iommu.ddtp if self.iommu is not None else None
        self.contexts = self._contexts()
        self.before = {pa: _digest(self.machine.phys, pa) for pa in self._allocated()}
        self.changing = self._changing()

    def _allocated(self) -> list[int]:
        frames = self.machine.frames
        base = frames.region.base
        return [base + i * PAGE_SIZE for i in range(frames.nframes) if frames.is_allocated(base + i * PAGE_SIZE)]

    def _contexts(self):
        if self.iommu is None or self.iommu.directory is None:
            return {}
        return {did: self.iommu.directory.get_context(did).to_bytes() for did in self.run.dma.spaces}

    def _table_frames(self) -> set[int]:
        tables = set(self.store.space._valid)
        for space in self.run.dma.spaces.values():
            tables |= set(space._valid)
        return tables  # the IOMMU's device directory is not among them: it must not change at all

    def _memory_ranges(self) -> list[tuple[int, int]]:
        return [(m.base, m.base + L.MEMORY_RESERVATION) for m in self.store.memories]

    def _cpu_leaves(self):
        return list(self.store.space.mappings())

    def _changing(self) -> set[int]:
        """Frames the run may change: driver memory pages, the Store's data area, page tables."""
        out = self._table_frames()
        ranges = self._memory_ranges()
        for m in self._cpu_leaves():
            in_memory = any(lo <= m.va < hi for lo, hi in ranges)
            data = (
                L.DATA_BASE <= m.va < L.DATA_END
                or L.ABI_AREA <= m.va < L.ABI_AREA + L.ABI_AREA_SIZE
                or L.STACK_TOP - L.STACK_SIZE - L.STACK_GUARD <= m.va < L.STACK_TOP
            )
            if in_memory or data:
                out.update(range(m.pa, m.pa + m.size, PAGE_SIZE))
        return out

    def check(self) -> dict:
        """Assert the invariants; returns counts for the record."""
        try:
            return self._check()
        except AssertionError:
            raise
        except Exception as exc:  # a walk through a corrupted page table
            raise AssertionError(f"page tables corrupted: {type(exc).__name__}: {exc}") from exc

    def _check(self) -> dict:
        phys = self.machine.phys
        changing = self.changing | self._changing()
        protected = [pa for pa in self.before if pa not in changing]
        changed = [pa for pa in protected if _digest(phys, pa) != self.before[pa]]
        assert not changed, f"frames outside the driver's changed: {[hex(pa) for pa in changed]}"
        assert set(self.canaries) <= set(protected)
        tables = self._table_frames()
        forbidden = set(self.canaries) | tables | {pa for pa in protected if pa not in self.canaries}
        ranges = self._memory_ranges()
        windows = {r.name: (r.base, r.base + r.size) for r in phys.mmio_regions}
        assigned = [windows[name] for name in self.run.assigned]
        fixed = [
            (L.RUNTIME_PAGE, L.RUNTIME_PAGE + PAGE_SIZE, False),
            (L.ABI_AREA, L.ABI_AREA + L.ABI_AREA_SIZE, True),
            (L.CODE_BASE, L.CODE_END, False),
            (L.DATA_BASE, L.DATA_END, True),
            (L.STACK_TOP - L.STACK_SIZE - L.STACK_GUARD, L.STACK_TOP, True),
        ]
        for m in self._cpu_leaves():
            in_memory = any(lo <= m.va < hi for lo, hi in ranges)
            if not in_memory:
                region = next(((lo, hi, w) for lo, hi, w in fixed if lo <= m.va < hi), None)
                assert region is not None, f"a mapping outside the Store's layout: va {m.va:#x} -> pa {m.pa:#x}"
                assert region[2] or not m.flags & Pte.W, f"runtime or code page made writable: va {m.va:#x}"
                assert m.pa not in tables and m.pa not in self.canaries, f"va {m.va:#x} maps {m.pa:#x}"
                continue
            if any(lo <= m.pa and m.pa + m.size <= hi for lo, hi in assigned):
                continue  # a window onto a device the driver was given
            assert phys.is_ram(m.pa, m.size), f"a driver memory page maps something that is not RAM: {m.pa:#x}"
            for pa in range(m.pa, m.pa + m.size, PAGE_SIZE):
                assert pa not in forbidden, f"the driver's memory maps a frame it does not own: {pa:#x}"
        for did, space in self.run.dma.spaces.items():
            for m in space.mappings():
                for pa in range(m.pa, m.pa + m.size, PAGE_SIZE):
                    assert pa not in forbidden, f"device {did}'s IO page table maps a foreign frame {pa:#x}"
        if self.iommu is not None:
            assert self.iommu.ddtp == self.ddtp, "the IOMMU's ddtp changed"
            assert self._contexts() == self.contexts, "a device context changed"
        return {"protected_frames": len(protected), "canaries": len(self.canaries)}
