/* Periodic alarms from the board's Goldfish RTC, taken by an interrupt handler.
 *
 * probe() arms the first alarm, registers the handler and returns: the handler runs from hwsim's
 * idle loop as virtual time reaches each alarm.  busy() instead spins reading the time (each read
 * takes virtual time): the handler interrupts the loop between two instructions.  (The machine's
 * own timer, the CLINT, is a platform device that no driver is given; the RTC is a peripheral.) */
#include <hwsim.h>

enum {
    TIME_LOW = 0x00 / 4, TIME_HIGH = 0x04 / 4, ALARM_LOW = 0x08 / 4, ALARM_HIGH = 0x0c / 4,
    IRQ_ENABLED = 0x10 / 4, CLEAR_INTERRUPT = 0x1c / 4,
};
enum { PERIOD_NS = 100000, TICKS = 5 };

static volatile uint32_t *rtc;
static volatile unsigned ticks;
static uint64_t seen[TICKS];
static uint64_t start;

static uint64_t now_ns(void) {
    uint32_t lo = rtc[TIME_LOW];  /* latches TIME_HIGH */
    return (uint64_t)rtc[TIME_HIGH] << 32 | lo;
}

static void arm(uint64_t when) {
    rtc[ALARM_HIGH] = (uint32_t)(when >> 32);
    rtc[ALARM_LOW] = (uint32_t)when;  /* arms the alarm */
}

void hwsim_irq_handler(uint32_t cookie) {
    (void)cookie;
    seen[ticks] = now_ns();
    rtc[CLEAR_INTERRUPT] = 1;         /* lowers the line */
    ticks++;
    if (ticks < TICKS)
        arm(start + (uint64_t)(ticks + 1) * PERIOD_NS);
    else {
        rtc[IRQ_ENABLED] = 0;
        hwsim_free_irq("rtc0");
    }
}

int probe(void) {
    rtc = hwsim_mmio_map("rtc0");
    if (!rtc)
        return -19;                   /* -ENODEV: the RTC was not assigned to this driver */
    start = now_ns();
    rtc[IRQ_ENABLED] = 1;
    arm(start + PERIOD_NS);
    return hwsim_request_irq("rtc0", 0);
}

HWSIM_EXPORT("busy") int busy(void) {
    if (probe())
        return -1;
    while (ticks < TICKS)
        (void)now_ns();     /* busy: each MMIO read takes virtual time, the alarm fires in between */
    return (int)ticks;
}

/* How late the handler ran for alarm i, in ns (0: at the alarm). */
HWSIM_EXPORT("lateness") int lateness(int i) { return (int)(seen[i] - (start + (uint64_t)(i + 1) * PERIOD_NS)); }

HWSIM_EXPORT("count") int count(void) { return (int)ticks; }
