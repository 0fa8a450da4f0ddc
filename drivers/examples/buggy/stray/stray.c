/* BUG: the device is pointed at an IOVA that was never mapped. */
#include <hwsim.h>
#include <dma_engine.h>
static uint8_t buf[64];
int probe(void) {
    volatile uint32_t *dma = hwsim_mmio_map("dma0");
    hwsim_iova_t src = hwsim_dma_map_single("dma0", buf, sizeof buf, HWSIM_DMA_TO_DEVICE);
    int err = dma_engine_copy(dma, src, 0x50000000, sizeof buf);   /* destination: nobody mapped it */
    hwsim_dma_unmap_single("dma0", src, sizeof buf, HWSIM_DMA_TO_DEVICE);
    return err;
}
