/* BUG: the driver writes the source buffer after handing it to the device (after dma_map_single). */
#include <hwsim.h>
#include <dma_engine.h>
static uint8_t a[64], b[64];
int probe(void) {
    volatile uint32_t *dma = hwsim_mmio_map("dma0");
    hwsim_iova_t src = hwsim_dma_map_single("dma0", a, sizeof a, HWSIM_DMA_TO_DEVICE);
    hwsim_iova_t dst = hwsim_dma_map_single("dma0", b, sizeof b, HWSIM_DMA_FROM_DEVICE);
    a[0] = 42;                               /* too late: the device owns a now */
    int err = dma_engine_copy(dma, src, dst, sizeof a);
    hwsim_dma_unmap_single("dma0", src, sizeof a, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", dst, sizeof b, HWSIM_DMA_FROM_DEVICE);
    return err;
}
