/* BUG: the driver reads the DMA destination while the device still owns it (before sync_for_cpu or unmap). */
#include <hwsim.h>
#include <dma_engine.h>
static uint8_t a[64], b[64];
int probe(void) {
    volatile uint32_t *dma = hwsim_mmio_map("dma0");
    for (int i = 0; i < 64; i++) a[i] = (uint8_t)i;
    hwsim_iova_t src = hwsim_dma_map_single("dma0", a, sizeof a, HWSIM_DMA_TO_DEVICE);
    hwsim_iova_t dst = hwsim_dma_map_single("dma0", b, sizeof b, HWSIM_DMA_FROM_DEVICE);
    int err = dma_engine_copy(dma, src, dst, sizeof a);
    int fifth = b[5];                        /* the device owns b: this read may see stale data */
    hwsim_dma_unmap_single("dma0", src, sizeof a, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", dst, sizeof b, HWSIM_DMA_FROM_DEVICE);
    return err ? err : fifth - 5;
}
