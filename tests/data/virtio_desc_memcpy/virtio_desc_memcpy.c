/* The attack on the virtio checker's store watches: the driver changes a descriptor of a chain the device
 * owns (as drivers/examples/buggy/virtio_desc_rewrite) with memcpy of a size the compiler cannot see, a wasm
 * memory.copy, which the host carries out: no guest store. */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_init();
    if (err) return err;
    vblk_chain(0, 0);
    q->avail.ring[q->avail.idx % VQ_SIZE] = 0;
    q->avail.idx = (uint16_t)(q->avail.idx + 1);
    regs[VIRTIO_QUEUE_NOTIFY] = 0;
    volatile unsigned n = sizeof(uint32_t);
    uint32_t len = 256;
    __builtin_memcpy((void *)&q->desc[1].len, &len, n);  /* <- the device may be reading it now */
    vblk_wait_used(1);
    vblk_teardown();
    return 0;
}
