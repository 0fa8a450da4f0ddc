/* BUG: syncs of memory not mapped, outside the mapping, and in the wrong direction. */
#include <hwsim.h>
static uint8_t a[64];
int probe(void) {
    hwsim_iova_t iova = hwsim_dma_map_single("dma0", a, sizeof a, HWSIM_DMA_FROM_DEVICE);
    hwsim_dma_sync_single_for_cpu("dma0", 0x60000000, 16, HWSIM_DMA_FROM_DEVICE);
    hwsim_dma_sync_single_for_cpu("dma0", iova + 32, 64, HWSIM_DMA_FROM_DEVICE);
    hwsim_dma_sync_single_for_device("dma0", iova, 16, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", iova, sizeof a, HWSIM_DMA_FROM_DEVICE);
    return 0;
}
