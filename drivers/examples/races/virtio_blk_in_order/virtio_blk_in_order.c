/* RACE: two requests in flight, and the driver takes the first one back for the first one sent.  A
 * virtio device returns chains in the order it completes them, not the order they were made
 * available; the used ring says which chain came back (used.ring[i].id).  At nominal timing the two
 * equal requests complete in order and the bug hides; with varied latencies the second may finish
 * first, and the driver then reads the status of a request that is still the device's. */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_init();
    if (err) return err;
    vblk_chain(0, 0);                                     /* request A: descriptors 0-2, status slot 0 */
    vblk_chain(3, 1);                                     /* request B: descriptors 3-5, status slot 1 */
    q->avail.ring[0] = 0;
    q->avail.ring[1] = 3;
    q->avail.idx = 2;
    regs[VIRTIO_QUEUE_NOTIFY] = 0;
    if (!vblk_wait_used(1)) err = -110;
    else if (q->status[0] != 0) err = -5;                 /* <- "the first back is A": read used.ring[0].id */
    if (!vblk_wait_used(2) && !err) err = -110;
    vblk_teardown();
    return err;
}
