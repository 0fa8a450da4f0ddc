/* BUG: the driver reads DMA-coherent memory after freeing it (hwsim takes the pages away at the free). */
#include <hwsim.h>
int probe(void) {
    hwsim_iova_t iova;
    volatile uint32_t *ring = hwsim_dma_alloc_coherent("blk0", 4096, &iova);
    ring[0] = 1;
    hwsim_dma_free_coherent("blk0", 4096, (void *)ring, iova);  /* the free */
    return (int)ring[0];                     /* <- too late: the memory was freed */
}
