/* BUG: a NULL pointer dereference.  hwsim keeps the first page of a driver's memory unmapped
 * (trap-on-null), so the load traps and the report names this line. */
#include <hwsim.h>
struct device { volatile uint32_t *regs; uint32_t irq; };
static struct device devices[1];
static struct device *find(const char *name) {
    (void)name;
    return hwsim_now_ns() > 1000000000ull ? &devices[0] : 0;   /* not found yet: NULL */
}
int probe(void) {
    struct device *dev = find("uart0");
    return (int)dev->irq;                    /* dev is NULL */
}
