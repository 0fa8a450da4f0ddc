"""Attacks on the release observers (hwsim/driver/dma.py ``DmaChecker.released``, registered with the
Store's ``add_release_observer``): memory.discard / memory.unmap of driver pages still mapped for DMA is
Problem.RELEASED, for exactly the bytes of each live mapping released; neighbouring pages, buffers
already unmapped and pages a mapping does not reach are not reported."""

from __future__ import annotations

from pathlib import Path

from hwsim.board import DEFAULT_BOARD, load_board
from hwsim.driver import DriverRun, build_driver
from hwsim.driver.dma import Problem

DRIVERS = Path(__file__).resolve().parents[1] / "drivers"

_DRIVER = """#include <hwsim.h>
__attribute__((import_module("hwsim:memory"), import_name("discard"))) void hwsim_discard(void *, unsigned long);
__attribute__((import_module("hwsim:memory"), import_name("unmap"))) void hwsim_unmap(void *, unsigned long);
static uint8_t a[6 * 4096] __attribute__((aligned(4096)));
int probe(void) {
    hwsim_iova_t big, tail, head, c1, c2, gone;
    /* big: from 100 bytes into page 1 to 100 bytes into page 3 (3 pages touched) */
    big = hwsim_dma_map_single("dma0", a + 4096 + 100, 2 * 4096, HWSIM_DMA_TO_DEVICE);
    hwsim_discard(a, 4096);                                   /* page 0: before big, not reported */
    hwsim_discard(a + 2 * 4096, 4096);                        /* line 10: big's middle page, 4096 bytes */
    hwsim_discard(a + 3 * 4096, 2 * 4096);                    /* line 11: big's last 100 bytes */
    hwsim_dma_unmap_single("dma0", big, 2 * 4096, HWSIM_DMA_TO_DEVICE);
    hwsim_discard(a, sizeof a);                               /* big unmapped: not reported */
    /* two buffers sharing page 4: both reported by one discard, each for its own bytes */
    tail = hwsim_dma_map_single("dma0", a + 4 * 4096 + 16, 32, HWSIM_DMA_FROM_DEVICE);
    head = hwsim_dma_map_single("dma0", a + 4 * 4096 + 2048, 100, HWSIM_DMA_BIDIRECTIONAL);
    hwsim_discard(a + 5 * 4096, 4096);                        /* the page after: not reported */
    hwsim_discard(a + 3 * 4096, 2 * 4096);                    /* line 18: tail (32) and head (100) */
    hwsim_dma_unmap_single("dma0", tail, 32, HWSIM_DMA_FROM_DEVICE);
    hwsim_dma_unmap_single("dma0", head, 100, HWSIM_DMA_BIDIRECTIONAL);
    hwsim_unmap(a + 4 * 4096, 4096);                          /* both unmapped: not reported */
    gone = hwsim_dma_map_single("dma0", a + 16, 8, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", gone, 8, HWSIM_DMA_TO_DEVICE);
    hwsim_unmap(a, 4096);                                     /* unmap after dma_unmap: not reported */
    /* coherent buffers: two of them, the second over two pages */
    uint8_t *r1 = hwsim_dma_alloc_coherent("dma0", 64, &c1);
    uint8_t *r2 = hwsim_dma_alloc_coherent("dma0", 4096 + 8, &c2);
    hwsim_discard(r2 + 4096, 4096);                           /* line 28: r2's last 8 bytes */
    hwsim_dma_free_coherent("dma0", 4096 + 8, r2, c2);
    hwsim_dma_free_coherent("dma0", 64, r1, c1);
    return 0;
}
"""


def _run(tmp_path, source: str):
    drv = tmp_path / "release"
    drv.mkdir()
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "hwsim.h").write_text((DRIVERS / "include" / "hwsim.h").read_text())
    (drv / "release.c").write_text(source)
    system = load_board(DEFAULT_BOARD).build(options={"uart0": {"backend": "memory"}})
    run = DriverRun(system, build_driver(drv).read_bytes(), log=lambda text: None)
    return run.run()


def test_released_bytes_of_each_live_mapping_and_nothing_else(tmp_path):
    report = _run(tmp_path, _DRIVER)
    assert report.result == 0 and report.trap is None, report.format()
    got = [(r.problem, r.access, r.size, r.mapping.size, r.iova - r.mapping.iova) for r in report.dma_reports]
    assert got == [
        (Problem.RELEASED, "memory.discard", 4096, 2 * 4096, 4096 - 100),  # big's middle page
        (Problem.RELEASED, "memory.discard", 100, 2 * 4096, 2 * 4096 - 100),  # big's last 100 bytes
        (Problem.RELEASED, "memory.discard", 32, 32, 0),  # tail
        (Problem.RELEASED, "memory.discard", 100, 100, 0),  # head
        (Problem.RELEASED, "memory.discard", 8, 4096 + 8, 4096),  # r2's second page
    ], report.format()
    lines = [next(part for part in r.format().split() if part.startswith("release.c:")) for r in report.dma_reports]
    assert lines == ["release.c:10", "release.c:11", "release.c:18", "release.c:18", "release.c:28"], lines


_INDIRECT = """#include <hwsim.h>
__attribute__((import_module("hwsim:memory"), import_name("discard"))) void hwsim_discard(void *, unsigned long);
__attribute__((import_module("hwsim:memory"), import_name("unmap"))) void hwsim_unmap(void *, unsigned long);
static uint8_t a[2 * 4096] __attribute__((aligned(4096)));
typedef void (*release_fn)(void *, unsigned long);
static volatile release_fn fns[2] = {hwsim_discard, hwsim_unmap};
int probe(void) {
    hwsim_iova_t iova = hwsim_dma_map_single("dma0", a + 4096, 64, HWSIM_DMA_FROM_DEVICE);
    fns[0](a, 4096);                                          /* the page before: not reported */
    fns[0](a + 4096, 4096);                                   /* line 10: through a function pointer */
    fns[1](a + 4096, 4096);                                   /* line 11: the same, unmap */
    hwsim_dma_unmap_single("dma0", iova, 64, HWSIM_DMA_FROM_DEVICE);
    return 0;
}
"""


def test_released_through_a_function_pointer_is_reported_at_the_call(tmp_path):
    """The intrinsics called indirectly run as host functions (runtime/instance.py), not as builtins:
    the same reports, at the C line of the indirect call."""
    report = _run(tmp_path, _INDIRECT)
    assert report.result == 0 and report.trap is None, report.format()
    assert [(r.problem, r.access, r.size) for r in report.dma_reports] == [
        (Problem.RELEASED, "memory.discard", 64),
        (Problem.RELEASED, "memory.unmap", 64),
    ], report.format()
    assert "release.c:10" in report.dma_reports[0].format(), report.dma_reports[0].format()
    assert "release.c:11" in report.dma_reports[1].format(), report.dma_reports[1].format()
