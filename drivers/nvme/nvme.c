/* NVMe (NVM Express 1.4 subset) on nvme0: the admin queue, Identify, Number of Queues, two I/O queue
 * pairs, writes and reads with PRP1 only, PRP1 + PRP2 and a PRP list that continues on a second page,
 * Flush, queue deletion and a normal shutdown.  Transfers are split at Identify's MDTS; a command that
 * fails without Do Not Retry is submitted again.
 *
 * Queues and PRP lists live in one DMA-coherent region; data goes through streaming mappings, each
 * unmapped once its command has completed.  Completions are found by their phase tags and matched to
 * commands by command identifier, so they may come back in any order; the driver sleeps on the
 * interrupt line (hwsim_irq_wait) when no queue holds a new completion. */
#include <hwsim.h>

#define DEV "nvme0"
enum {  /* controller registers, as 32-bit word indices */
    CAP_LO = 0x00 / 4, CAP_HI = 0x04 / 4, VS = 0x08 / 4, CC = 0x14 / 4, CSTS = 0x1c / 4, AQA = 0x24 / 4,
    ASQ_LO = 0x28 / 4, ASQ_HI = 0x2c / 4, ACQ_LO = 0x30 / 4, ACQ_HI = 0x34 / 4, DOORBELLS = 0x1000 / 4,
};
enum { CC_EN = 1, CC_SHN_NORMAL = 1 << 14, CC_IOSQES = 6 << 16, CC_IOCQES = 4 << 20 };
enum { CSTS_RDY = 1, CSTS_CFS = 2, CSTS_SHST_MASK = 3 << 2, CSTS_SHST_COMPLETE = 2 << 2 };
enum { OP_DELETE_SQ = 0x00, OP_CREATE_SQ = 0x01, OP_DELETE_CQ = 0x04, OP_CREATE_CQ = 0x05, OP_IDENTIFY = 0x06,
       OP_SET_FEATURES = 0x09 };
enum { OP_FLUSH = 0x00, OP_WRITE = 0x01, OP_READ = 0x02 };
enum { EIO = 5, ENODEV = 19, ENOSPC = 28, ETIMEDOUT = 110 };

#define PAGE 4096u
#define LBA 512u
#define DEPTH 16      /* entries of every queue */
#define IO_PAIRS 2    /* I/O queue pairs asked for */
#define MAXCMD 64     /* command identifiers 0..MAXCMD-1, shared by all queues */
#define TRIES 4       /* a command that fails without Do Not Retry is tried again, as Linux does */
#define DNR (1 << 14) /* in the status field */
#define BATCH 8       /* commands in flight at most in transfer_all */

struct sqe { uint32_t dw0, nsid, cdw2, cdw3; uint64_t mptr, prp1, prp2; uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15; };
struct cqe { uint32_t dw0, dw1; uint16_t sqhd, sqid, cid, status; };

struct queue {
    volatile struct sqe *sq;
    volatile struct cqe *cq;
    hwsim_iova_t sq_iova, cq_iova;
    volatile uint32_t *sq_doorbell, *cq_doorbell;
    uint16_t qid, sq_tail, sq_head, cq_head, phase, live;
};

/* The coherent region: one page per queue, then two pages of PRP lists per command of a batch. */
enum { ADMIN_SQ_PAGE, ADMIN_CQ_PAGE, IO_PAGES, PRP_PAGE = IO_PAGES + 2 * IO_PAIRS, REGION_PAGES = PRP_PAGE + 2 * BATCH };

static volatile uint32_t *regs;
static uint32_t stride;  /* doorbell stride in 32-bit words */
static volatile uint8_t *region;
static hwsim_iova_t region_iova;
static struct queue queues[1 + IO_PAIRS];
static int io_pairs;
static struct { uint8_t busy, done; uint16_t status; uint32_t dw0; } cmds[MAXCMD];
static uint16_t next_cid;
static uint64_t blocks;
static uint32_t max_blocks;  /* per command: Identify's MDTS */

static uint8_t idbuf[PAGE] __attribute__((aligned(4096)));
static uint8_t wbuf[16 * PAGE] __attribute__((aligned(4096)));
static uint8_t rbuf[16 * PAGE] __attribute__((aligned(4096)));

/* -- logging ------------------------------------------------------------------------------------------ */

static void log_num(const char *text, long value) {
    char line[96];
    int n = 0;
    while (*text && n < 64) line[n++] = *text++;
    char digits[24];
    int k = 0;
    unsigned long v = value < 0 ? (unsigned long)-value : (unsigned long)value;
    do digits[k++] = (char)('0' + v % 10); while ((v /= 10) && k < 24);
    if (value < 0) line[n++] = '-';
    while (k) line[n++] = digits[--k];
    line[n] = 0;
    hwsim_log(line);
}

/* -- queues ------------------------------------------------------------------------------------------- */

static hwsim_iova_t page_iova(int page) { return region_iova + (hwsim_iova_t)page * PAGE; }
static volatile void *page_cpu(int page) { return region + (size_t)page * PAGE; }

static void queue_init(struct queue *q, uint16_t qid, int sq_page, int cq_page) {
    q->qid = qid;
    q->sq = page_cpu(sq_page);
    q->cq = page_cpu(cq_page);
    q->sq_iova = page_iova(sq_page);
    q->cq_iova = page_iova(cq_page);
    q->sq_doorbell = regs + DOORBELLS + (2 * qid) * stride;
    q->cq_doorbell = regs + DOORBELLS + (2 * qid + 1) * stride;
    q->sq_tail = q->sq_head = q->cq_head = 0;
    q->phase = 1;
    for (unsigned i = 0; i < PAGE / 4; i++) ((volatile uint32_t *)q->cq)[i] = 0;
    q->live = 1;
}

/* Consume every new completion of `q` (those whose phase tag is the current pass's); returns how many. */
static int reap(struct queue *q) {
    int n = 0;
    if (!q->live) return 0;
    for (;;) {
        volatile struct cqe *e = &q->cq[q->cq_head];
        uint16_t status = e->status;
        if ((status & 1) != q->phase) break;
        uint16_t cid = e->cid;
        q->sq_head = e->sqhd;  /* the controller has fetched up to here: those slots are free again */
        if (cid < MAXCMD && cmds[cid].busy) {
            cmds[cid].done = 1;
            cmds[cid].status = status >> 1;
            cmds[cid].dw0 = e->dw0;
        }
        if (++q->cq_head == DEPTH) {
            q->cq_head = 0;
            q->phase ^= 1;
        }
        n++;
    }
    if (n) *q->cq_doorbell = q->cq_head;
    return n;
}

/* Reap every queue; when nothing was new, sleep until the interrupt line rises.  0, or a negative error. */
static int poll_once(void) {
    int got = 0;
    for (int i = 0; i <= io_pairs; i++) got += reap(&queues[i]);
    if (got) return 0;
    if (regs[CSTS] & CSTS_CFS) {
        hwsim_log("nvme: controller fatal status");
        return -EIO;
    }
    if (!hwsim_irq_wait(DEV)) {
        hwsim_log("nvme: no completion will come");
        return -ETIMEDOUT;
    }
    return 0;
}

/* Put a command on `q` and ring its doorbell; returns its command identifier or a negative error. */
static int submit(struct queue *q, struct sqe *cmd) {
    while ((q->sq_tail + 1) % DEPTH == q->sq_head) {  /* full: wait for the controller to move the head */
        int err = poll_once();
        if (err) return err;
    }
    uint16_t cid = next_cid;
    while (cmds[cid].busy) cid = (uint16_t)((cid + 1) % MAXCMD);
    next_cid = (uint16_t)((cid + 1) % MAXCMD);
    cmds[cid].busy = 1;
    cmds[cid].done = 0;
    cmd->dw0 = (cmd->dw0 & 0xff) | (uint32_t)cid << 16;
    q->sq[q->sq_tail] = *cmd;
    q->sq_tail = (uint16_t)((q->sq_tail + 1) % DEPTH);
    *q->sq_doorbell = q->sq_tail;
    return cid;
}

/* Wait for command `cid`: its status field (0: success), or a negative error. */
static int wait_for(int cid, uint32_t *dw0) {
    if (cid < 0) return cid;
    while (!cmds[cid].done) {
        int err = poll_once();
        if (err) return err;
    }
    cmds[cid].busy = 0;
    if (dw0) *dw0 = cmds[cid].dw0;
    return cmds[cid].status;
}

/* Submit `cmd` on `q` and wait for it; a failure without Do Not Retry is tried again.  The status field
 * (0: success), or a negative error. */
static int command(struct queue *q, struct sqe *cmd, uint32_t *dw0) {
    for (int tries = 1;; tries++) {
        int status = wait_for(submit(q, cmd), dw0);  /* (submit gives it a new command identifier) */
        if (status > 0 && !(status & DNR) && tries < TRIES) {
            log_num("nvme: retrying a command after status ", status);
            continue;
        }
        if (status) log_num("nvme: command failed, status ", status);
        return status;
    }
}

static int admin(uint8_t opcode, uint32_t nsid, uint64_t prp1, uint32_t cdw10, uint32_t cdw11, uint32_t *dw0) {
    struct sqe cmd = {.dw0 = opcode, .nsid = nsid, .prp1 = prp1, .cdw10 = cdw10, .cdw11 = cdw11};
    return command(&queues[0], &cmd, dw0);
}

/* -- the controller ------------------------------------------------------------------------------------ */

static int wait_csts(uint32_t mask, uint32_t want) {
    uint64_t timeout = ((regs[CAP_LO] >> 24) & 0xff) * 500000000ull;
    uint64_t deadline = hwsim_now_ns() + timeout;
    while ((regs[CSTS] & mask) != want) {
        if (regs[CSTS] & CSTS_CFS) return -EIO;
        if (hwsim_now_ns() > deadline) return -ETIMEDOUT;
        hwsim_sleep_ns(1000);
    }
    return 0;
}

static int enable(void) {
    regs = hwsim_mmio_map(DEV);
    if (!regs || !(regs[CAP_HI] >> 5 & 1) || regs[VS] < 0x00010000) return -ENODEV;
    stride = 1u << (regs[CAP_HI] & 0xf);
    if ((regs[CAP_LO] & 0xffff) + 1 < DEPTH) return -ENODEV;
    if (regs[CC] & CC_EN) {
        regs[CC] = 0;
        if (wait_csts(CSTS_RDY, 0)) return -ETIMEDOUT;
    }
    region = hwsim_dma_alloc_coherent(DEV, REGION_PAGES * PAGE, &region_iova);
    if (!region) return -ENODEV;
    for (unsigned i = 0; i < REGION_PAGES * PAGE / 4; i++) ((volatile uint32_t *)region)[i] = 0;
    io_pairs = 0;
    queue_init(&queues[0], 0, ADMIN_SQ_PAGE, ADMIN_CQ_PAGE);
    regs[AQA] = (DEPTH - 1) << 16 | (DEPTH - 1);
    regs[ASQ_LO] = (uint32_t)queues[0].sq_iova;
    regs[ASQ_HI] = (uint32_t)(queues[0].sq_iova >> 32);
    regs[ACQ_LO] = (uint32_t)queues[0].cq_iova;
    regs[ACQ_HI] = (uint32_t)(queues[0].cq_iova >> 32);
    regs[CC] = CC_IOSQES | CC_IOCQES | CC_EN;
    int err = wait_csts(CSTS_RDY, CSTS_RDY);
    if (err) hwsim_log("nvme: the controller did not become ready");
    return err;
}

static int identify(void) {
    hwsim_iova_t iova = hwsim_dma_map_single(DEV, idbuf, PAGE, HWSIM_DMA_FROM_DEVICE);
    int status = admin(OP_IDENTIFY, 0, iova, 1, 0, 0);  /* CNS 1: the controller */
    hwsim_dma_unmap_single(DEV, iova, PAGE, HWSIM_DMA_FROM_DEVICE);
    if (status) return -EIO;
    uint32_t nn = idbuf[516] | idbuf[517] << 8 | idbuf[518] << 16 | (uint32_t)idbuf[519] << 24;
    if (idbuf[512] != 0x66 || idbuf[513] != 0x44 || nn < 1) return -ENODEV;
    uint32_t mdts = idbuf[77];  /* 2^MDTS pages; 0: no limit but NLB's 65536 blocks */
    max_blocks = mdts == 0 || mdts > 15 ? 65536 : (PAGE << mdts) / LBA;
    iova = hwsim_dma_map_single(DEV, idbuf, PAGE, HWSIM_DMA_FROM_DEVICE);
    status = admin(OP_IDENTIFY, 1, iova, 0, 0, 0);  /* CNS 0: namespace 1 */
    hwsim_dma_unmap_single(DEV, iova, PAGE, HWSIM_DMA_FROM_DEVICE);
    if (status) return -EIO;
    blocks = 0;
    for (int i = 7; i >= 0; i--) blocks = blocks << 8 | idbuf[i];
    uint8_t format = idbuf[26] & 0xf;
    if (idbuf[128 + 4 * format + 2] != 9) return -ENODEV;  /* LBADS: 512-byte blocks only */
    return 0;
}

static int create_io_queues(int wanted) {
    uint32_t dw0 = 0;
    if (admin(OP_SET_FEATURES, 0, 0, 0x07, (uint32_t)(wanted - 1) << 16 | (uint32_t)(wanted - 1), &dw0)) return -EIO;
    int granted = (int)(dw0 & 0xffff) + 1;
    if ((int)(dw0 >> 16) + 1 < granted) granted = (int)(dw0 >> 16) + 1;
    if (granted > wanted) granted = wanted;
    for (int i = 1; i <= granted; i++) {
        struct queue *q = &queues[i];
        queue_init(q, (uint16_t)i, IO_PAGES + 2 * (i - 1), IO_PAGES + 2 * (i - 1) + 1);
        q->live = 0;  /* not reaped until it exists */
        uint32_t size_qid = (DEPTH - 1) << 16 | (uint32_t)i;
        if (admin(OP_CREATE_CQ, 0, q->cq_iova, size_qid, 1 | 2, 0)) return -EIO;  /* PC, IEN, vector 0 */
        q->live = 1;
        io_pairs = i;
        if (admin(OP_CREATE_SQ, 0, q->sq_iova, size_qid, (uint32_t)i << 16 | 1, 0)) return -EIO;
    }
    return granted;
}

static int delete_io_queues(void) {
    int err = 0;
    for (int i = io_pairs; i >= 1; i--) {
        err |= admin(OP_DELETE_SQ, 0, 0, (uint32_t)i, 0, 0);
        err |= admin(OP_DELETE_CQ, 0, 0, (uint32_t)i, 0, 0);
        queues[i].live = 0;
    }
    io_pairs = 0;
    return err ? -EIO : 0;
}

/* Normal shutdown, then disable; the coherent region is freed only once the controller is off. */
static int shutdown(void) {
    int err = 0;
    if (!(regs[CSTS] & CSTS_CFS)) {
        regs[CC] = CC_IOSQES | CC_IOCQES | CC_EN | CC_SHN_NORMAL;
        err = wait_csts(CSTS_SHST_MASK, CSTS_SHST_COMPLETE);
        if (err) hwsim_log("nvme: shutdown did not complete");
    }
    regs[CC] = 0;
    if (wait_csts(CSTS_RDY, 0)) err = -ETIMEDOUT;
    hwsim_dma_free_coherent(DEV, REGION_PAGES * PAGE, (void *)region, region_iova);
    region = 0;
    for (int i = 0; i < MAXCMD; i++) cmds[i].busy = 0;
    return err;
}

/* -- data ---------------------------------------------------------------------------------------------- */

struct io {
    struct queue *q;
    uint32_t list_offset;
    int opcode, cid, tries;
    uint64_t lba;
    uint32_t nblocks;
    uint8_t *buf;
    hwsim_iova_t iova;
    int list_page;  /* PRP list page in the region, if the transfer needs one */
};

/* Map the buffer and submit; PRP2 is the second page, or a PRP list (starting `list_offset` bytes into its
 * page, so that a long list continues on the next page through its last entry). */
static int start_io(struct queue *q, struct io *io, uint32_t list_offset) {
    io->q = q;
    io->list_offset = list_offset;
    uint32_t len = io->nblocks * LBA;
    int dir = io->opcode == OP_WRITE ? HWSIM_DMA_TO_DEVICE : HWSIM_DMA_FROM_DEVICE;
    io->iova = hwsim_dma_map_single(DEV, io->buf, len, dir);
    if (hwsim_dma_mapping_error(io->iova)) return -EIO;
    struct sqe cmd = {.dw0 = (uint32_t)io->opcode, .nsid = 1, .prp1 = io->iova};
    cmd.cdw10 = (uint32_t)io->lba;
    cmd.cdw11 = (uint32_t)(io->lba >> 32);
    cmd.cdw12 = io->nblocks - 1;
    uint32_t first = PAGE - (uint32_t)(io->iova & (PAGE - 1));
    if (len > first) {
        hwsim_iova_t next = (io->iova & ~(hwsim_iova_t)(PAGE - 1)) + PAGE;
        uint32_t pages = (len - first + PAGE - 1) / PAGE;
        if (pages == 1) {
            cmd.prp2 = next;
        } else {
            volatile uint64_t *list = (volatile uint64_t *)((volatile uint8_t *)page_cpu(io->list_page) + list_offset);
            hwsim_iova_t list_iova = page_iova(io->list_page) + list_offset;
            uint32_t room = (PAGE - list_offset) / 8;
            cmd.prp2 = list_iova;
            for (uint32_t k = 0, slot = 0; k < pages; k++, slot++) {
                if (slot == room - 1 && pages - k > 1) {  /* last entry of a full page: link to the next page */
                    list[slot] = page_iova(io->list_page + 1);
                    list = page_cpu(io->list_page + 1);
                    slot = 0;
                    room = PAGE / 8;
                }
                list[slot] = next + (hwsim_iova_t)k * PAGE;
            }
        }
    }
    io->cid = submit(q, &cmd);
    return io->cid < 0 ? io->cid : 0;
}

/* Wait for the command, unmap its buffer; a failure without Do Not Retry is submitted again. */
static int finish_io(struct io *io) {
    for (;;) {
        int status = wait_for(io->cid, 0);
        int dir = io->opcode == OP_WRITE ? HWSIM_DMA_TO_DEVICE : HWSIM_DMA_FROM_DEVICE;
        hwsim_dma_unmap_single(DEV, io->iova, io->nblocks * LBA, dir);
        if (status > 0 && !(status & DNR) && ++io->tries < TRIES) {
            log_num("nvme: retrying I/O after status ", status);
            if (start_io(io->q, io, io->list_offset)) return -EIO;
            continue;
        }
        if (status) log_num("nvme: I/O failed, status ", status);
        return status ? -EIO : 0;
    }
}

/* The four transfers of probe(): PRP1 only, PRP1 + PRP2, a PRP list over two pages, a buffer that starts
 * 3 KiB into a page (PRP1 with an offset, PRP2). */
static const struct { uint64_t lba; uint32_t nblocks, offset; } plan[4] = {
    {0, 8, 0}, {8, 16, 1 * PAGE}, {24, 64, 3 * PAGE}, {100, 4, 11 * PAGE + 3072},
};

static int finish_batch(struct io *io, int count) {
    int err = 0;
    for (int i = 0; i < count; i++) err |= finish_io(&io[i]);  /* completions may arrive in any order */
    return err ? -EIO : 0;
}

/* The plan's transfers, each split into commands of at most MDTS, up to BATCH of them in flight over the
 * I/O queue pairs in turn. */
static int transfer_all(int opcode, uint8_t *base) {
    struct io io[BATCH];
    int count = 0, err = 0;
    for (int i = 0; i < 4 && !err; i++) {
        for (uint32_t done = 0; done < plan[i].nblocks && !err;) {
            uint32_t n = plan[i].nblocks - done < max_blocks ? plan[i].nblocks - done : max_blocks;
            if (count == BATCH) {
                err = finish_batch(io, count);
                count = 0;
                if (err) break;
            }
            io[count] = (struct io){.opcode = opcode, .lba = plan[i].lba + done, .nblocks = n,
                                    .buf = base + plan[i].offset + done * LBA, .list_page = PRP_PAGE + 2 * count};
            /* a list starts 24 bytes before the end of its page: two data pages there, then the link */
            err = start_io(&queues[1 + count % io_pairs], &io[count], PAGE - 24);
            if (err) break;
            count++;
            done += n;
        }
    }
    int last = finish_batch(io, count);
    return err ? err : last;
}

int probe(void) {
    int err = enable();
    if (err) {
        if (region) shutdown();  /* the controller did not come up: still give the region back */
        return err;
    }
    err = identify();
    if (!err && blocks < 128) {
        log_num("nvme: namespace 1 is too small (blocks): ", (long)blocks);
        err = -ENOSPC;
    }
    if (!err && create_io_queues(IO_PAIRS) < 1) err = -EIO;
    if (!err) {
        for (unsigned i = 0; i < sizeof wbuf; i++) wbuf[i] = (uint8_t)(i * 7 + (i >> 9));
        err = transfer_all(OP_WRITE, wbuf);
    }
    if (!err) {
        struct sqe flush = {.dw0 = OP_FLUSH, .nsid = 1};
        if (command(&queues[1], &flush, 0)) err = -EIO;
    }
    if (!err) {
        for (unsigned i = 0; i < sizeof rbuf; i++) rbuf[i] = 0;
        err = transfer_all(OP_READ, rbuf);
    }
    for (int i = 0; !err && i < 4; i++)
        for (uint32_t k = 0; k < plan[i].nblocks * LBA; k++)
            if (rbuf[plan[i].offset + k] != wbuf[plan[i].offset + k]) {
                log_num("nvme: read back differs at transfer ", i);
                err = -EIO;
                break;
            }
    if (!err) log_num("nvme: written, flushed and read back over I/O queue pairs: ", io_pairs);
    if (io_pairs && delete_io_queues() && !err) err = -EIO;
    int off = shutdown();
    if (!err) err = off;
    return err ? err : (int)blocks;
}

/* n reads of 4 KiB, one at a time, cycling over the first (at most 256) blocks: for IOPS measurements. */
HWSIM_EXPORT("read_loop") int read_loop(int n) {
    int err = enable();
    if (!err) err = identify();
    if (!err && create_io_queues(1) < 1) err = -EIO;
    if (err) {
        if (region) {
            delete_io_queues();
            shutdown();
        }
        return -1;
    }
    uint32_t span = blocks < 256 ? (uint32_t)blocks : 256;
    int errors = 0;
    if (span < 8) errors = -2;
    for (int i = 0; errors >= 0 && i < n; i++) {
        struct io io = {.opcode = OP_READ, .lba = (uint64_t)((i * 8) % (span - span % 8)), .nblocks = 8,
                        .buf = rbuf, .list_page = PRP_PAGE};
        if (start_io(&queues[1], &io, 0)) {
            errors = -3;
            break;
        }
        errors += finish_io(&io) != 0;
    }
    delete_io_queues();
    shutdown();
    return errors;
}
