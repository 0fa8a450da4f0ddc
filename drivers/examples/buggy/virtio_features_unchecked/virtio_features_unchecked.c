/* BUG: the driver sets FEATURES_OK and goes on without reading Status back to see the device kept it. */
#include <virtio_blk_example.h>
int probe(void) {
    regs = hwsim_mmio_map("blk0");
    regs[VIRTIO_STATUS] = 0;
    regs[VIRTIO_STATUS] = S_ACK;
    regs[VIRTIO_STATUS] = S_ACK | S_DRIVER;
    regs[VIRTIO_DRV_FEATURES_SEL] = 1;
    regs[VIRTIO_DRV_FEATURES] = F_VERSION_1_HI | F_ACCESS_PLATFORM_HI;
    regs[VIRTIO_STATUS] = S_ACK | S_DRIVER | S_FEATURES_OK;
    regs[VIRTIO_QUEUE_SEL] = 0;                           /* <- the next step, without the check */
    regs[VIRTIO_STATUS] = 0;
    return 0;
}
