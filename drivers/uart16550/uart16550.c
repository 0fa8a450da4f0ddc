/* Console echo for a 16550A UART, interrupt driven: every received byte is sent back. */
#include <hwsim.h>

enum { RBR = 0, THR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5 };
enum { IER_RDA = 0x01, LSR_DR = 0x01, LSR_THRE = 0x20, FCR_ENABLE = 0x01, FCR_CLEAR = 0x06, LCR_8N1 = 0x03,
       MCR_OUT2 = 0x08 };

static void put(volatile uint8_t *uart, uint8_t c) {
    while (!(uart[LSR] & LSR_THRE))
        ;
    uart[THR] = c;
}

int probe(void) {
    volatile uint8_t *uart = hwsim_mmio_map("uart0");
    uart[LCR] = LCR_8N1;
    uart[FCR] = FCR_ENABLE | FCR_CLEAR;
    uart[MCR] = MCR_OUT2;          /* the 16550's OUT2 gates its interrupt output */
    uart[IER] = IER_RDA;
    hwsim_log("uart16550: echoing console input");
    unsigned echoed = 0;
    while (hwsim_irq_wait("uart0")) {
        while (uart[LSR] & LSR_DR) {
            put(uart, uart[RBR]);
            echoed++;
        }
    }
    uart[IER] = 0;
    return (int)echoed;
}
