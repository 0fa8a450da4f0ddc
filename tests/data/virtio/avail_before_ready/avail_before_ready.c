/* Correct: the request's chain and its available-ring entry are written before QueueReady (the rings
 * are the driver's memory; only publishing, the idx, must wait), then published after DRIVER_OK. */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_negotiate();
    if (err) return err;
    q = hwsim_dma_alloc_coherent("blk0", sizeof(struct vblk), &q_iova);
    data_iova = hwsim_dma_map_single("blk0", data, sizeof data, HWSIM_DMA_FROM_DEVICE);
    vblk_chain(3, 0);
    q->avail.ring[0] = 3;                   /* written before the queue is ready */
    regs[VIRTIO_QUEUE_SEL] = 0;
    regs[VIRTIO_QUEUE_NUM] = VQ_SIZE;
    hwsim_iova_t d = iova_of(q->desc), a = iova_of(&q->avail), u = iova_of(&q->used);
    regs[VIRTIO_DESC_LO] = (uint32_t)d; regs[VIRTIO_DESC_HI] = (uint32_t)(d >> 32);
    regs[VIRTIO_DRIVER_LO] = (uint32_t)a; regs[VIRTIO_DRIVER_HI] = (uint32_t)(a >> 32);
    regs[VIRTIO_DEVICE_LO] = (uint32_t)u; regs[VIRTIO_DEVICE_HI] = (uint32_t)(u >> 32);
    regs[VIRTIO_QUEUE_READY] = 1;
    regs[VIRTIO_STATUS] = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
    q->avail.idx = 1;                       /* published after */
    regs[VIRTIO_QUEUE_NOTIFY] = 0;
    if (!vblk_wait_used(1)) err = -110;
    else if (q->status[0] != 0) err = -5;
    vblk_teardown();
    return err;
}
