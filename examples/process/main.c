/* The main module of the demo: a position-independent executable (-pie) that needs libstats
 * and libvec.  Its static function `triple` crosses into libvec as a function pointer. */
extern int stats_sum_of(int n, int op);
extern int stats_hooked(int x);
extern int stats_live_now(void);
extern void *stats_push_pointer(void);
extern int vec_new(unsigned cap);
extern int vec_push(int h, int x);
extern int vec_free(int h);
extern void vec_map(int h, int (*fn)(int));
extern int vec_fold(int h, int (*fn)(int, int), int acc);
extern int vec_ready;

static int triple(int x) { return 3 * x; }
static int add(int a, int b) { return a + b; }

int main_hook_calls = 0; /* data of the main module */
int main_hook(int x) {
    main_hook_calls++;
    return 1000 + x;
}

/* 3 * (1 + ... + n), with libvec applying main's own function pointers. */
int main_triple_sum(int n) {
    int h = vec_new((unsigned)n);
    for (int i = 1; i <= n; i++) vec_push(h, i);
    vec_map(h, triple);
    int sum = vec_fold(h, add, 0);
    vec_free(h);
    return sum;
}

int main_sum_of_squares(int n) { return stats_sum_of(n, 0); }
int main_hooked(int x) { return stats_hooked(x); }
int main_ready(void) { return vec_ready; }
int main_live(void) { return stats_live_now(); }

/* Function pointers compare equal in every module: &vec_push here, and libstats' copy. */
int main_same_pointer(void) { return stats_push_pointer() == (void *)vec_push; }

int main_peek(const int *p) { return *p; }

/* Uses about 1 KiB of the shared stack per level. */
__attribute__((noinline)) int main_recurse(int n) {
    volatile char frame[1024];
    for (int i = 0; i < 1024; i++) frame[i] = (char)(i + n); /* touches every byte of the frame */
    return n ? main_recurse(n - 1) + frame[n & 1023] - (char)(n & 1023) : 0;
}
