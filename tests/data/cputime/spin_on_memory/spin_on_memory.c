/* Waits for a DMA completion by spinning on memory its interrupt handler writes: no register read,
 * no wait.  On hardware the transfer finishes while the loop spins; hwsim charges the loop's
 * instructions to virtual time, so the device and the interrupt arrive in the loop too. */
#include <hwsim.h>
#include <dma_engine.h>

#define N 4096
static uint8_t src[N], dst[N];
static volatile uint32_t *dma;
static volatile int done;
static volatile unsigned spins;

void hwsim_irq_handler(uint32_t cookie) {
    (void)cookie;
    dma[DMA_STATUS] = DMA_STATUS_DONE | DMA_STATUS_ERROR;
    done = 1;
}

int probe(void) {
    for (int i = 0; i < N; i++) src[i] = (uint8_t)(i * 7);
    dma = hwsim_mmio_map("dma0");
    hwsim_iova_t s = hwsim_dma_map_single("dma0", src, N, HWSIM_DMA_TO_DEVICE);
    hwsim_iova_t d = hwsim_dma_map_single("dma0", dst, N, HWSIM_DMA_FROM_DEVICE);
    dma[DMA_SRC_LO] = (uint32_t)s; dma[DMA_SRC_HI] = (uint32_t)(s >> 32);
    dma[DMA_DST_LO] = (uint32_t)d; dma[DMA_DST_HI] = (uint32_t)(d >> 32);
    dma[DMA_LEN] = N;
    hwsim_request_irq("dma0", 0);
    dma[DMA_CMD] = DMA_CMD_START | 0x8;  /* raise the IRQ when done */
    while (!done) spins++;
    hwsim_free_irq("dma0");
    hwsim_dma_unmap_single("dma0", s, N, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", d, N, HWSIM_DMA_FROM_DEVICE);
    for (int i = 0; i < N; i++) if (dst[i] != (uint8_t)(i * 7)) return -5;
    return (int)spins;
}
