/* BUG: the I/O queues' memory is freed while the controller still uses the queues (they were never
 * deleted): the next command is fetched from memory the device may no longer reach. */
#include <nvme_lite.h>
int probe(void) {
    struct nvme_lite n;
    int err = nvme_open(&n);
    if (!err) {
        hwsim_dma_free_coherent(NVME_DEV, 2 * NVME_PAGE, (void *)n.io_mem, n.io_iova);
        n.io_mem = 0;
        nvme_put(&n, (struct nvme_sqe){.dw0 = NVME_FLUSH | 1 << 16, .nsid = 1});
        nvme_ring(&n);
        err = nvme_wait(&n, 0);
    }
    return nvme_close(&n, err);
}
