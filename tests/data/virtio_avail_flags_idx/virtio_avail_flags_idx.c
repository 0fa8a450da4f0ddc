/* The attack on the virtio checker's store watch of the available ring: the driver counts the available idx
 * modulo the queue size (as drivers/examples/buggy/virtio_avail_wrap), but moves it with one aligned 32-bit
 * store of the flags and the idx together, a store that begins at the flags, before the idx. */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_init();
    if (err) return err;
    volatile uint32_t *flags_idx = (volatile uint32_t *)&q->avail.flags;
    for (uint16_t n = 1; !err && n <= VQ_SIZE; n++) {    /* 8 reads, one at a time */
        vblk_chain(0, 0);
        q->avail.ring[q->avail.idx % VQ_SIZE] = 0;
        *flags_idx = q->avail.flags | (uint32_t)((q->avail.idx + 1) % VQ_SIZE) << 16;  /* <- 7 to 0 */
        regs[VIRTIO_QUEUE_NOTIFY] = 0;
        if (!vblk_wait_used(n)) err = -110;
    }
    vblk_teardown();
    return err;
}
