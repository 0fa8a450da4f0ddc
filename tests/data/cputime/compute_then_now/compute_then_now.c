/* Computes for a while without touching a device, then asks the time: the host must see the time the
 * instructions took (hwsim charges them at checkpoints, and brings time up to date before host calls
 * and device accesses however long the stretch of fuel it gave the code). */
#include <hwsim.h>

static volatile uint32_t sink;

int probe(void) { return 0; }

/* Virtual nanoseconds that n iterations of a loop took, as hwsim_now_ns() sees them. */
HWSIM_EXPORT("compute") int compute(int n) {
    uint64_t t0 = hwsim_now_ns();
    for (int i = 0; i < n; i++) sink += (uint32_t)i;
    return (int)(hwsim_now_ns() - t0);
}

/* The same, but the time is read from the board's RTC over MMIO after the loop. */
HWSIM_EXPORT("compute_mmio") int compute_mmio(int n) {
    volatile uint32_t *rtc = hwsim_mmio_map("rtc0");
    if (!rtc) return -1;
    uint32_t t0 = rtc[0];
    for (int i = 0; i < n; i++) sink += (uint32_t)i;
    return (int)(rtc[0] - t0);
}

/* The loop, reading the RTC every 64 iterations (several device accesses per quantum of fuel). */
HWSIM_EXPORT("compute_touching") int compute_touching(int n) {
    volatile uint32_t *rtc = hwsim_mmio_map("rtc0");
    if (!rtc) return -1;
    uint32_t t0 = rtc[0], t = t0;
    for (int i = 0; i < n; i++) {
        sink += (uint32_t)i;
        if ((i & 63) == 0) t = rtc[0];
    }
    return (int)(t - t0);
}
