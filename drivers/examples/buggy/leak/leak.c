/* BUG: a mapping is never unmapped. */
#include <hwsim.h>
static uint8_t a[64];
int probe(void) {
    hwsim_dma_map_single("dma0", a, sizeof a, HWSIM_DMA_TO_DEVICE);
    return 0;
}
