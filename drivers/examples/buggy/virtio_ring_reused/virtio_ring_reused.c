/* BUG: the driver maps its live ring memory again, as a data buffer for the device to write. */
#include <virtio_blk_example.h>
int probe(void) {
    int err = vblk_init();
    if (err) return err;
    hwsim_iova_t again = hwsim_dma_map_single("blk0", (void *)q, 64, HWSIM_DMA_FROM_DEVICE);  /* <- the rings */
    hwsim_dma_unmap_single("blk0", again, 64, HWSIM_DMA_FROM_DEVICE);
    vblk_teardown();
    return 0;
}
