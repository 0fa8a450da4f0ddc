/* alloc: a memory-hungry allocator workload (tens of MiB of linear memory, grown by malloc). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCKS 512

int main(int argc, char **argv) {
    size_t total = 0;
    uint8_t *blocks[BLOCKS];
    size_t sizes[BLOCKS];
    uint32_t seed = 12345;
    for (int i = 0; i < BLOCKS; i++) {
        seed = seed * 1103515245u + 12345u;
        sizes[i] = 4096 + (seed >> 8) % (96 * 1024);
        blocks[i] = malloc(sizes[i]);
        if (!blocks[i]) { printf("malloc failed at %d\n", i); return 1; }
        memset(blocks[i], i & 0xff, sizes[i]);
        total += sizes[i];
    }
    printf("allocated %zu bytes in %d blocks\n", total, BLOCKS);
    for (int i = 0; i < BLOCKS; i += 2) { free(blocks[i]); blocks[i] = NULL; }
    for (int i = 1; i < BLOCKS; i += 2) {
        blocks[i] = realloc(blocks[i], sizes[i] * 2);
        memset(blocks[i] + sizes[i], 0x5a, sizes[i]);
    }
    uint32_t sum = 0;
    for (int i = 1; i < BLOCKS; i += 2)
        for (size_t j = 0; j < sizes[i] * 2; j += 64) sum = sum * 31 + blocks[i][j];
    printf("checksum %08x\n", sum);
    void *big = malloc(32u << 20);
    printf("32 MiB block: %s\n", big ? "ok" : "failed");
    if (big) memset(big, 1, 32u << 20);
    volatile uint8_t *huge = malloc(1u << 30);
    printf("1 GiB block: %s\n", huge ? "ok" : "failed");
    if (huge) {
        huge[(1u << 30) - 1] = 7;  /* the last page only: the rest is never touched */
        printf("last byte %d\n", huge[(1u << 30) - 1]);
    }
    return (int)(sum & 0x7f);
}
