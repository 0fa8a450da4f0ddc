/* Correct, with wide stores to the available ring: one 64-bit store writes its flags, idx and entries 0
 * and 1 at once (idx 0 -> 1, entry 0 the head 3); a 16-bit store writes entry 1 (head 0) and a 32-bit
 * store of flags and idx publishes it.  Nothing is stale (entry 0 is written by the store that moves
 * the idx), and the first head is the one that store writes, not what memory held before it (0): taking
 * that would leave chain 0 the device's, and the second publish would be reported as a double one. */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_init();
    if (err) return err;
    vblk_chain(3, 0);
    *(volatile uint64_t *)&q->avail = (uint64_t)1 << 16 | (uint64_t)3 << 32;  /* flags 0, idx 1, ring 3, 0 */
    regs[VIRTIO_QUEUE_NOTIFY] = 0;
    if (!vblk_wait_used(1)) err = -110;
    vblk_chain(0, 1);
    q->avail.ring[1] = 0;
    *(volatile uint32_t *)&q->avail = 2u << 16;  /* flags 0, idx 2 */
    regs[VIRTIO_QUEUE_NOTIFY] = 0;
    if (!err && !vblk_wait_used(2)) err = -110;
    if (!err && (q->status[0] != 0 || q->status[1] != 0)) err = -5;
    vblk_teardown();
    return err;
}
