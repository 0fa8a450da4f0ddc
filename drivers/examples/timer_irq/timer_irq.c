/* Periodic timer interrupts from the board's CLINT-like timer, taken by an interrupt handler.
 *
 * probe() programs the first deadline, registers the handler and returns: the handler runs
 * from hwsim's idle loop as virtual time reaches each deadline.  busy() instead spins on mtime
 * (each read takes virtual time): the handler interrupts the loop between two instructions. */
#include <hwsim.h>

enum { MTIMECMP_LO = 0x4000 / 4, MTIMECMP_HI = 0x4004 / 4, MTIME_LO = 0xbff8 / 4, MTIME_HI = 0xbffc / 4 };
enum { PERIOD = 1000, TICKS = 5 };

static volatile uint32_t *clint;
static volatile unsigned ticks;
static uint64_t seen[TICKS];
static uint32_t start;

static uint64_t mtime(void) {
    uint32_t hi, lo;
    do {
        hi = clint[MTIME_HI];
        lo = clint[MTIME_LO];
    } while (hi != clint[MTIME_HI]);
    return (uint64_t)hi << 32 | lo;
}

static void arm(uint64_t when) {
    clint[MTIMECMP_HI] = 0xffffffff;  /* no spurious match while the halves change */
    clint[MTIMECMP_LO] = (uint32_t)when;
    clint[MTIMECMP_HI] = (uint32_t)(when >> 32);
}

void hwsim_irq_handler(uint32_t cookie) {
    seen[ticks] = mtime();
    ticks++;
    if (ticks < TICKS)
        arm(cookie + (uint64_t)ticks * PERIOD + PERIOD);
    else {
        clint[MTIMECMP_HI] = 0xffffffff;  /* lowers the line */
        hwsim_free_irq("clint");
    }
}

int probe(void) {
    clint = hwsim_mmio_map("clint");
    start = (uint32_t)mtime();
    arm(start + PERIOD);
    return hwsim_request_irq("clint", start);
}

HWSIM_EXPORT("busy") int busy(void) {
    if (probe())
        return -1;
    while (ticks < TICKS)
        (void)mtime();      /* busy: each MMIO read takes virtual time, the timer fires in between */
    return (int)ticks;
}

/* How late the handler ran for deadline i, in ticks (0: at the deadline). */
HWSIM_EXPORT("lateness") int lateness(int i) { return (int)(seen[i] - (start + (uint64_t)(i + 1) * PERIOD)); }

HWSIM_EXPORT("count") int count(void) { return (int)ticks; }
