/* Count occurrences of 8 patterns in an 8 KiB generated text (naive search with a first-byte skip), n times. */
#include "bench.h"
static char text[8192];
static const char *pats[] = {"abac", "cabba", "dead", "bbbb", "acdc", "cafe", "badcab", "aaa"};

static u32 count(const char *p) {
    u32 m = 0, c = 0;
    while (p[m]) m++;
    for (u32 i = 0; i + m <= sizeof text; i++) {
        if (text[i] != p[0]) continue;
        u32 j = 1;
        while (j < m && text[i + j] == p[j]) j++;
        if (j == m) c++;
    }
    return c;
}

u32 bench(u32 n) {
    u32 seed = 7, total = 0;
    for (u32 i = 0; i < sizeof text; i++) { seed = seed * 1103515245u + 12345u; text[i] = "abcdef"[(seed >> 16) % 6]; }
    for (u32 r = 0; r < n; r++)
        for (int k = 0; k < 8; k++) total += count(pats[k]);
    return total;
}
