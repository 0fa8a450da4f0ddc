/* A ring shared by an interrupt handler and the main loop: safe on one hart, a race across two.
 *
 * The Goldfish RTC's alarm fires every PERIOD_NS; the handler stores the time in the ring at `head`
 * and adds 1 to `count`, the entries waiting.  probe()'s loop on hart 0 takes an entry from `tail`
 * and subtracts 1 from `count` with a load, some work and a store, with the RTC's interrupt disabled
 * around it (IRQ_ENABLED = 0).  That keeps the handler out when it runs on the same hart, as it
 * does by default (hwsim runs it on hart 0 between two turns: every seed passes).  With the handler
 * on another hart (hwsim run --irq-hart 1) a handler already running is not stopped by disabling
 * the line: its `count + 1` can fall between the loop's load and store and is lost, and the loop
 * starves with entries in the ring (-ETIMEDOUT), or `count` ends wrong (-EIO).
 * hwsim run --explore N --irq-hart 1 finds such a seed.  The entry point `fixed`
 * (hwsim run ... --invoke fixed) updates `count` with amoadd.w on both sides: every seed passes.
 */
#include <hwsim.h>

enum {
    TIME_LOW = 0x00 / 4, TIME_HIGH = 0x04 / 4, ALARM_LOW = 0x08 / 4, ALARM_HIGH = 0x0c / 4,
    IRQ_ENABLED = 0x10 / 4, CLEAR_INTERRUPT = 0x1c / 4,
};
enum { PERIOD_NS = 20000, EVENTS = 40, RING = 64, WORK = 100 };

static volatile uint32_t *rtc;
static volatile uint64_t ring[RING];
static volatile uint32_t head, produced;
static volatile uint32_t count; /* entries in the ring: the handler adds, the loop takes */
static uint64_t start;
static int atomic_count; /* set by fixed() */

static uint64_t now_ns(void) {
    uint32_t lo = rtc[TIME_LOW]; /* latches TIME_HIGH */
    return (uint64_t)rtc[TIME_HIGH] << 32 | lo;
}

static void arm(uint64_t when) {
    rtc[ALARM_HIGH] = (uint32_t)(when >> 32);
    rtc[ALARM_LOW] = (uint32_t)when; /* arms the alarm */
}

void hwsim_irq_handler(uint32_t cookie) {
    (void)cookie;
    rtc[CLEAR_INTERRUPT] = 1; /* lowers the line */
    ring[head % RING] = now_ns();
    head = head + 1;
    if (atomic_count)
        __atomic_fetch_add(&count, 1, __ATOMIC_SEQ_CST);
    else
        count = count + 1;
    produced = produced + 1;
    if (produced < EVENTS)
        arm(start + (uint64_t)(produced + 1) * PERIOD_NS);
    else
        rtc[IRQ_ENABLED] = 0;
}

/* Take the entry at tail: the time it holds, after some work (virtual time passes). */
static uint64_t take(uint32_t tail) {
    uint64_t when = ring[tail % RING];
    for (int i = 0; i < WORK; i++)
        (void)now_ns();
    return when;
}

int probe(void) {
    rtc = hwsim_mmio_map("rtc0");
    if (!rtc)
        return -19; /* -ENODEV */
    start = now_ns();
    rtc[IRQ_ENABLED] = 1;
    arm(start + PERIOD_NS);
    int err = hwsim_request_irq("rtc0", 0);
    if (err)
        return err;
    uint64_t last = 0;
    uint32_t tail = 0;
    uint64_t deadline = start + (uint64_t)EVENTS * 4 * PERIOD_NS;
    while (tail < EVENTS) {
        if (!count) {
            if (now_ns() > deadline)
                break;
            continue;
        }
        uint64_t when;
        if (atomic_count) {
            when = take(tail);
            __atomic_fetch_sub(&count, 1, __ATOMIC_SEQ_CST);
        } else {
            rtc[IRQ_ENABLED] = 0; /* no handler from here (on this hart) */
            uint32_t left = count;
            when = take(tail);
            count = left - 1;
            rtc[IRQ_ENABLED] = produced < EVENTS;
        }
        tail++;
        if (when < last)
            return -71; /* -EPROTO: out of order */
        last = when;
    }
    hwsim_free_irq("rtc0");
    if (tail < EVENTS)
        return -110; /* -ETIMEDOUT: entries in the ring that count lost */
    return count == 0 ? 0 : -5; /* -EIO: count lost a take */
}

HWSIM_EXPORT("fixed") int fixed(void) {
    atomic_count = 1;
    return probe();
}
