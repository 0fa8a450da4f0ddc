/* BUG: the driver accepts a feature the device does not offer (VIRTIO_F_INDIRECT_DESC, bit 28). */
#include <virtio_blk_example.h>
int probe(void) {
    regs = hwsim_mmio_map("blk0");
    regs[VIRTIO_STATUS] = 0;
    regs[VIRTIO_STATUS] = S_ACK;
    regs[VIRTIO_STATUS] = S_ACK | S_DRIVER;
    regs[VIRTIO_DRV_FEATURES_SEL] = 0;
    regs[VIRTIO_DRV_FEATURES] = 1u << 28;                 /* never offered: DeviceFeatures was not read */
    regs[VIRTIO_DRV_FEATURES_SEL] = 1;
    regs[VIRTIO_DRV_FEATURES] = F_VERSION_1_HI;
    regs[VIRTIO_STATUS] = S_ACK | S_DRIVER | S_FEATURES_OK;  /* <- the device refuses it */
    int ok = regs[VIRTIO_STATUS] & S_FEATURES_OK;
    regs[VIRTIO_STATUS] = 0;
    return ok ? 0 : -5;
}
