/* RACE: a line logger that stores each line synchronously, waiting for the disk, while the UART keeps
 * receiving.  The 16550A holds 16 bytes; at 115200 baud a byte arrives every 86.9 us, so the driver
 * has 16 character times (1.4 ms) to come back to the UART.  At nominal timing the virtio-blk request
 * that "stores" a line (a GET_ID stands in for the write) completes in 50 us and the bug hides; when a
 * request takes longer than the FIFO's slack, bytes arrive with the FIFO full and are lost (LSR.OE),
 * which hwsim reports as a receive overrun.
 * Fix: drain the UART from its interrupt handler into a ring buffer of the driver's own
 * (hwsim_request_irq), so reception never waits for the disk; or flow control (RTS/CTS). */
#include <virtio_blk_example.h>

enum { RBR = 0, DLL = 0, IER = 1, DLM = 1, FCR = 2, LCR = 3, LSR = 5 };
enum { IER_RDA = 0x01, LSR_DR = 0x01, FCR_ENABLE = 0x01, LCR_8N1 = 0x03, LCR_DLAB = 0x80 };

static volatile uint8_t *uart;
static uint16_t stored;  /* requests made available so far */

static int store_line(void) {
    vblk_chain(0, 0);
    q->avail.ring[stored % VQ_SIZE] = 0;
    stored++;
    q->avail.idx = stored;
    regs[VIRTIO_QUEUE_NOTIFY] = 0;
    if (!vblk_wait_used(stored)) return -110;  /* BUG: the UART is not read while the disk works */
    return q->status[0] == 0 ? 0 : -5;
}

int probe(void) {
    uart = hwsim_mmio_map("uart0");
    uart[LCR] = LCR_DLAB;
    uart[DLL] = 2;  /* 3686400 / (16 x 2) = 115200 baud */
    uart[DLM] = 0;
    uart[LCR] = LCR_8N1;
    uart[FCR] = FCR_ENABLE;
    uart[IER] = IER_RDA;
    int err = vblk_init();
    int lines = 0, len = 0;
    while (!err && hwsim_irq_wait("uart0")) {
        while (!err && uart[LSR] & LSR_DR) {
            uint8_t c = uart[RBR];
            len++;
            if (c == '\n') {
                err = store_line();
                lines++;
                len = 0;
            }
        }
    }
    uart[IER] = 0;
    if (!err) vblk_teardown();
    return err ? err : lines;
}
