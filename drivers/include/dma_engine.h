/* dma_engine.h: registers of the board's single-buffer DMA engine (docs/devices.md) and a copy helper. */
#ifndef DMA_ENGINE_H
#define DMA_ENGINE_H
#include <hwsim.h>

enum {
    DMA_SRC_LO = 0x08 / 4, DMA_SRC_HI = 0x0c / 4, DMA_DST_LO = 0x10 / 4, DMA_DST_HI = 0x14 / 4,
    DMA_LEN = 0x18 / 4, DMA_CMD = 0x1c / 4, DMA_STATUS = 0x20 / 4, DMA_ERROR_CODE = 0x24 / 4,
    DMA_DONE_COUNT = 0x30 / 4,
};
enum { DMA_CMD_START = 1, DMA_STATUS_DONE = 2, DMA_STATUS_ERROR = 4 };

/* Copy len bytes from IOVA src to IOVA dst (memory to memory); 0 when done, else the error code. */
static inline int dma_engine_copy(volatile uint32_t *dma, hwsim_iova_t src, hwsim_iova_t dst, uint32_t len) {
    dma[DMA_SRC_LO] = (uint32_t)src;
    dma[DMA_SRC_HI] = (uint32_t)(src >> 32);
    dma[DMA_DST_LO] = (uint32_t)dst;
    dma[DMA_DST_HI] = (uint32_t)(dst >> 32);
    dma[DMA_LEN] = len;
    dma[DMA_CMD] = DMA_CMD_START;
    uint32_t status;
    while (!((status = dma[DMA_STATUS]) & (DMA_STATUS_DONE | DMA_STATUS_ERROR)))
        ;
    dma[DMA_STATUS] = DMA_STATUS_DONE | DMA_STATUS_ERROR;
    return (status & DMA_STATUS_ERROR) ? (int)dma[DMA_ERROR_CODE] : 0;
}
#endif
