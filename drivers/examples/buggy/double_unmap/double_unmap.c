/* BUG: the same mapping is unmapped twice, then an IOVA nobody mapped is unmapped. */
#include <hwsim.h>
static uint8_t a[64];
int probe(void) {
    hwsim_iova_t iova = hwsim_dma_map_single("dma0", a, sizeof a, HWSIM_DMA_BIDIRECTIONAL);
    hwsim_dma_unmap_single("dma0", iova, sizeof a, HWSIM_DMA_BIDIRECTIONAL);
    hwsim_dma_unmap_single("dma0", iova, sizeof a, HWSIM_DMA_BIDIRECTIONAL);
    hwsim_dma_unmap_single("dma0", 0x12345000, 64, HWSIM_DMA_BIDIRECTIONAL);
    return 0;
}
