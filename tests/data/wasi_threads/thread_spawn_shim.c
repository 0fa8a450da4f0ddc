/* __wasi_thread_spawn for zig's wasi-libc, which declares it only for the wasm32-wasi-threads target:
 * the wasi-threads import itself (wasi-libc's wasi/api.h spells it the same way). */
#include <stdint.h>

int32_t __imported_wasi_thread_spawn(int32_t start_arg)
    __attribute__((import_module("wasi"), import_name("thread-spawn")));

int32_t __wasi_thread_spawn(void *start_arg) {
    return __imported_wasi_thread_spawn((int32_t)(intptr_t)start_arg);
}
