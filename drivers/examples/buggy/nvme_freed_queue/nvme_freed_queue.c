/* BUG: the I/O queues' memory is freed while the controller still uses the queues (they were never
 * deleted): the next command is fetched from memory the device may no longer reach. */
#include <nvme_lite.h>
int probe(void) {
    struct nvme_lite n;
    int err = nvme_open(&n);
    if (err) return nvme_close(&n, err);
    nvme_put(&n, (struct nvme_sqe){.dw0 = NVME_FLUSH | 1 << 16, .nsid = 1});  /* written while still the driver's */
    hwsim_dma_free_coherent(NVME_DEV, 2 * NVME_PAGE, (void *)n.io_mem, n.io_iova);  /* <- the queues still exist */
    n.io_mem = 0;                               /* (the CPU may not touch freed memory either: it would trap) */
    nvme_ring(&n);                              /* the controller fetches the command from the freed page */
    for (int i = 0; i < 1000 && !nvme_failed(&n); i++) hwsim_sleep_ns(1000);
    return nvme_close(&n, nvme_failed(&n) ? -NVME_EIO : 0);
}
