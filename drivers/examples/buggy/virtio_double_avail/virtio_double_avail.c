/* BUG: the driver makes the same chain available twice; the device serves it twice. */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_init();
    if (err) return err;
    vblk_chain(0, 0);
    q->avail.ring[0] = 0;
    q->avail.ring[1] = 0;                                 /* the chain at descriptor 0, again */
    q->avail.idx = 2;                                     /* <- the device still owns the first one */
    regs[VIRTIO_QUEUE_NOTIFY] = 0;
    vblk_wait_used(2);
    vblk_teardown();
    return 0;
}
