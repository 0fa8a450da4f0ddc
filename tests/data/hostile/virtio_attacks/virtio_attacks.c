/* Attacks through virtio-blk: malformed rings, raw physical addresses, absurd lengths.  Each entry
 * point sets the device up as a correct driver would, then makes one malicious request, waits a
 * bounded time for it and returns the status byte (0xff: the device never completed it). */
#include <hwsim.h>

enum {
    MAGIC = 0x000 / 4, DEV_FEATURES = 0x010 / 4, DEV_FEATURES_SEL = 0x014 / 4, DRV_FEATURES = 0x020 / 4,
    DRV_FEATURES_SEL = 0x024 / 4, QUEUE_SEL = 0x030 / 4, QUEUE_NUM = 0x038 / 4, QUEUE_READY = 0x044 / 4,
    QUEUE_NOTIFY = 0x050 / 4, STATUS = 0x070 / 4, DESC_LO = 0x080 / 4, DESC_HI = 0x084 / 4,
    DRIVER_LO = 0x090 / 4, DRIVER_HI = 0x094 / 4, DEVICE_LO = 0x0a0 / 4, DEVICE_HI = 0x0a4 / 4,
};
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8 };
enum { D_NEXT = 1, D_WRITE = 2 };
enum { T_IN = 0, T_OUT = 1 };
#define QSIZE 8

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QSIZE]; };
struct used { uint16_t flags, idx; struct { uint32_t id, len; } ring[QSIZE]; };
struct header { uint32_t type, reserved; uint64_t sector; };
struct shared { struct desc desc[QSIZE]; struct avail avail; uint16_t pad; struct used used;
                struct header header; volatile uint8_t status; };

static volatile uint32_t *regs;
static volatile struct shared *q;
static hwsim_iova_t q_iova;
static uint8_t buffer[4096] __attribute__((aligned(4096)));

static hwsim_iova_t iova_of(volatile void *p) { return q_iova + ((volatile uint8_t *)p - (volatile uint8_t *)q); }

/* Set the queue up; the rings at `rings` (an IOVA; 0: the coherent memory, as a correct driver). */
static int init(hwsim_iova_t rings) {
    regs = hwsim_mmio_map("blk0");
    if (!regs || regs[MAGIC] != 0x74726976) return -19;
    regs[STATUS] = 0;
    regs[STATUS] = S_ACK | S_DRIVER;
    regs[DEV_FEATURES_SEL] = 1;
    uint32_t high = regs[DEV_FEATURES];
    regs[DRV_FEATURES_SEL] = 0; regs[DRV_FEATURES] = 0;
    regs[DRV_FEATURES_SEL] = 1; regs[DRV_FEATURES] = high & 3;
    regs[STATUS] = S_ACK | S_DRIVER | S_FEATURES_OK;
    q = hwsim_dma_alloc_coherent("blk0", sizeof(struct shared), &q_iova);
    regs[QUEUE_SEL] = 0;
    regs[QUEUE_NUM] = QSIZE;
    hwsim_iova_t d = rings ? rings : iova_of(q->desc), a = rings ? rings + 0x100 : iova_of(&q->avail),
                 u = rings ? rings + 0x200 : iova_of(&q->used);
    regs[DESC_LO] = (uint32_t)d; regs[DESC_HI] = (uint32_t)(d >> 32);
    regs[DRIVER_LO] = (uint32_t)a; regs[DRIVER_HI] = (uint32_t)(a >> 32);
    regs[DEVICE_LO] = (uint32_t)u; regs[DEVICE_HI] = (uint32_t)(u >> 32);
    regs[QUEUE_READY] = 1;
    regs[STATUS] = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
    return 0;
}

static int submit(uint16_t head, uint16_t count) {
    q->status = 0xff;
    for (uint16_t i = 0; i < count; i++) q->avail.ring[(q->avail.idx + i) % QSIZE] = head;
    q->avail.idx = (uint16_t)(q->avail.idx + count);
    regs[QUEUE_NOTIFY] = 0;
    for (int i = 0; i < 100 && q->used.idx == 0; i++) hwsim_sleep_ns(10000);
    regs[STATUS] = 0;  /* reset before the rings go */
    return q->status;
}

static void header(uint32_t type) { q->header.type = type; q->header.reserved = 0; q->header.sector = 1; }

/* A chain whose second descriptor points back at the first. */
HWSIM_EXPORT("desc_loop") int desc_loop(void) {
    if (init(0)) return -19;
    header(T_IN);
    q->desc[0] = (struct desc){iova_of(&q->header), sizeof(struct header), D_NEXT, 1};
    q->desc[1] = (struct desc){iova_of(&q->header), 4, D_NEXT, 0};
    return submit(0, 1);
}

/* A read whose data descriptor is a raw physical address (the CPU's page table, say). */
HWSIM_EXPORT("data_at") int data_at(uint64_t pa, int write) {
    if (init(0)) return -19;
    header(write ? T_IN : T_OUT);  /* T_IN: the device writes the disk's bytes at `pa` */
    q->desc[0] = (struct desc){iova_of(&q->header), sizeof(struct header), D_NEXT, 1};
    q->desc[1] = (struct desc){pa, 512, (uint16_t)(D_NEXT | (write ? D_WRITE : 0)), 2};
    q->desc[2] = (struct desc){iova_of(&q->status), 1, D_WRITE, 0};
    return submit(0, 1);
}

/* The rings themselves at a raw physical address (a device window, a page table). */
HWSIM_EXPORT("rings_at") int rings_at(uint64_t pa) {
    if (init(pa)) return -19;
    regs[QUEUE_NOTIFY] = 0;
    for (int i = 0; i < 10; i++) hwsim_sleep_ns(10000);
    regs[STATUS] = 0;
    hwsim_dma_free_coherent("blk0", sizeof(struct shared), (void *)q, q_iova);
    return 0;
}

/* A data descriptor of almost 4 GiB on a mapping of one page. */
HWSIM_EXPORT("huge_len") int huge_len(int write) {
    if (init(0)) return -19;
    hwsim_iova_t data = hwsim_dma_map_single("blk0", buffer, sizeof buffer, HWSIM_DMA_BIDIRECTIONAL);
    header(write ? T_IN : T_OUT);
    q->desc[0] = (struct desc){iova_of(&q->header), sizeof(struct header), D_NEXT, 1};
    q->desc[1] = (struct desc){data, 0xfffffe00u, (uint16_t)(D_NEXT | (write ? D_WRITE : 0)), 2};
    q->desc[2] = (struct desc){iova_of(&q->status), 1, D_WRITE, 0};
    return submit(0, 1);
}

/* The same head made available QSIZE times, and the available index moved far ahead. */
HWSIM_EXPORT("avail_flood") int avail_flood(void) {
    if (init(0)) return -19;
    header(T_IN);
    hwsim_iova_t data = hwsim_dma_map_single("blk0", buffer, 512, HWSIM_DMA_FROM_DEVICE);
    q->desc[0] = (struct desc){iova_of(&q->header), sizeof(struct header), D_NEXT, 1};
    q->desc[1] = (struct desc){data, 512, D_NEXT | D_WRITE, 2};
    q->desc[2] = (struct desc){iova_of(&q->status), 1, D_WRITE, 0};
    q->avail.idx = 40000;
    return submit(0, QSIZE);
}

/* Descriptor indices past the queue. */
HWSIM_EXPORT("bad_index") int bad_index(void) {
    if (init(0)) return -19;
    header(T_IN);
    q->desc[0] = (struct desc){iova_of(&q->header), sizeof(struct header), D_NEXT, 0x7fff};
    return submit(0x1234, 1);
}

int probe(void) { return desc_loop(); }
