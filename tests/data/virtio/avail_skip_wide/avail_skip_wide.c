/* BUG (drivers/examples/buggy/virtio_avail_skip with a wider store): the driver moves the available idx
 * by two after writing one entry, with one 32-bit store of the ring's flags and idx. */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_init();
    if (err) return err;
    vblk_chain(3, 0);
    q->avail.ring[q->avail.idx % VQ_SIZE] = 3;
    *(volatile uint32_t *)&q->avail = (uint32_t)(q->avail.idx + 2) << 16;  /* <- one entry written, two made available */
    regs[VIRTIO_QUEUE_NOTIFY] = 0;
    vblk_wait_used(2);
    vblk_teardown();
    return 0;
}
