/* memset and memcpy for the native builds (-nostdlib has none); the wasm builds use memory.fill/copy. */
#ifndef __wasm__
typedef unsigned long usize;
/* The empty asm keeps clang from turning these loops back into calls of themselves. */
void *memset(void *d, int c, usize n) {
    u8 *p = d;
    unsigned long long w = (u8)c * 0x0101010101010101ull;
    for (; n && ((usize)p & 7); n--) *p++ = (u8)c;
    for (; n >= 8; n -= 8, p += 8) { *(unsigned long long *)p = w; __asm__ volatile("" ::: "memory"); }
    for (; n; n--) *p++ = (u8)c;
    return d;
}
void *memcpy(void *d, const void *s, usize n) {
    u8 *p = d;
    const u8 *q = s;
    for (; n; n--) { *p++ = *q++; __asm__ volatile("" ::: "memory"); }
    return d;
}
#endif
