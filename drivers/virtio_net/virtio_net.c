/* virtio-net over virtio-mmio (version 2): receiveq 0 and transmitq 1, split virtqueues in DMA-coherent
 * memory.  Receive buffers are mapped once (DMA_FROM_DEVICE) and recycled: sync_for_cpu before reading a
 * frame, sync_for_device before posting the buffer again.  Each transmitted frame gets its own
 * DMA_TO_DEVICE mapping, unmapped when the device returns it.  probe() sends frames through the
 * loopback backend and checks that they come back identical; send(n), receive(max) and pingpong(n) are
 * for the pcap backend and for measurements.  Every entry point resets the device and unmaps and frees
 * everything before it returns. */
#include <hwsim.h>

enum {  /* virtio-mmio registers, as 32-bit word indices */
    MAGIC = 0x000 / 4, VERSION = 0x004 / 4, DEVICE_ID = 0x008 / 4, DEV_FEATURES = 0x010 / 4,
    DEV_FEATURES_SEL = 0x014 / 4, DRV_FEATURES = 0x020 / 4, DRV_FEATURES_SEL = 0x024 / 4, QUEUE_SEL = 0x030 / 4,
    QUEUE_NUM_MAX = 0x034 / 4, QUEUE_NUM = 0x038 / 4, QUEUE_READY = 0x044 / 4, QUEUE_NOTIFY = 0x050 / 4,
    INT_STATUS = 0x060 / 4, INT_ACK = 0x064 / 4, STATUS = 0x070 / 4, DESC_LO = 0x080 / 4, DESC_HI = 0x084 / 4,
    DRIVER_LO = 0x090 / 4, DRIVER_HI = 0x094 / 4, DEVICE_LO = 0x0a0 / 4, DEVICE_HI = 0x0a4 / 4,
};
enum { CONFIG = 0x100, CONFIG_MAC = CONFIG + 0, CONFIG_STATUS = CONFIG + 6 };  /* struct virtio_net_config */
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8 };
enum { F_MAC = 5, F_STATUS = 16, F_VERSION_1 = 32, F_ACCESS_PLATFORM = 33 };
enum { NET_S_LINK_UP = 1 };
enum { D_WRITE = 2 };
enum { RXQ = 0, TXQ = 1 };
#define DEV "net0"
#define QSIZE 16
#define NRX 8               /* receive buffers kept posted */
#define HDR 12              /* struct virtio_net_hdr with VIRTIO_F_VERSION_1 */
#define ETH_MAX 1514
#define BUF (HDR + ETH_MAX) /* 1526: what the specification asks for without mergeable buffers */
#define BURST 4

enum {  /* errors returned by the entry points */
    E_DEVICE = -1, E_FEATURES = -2, E_QUEUE = -3, E_MAP = -4, E_LINK = -5,
    E_TIMEOUT = -11, E_CONTENT = -12, E_HEADER = -13, E_USED = -14,
};

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QSIZE]; };
struct used { uint16_t flags, idx; struct { uint32_t id, len; } ring[QSIZE]; };
struct ring {                 /* 16-byte aligned: the descriptor table first */
    struct desc desc[QSIZE];
    struct avail avail;       /* 2-byte aligned */
    struct used used;         /* 4-byte aligned (by its members) */
} __attribute__((aligned(16)));
struct shared { struct ring q[2]; };  /* one coherent DMA region: receiveq, transmitq */

static volatile uint32_t *regs;
static volatile struct shared *sh;
static hwsim_iova_t sh_iova;
static uint16_t used_seen[2];
static uint8_t mac[6];

/* A page per buffer: a streaming DMA buffer must not share a cache line with other data (Linux's
 * DMA-API-HOWTO), and on hwsim a page of its own also keeps the CPU-side ownership checks (the
 * pages of device-owned buffers are watched) away from the driver's other data. */
#define SLOT 4096
static uint8_t rx_buf[NRX][SLOT] __attribute__((aligned(SLOT)));
static hwsim_iova_t rx_iova[NRX];
static int rx_mapped;

static uint8_t tx_buf[QSIZE][SLOT] __attribute__((aligned(SLOT)));
static hwsim_iova_t tx_iova[QSIZE];
static uint32_t tx_len[QSIZE];  /* 0: slot (and descriptor) free; else the device owns it */
static uint16_t tx_busy;

static hwsim_iova_t iova_of(volatile void *p) { return sh_iova + ((volatile uint8_t *)p - (volatile uint8_t *)sh); }

/* -- a log line without libc ------------------------------------------------------------------------ */

static char line[128];
static int line_len;

static void put(const char *s) { while (*s && line_len < (int)sizeof line - 1) line[line_len++] = *s++; }
static void put_dec(uint32_t v) {
    char digits[10];
    int n = 0;
    do digits[n++] = (char)('0' + v % 10); while ((v /= 10) && n < 10);
    while (n && line_len < (int)sizeof line - 1) line[line_len++] = digits[--n];
}
static void put_hex(uint32_t v, int width) {
    for (int i = width - 1; i >= 0 && line_len < (int)sizeof line - 1; i--)
        line[line_len++] = "0123456789abcdef"[(v >> (4 * i)) & 15];
}
static void put_mac(void) {
    for (int i = 0; i < 6; i++) {
        if (i) put(":");
        put_hex(mac[i], 2);
    }
}
static void flush(void) { line[line_len] = 0; hwsim_log(line); line_len = 0; }

/* -- the device ---------------------------------------------------------------------------------------- */

static void set_queue(int index) {
    volatile struct ring *r = &sh->q[index];
    hwsim_iova_t d = iova_of(r->desc), a = iova_of(&r->avail), u = iova_of(&r->used);
    regs[QUEUE_SEL] = (uint32_t)index;
    regs[QUEUE_NUM] = QSIZE;
    regs[DESC_LO] = (uint32_t)d; regs[DESC_HI] = (uint32_t)(d >> 32);
    regs[DRIVER_LO] = (uint32_t)a; regs[DRIVER_HI] = (uint32_t)(a >> 32);
    regs[DEVICE_LO] = (uint32_t)u; regs[DEVICE_HI] = (uint32_t)(u >> 32);
    regs[QUEUE_READY] = 1;
}

/* Offer receive buffer `i` (descriptor i of receiveq), which the device then owns. */
static void post_rx(int i) {
    volatile struct ring *r = &sh->q[RXQ];
    r->desc[i] = (struct desc){rx_iova[i], BUF, D_WRITE, 0};
    r->avail.ring[r->avail.idx % QSIZE] = (uint16_t)i;
    r->avail.idx = (uint16_t)(r->avail.idx + 1);
}

static void teardown(void);

static int init(void) {
    regs = hwsim_mmio_map(DEV);
    if (regs[MAGIC] != 0x74726976 || regs[VERSION] != 2 || regs[DEVICE_ID] != 1) return E_DEVICE;
    regs[STATUS] = 0;
    regs[STATUS] = S_ACK;
    regs[STATUS] = S_ACK | S_DRIVER;
    regs[DEV_FEATURES_SEL] = 0;
    uint32_t low = regs[DEV_FEATURES];
    regs[DEV_FEATURES_SEL] = 1;
    uint32_t high = regs[DEV_FEATURES];
    uint32_t want_low = low & ((1u << F_MAC) | (1u << F_STATUS));
    regs[DRV_FEATURES_SEL] = 0;
    regs[DRV_FEATURES] = want_low;
    regs[DRV_FEATURES_SEL] = 1;
    regs[DRV_FEATURES] = high & ((1u << (F_VERSION_1 - 32)) | (1u << (F_ACCESS_PLATFORM - 32)));
    regs[STATUS] = S_ACK | S_DRIVER | S_FEATURES_OK;
    if (!(regs[STATUS] & S_FEATURES_OK) || !(high & (1u << (F_VERSION_1 - 32)))) return E_FEATURES;
    volatile uint8_t *config = (volatile uint8_t *)regs;
    for (int i = 0; i < 6; i++)  /* without VIRTIO_NET_F_MAC: a locally administered address */
        mac[i] = want_low & (1u << F_MAC) ? config[CONFIG_MAC + i] : (uint8_t[6]){0x02, 0, 0, 0, 0, 1}[i];
    if (want_low & (1u << F_STATUS) && !(*(volatile uint16_t *)(config + CONFIG_STATUS) & NET_S_LINK_UP))
        return E_LINK;
    for (int q = 0; q < 2; q++) {
        regs[QUEUE_SEL] = (uint32_t)q;
        if (regs[QUEUE_NUM_MAX] < QSIZE) return E_QUEUE;
    }
    sh = hwsim_dma_alloc_coherent(DEV, sizeof(struct shared), &sh_iova);
    used_seen[RXQ] = used_seen[TXQ] = 0;
    tx_busy = 0;
    set_queue(RXQ);
    set_queue(TXQ);
    for (rx_mapped = 0; rx_mapped < NRX; rx_mapped++) {
        rx_iova[rx_mapped] = hwsim_dma_map_single(DEV, rx_buf[rx_mapped], BUF, HWSIM_DMA_FROM_DEVICE);
        if (hwsim_dma_mapping_error(rx_iova[rx_mapped])) {
            teardown();
            return E_MAP;
        }
        post_rx(rx_mapped);
    }
    regs[STATUS] = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
    regs[QUEUE_NOTIFY] = RXQ;  /* the buffers are there: the device may use them from now on */
    return 0;
}

/* Unmap the frames the device has returned from transmitq. */
static int reap_tx(void) {
    volatile struct ring *r = &sh->q[TXQ];
    while (r->used.idx != used_seen[TXQ]) {
        uint32_t id = r->used.ring[used_seen[TXQ] % QSIZE].id;
        used_seen[TXQ]++;
        if (id >= QSIZE || !tx_len[id]) return E_USED;
        hwsim_dma_unmap_single(DEV, tx_iova[id], tx_len[id], HWSIM_DMA_TO_DEVICE);
        tx_len[id] = 0;
        tx_busy--;
    }
    return 0;
}

/* Wait until at most `most` frames are still in flight.  The device puts a frame on the wire (and
 * returns its chain) some microseconds of virtual time after the notification, so the driver lets
 * time pass on the device's interrupt (hwsim_irq_wait); 0 means nothing more can happen, and the ring
 * is looked at once more (a lost interrupt) before giving up. */
static int wait_tx(uint16_t most) {
    int err = reap_tx();
    while (!err && tx_busy > most) {
        if (!hwsim_irq_wait(DEV)) {
            err = reap_tx();
            return err ? err : tx_busy > most ? E_TIMEOUT : 0;
        }
        regs[INT_ACK] = regs[INT_STATUS];
        err = reap_tx();
    }
    return err;
}

/* The device is reset first: it no longer owns any buffer when they are unmapped and freed. */
static void teardown(void) {
    regs[STATUS] = 0;
    for (int i = 0; i < QSIZE; i++)
        if (tx_len[i]) {
            hwsim_dma_unmap_single(DEV, tx_iova[i], tx_len[i], HWSIM_DMA_TO_DEVICE);
            tx_len[i] = 0;
        }
    for (int i = 0; i < rx_mapped; i++) hwsim_dma_unmap_single(DEV, rx_iova[i], BUF, HWSIM_DMA_FROM_DEVICE);
    rx_mapped = 0;
    hwsim_dma_free_coherent(DEV, sizeof(struct shared), (void *)sh, sh_iova);
    sh = 0;
}

/* Frame n: to and from our own address, EtherType 0x88b5 (local experimental), a payload that starts
 * with n; 60..1514 bytes, the largest every eighth frame. */
static uint32_t make_frame(uint32_t n, uint8_t *out) {
    uint32_t len = n % 8 == 7 ? ETH_MAX : 60 + (n * 193) % (ETH_MAX - 60);
    for (int i = 0; i < 6; i++) out[i] = out[6 + i] = mac[i];
    out[12] = 0x88;
    out[13] = 0xb5;
    for (uint32_t i = 14; i < len; i++) out[i] = (uint8_t)(n * 31 + i * 7);
    for (int i = 0; i < 4; i++) out[14 + i] = (uint8_t)(n >> (8 * i));
    return len;
}

static int send_frame(uint32_t n) {
    int err = wait_tx(QSIZE - 1);  /* a free slot: the device may still own all of them */
    if (err) return err;
    uint16_t slot = 0;
    while (tx_len[slot]) slot++;  /* frames come back in any order: take a slot the device returned */
    uint8_t *buf = tx_buf[slot];
    for (int i = 0; i < HDR; i++) buf[i] = 0;  /* flags 0, GSO_NONE, num_buffers 0 */
    uint32_t len = HDR + make_frame(n, buf + HDR);
    hwsim_iova_t iova = hwsim_dma_map_single(DEV, buf, len, HWSIM_DMA_TO_DEVICE);
    if (hwsim_dma_mapping_error(iova)) return E_MAP;
    tx_iova[slot] = iova;
    tx_len[slot] = len;
    tx_busy++;
    volatile struct ring *r = &sh->q[TXQ];
    r->desc[slot] = (struct desc){iova, len, 0, 0};
    r->avail.ring[r->avail.idx % QSIZE] = slot;
    r->avail.idx = (uint16_t)(r->avail.idx + 1);
    regs[QUEUE_NOTIFY] = TXQ;
    return reap_tx();
}

/* Wait for the next received frame and hand its buffer to the CPU: returns the buffer index and
 * the frame's length in *len, E_TIMEOUT when nothing more will arrive, or another error. */
static int next_rx(uint32_t *len) {
    volatile struct ring *r = &sh->q[RXQ];
    while (r->used.idx == used_seen[RXQ]) {
        if (!hwsim_irq_wait(DEV)) return E_TIMEOUT;
        regs[INT_ACK] = regs[INT_STATUS];  /* then look at the rings again */
    }
    uint32_t id = r->used.ring[used_seen[RXQ] % QSIZE].id, used = r->used.ring[used_seen[RXQ] % QSIZE].len;
    used_seen[RXQ]++;
    if (id >= NRX || used > BUF) return E_USED;
    hwsim_dma_sync_single_for_cpu(DEV, rx_iova[id], BUF, HWSIM_DMA_FROM_DEVICE);
    const uint8_t *h = rx_buf[id];
    uint16_t num_buffers = (uint16_t)(h[10] | h[11] << 8);
    *len = used >= HDR ? used - HDR : 0;
    if (used < HDR + 14 || h[0] != 0 || h[1] != 0 || num_buffers != 1) {
        *len = 0;  /* a short or malformed delivery: the buffer goes back all the same */
    }
    return (int)id;
}

/* Give buffer `id` back to the device. */
static void recycle_rx(int id) {
    hwsim_dma_sync_single_for_device(DEV, rx_iova[id], BUF, HWSIM_DMA_FROM_DEVICE);
    post_rx(id);
    regs[QUEUE_NOTIFY] = RXQ;
}

static uint8_t expected[ETH_MAX];

/* Receive one frame and compare it with frame n. */
static int receive_check(uint32_t n) {
    uint32_t len;
    int id = next_rx(&len);
    if (id < 0) return id;
    uint32_t want = make_frame(n, expected);
    int bad = len == 0 ? E_HEADER : len != want ? E_CONTENT : 0;
    for (uint32_t i = 0; !bad && i < len; i++)
        if (rx_buf[id][HDR + i] != expected[i]) bad = E_CONTENT;
    recycle_rx(id);
    return bad;
}

#define NFRAMES 16

int probe(void) {
    int err = init();
    if (err) return err;
    uint32_t n = 0;
    while (!err && n < NFRAMES) {  /* bursts of 4: the 8 receive buffers are recycled */
        for (uint32_t i = 0; !err && i < BURST; i++) err = send_frame(n + i);
        for (uint32_t i = 0; !err && i < BURST; i++) err = receive_check(n + i);
        n += BURST;
    }
    if (!err) {
        put("virtio_net: ");
        put_dec(NFRAMES);
        put(" frames sent and received back (mac ");
        put_mac();
        put(")");
        flush();
    }
    teardown();
    return err ? err : NFRAMES;
}

/* Send frames 0..n-1; returns n or an error. */
HWSIM_EXPORT("send") int send(int n) {
    int err = init();
    if (err) return err;
    for (int i = 0; !err && i < n; i++) err = send_frame((uint32_t)i);
    if (!err) err = wait_tx(0);  /* every frame on the wire before the reset in teardown() */
    if (!err) {
        put("virtio_net: sent ");
        put_dec((uint32_t)n);
        put(" frames");
        flush();
    }
    teardown();
    return err ? err : n;
}

/* Receive until `max` frames have come or nothing more will; logs each frame's length and FNV-1a
 * hash.  Returns the number received, or an error. */
HWSIM_EXPORT("receive") int receive(int max) {
    int err = init();
    if (err) return err;
    int count = 0;
    while (count < max) {
        uint32_t len;
        int id = next_rx(&len);
        if (id == E_TIMEOUT) break;
        if (id < 0) {
            err = id;
            break;
        }
        uint32_t hash = 0x811c9dc5;
        for (uint32_t i = 0; i < len; i++) hash = (hash ^ rx_buf[id][HDR + i]) * 0x01000193;
        recycle_rx(id);
        put("virtio_net: frame ");
        put_dec((uint32_t)count);
        put(": ");
        put_dec(len);
        put(" bytes, fnv1a ");
        put_hex(hash, 8);
        flush();
        count++;
    }
    put("virtio_net: received ");
    put_dec((uint32_t)count);
    put(" frames");
    flush();
    teardown();
    return err ? err : count;
}

/* n round trips through the loopback, one frame at a time: returns the number of bad frames. */
HWSIM_EXPORT("pingpong") int pingpong(int n) {
    int err = init();
    if (err) return err;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        err = send_frame((uint32_t)i);
        if (err) break;
        bad += receive_check((uint32_t)i) != 0;
    }
    teardown();
    return err ? err : bad;
}
