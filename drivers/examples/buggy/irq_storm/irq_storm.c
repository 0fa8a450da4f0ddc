/* BUG: the interrupt handler never clears the device's interrupt (the DMA engine's DONE status). */
#include <hwsim.h>
#include <dma_engine.h>
static uint8_t a[64], b[64];
static volatile uint32_t *dma;
static unsigned calls;

void hwsim_irq_handler(uint32_t cookie) {
    (void)cookie;
    calls++;            /* missing: dma[DMA_STATUS] = DMA_STATUS_DONE | DMA_STATUS_ERROR; */
}

int probe(void) {
    dma = hwsim_mmio_map("dma0");
    hwsim_iova_t src = hwsim_dma_map_single("dma0", a, sizeof a, HWSIM_DMA_TO_DEVICE);
    hwsim_iova_t dst = hwsim_dma_map_single("dma0", b, sizeof b, HWSIM_DMA_FROM_DEVICE);
    hwsim_request_irq("dma0", 0);
    dma[DMA_SRC_LO] = (uint32_t)src;
    dma[DMA_SRC_HI] = (uint32_t)(src >> 32);
    dma[DMA_DST_LO] = (uint32_t)dst;
    dma[DMA_DST_HI] = (uint32_t)(dst >> 32);
    dma[DMA_LEN] = sizeof a;
    dma[DMA_CMD] = DMA_CMD_START | 0x8;     /* raise the IRQ when done */
    hwsim_dma_unmap_single("dma0", src, sizeof a, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", dst, sizeof b, HWSIM_DMA_FROM_DEVICE);
    return (int)calls;
}
