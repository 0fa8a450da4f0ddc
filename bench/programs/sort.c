/* Quicksort of 2048 pseudo-random integers, n times. */
#include "bench.h"
static u32 a[2048];

static void qsort_u32(u32 *v, int lo, int hi) {
    while (lo < hi) {
        u32 p = v[(lo + hi) >> 1];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] < p) i++;
            while (v[j] > p) j--;
            if (i <= j) { u32 t = v[i]; v[i] = v[j]; v[j] = t; i++; j--; }
        }
        if (j - lo < hi - i) { qsort_u32(v, lo, j); lo = i; } else { qsort_u32(v, i, hi); hi = j; }
    }
}

u32 bench(u32 n) {
    u32 seed = 1, check = 0;
    for (u32 r = 0; r < n; r++) {
        for (int i = 0; i < 2048; i++) { seed = seed * 1664525u + 1013904223u; a[i] = seed; }
        qsort_u32(a, 0, 2047);
        check += a[0] ^ a[1024] ^ a[2047];
    }
    return check;
}
