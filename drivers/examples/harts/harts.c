/* Native firmware for a board with several harts ([board] harts = N; hwsim build --native).
 *
 * probe() runs on hart 0 and hart_main(hartid) on each other hart (hwsim/driver/firmware.py);
 * hwsim writes the board's number of harts into hwsim_harts when it loads the firmware.  Every
 * hart adds 1 to two shared counters ROUNDS times: `plain` with a load, an add and a store (a data
 * race: an update is lost when another hart's turn falls between them) and `atomic` with
 * amoadd.w.  Hart 0 waits for the others, logs both counts and fails (-EIO) when the race lost
 * plain updates.  The interleaving depends only on the hart seed (hwsim run --hart-seed S), and
 * hwsim run --explore N finds a seed that loses some (then --seed S replays it).
 */
#include "hwsim.h"

#define ROUNDS 200

volatile uint32_t hwsim_harts = 1; /* written by the loader */
volatile uint32_t plain;
uint32_t atomic;
uint32_t finished;

static void count(void) {
    for (int i = 0; i < ROUNDS; i++) {
        plain = plain + 1;
        __atomic_fetch_add(&atomic, 1, __ATOMIC_SEQ_CST);
    }
}

__attribute__((noinline, used)) int hart_main(int hartid) {
    (void)hartid;
    count();
    __atomic_fetch_add(&finished, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void put_number(char *out, int *at, uint32_t value) {
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    while (n) out[(*at)++] = digits[--n];
}

int probe(void) {
    count();
    while (__atomic_load_n(&finished, __ATOMIC_SEQ_CST) != hwsim_harts - 1) {
    }
    char line[64];
    int at = 0;
    const char *head = "plain ";
    for (int i = 0; head[i]; i++) line[at++] = head[i];
    put_number(line, &at, plain);
    const char *rest = ", atomic ";
    for (int i = 0; rest[i]; i++) line[at++] = rest[i];
    put_number(line, &at, __atomic_load_n(&atomic, __ATOMIC_SEQ_CST));
    line[at] = 0;
    hwsim_log(line);
    return plain == __atomic_load_n(&atomic, __ATOMIC_SEQ_CST) ? 0 : -5; /* -EIO: updates were lost */
}
