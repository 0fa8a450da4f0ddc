/* DMA-engine copies of the same ranges, again and again (after the second, the engine moves them through
 * validated views), then one thing that must end the views' use before one more copy of the same ranges:
 *   1 the destination unmapped (a late DMA: the IOMMU faults, the checker reports it)
 *   2 the destination handed to the CPU (dma_sync_for_cpu: the checker reports the device's write)
 *   3 the source unmapped (the read faults, nothing is written)
 *   4 the destination synced for the CPU and back for the device (nothing to report)
 *   0 nothing (the copies go on through the views)
 * Returns 1000 * the failed copies before that, plus the last copy's error code, plus 100 when the data
 * did not arrive. */
#include <hwsim.h>
#include <dma_engine.h>

static uint8_t src[4096] __attribute__((aligned(4096))), dst[4096] __attribute__((aligned(4096)));

int probe(void) { return 0; }

HWSIM_EXPORT("repeat_then") int repeat_then(int scenario, int copies) {
    volatile uint32_t *dma = hwsim_mmio_map("dma0");
    for (int i = 0; i < 4096; i++) src[i] = (uint8_t)(i * 7 + scenario);
    hwsim_iova_t s = hwsim_dma_map_single("dma0", src, sizeof src, HWSIM_DMA_TO_DEVICE);
    hwsim_iova_t d = hwsim_dma_map_single("dma0", dst, sizeof dst, HWSIM_DMA_FROM_DEVICE);
    int failed = 0;
    for (int i = 0; i < copies; i++) failed += dma_engine_copy(dma, s, d, sizeof src) != 0;
    int s_live = 1, d_live = 1;
    if (scenario == 1) {
        hwsim_dma_unmap_single("dma0", d, sizeof dst, HWSIM_DMA_FROM_DEVICE);
        d_live = 0;
    } else if (scenario == 2) {
        hwsim_dma_sync_single_for_cpu("dma0", d, sizeof dst, HWSIM_DMA_FROM_DEVICE);
    } else if (scenario == 3) {
        hwsim_dma_unmap_single("dma0", s, sizeof src, HWSIM_DMA_TO_DEVICE);
        s_live = 0;
    } else if (scenario == 4) {
        hwsim_dma_sync_single_for_cpu("dma0", d, sizeof dst, HWSIM_DMA_FROM_DEVICE);
        hwsim_dma_sync_single_for_device("dma0", d, sizeof dst, HWSIM_DMA_FROM_DEVICE);
    }
    int last = dma_engine_copy(dma, s, d, sizeof src); /* THE-LAST-COPY */
    if (s_live) hwsim_dma_unmap_single("dma0", s, sizeof src, HWSIM_DMA_TO_DEVICE);
    if (d_live) hwsim_dma_unmap_single("dma0", d, sizeof dst, HWSIM_DMA_FROM_DEVICE);
    return 1000 * failed + last + 100 * (dst[4095] != src[4095]); /* (the CPU owns both again) */
}
