/* A single-producer/single-consumer ring of 256 descriptors, as a driver's RX queue: n rounds. */
#include "bench.h"
struct desc { u32 addr; u16 len; u16 flags; };
static struct desc ring[256];
static volatile u32 head, tail;

static int push(u32 addr, u16 len) {
    u32 h = head;
    if (((h + 1) & 255) == (tail & 255)) return 0;
    ring[h & 255] = (struct desc){addr, len, 1};
    head = (h + 1) & 255;
    return 1;
}

static int pop(struct desc *out) {
    u32 t = tail;
    if (t == head) return 0;
    *out = ring[t & 255];
    tail = (t + 1) & 255;
    return 1;
}

u32 bench(u32 n) {
    u32 sum = 0, seed = 12345;
    struct desc d;
    for (u32 r = 0; r < n; r++) {
        for (int i = 0; i < 200; i++) {
            seed = seed * 1103515245u + 12345u;
            push(seed, (u16)(seed >> 16));
        }
        while (pop(&d)) sum += d.addr ^ d.len ^ d.flags;
    }
    return sum;
}
