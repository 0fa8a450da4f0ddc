/* nvme_lite.h: the smallest NVMe setup, for the buggy examples (drivers/examples/buggy/nvme_*): enable the
 * controller with an admin queue pair, create I/O queue pair 1, put commands, ring, wait for completions by
 * phase tag, tear down.  drivers/nvme is the full driver (out-of-order completions, several queue pairs,
 * PRP lists).  The admin pair and the I/O pair each live in their own DMA-coherent region of two pages. */
#ifndef NVME_LITE_H
#define NVME_LITE_H
#include <hwsim.h>

#define NVME_DEV "nvme0"
#define NVME_DEPTH 16
#define NVME_PAGE 4096u
enum { NVME_CAP_LO = 0, NVME_CAP_HI = 1, NVME_CC = 5, NVME_CSTS = 7, NVME_AQA = 9, NVME_ASQ = 10, NVME_ACQ = 12 };
enum { NVME_READ = 0x02, NVME_WRITE = 0x01, NVME_FLUSH = 0x00 };
enum { NVME_EIO = 5, NVME_ETIMEDOUT = 110 };

struct nvme_sqe { uint32_t dw0, nsid, cdw2, cdw3; uint64_t mptr, prp1, prp2; uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15; };
struct nvme_cqe { uint32_t dw0, dw1; uint16_t sqhd, sqid, cid, status; };

struct nvme_lite {
    volatile uint32_t *regs;
    uint32_t stride;                      /* doorbell stride in 32-bit words */
    volatile struct nvme_sqe *asq, *sq;   /* admin and I/O submission queues */
    volatile struct nvme_cqe *acq, *cq;   /* admin and I/O completion queues */
    volatile uint8_t *admin_mem, *io_mem; /* the two coherent regions */
    hwsim_iova_t admin_iova, io_iova;
    uint16_t asq_tail, acq_head, aphase, sq_tail, cq_head, phase, cid;
};

static inline volatile uint32_t *nvme_doorbell(struct nvme_lite *n, int qid, int completion) {
    return n->regs + 0x1000 / 4 + (2 * qid + completion) * n->stride;
}

static inline int nvme_failed(struct nvme_lite *n) { return n->regs[NVME_CSTS] & 2; }

static inline int nvme_wait_csts(struct nvme_lite *n, uint32_t mask, uint32_t want) {
    for (int i = 0; i < 100000; i++) {
        if ((n->regs[NVME_CSTS] & mask) == want) return 0;
        if (nvme_failed(n)) return -NVME_EIO;
        hwsim_sleep_ns(1000);
    }
    return -NVME_ETIMEDOUT;
}

/* The next completion on a queue (by phase tag): its status field, or a negative error. */
static inline int nvme_next(struct nvme_lite *n, volatile struct nvme_cqe *cq, uint16_t *head, uint16_t *phase,
                            int qid, uint16_t *cid) {
    for (;;) {
        volatile struct nvme_cqe *e = &cq[*head];
        uint16_t status = e->status;
        if ((status & 1) == *phase) {
            if (cid) *cid = e->cid;
            if (++*head == NVME_DEPTH) {
                *head = 0;
                *phase ^= 1;
            }
            *nvme_doorbell(n, qid, 1) = *head;
            return status >> 1;
        }
        if (nvme_failed(n)) return -NVME_EIO;
        if (!hwsim_irq_wait(NVME_DEV)) return -NVME_ETIMEDOUT;
    }
}

static inline int nvme_admin(struct nvme_lite *n, uint8_t opcode, uint64_t prp1, uint32_t cdw10, uint32_t cdw11) {
    struct nvme_sqe cmd = {.dw0 = opcode | (uint32_t)n->cid++ << 16, .prp1 = prp1, .cdw10 = cdw10, .cdw11 = cdw11};
    n->asq[n->asq_tail] = cmd;
    n->asq_tail = (n->asq_tail + 1) % NVME_DEPTH;
    *nvme_doorbell(n, 0, 0) = n->asq_tail;
    return nvme_next(n, n->acq, &n->acq_head, &n->aphase, 0, 0);
}

/* Write `cmd` at the I/O queue's tail (not rung): the caller rings with nvme_ring. */
static inline void nvme_put(struct nvme_lite *n, struct nvme_sqe cmd) {
    n->sq[n->sq_tail] = cmd;
    n->sq_tail = (n->sq_tail + 1) % NVME_DEPTH;
}

static inline void nvme_ring(struct nvme_lite *n) { *nvme_doorbell(n, 1, 0) = n->sq_tail; }

static inline int nvme_wait(struct nvme_lite *n, uint16_t *cid) {
    return nvme_next(n, n->cq, &n->cq_head, &n->phase, 1, cid);
}

static inline struct nvme_sqe nvme_rw(uint8_t opcode, uint16_t cid, uint64_t lba, uint32_t blocks, hwsim_iova_t prp1) {
    return (struct nvme_sqe){.dw0 = opcode | (uint32_t)cid << 16, .nsid = 1, .prp1 = prp1, .cdw10 = (uint32_t)lba,
                             .cdw11 = (uint32_t)(lba >> 32), .cdw12 = blocks - 1};
}

static inline int nvme_open(struct nvme_lite *n) {
    *n = (struct nvme_lite){.aphase = 1, .phase = 1, .cid = 100};
    n->regs = hwsim_mmio_map(NVME_DEV);
    if (!n->regs) return -19;
    n->stride = 1u << (n->regs[NVME_CAP_HI] & 0xf);
    n->admin_mem = hwsim_dma_alloc_coherent(NVME_DEV, 2 * NVME_PAGE, &n->admin_iova);
    n->io_mem = hwsim_dma_alloc_coherent(NVME_DEV, 2 * NVME_PAGE, &n->io_iova);
    n->asq = (volatile struct nvme_sqe *)n->admin_mem;
    n->acq = (volatile struct nvme_cqe *)(n->admin_mem + NVME_PAGE);
    n->sq = (volatile struct nvme_sqe *)n->io_mem;
    n->cq = (volatile struct nvme_cqe *)(n->io_mem + NVME_PAGE);
    n->regs[NVME_AQA] = (NVME_DEPTH - 1) << 16 | (NVME_DEPTH - 1);
    n->regs[NVME_ASQ] = (uint32_t)n->admin_iova;
    n->regs[NVME_ASQ + 1] = (uint32_t)(n->admin_iova >> 32);
    n->regs[NVME_ACQ] = (uint32_t)(n->admin_iova + NVME_PAGE);
    n->regs[NVME_ACQ + 1] = (uint32_t)((n->admin_iova + NVME_PAGE) >> 32);
    n->regs[NVME_CC] = 6 << 16 | 4 << 20 | 1;
    if (nvme_wait_csts(n, 1, 1)) return -NVME_ETIMEDOUT;
    uint32_t size_qid = (NVME_DEPTH - 1) << 16 | 1;
    if (nvme_admin(n, 0x05, n->io_iova + NVME_PAGE, size_qid, 1 | 2)) return -NVME_EIO;  /* Create I/O CQ 1 */
    if (nvme_admin(n, 0x01, n->io_iova, size_qid, 1 << 16 | 1)) return -NVME_EIO;        /* Create I/O SQ 1 */
    return 0;
}

/* Delete the I/O pair, shut down, disable, free what is still allocated; `err` is passed through. */
static inline int nvme_close(struct nvme_lite *n, int err) {
    if (!nvme_failed(n)) {
        nvme_admin(n, 0x00, 0, 1, 0);  /* Delete I/O SQ 1 */
        nvme_admin(n, 0x04, 0, 1, 0);  /* Delete I/O CQ 1 */
        n->regs[NVME_CC] = 6 << 16 | 4 << 20 | 1 | 1 << 14;
        nvme_wait_csts(n, 3 << 2, 2 << 2);
    }
    n->regs[NVME_CC] = 0;
    nvme_wait_csts(n, 1, 0);
    if (n->io_mem) hwsim_dma_free_coherent(NVME_DEV, 2 * NVME_PAGE, (void *)n->io_mem, n->io_iova);
    hwsim_dma_free_coherent(NVME_DEV, 2 * NVME_PAGE, (void *)n->admin_mem, n->admin_iova);
    return err;
}
#endif
