/* BUG: the driver initialises the device without resetting it first (it may hold another driver's state). */
#include <virtio_blk_example.h>
int probe(void) {
    regs = hwsim_mmio_map("blk0");
    regs[VIRTIO_STATUS] = S_ACK;                          /* <- no regs[VIRTIO_STATUS] = 0 before */
    regs[VIRTIO_STATUS] = S_ACK | S_DRIVER;
    regs[VIRTIO_STATUS] = 0;
    return 0;
}
