/* BUG: a device's register window is handed to the DMA API as if it were memory. */
#include <hwsim.h>
int probe(void) {
    volatile uint8_t *uart = hwsim_mmio_map("uart0");
    hwsim_iova_t iova = hwsim_dma_map_single("dma0", (const void *)uart, 8, HWSIM_DMA_TO_DEVICE);
    return hwsim_dma_mapping_error(iova) ? 1 : 0;
}
