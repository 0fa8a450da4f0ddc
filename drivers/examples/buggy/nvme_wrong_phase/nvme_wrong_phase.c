/* BUG: the I/O completion queue is read with the phase tag the wrong way round ("a new entry has P = 0"):
 * the zeroed memory looks like a completion, so the head doorbell moves past an entry the controller has
 * not posted yet. */
#include <nvme_lite.h>
int probe(void) {
    struct nvme_lite n;
    int err = nvme_open(&n);
    if (!err) {
        n.phase = 0;
        nvme_put(&n, (struct nvme_sqe){.dw0 = NVME_FLUSH | 1 << 16, .nsid = 1});
        nvme_ring(&n);
        err = nvme_wait(&n, 0);  /* returns at once, on the zeroed entry */
    }
    return nvme_close(&n, err);
}
