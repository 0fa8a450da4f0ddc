/* BUG: the driver makes available a chain that loops back on itself (longer than the queue). */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_init();
    if (err) return err;
    vblk_chain(0, 0);
    q->desc[2].flags = D_WRITE | D_NEXT;                  /* the status descriptor chains back to the head */
    q->desc[2].next = 0;
    q->avail.ring[q->avail.idx % VQ_SIZE] = 0;
    q->avail.idx = (uint16_t)(q->avail.idx + 1);          /* <- the device gets a loop */
    regs[VIRTIO_QUEUE_NOTIFY] = 0;
    vblk_teardown();
    return 0;
}
