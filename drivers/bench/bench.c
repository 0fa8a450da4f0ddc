/* Benchmark driver: MMIO register traffic and DMA-engine copies, built sandboxed and native (bench/drivers.py). */
#include <hwsim.h>
#include <dma_engine.h>

enum { UART_SCR = 7 };
static uint8_t src[4096] __attribute__((aligned(4096))), dst[4096] __attribute__((aligned(4096)));

int probe(void) { return 0; }

/* n scratch-register writes and reads on the UART (2n MMIO accesses); returns the checksum. */
HWSIM_EXPORT("mmio_loop") int mmio_loop(int n) {
    volatile uint8_t *uart = hwsim_mmio_map("uart0");
    unsigned sum = 0;
    for (int i = 0; i < n; i++) {
        uart[UART_SCR] = (uint8_t)i;
        sum += uart[UART_SCR];
    }
    return (int)sum;
}

/* n 4 KiB memory-to-memory copies by the DMA engine (through the IOMMU when sandboxed). */
HWSIM_EXPORT("dma_loop") int dma_loop(int n) {
    volatile uint32_t *dma = hwsim_mmio_map("dma0");
    for (int i = 0; i < 4096; i++) src[i] = (uint8_t)i;
    hwsim_iova_t s = hwsim_dma_map_single("dma0", src, sizeof src, HWSIM_DMA_TO_DEVICE);
    hwsim_iova_t d = hwsim_dma_map_single("dma0", dst, sizeof dst, HWSIM_DMA_FROM_DEVICE);
    int errors = 0;
    for (int i = 0; i < n; i++) errors += dma_engine_copy(dma, s, d, sizeof src) != 0;
    hwsim_dma_unmap_single("dma0", s, sizeof src, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", d, sizeof dst, HWSIM_DMA_FROM_DEVICE);
    return errors + (dst[4095] != 255);
}

static uint8_t big_src[64 << 10] __attribute__((aligned(4096))), big_dst[64 << 10] __attribute__((aligned(4096)));

/* n copies of length bytes (at most 64 KiB) by the DMA engine between two buffers mapped once (through the
 * IOMMU and the DMA checker when sandboxed); 0 when every copy is done and its last byte arrived. */
HWSIM_EXPORT("dma_copies") int dma_copies(int n, int length) {
    if (length <= 0 || length > (int)sizeof big_src) return -1;
    volatile uint32_t *dma = hwsim_mmio_map("dma0");
    for (int i = 0; i < length; i++) big_src[i] = (uint8_t)(i + 1);
    big_dst[length - 1] = 0;
    hwsim_iova_t s = hwsim_dma_map_single("dma0", big_src, sizeof big_src, HWSIM_DMA_TO_DEVICE);
    hwsim_iova_t d = hwsim_dma_map_single("dma0", big_dst, sizeof big_dst, HWSIM_DMA_FROM_DEVICE);
    int errors = 0;
    for (int i = 0; i < n; i++) errors += dma_engine_copy(dma, s, d, (uint32_t)length) != 0;
    hwsim_dma_unmap_single("dma0", s, sizeof big_src, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", d, sizeof big_dst, HWSIM_DMA_FROM_DEVICE);
    return errors + (n > 0 && big_dst[length - 1] != (uint8_t)length);
}
