/* The fixed drivers/examples/harts: every hart adds 1 to one shared counter ROUNDS times with
 * amoadd.w only, so no interleaving loses an update (hwsim run --explore N --schedule pct passes).
 * probe() runs on hart 0 and hart_main(hartid) on each other hart; hart 0 waits for the others and
 * fails (-EIO) unless the count is ROUNDS times the number of harts.
 */
#include "hwsim.h"

#define ROUNDS 200

volatile uint32_t hwsim_harts = 1; /* written by the loader */
uint32_t counter;
uint32_t finished;

static void count(void) {
    for (int i = 0; i < ROUNDS; i++) __atomic_fetch_add(&counter, 1, __ATOMIC_SEQ_CST);
}

__attribute__((noinline, used)) int hart_main(int hartid) {
    (void)hartid;
    count();
    __atomic_fetch_add(&finished, 1, __ATOMIC_SEQ_CST);
    return 0;
}

int probe(void) {
    count();
    while (__atomic_load_n(&finished, __ATOMIC_SEQ_CST) != hwsim_harts - 1) {
    }
    return __atomic_load_n(&counter, __ATOMIC_SEQ_CST) == ROUNDS * hwsim_harts ? 0 : -5; /* -EIO: lost */
}
