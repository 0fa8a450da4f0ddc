/* RACE: a transmit buffer reused too early.  The driver double-buffers: frame n goes out from buffer
 * n % 2, and before it reuses a buffer it waits until the used ring has moved on by one ("the older of
 * the two frames is back").  A virtio device returns chains in the order it completes them, and a
 * later frame may leave first: then the driver unmaps and rewrites a buffer the device still owns.
 * At nominal timing equal frames complete in order and the bug hides; with varied latencies hwsim
 * reports the CPU write into the device's buffer and the device's read of an unmapped address.
 * Fix: take back the buffer the used ring names (used.ring[i].id), as drivers/virtio_net does. */
#include <hwsim.h>

enum {  /* virtio-mmio registers, as 32-bit word indices */
    STATUS = 0x070 / 4, DEV_FEATURES = 0x010 / 4, DEV_FEATURES_SEL = 0x014 / 4, DRV_FEATURES = 0x020 / 4,
    DRV_FEATURES_SEL = 0x024 / 4, QUEUE_SEL = 0x030 / 4, QUEUE_NUM = 0x038 / 4, QUEUE_READY = 0x044 / 4,
    QUEUE_NOTIFY = 0x050 / 4, INT_STATUS = 0x060 / 4, INT_ACK = 0x064 / 4, DESC_LO = 0x080 / 4,
    DESC_HI = 0x084 / 4, DRIVER_LO = 0x090 / 4, DRIVER_HI = 0x094 / 4, DEVICE_LO = 0x0a0 / 4, DEVICE_HI = 0x0a4 / 4,
};
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8 };
enum { F_VERSION_1_HI = 1u << 0, F_ACCESS_PLATFORM_HI = 1u << 1, TXQ = 1 };
#define QSIZE 8
#define HDR 12     /* struct virtio_net_hdr with VIRTIO_F_VERSION_1 */
#define LEN (HDR + 60)
#define FRAMES 8

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QSIZE]; };
struct used { uint16_t flags, idx; struct { uint32_t id, len; } ring[QSIZE]; };
struct ring { struct desc desc[QSIZE]; struct avail avail; struct used used; } __attribute__((aligned(16)));

static volatile uint32_t *regs;
static volatile struct ring *tx;
static hwsim_iova_t tx_ring;
static uint8_t buf[2][4096] __attribute__((aligned(4096)));  /* a page each, as the DMA API wants */
static hwsim_iova_t iova[2];

static void queue_setup(int index, volatile struct ring *r, hwsim_iova_t at) {
    hwsim_iova_t d = at, a = at + (hwsim_iova_t)((volatile uint8_t *)&r->avail - (volatile uint8_t *)r),
                 u = at + (hwsim_iova_t)((volatile uint8_t *)&r->used - (volatile uint8_t *)r);
    regs[QUEUE_SEL] = (uint32_t)index;
    regs[QUEUE_NUM] = QSIZE;
    regs[DESC_LO] = (uint32_t)d; regs[DESC_HI] = (uint32_t)(d >> 32);
    regs[DRIVER_LO] = (uint32_t)a; regs[DRIVER_HI] = (uint32_t)(a >> 32);
    regs[DEVICE_LO] = (uint32_t)u; regs[DEVICE_HI] = (uint32_t)(u >> 32);
    regs[QUEUE_READY] = 1;
}

/* Let time pass until the used ring has reached n (0: nothing more can happen). */
static int wait_used(uint16_t n) {
    while ((uint16_t)(tx->used.idx - n) >= 0x8000) {
        if (!hwsim_irq_wait("net0")) return 0;
        regs[INT_ACK] = regs[INT_STATUS];
    }
    return 1;
}

int probe(void) {
    regs = hwsim_mmio_map("net0");
    regs[STATUS] = 0;
    regs[STATUS] = S_ACK;
    regs[STATUS] = S_ACK | S_DRIVER;
    regs[DRV_FEATURES_SEL] = 0;
    regs[DRV_FEATURES] = 0;
    regs[DRV_FEATURES_SEL] = 1;
    regs[DRV_FEATURES] = F_VERSION_1_HI | F_ACCESS_PLATFORM_HI;
    regs[STATUS] = S_ACK | S_DRIVER | S_FEATURES_OK;
    if (!(regs[STATUS] & S_FEATURES_OK)) return -5;
    tx = hwsim_dma_alloc_coherent("net0", sizeof(struct ring), &tx_ring);
    queue_setup(TXQ, tx, tx_ring);  /* receiveq 0 is not set up: this driver only transmits */
    regs[STATUS] = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
    int err = 0;
    for (uint16_t n = 0; !err && n < FRAMES; n++) {
        int b = n % 2;
        if (n >= 2) {
            if (!wait_used((uint16_t)(n - 1))) err = -110;  /* BUG: "one back" is not "frame n-2 back" */
            hwsim_dma_unmap_single("net0", iova[b], LEN, HWSIM_DMA_TO_DEVICE);
        }
        for (int i = 0; i < LEN; i++) buf[b][i] = i < HDR ? 0 : (uint8_t)(n * 31 + i);
        for (int i = 0; i < 6; i++) buf[b][HDR + i] = 0xff;  /* broadcast */
        iova[b] = hwsim_dma_map_single("net0", buf[b], LEN, HWSIM_DMA_TO_DEVICE);
        tx->desc[b] = (struct desc){iova[b], LEN, 0, 0};
        tx->avail.ring[n % QSIZE] = (uint16_t)b;
        tx->avail.idx = (uint16_t)(n + 1);
        regs[QUEUE_NOTIFY] = TXQ;
    }
    if (!err && !wait_used(FRAMES)) err = -110;
    regs[STATUS] = 0;  /* reset: the device owns nothing any more */
    hwsim_dma_unmap_single("net0", iova[0], LEN, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_unmap_single("net0", iova[1], LEN, HWSIM_DMA_TO_DEVICE);
    hwsim_dma_free_coherent("net0", sizeof(struct ring), (void *)tx, tx_ring);
    return err ? err : FRAMES;
}
