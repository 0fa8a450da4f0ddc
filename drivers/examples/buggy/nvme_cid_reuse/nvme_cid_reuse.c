/* BUG: every command gets command identifier 1 ("one at a time"), but two are in flight: the second reuses
 * the identifier of a command still outstanding, and completes with Command ID Conflict. */
#include <nvme_lite.h>
int probe(void) {
    struct nvme_lite n;
    int err = nvme_open(&n);
    if (!err) {
        nvme_put(&n, (struct nvme_sqe){.dw0 = NVME_FLUSH | 1 << 16, .nsid = 1});
        nvme_put(&n, (struct nvme_sqe){.dw0 = NVME_FLUSH | 1 << 16, .nsid = 1});
        nvme_ring(&n);
        for (int i = 0; i < 2; i++)
            if (nvme_wait(&n, 0)) err = -NVME_EIO;
    }
    return nvme_close(&n, err);
}
