/* BUG: after sync_for_cpu the buffer is the CPU's, but the device is started without sync_for_device. */
#include <hwsim.h>
#include <dma_engine.h>
static uint8_t a[64], b[64];
int probe(void) {
    volatile uint32_t *dma = hwsim_mmio_map("dma0");
    hwsim_iova_t src = hwsim_dma_map_single("dma0", a, sizeof a, HWSIM_DMA_TO_DEVICE);
    hwsim_iova_t dst = hwsim_dma_map_single("dma0", b, sizeof b, HWSIM_DMA_FROM_DEVICE);
    hwsim_dma_sync_single_for_cpu("dma0", dst, sizeof b, HWSIM_DMA_FROM_DEVICE);
    b[0] = 1;                                   /* the CPU owns it now */
    int err = dma_engine_copy(dma, src, dst, sizeof a);   /* missing hwsim_dma_sync_single_for_device */
    hwsim_dma_unmap_single("dma0", src, sizeof a, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", dst, sizeof b, HWSIM_DMA_FROM_DEVICE);
    return err;
}
