/* BUG: the driver sets DRIVER in the same write as ACKNOWLEDGE (ACKNOWLEDGE first, then DRIVER). */
#include <virtio_blk_example.h>
int probe(void) {
    regs = hwsim_mmio_map("blk0");
    regs[VIRTIO_STATUS] = 0;
    regs[VIRTIO_STATUS] = S_ACK | S_DRIVER;               /* <- two steps in one */
    regs[VIRTIO_STATUS] = 0;
    return 0;
}
