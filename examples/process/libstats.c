/* libstats: statistics over libvec's vectors.  Needs libvec (dylink.0 NEEDED), calls back
 * into the main module (main_hook), and keeps pointers in static data that the loader
 * relocates: to its own functions, to libvec's functions and to libvec's data. */
extern int vec_new(unsigned cap);
extern int vec_push(int h, int x);
extern int vec_free(int h);
extern void vec_map(int h, int (*fn)(int));
extern int vec_fold(int h, int (*fn)(int, int), int acc);
extern int vec_live;
extern int main_hook(int x); /* defined by the main module, which is loaded after this library */

static int square(int x) { return x * x; }
static int negate(int x) { return -x; }
static int add(int a, int b) { return a + b; }

/* Data relocations (__wasm_apply_data_relocs). */
int (*stats_ops[2])(int) = {square, negate};      /* this module's functions: __table_base + i */
int (*stats_fold_fn)(int, int) = add;
int *stats_live = &vec_live;                      /* another module's data: GOT.mem.vec_live */
int (*stats_push)(int, int) = vec_push;           /* another module's function: GOT.func.vec_push */

/* An over-aligned array: the loader must place this module's data at a 16 KiB boundary. */
_Alignas(16384) int stats_aligned[4] = {1, 2, 3, 4};

/* Sum of op(i) for i = 1..n, through a vector: op 0 squares, op 1 negates. */
int stats_sum_of(int n, int op) {
    int h = vec_new((unsigned)n);
    if (h < 0) return -1;
    for (int i = 1; i <= n; i++) stats_push(h, i);
    vec_map(h, stats_ops[op]);
    int sum = vec_fold(h, stats_fold_fn, 0);
    vec_free(h);
    return sum;
}

int stats_live_now(void) { return *stats_live; }
int stats_hooked(int x) { return main_hook(x) + 1; }
void *stats_push_pointer(void) { return (void *)stats_push; }
void *stats_aligned_address(void) { return stats_aligned; }
int stats_peek(const int *p) { return *p; }
