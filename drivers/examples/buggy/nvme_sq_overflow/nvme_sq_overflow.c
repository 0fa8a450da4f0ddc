/* BUG: 16 commands queued back to back on a 16-entry queue, which holds 15: the last tail moves over an entry
 * the controller has not reported consumed (a queue is full when its tail is one behind its head). */
#include <nvme_lite.h>
int probe(void) {
    struct nvme_lite n;
    int err = nvme_open(&n);
    for (uint16_t i = 0; !err && i < NVME_DEPTH; i++) {
        nvme_put(&n, (struct nvme_sqe){.dw0 = NVME_FLUSH | (uint32_t)i << 16, .nsid = 1});
        nvme_ring(&n);
    }
    for (int i = 0; !err && i < NVME_DEPTH; i++)
        if (nvme_wait(&n, 0)) err = -NVME_EIO;
    return nvme_close(&n, err);
}
