/* BUG: the driver counts the available idx modulo the queue size instead of modulo 2^16. */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_init();
    if (err) return err;
    for (uint16_t n = 1; !err && n <= VQ_SIZE; n++) {    /* 8 reads, one at a time */
        vblk_chain(0, 0);
        q->avail.ring[q->avail.idx % VQ_SIZE] = 0;
        q->avail.idx = (uint16_t)((q->avail.idx + 1) % VQ_SIZE);  /* <- the 8th goes from 7 to 0 */
        regs[VIRTIO_QUEUE_NOTIFY] = 0;
        if (!vblk_wait_used(n)) err = -110;
    }
    vblk_teardown();
    return err;
}
