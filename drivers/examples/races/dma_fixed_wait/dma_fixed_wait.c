/* RACE: waits a fixed number of status reads instead of for DONE ("the copy is always over by then").
 *
 * At nominal timing a 1000-byte copy takes 12 ticks and the 16 reads take 16, so the driver passes
 * on an idealised (or nominal) engine.  When the transfer takes longer, the driver unmaps the buffers
 * while the device still owns them: the engine's DMA hits unmapped IOVAs, and the copy is incomplete.
 * Fix: poll STATUS until DONE or ERROR (see dma_engine_copy in drivers/include/dma_engine.h). */
#include <hwsim.h>
#include <dma_engine.h>

#define N 1000
static uint8_t src[N], dst[N];

int probe(void) {
    volatile uint32_t *dma = hwsim_mmio_map("dma0");
    for (int i = 0; i < N; i++) src[i] = (uint8_t)(i * 13 + 5);
    hwsim_iova_t s = hwsim_dma_map_single("dma0", src, N, HWSIM_DMA_TO_DEVICE);
    hwsim_iova_t d = hwsim_dma_map_single("dma0", dst, N, HWSIM_DMA_FROM_DEVICE);
    dma[DMA_SRC_LO] = (uint32_t)s;
    dma[DMA_SRC_HI] = (uint32_t)(s >> 32);
    dma[DMA_DST_LO] = (uint32_t)d;
    dma[DMA_DST_HI] = (uint32_t)(d >> 32);
    dma[DMA_LEN] = N;
    dma[DMA_CMD] = DMA_CMD_START;
    for (int i = 0; i < 16; i++)
        (void)dma[DMA_STATUS];          /* BUG: "long enough" is not a completion */
    dma[DMA_STATUS] = DMA_STATUS_DONE | DMA_STATUS_ERROR;
    hwsim_dma_unmap_single("dma0", s, N, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", d, N, HWSIM_DMA_FROM_DEVICE);
    for (int i = 0; i < N; i++)
        if (dst[i] != src[i]) return -5; /* -EIO: the copy was not over */
    return 0;
}
