/* BUG: the driver sets DRIVER_OK before its queue is set up. */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_negotiate();
    if (err) return err;
    regs[VIRTIO_STATUS] = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
    vblk_queue();                                         /* <- QueueReady = 1 after DRIVER_OK */
    regs[VIRTIO_STATUS] = 0;
    hwsim_dma_free_coherent("blk0", sizeof(struct vblk), (void *)q, q_iova);
    return 0;
}
