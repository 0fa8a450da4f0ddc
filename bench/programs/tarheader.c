/* Search tar headers for file names (after Embench-IoT's tarfind): 35 zeroed 257-byte headers with generated
   names, then 5 strcmp-style searches, n times.  Most of its time is memset (memory.fill) and byte compares. */
#include "bench.h"
#include "libc.h"
#define FILES 35
typedef struct {
    char name[100], mode[8], uid[8], gid[8], size[12], mtime[12], checksum[8], is_link, linked[100];
} header_t;
static header_t headers[FILES];

u32 bench(u32 n) {
    u32 seed = 1, found = 0;
    for (u32 r = 0; r < n; r++) {
        for (int i = 0; i < FILES; i++) {
            header_t *h = &headers[i];
            __builtin_memset(h, 0, sizeof *h);
            int len = 5 + (i * 7 + (int)r) % 94;
            h->is_link = '0';
            for (int p = 0; p < len; p++) { seed = seed * 1103515245u + 12345u; h->name[p] = (char)('A' + (seed >> 16) % 26); }
            h->size[0] = '0';
        }
        for (int s = 0; s < 5; s++) {
            const char *want = headers[(s + FILES / 2) % FILES].name;
            for (int i = 0; i < FILES; i++) {
                const char *a = headers[i].name, *b = want;
                while (*a && *b && *a == *b) a++, b++;
                if (!*a && !*b) { found += (u32)i; break; }
            }
        }
    }
    return found;
}
