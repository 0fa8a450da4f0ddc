/* BUG: the completion queue's page is given to the controller as the buffer of a Read (a bounce buffer
 * taken from the wrong region): the data would overwrite the queue's entries. */
#include <nvme_lite.h>
int probe(void) {
    struct nvme_lite n;
    int err = nvme_open(&n);
    if (!err) {
        hwsim_iova_t bounce = n.io_iova + NVME_PAGE;  /* meant: a page of its own */
        nvme_put(&n, nvme_rw(NVME_READ, 1, 0, 8, bounce));
        nvme_ring(&n);
        if (nvme_wait(&n, 0)) err = -NVME_EIO;
    }
    return nvme_close(&n, err);
}
