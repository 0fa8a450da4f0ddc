/* BUG: the doorbell is rung before the command is written: the controller fetches the entry at once, while
 * it is still all zeros. */
#include <nvme_lite.h>
int probe(void) {
    struct nvme_lite n;
    int err = nvme_open(&n);
    if (!err) {
        uint16_t slot = n.sq_tail;
        n.sq_tail = (n.sq_tail + 1) % NVME_DEPTH;
        nvme_ring(&n);
        n.sq[slot] = (struct nvme_sqe){.dw0 = NVME_FLUSH | 7 << 16, .nsid = 1};  /* too late */
        if (nvme_wait(&n, 0)) err = -NVME_EIO;
    }
    return nvme_close(&n, err);
}
