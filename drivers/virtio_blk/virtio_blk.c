/* virtio-blk over virtio-mmio (version 2), one split virtqueue; rings in DMA-coherent memory,
 * data buffers through streaming mappings.  probe() writes a sector, reads it back and checks it. */
#include <hwsim.h>

enum {  /* virtio-mmio registers, as 32-bit word indices */
    MAGIC = 0x000 / 4, VERSION = 0x004 / 4, DEVICE_ID = 0x008 / 4, DEV_FEATURES = 0x010 / 4,
    DEV_FEATURES_SEL = 0x014 / 4, DRV_FEATURES = 0x020 / 4, DRV_FEATURES_SEL = 0x024 / 4, QUEUE_SEL = 0x030 / 4,
    QUEUE_NUM_MAX = 0x034 / 4, QUEUE_NUM = 0x038 / 4, QUEUE_READY = 0x044 / 4, QUEUE_NOTIFY = 0x050 / 4,
    INT_STATUS = 0x060 / 4, INT_ACK = 0x064 / 4, STATUS = 0x070 / 4, DESC_LO = 0x080 / 4, DESC_HI = 0x084 / 4,
    DRIVER_LO = 0x090 / 4, DRIVER_HI = 0x094 / 4, DEVICE_LO = 0x0a0 / 4, DEVICE_HI = 0x0a4 / 4,
    CAPACITY_LO = 0x100 / 4, CAPACITY_HI = 0x104 / 4,
};
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8 };
enum { F_VERSION_1 = 32, F_ACCESS_PLATFORM = 33 };
enum { D_NEXT = 1, D_WRITE = 2 };
enum { T_IN = 0, T_OUT = 1 };
#define QSIZE 8
#define SECTOR 512

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QSIZE]; };
struct used { uint16_t flags, idx; struct { uint32_t id, len; } ring[QSIZE]; };
struct header { uint32_t type, reserved; uint64_t sector; };
struct shared {               /* one coherent DMA region */
    struct desc desc[QSIZE];  /* 16-byte aligned */
    struct avail avail;
    uint16_t pad;
    struct used used;         /* 4-byte aligned */
    struct header header;
    volatile uint8_t status;
};

static volatile uint32_t *regs;
static volatile struct shared *q;
static hwsim_iova_t q_iova;
static uint16_t used_seen;
static uint8_t buffer[8 * SECTOR] __attribute__((aligned(4096)));

static hwsim_iova_t iova_of(volatile void *p) { return q_iova + ((volatile uint8_t *)p - (volatile uint8_t *)q); }

static int init(void) {
    regs = hwsim_mmio_map("blk0");
    if (regs[MAGIC] != 0x74726976 || regs[VERSION] != 2 || regs[DEVICE_ID] != 2) return -1;
    regs[STATUS] = 0;
    regs[STATUS] = S_ACK;
    regs[STATUS] = S_ACK | S_DRIVER;
    regs[DEV_FEATURES_SEL] = 1;
    uint32_t high = regs[DEV_FEATURES];
    regs[DRV_FEATURES_SEL] = 0;
    regs[DRV_FEATURES] = 0;
    regs[DRV_FEATURES_SEL] = 1;
    regs[DRV_FEATURES] = high & ((1u << (F_VERSION_1 - 32)) | (1u << (F_ACCESS_PLATFORM - 32)));
    regs[STATUS] = S_ACK | S_DRIVER | S_FEATURES_OK;
    if (!(regs[STATUS] & S_FEATURES_OK)) return -2;
    q = hwsim_dma_alloc_coherent("blk0", sizeof(struct shared), &q_iova);
    regs[QUEUE_SEL] = 0;
    if (regs[QUEUE_NUM_MAX] < QSIZE) return -3;
    regs[QUEUE_NUM] = QSIZE;
    hwsim_iova_t d = iova_of(q->desc), a = iova_of(&q->avail), u = iova_of(&q->used);
    regs[DESC_LO] = (uint32_t)d; regs[DESC_HI] = (uint32_t)(d >> 32);
    regs[DRIVER_LO] = (uint32_t)a; regs[DRIVER_HI] = (uint32_t)(a >> 32);
    regs[DEVICE_LO] = (uint32_t)u; regs[DEVICE_HI] = (uint32_t)(u >> 32);
    regs[QUEUE_READY] = 1;
    regs[STATUS] = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
    return 0;
}

/* Wait for the device to return the request.  The device completes it on virtual time, some tens of
 * microseconds after the notification; spinning on q->used.idx would never see it, because reading
 * coherent memory is not a device access and lets no virtual time pass (a real CPU would burn those
 * microseconds; hwsim's don't count).  So the driver sleeps on the device's interrupt, as a kernel
 * driver does: hwsim_irq_wait lets time pass until the used-buffer interrupt.  It returns 0 when
 * nothing more can happen; the ring is then looked at once more (the interrupt may have been lost,
 * which an injected `lost` fault does) before giving up.  Returns 1 when the request came back. */
static int wait_used(void) {
    while (q->used.idx == used_seen) {
        if (!hwsim_irq_wait("blk0")) {
            if (q->used.idx == used_seen) return 0;
            break;
        }
        regs[INT_ACK] = regs[INT_STATUS];
    }
    used_seen = q->used.idx;
    regs[INT_ACK] = regs[INT_STATUS];
    return 1;
}

/* One request of `sectors` sectors at `sector`; returns the status byte (0 = OK) or -1. */
static int request(int type, uint64_t sector, uint32_t sectors) {
    uint32_t len = sectors * SECTOR;
    int dir = type == T_IN ? HWSIM_DMA_FROM_DEVICE : HWSIM_DMA_TO_DEVICE;
    hwsim_iova_t data = hwsim_dma_map_single("blk0", buffer, len, dir);
    q->header.type = (uint32_t)type;
    q->header.reserved = 0;
    q->header.sector = sector;
    q->status = 0xff;
    q->desc[0] = (struct desc){iova_of(&q->header), sizeof(struct header), D_NEXT, 1};
    q->desc[1] = (struct desc){data, len, (uint16_t)(D_NEXT | (type == T_IN ? D_WRITE : 0)), 2};
    q->desc[2] = (struct desc){iova_of(&q->status), 1, D_WRITE, 0};
    q->avail.ring[q->avail.idx % QSIZE] = 0;
    q->avail.idx = (uint16_t)(q->avail.idx + 1);
    regs[QUEUE_NOTIFY] = 0;
    int done = wait_used();
    hwsim_dma_unmap_single("blk0", data, len, dir);
    return done ? q->status : -1;
}

/* On every path out, failed ones included, once the rings exist. */
static void teardown(void) {
    if (!q) return;
    regs[STATUS] = 0;  /* reset: the device forgets the queue before its memory goes */
    hwsim_dma_free_coherent("blk0", sizeof(struct shared), (void *)q, q_iova);
    q = 0;
    used_seen = 0;
}

/* Sector 1 written and read back: the capacity, or a negative error. */
static int write_read_back(void) {
    for (int i = 0; i < SECTOR; i++) buffer[i] = (uint8_t)(i ^ 0x5a);
    if (request(T_OUT, 1, 1) != 0) return -10;
    for (int i = 0; i < SECTOR; i++) buffer[i] = 0;
    if (request(T_IN, 1, 1) != 0) return -11;
    for (int i = 0; i < SECTOR; i++)
        if (buffer[i] != (uint8_t)(i ^ 0x5a)) return -12;
    hwsim_log("virtio_blk: sector 1 written and read back");
    return (int)regs[CAPACITY_LO];
}

int probe(void) {
    int err = init();
    int result = err ? err : write_read_back();
    teardown();
    return result;
}

/* n reads of 4 KiB, cycling over the disk (at most its first 256 sectors): for IOPS measurements. */
HWSIM_EXPORT("read_loop") int read_loop(int n) {
    if (init()) {
        teardown();
        return -1;
    }
    uint32_t span = regs[CAPACITY_LO] < 256 ? regs[CAPACITY_LO] : 256;
    if (span < 8) {
        teardown();
        return -2;
    }
    int errors = 0;
    for (int i = 0; i < n; i++) errors += request(T_IN, (uint64_t)((i * 8) % (span - span % 8)), 8) != 0;
    teardown();
    return errors;
}
