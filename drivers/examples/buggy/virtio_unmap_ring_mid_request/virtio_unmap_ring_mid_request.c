/* BUG: the driver frees the rings while the device still has a request in flight.  One request is served
 * first, so the device has been using the rings (through its cached, validated views of them) when the
 * memory goes: the device's next ring access must still be refused and reported. */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_init();
    if (err) return err;
    vblk_chain(0, 0);
    vblk_offer(0);
    vblk_wait_used(1);
    vblk_chain(3, 1);
    vblk_offer(3);
    hwsim_dma_free_coherent("blk0", sizeof(struct vblk), (void *)q, q_iova);  /* <- request 2 in flight */
    hwsim_irq_wait("blk0");
    hwsim_dma_unmap_single("blk0", data_iova, sizeof data, HWSIM_DMA_FROM_DEVICE);
    return 0;
}
