/* The attack on the virtio checker's store watches: the driver changes a descriptor of a chain the device
 * owns (as drivers/examples/buggy/virtio_desc_rewrite) with memcpy of a size the compiler cannot see, a wasm
 * memory.copy, which the host carries out: no guest store, shown to the store watches by the host. */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_init();
    if (err) return err;
    vblk_chain(0, 0);
    vblk_offer(0);
    volatile unsigned n = sizeof(uint32_t);
    uint32_t len = 256;
    __builtin_memcpy((void *)&q->desc[1].len, &len, n);  /* <- the device may be reading it now */
    vblk_wait_used(1);
    vblk_teardown();
    return 0;
}
