/* Console echo for a 16550A UART, interrupt driven: every received byte is sent back.
 *
 * Two ways to take the interrupt: probe() waits for it in a loop (hwsim_irq_wait);
 * probe_irq() is written like a kernel driver: it sets the UART up, registers an
 * interrupt handler and returns, and the handler echoes whatever arrives. */
#include <hwsim.h>

enum { RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5 };
enum { IER_RDA = 0x01, LSR_DR = 0x01, LSR_THRE = 0x20, FCR_ENABLE = 0x01, FCR_CLEAR = 0x06, LCR_8N1 = 0x03,
       LCR_DLAB = 0x80, MCR_OUT2 = 0x08 };
enum { UART_CLOCK = 3686400, BAUD = 115200 };  /* the board's clock_hz; a byte then takes 86.9 us */

static volatile uint8_t *uart;
static unsigned echoed;

static void put(uint8_t c) {
    while (!(uart[LSR] & LSR_THRE))
        ;
    uart[THR] = c;
}

static void echo_pending(void) {
    while (uart[LSR] & LSR_DR) {
        put(uart[RBR]);
        echoed++;
    }
}

static void setup(void) {
    uart = hwsim_mmio_map("uart0");
    uart[LCR] = LCR_DLAB;          /* the divisor latch: 3686400 / (16 x 2) = 115200 baud */
    uart[DLL] = (uint8_t)(UART_CLOCK / (16 * BAUD));
    uart[DLM] = 0;
    uart[LCR] = LCR_8N1;
    uart[FCR] = FCR_ENABLE | FCR_CLEAR;
    uart[MCR] = MCR_OUT2;          /* the 16550's OUT2 gates its interrupt output */
    uart[IER] = IER_RDA;
}

int probe(void) {
    setup();
    hwsim_log("uart16550: echoing console input");
    while (hwsim_irq_wait("uart0"))
        echo_pending();
    uart[IER] = 0;
    return (int)echoed;
}

/* Reading RBR until LSR.DR is clear lowers the receive interrupt. */
void hwsim_irq_handler(uint32_t cookie) {
    (void)cookie;
    echo_pending();
}

HWSIM_EXPORT("probe_irq") int probe_irq(void) {
    setup();
    hwsim_log("uart16550: echoing console input from the interrupt handler");
    return hwsim_request_irq("uart0", 0);
}

/* How many bytes were echoed so far (for tests of probe_irq). */
HWSIM_EXPORT("echoed") unsigned echoed_count(void) { return echoed; }
