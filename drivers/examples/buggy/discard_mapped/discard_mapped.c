/* BUG: the driver discards (zeroes and frees) a page it has mapped for DMA, as madvise(MADV_DONTNEED)
   of a buffer still under dma_map_single: the device keeps the old page, the driver gets a new one. */
#include <hwsim.h>
#include <dma_engine.h>
__attribute__((import_module("hwsim:memory"), import_name("discard")))
void hwsim_discard(void *addr, unsigned long len);
static uint8_t a[4096] __attribute__((aligned(4096))), b[4096] __attribute__((aligned(4096)));
int probe(void) {
    volatile uint32_t *dma = hwsim_mmio_map("dma0");
    a[0] = 42;
    hwsim_iova_t src = hwsim_dma_map_single("dma0", a, sizeof a, HWSIM_DMA_TO_DEVICE);
    hwsim_iova_t dst = hwsim_dma_map_single("dma0", b, sizeof b, HWSIM_DMA_FROM_DEVICE);
    hwsim_discard(b, sizeof b);              /* too early: the device still holds b */
    int err = dma_engine_copy(dma, src, dst, sizeof a);
    hwsim_dma_unmap_single("dma0", src, sizeof a, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", dst, sizeof b, HWSIM_DMA_FROM_DEVICE);
    return err == 0 && b[0] == 42 ? 0 : 1;   /* b[0] is 0: the copy went to the page the driver gave away */
}
