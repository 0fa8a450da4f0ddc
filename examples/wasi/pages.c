/* pages: a WASI program that allocates MIB mebibytes (default 4) and touches one byte in every
 * 64 KiB of them, so that its linear memory has pages mapped here and there.
 *
 *   python -m ziglang cc -target wasm32-wasi -O2 examples/wasi/pages.c -o pages.wasm
 *   hwsim wasm run --stats pages.wasm 4
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 4;
    volatile char *buf = malloc(mib << 20);
    if (!buf) {
        printf("cannot allocate %zu MiB\n", mib);
        return 1;
    }
    size_t touched = 0;
    for (size_t off = 0; off < (mib << 20); off += 1 << 16, touched++) buf[off] = 1;
    printf("buffer at linear address %p: %zu MiB, %zu pages touched\n", (void *)buf, mib, touched);
    return 0;
}
