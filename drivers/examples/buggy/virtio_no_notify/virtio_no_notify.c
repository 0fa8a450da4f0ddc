/* BUG: the driver makes a request available and never notifies the device, then waits for it. */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_init();
    if (err) return err;
    vblk_chain(0, 0);
    q->avail.ring[q->avail.idx % VQ_SIZE] = 0;
    q->avail.idx = (uint16_t)(q->avail.idx + 1);          /* <- no regs[VIRTIO_QUEUE_NOTIFY] = 0 after */
    if (!vblk_wait_used(1)) err = -110;                   /* nothing will come */
    vblk_teardown();
    return err;
}
