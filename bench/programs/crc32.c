/* CRC-32 (IEEE, table-driven) over a 4 KiB buffer, n times. */
#include "bench.h"
static u32 table[256];
static u8 data[4096];

u32 bench(u32 n) {
    for (u32 i = 0; i < 256; i++) {
        u32 c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    for (u32 i = 0; i < sizeof data; i++) data[i] = (u8)(i * 31 + 7);
    u32 crc = 0;
    for (u32 r = 0; r < n; r++) {
        u32 c = ~crc;
        for (u32 i = 0; i < sizeof data; i++) c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
        crc = ~c;
    }
    return crc;
}
