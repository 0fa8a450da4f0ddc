/* Memory-to-memory copy with the DMA engine, through the IOMMU, using the DMA API correctly. */
#include <hwsim.h>
#include <dma_engine.h>

#define N 1000
static uint8_t src[N], dst[N];

int probe(void) {
    volatile uint32_t *dma = hwsim_mmio_map("dma0");
    for (int i = 0; i < N; i++) src[i] = (uint8_t)(i * 7 + 1);
    hwsim_iova_t s = hwsim_dma_map_single("dma0", src, N, HWSIM_DMA_TO_DEVICE);
    hwsim_iova_t d = hwsim_dma_map_single("dma0", dst, N, HWSIM_DMA_FROM_DEVICE);
    if (hwsim_dma_mapping_error(s) || hwsim_dma_mapping_error(d)) return -1;
    int err = dma_engine_copy(dma, s, d, N);
    hwsim_dma_unmap_single("dma0", s, N, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", d, N, HWSIM_DMA_FROM_DEVICE);
    if (err) return -100 - err;
    int bad = 0;
    for (int i = 0; i < N; i++) bad += dst[i] != src[i];
    hwsim_log(bad ? "dma_copy: copy differs" : "dma_copy: 1000 bytes copied through the IOMMU");
    return bad;
}
