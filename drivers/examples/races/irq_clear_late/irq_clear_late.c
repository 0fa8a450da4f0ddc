/* RACE: the interrupt handler starts the next transfer, then clears the status (DONE) of the one
 * that interrupted it: when the new transfer finishes in between, its DONE is cleared too and its
 * interrupt is lost, so the driver waits for a completion that never comes.
 *
 * At nominal timing a 256-byte copy takes 5 ticks and the handler clears the status 3 device
 * accesses after starting the next one, so it passes; a fast transfer (an early timing draw) loses
 * an interrupt.  Fix: clear the status first, then start the next transfer. */
#include <hwsim.h>
#include <dma_engine.h>

#define N 256
#define ROUNDS 8
static uint8_t src[N], dst[N];
static volatile uint32_t *dma;
static volatile unsigned done;
static hwsim_iova_t s, d;

static void start(void) {
    dma[DMA_SRC_LO] = (uint32_t)s;
    dma[DMA_DST_LO] = (uint32_t)d;
    dma[DMA_CMD] = DMA_CMD_START | 0x8;  /* raise the IRQ when done */
}

void hwsim_irq_handler(uint32_t cookie) {
    (void)cookie;
    done++;
    if (done < ROUNDS) start();          /* BUG: the next transfer before ... */
    (void)dma[DMA_DONE_COUNT];
    dma[DMA_STATUS] = DMA_STATUS_DONE | DMA_STATUS_ERROR;   /* ... clearing this one's status */
}

int probe(void) {
    dma = hwsim_mmio_map("dma0");
    s = hwsim_dma_map_single("dma0", src, N, HWSIM_DMA_TO_DEVICE);
    d = hwsim_dma_map_single("dma0", dst, N, HWSIM_DMA_FROM_DEVICE);
    dma[DMA_SRC_HI] = (uint32_t)(s >> 32);
    dma[DMA_DST_HI] = (uint32_t)(d >> 32);
    dma[DMA_LEN] = N;
    hwsim_request_irq("dma0", 0);
    start();
    while (done < ROUNDS)
        if (!hwsim_irq_wait("dma0")) break;   /* 0: nothing more will happen (time is up) */
    hwsim_free_irq("dma0");
    hwsim_dma_unmap_single("dma0", s, N, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("dma0", d, N, HWSIM_DMA_FROM_DEVICE);
    return done == ROUNDS ? 0 : -62;     /* -ETIME: a completion never came */
}
