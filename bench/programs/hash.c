/* FNV-1a keys into an open-addressing hash table: 1024 inserts and lookups per round, n rounds. */
#include "bench.h"
#define SLOTS 4096
static u32 keys[SLOTS], vals[SLOTS];

static u32 fnv1a(u32 x) {
    u32 h = 2166136261u;
    for (int i = 0; i < 4; i++) { h ^= (x >> (8 * i)) & 0xFF; h *= 16777619u; }
    return h;
}

u32 bench(u32 n) {
    u32 found = 0;
    for (u32 r = 0; r < n; r++) {
        for (int i = 0; i < SLOTS; i++) keys[i] = 0;
        for (u32 k = 1; k <= 1024; k++) {
            u32 s = fnv1a(k * 2654435761u + r) & (SLOTS - 1);
            while (keys[s]) s = (s + 1) & (SLOTS - 1);
            keys[s] = k; vals[s] = k ^ r;
        }
        for (u32 k = 1; k <= 1024; k++) {
            u32 s = fnv1a(k * 2654435761u + r) & (SLOTS - 1);
            while (keys[s] != k) s = (s + 1) & (SLOTS - 1);
            found += vals[s];
        }
    }
    return found;
}
