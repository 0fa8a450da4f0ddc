/* The DMA call sits in the author's own inline helper, inlined into probe: the report names the whole
 * chain, probe's call of the helper, the helper's call of hwsim_dma_map_single, and hwsim.h. */
#include <hwsim.h>
#include <dma_engine.h>

static uint8_t buf[64];

static inline __attribute__((always_inline)) hwsim_iova_t map_for_device(void *p, uint32_t n) {
    return hwsim_dma_map_single("dma0", p, n, HWSIM_DMA_TO_DEVICE); /* HELPER-CALL */
}

int probe(void) {
    volatile uint32_t *dma = hwsim_mmio_map("dma0");
    hwsim_iova_t s = map_for_device(buf, sizeof buf); /* PROBE-CALL */
    hwsim_iova_t d = hwsim_dma_map_single("dma0", buf, sizeof buf, HWSIM_DMA_FROM_DEVICE);
    dma_engine_copy(dma, s, d, 128);                     /* past the 64 bytes mapped */
    hwsim_dma_unmap_single("dma0", s, sizeof buf, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", d, sizeof buf, HWSIM_DMA_FROM_DEVICE);
    return 0;
}
