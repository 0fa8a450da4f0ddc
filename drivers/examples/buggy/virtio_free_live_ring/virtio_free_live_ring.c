/* BUG: the driver frees the rings without resetting the device, which may still use them. */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_init();
    if (err) return err;
    vblk_chain(0, 0);
    q->avail.ring[q->avail.idx % VQ_SIZE] = 0;
    q->avail.idx = (uint16_t)(q->avail.idx + 1);
    regs[VIRTIO_QUEUE_NOTIFY] = 0;
    vblk_wait_used(1);
    hwsim_dma_unmap_single("blk0", data_iova, sizeof data, HWSIM_DMA_FROM_DEVICE);
    hwsim_dma_free_coherent("blk0", sizeof(struct vblk), (void *)q, q_iova);  /* <- no reset before */
    return 0;
}
