/* BUG: the driver writes its features before setting DRIVER. */
#include <virtio_blk_example.h>
int probe(void) {
    regs = hwsim_mmio_map("blk0");
    regs[VIRTIO_STATUS] = 0;
    regs[VIRTIO_STATUS] = S_ACK;
    regs[VIRTIO_DRV_FEATURES_SEL] = 1;
    regs[VIRTIO_DRV_FEATURES] = F_VERSION_1_HI;           /* <- DRIVER is not set yet */
    regs[VIRTIO_STATUS] = S_ACK | S_DRIVER;
    regs[VIRTIO_STATUS] = 0;
    return 0;
}
