/* virtio-blk over virtio-mmio (version 2) for the example drivers (drivers/examples/buggy/virtio_*):
 * registers, status bits, the split virtqueue (8 entries) and header/status slots in one coherent
 * region, and the steps a correct driver takes, so that each example shows only its one mistake.
 * drivers/virtio_blk is the complete driver. */
#ifndef VIRTIO_BLK_EXAMPLE_H
#define VIRTIO_BLK_EXAMPLE_H
#include <hwsim.h>

enum {  /* virtio-mmio registers, as 32-bit word indices */
    VIRTIO_MAGIC = 0x000 / 4, VIRTIO_DEV_FEATURES = 0x010 / 4, VIRTIO_DEV_FEATURES_SEL = 0x014 / 4,
    VIRTIO_DRV_FEATURES = 0x020 / 4, VIRTIO_DRV_FEATURES_SEL = 0x024 / 4, VIRTIO_QUEUE_SEL = 0x030 / 4,
    VIRTIO_QUEUE_NUM_MAX = 0x034 / 4, VIRTIO_QUEUE_NUM = 0x038 / 4, VIRTIO_QUEUE_READY = 0x044 / 4,
    VIRTIO_QUEUE_NOTIFY = 0x050 / 4, VIRTIO_INT_STATUS = 0x060 / 4, VIRTIO_INT_ACK = 0x064 / 4,
    VIRTIO_STATUS = 0x070 / 4, VIRTIO_DESC_LO = 0x080 / 4, VIRTIO_DESC_HI = 0x084 / 4,
    VIRTIO_DRIVER_LO = 0x090 / 4, VIRTIO_DRIVER_HI = 0x094 / 4, VIRTIO_DEVICE_LO = 0x0a0 / 4,
    VIRTIO_DEVICE_HI = 0x0a4 / 4,
};
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8 };
enum { F_VERSION_1_HI = 1u << (32 - 32), F_ACCESS_PLATFORM_HI = 1u << (33 - 32) };  /* word 1 */
enum { D_NEXT = 1, D_WRITE = 2 };
enum { BLK_T_GET_ID = 8 };  /* works without a disk image: the device writes its serial */
#define VQ_SIZE 8

struct vq_desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct vq_avail { uint16_t flags, idx, ring[VQ_SIZE]; };
struct vq_used { uint16_t flags, idx; struct { uint32_t id, len; } ring[VQ_SIZE]; };
struct blk_header { uint32_t type, reserved; uint64_t sector; };
struct vblk {                           /* one coherent DMA region */
    struct vq_desc desc[VQ_SIZE];       /* 16-byte aligned */
    struct vq_avail avail;
    uint16_t pad;
    struct vq_used used;                /* 4-byte aligned */
    struct blk_header header[VQ_SIZE];  /* one per request slot */
    uint8_t status[VQ_SIZE];
};

static volatile uint32_t *regs;
static volatile struct vblk *q;
static hwsim_iova_t q_iova;
static uint8_t data[512] __attribute__((aligned(4096)));
static hwsim_iova_t data_iova;

static inline hwsim_iova_t iova_of(volatile void *p) {
    return q_iova + (hwsim_iova_t)((volatile uint8_t *)p - (volatile uint8_t *)q);
}

/* Reset, ACKNOWLEDGE, DRIVER, features (VERSION_1, ACCESS_PLATFORM), FEATURES_OK read back. */
static inline int vblk_negotiate(void) {
    regs = hwsim_mmio_map("blk0");
    regs[VIRTIO_STATUS] = 0;
    regs[VIRTIO_STATUS] = S_ACK;
    regs[VIRTIO_STATUS] = S_ACK | S_DRIVER;
    regs[VIRTIO_DRV_FEATURES_SEL] = 0;
    regs[VIRTIO_DRV_FEATURES] = 0;
    regs[VIRTIO_DRV_FEATURES_SEL] = 1;
    regs[VIRTIO_DRV_FEATURES] = F_VERSION_1_HI | F_ACCESS_PLATFORM_HI;
    regs[VIRTIO_STATUS] = S_ACK | S_DRIVER | S_FEATURES_OK;
    return regs[VIRTIO_STATUS] & S_FEATURES_OK ? 0 : -5;
}

/* The rings in new coherent memory, queue 0 set up and made ready. */
static inline void vblk_queue(void) {
    q = hwsim_dma_alloc_coherent("blk0", sizeof(struct vblk), &q_iova);
    regs[VIRTIO_QUEUE_SEL] = 0;
    regs[VIRTIO_QUEUE_NUM] = VQ_SIZE;
    hwsim_iova_t d = iova_of(q->desc), a = iova_of(&q->avail), u = iova_of(&q->used);
    regs[VIRTIO_DESC_LO] = (uint32_t)d; regs[VIRTIO_DESC_HI] = (uint32_t)(d >> 32);
    regs[VIRTIO_DRIVER_LO] = (uint32_t)a; regs[VIRTIO_DRIVER_HI] = (uint32_t)(a >> 32);
    regs[VIRTIO_DEVICE_LO] = (uint32_t)u; regs[VIRTIO_DEVICE_HI] = (uint32_t)(u >> 32);
    regs[VIRTIO_QUEUE_READY] = 1;
}

/* The whole initialisation, in the specification's order; 0 or a negative error. */
static inline int vblk_init(void) {
    int err = vblk_negotiate();
    if (err) return err;
    vblk_queue();
    regs[VIRTIO_STATUS] = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
    data_iova = hwsim_dma_map_single("blk0", data, sizeof data, HWSIM_DMA_FROM_DEVICE);
    return 0;
}

/* A GET_ID request into `data`, as the chain at descriptors head, head+1, head+2 (header and status
 * slot `slot`).  The chain is only written: making it available is the caller's. */
static inline void vblk_chain(uint16_t head, int slot) {
    q->header[slot] = (struct blk_header){BLK_T_GET_ID, 0, 0};
    q->status[slot] = 0xff;
    q->desc[head] = (struct vq_desc){iova_of(&q->header[slot]), sizeof(struct blk_header), D_NEXT,
                                     (uint16_t)(head + 1)};
    q->desc[head + 1] = (struct vq_desc){data_iova, 512, D_NEXT | D_WRITE, (uint16_t)(head + 2)};
    q->desc[head + 2] = (struct vq_desc){iova_of(&q->status[slot]), 1, D_WRITE, 0};
}

/* Make the chain at `head` available and notify the device. */
static inline void vblk_offer(uint16_t head) {
    q->avail.ring[q->avail.idx % VQ_SIZE] = head;
    q->avail.idx = (uint16_t)(q->avail.idx + 1);
    regs[VIRTIO_QUEUE_NOTIFY] = 0;
}

/* Let virtual time pass on the interrupt until the used idx has reached `n` (1: it counts modulo 2^16),
 * or nothing more can happen (0). */
static inline int vblk_used_reached(uint16_t n) { return (uint16_t)(q->used.idx - n) < 0x8000; }
static inline int vblk_wait_used(uint16_t n) {
    while (!vblk_used_reached(n)) {
        if (!hwsim_irq_wait("blk0")) return vblk_used_reached(n);
        regs[VIRTIO_INT_ACK] = regs[VIRTIO_INT_STATUS];
    }
    regs[VIRTIO_INT_ACK] = regs[VIRTIO_INT_STATUS];
    return 1;
}

/* Reset the device first, then unmap and free: the device owns nothing any more. */
static inline void vblk_teardown(void) {
    regs[VIRTIO_STATUS] = 0;
    hwsim_dma_unmap_single("blk0", data_iova, sizeof data, HWSIM_DMA_FROM_DEVICE);
    hwsim_dma_free_coherent("blk0", sizeof(struct vblk), (void *)q, q_iova);
}

#endif
