/* BUG: 100 bytes are mapped, the device is told to write 128 (all inside one page). */
#include <hwsim.h>
#include <dma_engine.h>
static uint8_t a[128], b[128];
int probe(void) {
    volatile uint32_t *dma = hwsim_mmio_map("dma0");
    hwsim_iova_t src = hwsim_dma_map_single("dma0", a, 128, HWSIM_DMA_TO_DEVICE);
    hwsim_iova_t dst = hwsim_dma_map_single("dma0", b, 100, HWSIM_DMA_FROM_DEVICE);
    int err = dma_engine_copy(dma, src, dst, 128);
    hwsim_dma_unmap_single("dma0", src, 128, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", dst, 100, HWSIM_DMA_FROM_DEVICE);
    return err;
}
