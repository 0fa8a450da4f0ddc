/* BUG: the driver changes a descriptor of a chain the device owns (made available, not returned yet). */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_init();
    if (err) return err;
    vblk_chain(0, 0);
    q->avail.ring[q->avail.idx % VQ_SIZE] = 0;
    q->avail.idx = (uint16_t)(q->avail.idx + 1);
    regs[VIRTIO_QUEUE_NOTIFY] = 0;
    q->desc[1].len = 256;                                 /* <- the device may be reading it now */
    vblk_wait_used(1);
    vblk_teardown();
    return 0;
}
