/* hwsim_process.h: page-granular memory for modules of an hwsim process (hwsim.process).
 *
 * A process is several position-independent modules (built with zig cc -fPIC,
 * see docs/processes.md) sharing one linear memory.  Its first page is never
 * accessible (a NULL dereference traps in every module); the rest is handed out
 * in 4 KiB pages by the process's allocator: module data, the stack, and what
 * modules ask for here.  Free pages are unmapped: touching one traps, and
 * unmapping gives the memory back to the machine at once.
 *
 * The functions return POSIX-like values, as the Linux system calls do:
 * hwsim_mmap a page-aligned address or a negative errno; hwsim_munmap and
 * hwsim_mprotect 0 or a negative errno.  Errors (each also recorded in
 * Process.errors with its reason; Process(trap_on_error=True) traps instead):
 *
 *   -HWSIM_EINVAL  length 0, an address that is not page-aligned, unknown or
 *                  PROT_EXEC protection bits, munmap of pages that mmap did
 *                  not give (a module's data, the stack, the first page)
 *   -HWSIM_ENOMEM  mmap: memory cannot grow enough; mprotect: a page in the
 *                  range is not mapped
 *
 * Lengths are rounded up to whole pages.  munmap may cover pages that are not
 * mapped (as POSIX).  mprotect works on any mapped page, module data included.
 */
#ifndef HWSIM_PROCESS_H
#define HWSIM_PROCESS_H

#define HWSIM_PAGE_SIZE 4096
#define HWSIM_PROT_NONE 0
#define HWSIM_PROT_READ 1
#define HWSIM_PROT_WRITE 2 /* read-write: linear memory has no write-only pages */
#define HWSIM_ENOMEM 12
#define HWSIM_EINVAL 22

#define HWSIM_PROCESS_IMPORT(name) __attribute__((import_module("hwsim:process"), import_name(name)))

/* A page-aligned address, or -errno. */
HWSIM_PROCESS_IMPORT("mmap") long hwsim_mmap(unsigned long length, int prot);
/* 0, or -errno. */
HWSIM_PROCESS_IMPORT("munmap") int hwsim_munmap(void *addr, unsigned long length);
/* 0, or -errno. */
HWSIM_PROCESS_IMPORT("mprotect") int hwsim_mprotect(void *addr, unsigned long length, int prot);

/* Whether a value hwsim_mmap returned is an error (as Linux's IS_ERR_VALUE). */
#define HWSIM_MMAP_FAILED(r) ((unsigned long)(r) > (unsigned long)-4096)

#endif
