/* libvec: vectors of ints, each in pages of its own from the process's page allocator.
 * The base library of the demo: libstats needs it (dylink.0 NEEDED), main calls it too. */
#include "hwsim_process.h"

#define MAX_VECS 8

struct vec {
    int *items;
    unsigned len, cap;
};

int vec_live = 0;   /* vectors not yet freed; libstats keeps a pointer to it (a data relocation) */
int vec_ready = 0;  /* set by the constructor */

static struct vec vecs[MAX_VECS];
static int *scratch;

/* Runs once the process has linked everything (__wasm_call_ctors). */
__attribute__((constructor)) static void vec_init(void) {
    long r = hwsim_mmap(HWSIM_PAGE_SIZE, HWSIM_PROT_READ | HWSIM_PROT_WRITE);
    scratch = HWSIM_MMAP_FAILED(r) ? 0 : (int *)r;
    vec_ready = scratch != 0;
}

int *vec_scratch(void) { return scratch; }

/* A new vector for `cap` items in fresh pages: its handle, or -1. */
int vec_new(unsigned cap) {
    for (int h = 0; h < MAX_VECS; h++) {
        if (vecs[h].items == 0) {
            long r = hwsim_mmap(cap * sizeof(int), HWSIM_PROT_READ | HWSIM_PROT_WRITE);
            if (HWSIM_MMAP_FAILED(r)) return -1;
            vecs[h] = (struct vec){(int *)r, 0, cap};
            vec_live++;
            return h;
        }
    }
    return -1;
}

int vec_push(int h, int x) {
    struct vec *v = &vecs[h];
    if (v->len == v->cap) return -1;
    v->items[v->len++] = x;
    return (int)v->len;
}

/* Push 0, 1, ..., n - 1: the number of items pushed. */
unsigned vec_fill(int h, unsigned n) {
    unsigned i = 0;
    while (i < n && vec_push(h, (int)i) > 0) i++;
    return i;
}

int *vec_data(int h) { return vecs[h].items; }
unsigned vec_len(int h) { return vecs[h].len; }

/* Give the vector's pages back (munmap): 0, or the negative errno. */
int vec_free(int h) {
    struct vec *v = &vecs[h];
    int r = hwsim_munmap(v->items, v->cap * sizeof(int));
    if (r == 0) {
        v->items = 0;
        vec_live--;
    }
    return r;
}

/* Make the vector read-only (mprotect): 0, or the negative errno. */
int vec_seal(int h) { return hwsim_mprotect(vecs[h].items, vecs[h].cap * sizeof(int), HWSIM_PROT_READ); }

/* Function pointers from any module, called through the shared table. */
void vec_map(int h, int (*fn)(int)) {
    struct vec *v = &vecs[h];
    for (unsigned i = 0; i < v->len; i++) v->items[i] = fn(v->items[i]);
}

int vec_fold(int h, int (*fn)(int, int), int acc) {
    struct vec *v = &vecs[h];
    for (unsigned i = 0; i < v->len; i++) acc = fn(acc, v->items[i]);
    return acc;
}

int vec_peek(const int *p) { return *p; }
