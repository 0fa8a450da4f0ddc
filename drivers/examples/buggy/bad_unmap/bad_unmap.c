/* BUG: unmapped with the wrong size and direction. */
#include <hwsim.h>
static uint8_t a[256];
int probe(void) {
    hwsim_iova_t iova = hwsim_dma_map_single("dma0", a, sizeof a, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", iova, 128, HWSIM_DMA_FROM_DEVICE);
    return 0;
}
