/* BUG: the submission tail is rung before it wraps, so the 16th command rings SQ1TDBL with 16: one past the
 * last entry of a 16-entry queue.  The controller ignores the write and the command never runs. */
#include <nvme_lite.h>
int probe(void) {
    struct nvme_lite n;
    int err = nvme_open(&n);
    for (uint16_t i = 0; !err && i < NVME_DEPTH; i++) {
        n.sq[n.sq_tail] = (struct nvme_sqe){.dw0 = NVME_FLUSH | (uint32_t)i << 16, .nsid = 1};
        n.sq_tail++;
        *nvme_doorbell(&n, 1, 0) = n.sq_tail;  /* 1, 2, ..., 16 */
        if (n.sq_tail == NVME_DEPTH) n.sq_tail = 0;
        int status = nvme_wait(&n, 0);
        if (status) err = status < 0 ? status : -NVME_EIO;
    }
    return nvme_close(&n, err);
}
