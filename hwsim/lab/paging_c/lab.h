/* The page-fault lab's interface (hwsim lab paging): what the kernel gives your handler.
 *
 * Your code runs on hwsim's emulated RISC-V CPU in S-mode, with the Sv39 page table of the workload
 * active; RAM is identity-mapped for the kernel (a 1 GiB kernel page), so the physical addresses below
 * are plain pointers.  The workload runs in U-mode over lab->npages virtual pages at lab->base, backed by
 * only lab->nframes physical frames.  hwsim's MMU sets A when a page is accessed and D when it is
 * written, in the PTE in memory, as hardware does.
 *
 * You write three functions (handler.c):
 *   lab_init(lab)                  once, before the workload starts (every PTE is 0: nothing resident)
 *   lab_page_fault(lab, va, store) a load or store of the workload found its page's PTE invalid (or
 *                                  without W for a store): make it valid and return; the access is retried
 *   lab_tick(lab)                  every LAB_TICK references of the workload (a timer, made exact): aging
 *                                  samples the A bits here; other policies may leave it empty
 * and the kernel below does the rest: lab_swap_in / lab_swap_out move a page between its frame and the
 * backing store (the "disk", counted), and sfence_vma must follow every change to a PTE the TLB may hold.
 */
#ifndef HWSIM_LAB_H
#define HWSIM_LAB_H

#include <stdint.h>

typedef uint64_t pte_t;

#define PAGE_SIZE 4096ul
#define PTE_V (1ul << 0)
#define PTE_R (1ul << 1)
#define PTE_W (1ul << 2)
#define PTE_X (1ul << 3)
#define PTE_U (1ul << 4)
#define PTE_G (1ul << 5)
#define PTE_A (1ul << 6) /* accessed: set by the MMU on any access */
#define PTE_D (1ul << 7) /* dirty: set by the MMU on a store */
#define PTE_PPN_SHIFT 10
#define LAB_NO_FRAME (~0ul)

struct lab {
    uint64_t base;    /* virtual address of page 0 */
    uint64_t npages;  /* pages the workload may touch: 0 .. npages-1 */
    uint64_t nframes; /* physical frames for them: 0 .. nframes-1 */
    uint64_t frame0;  /* physical address of frame 0; frame f is at frame0 + f * PAGE_SIZE */
    pte_t *ptes;      /* ptes[p] is the leaf PTE of page p (one Sv39 level-0 table) */
    uint64_t tick;    /* references between two calls of lab_tick (LAB_TICK) */
};

/* Yours (handler.c). */
void lab_init(const struct lab *lab);
void lab_page_fault(const struct lab *lab, uint64_t va, int is_store);
void lab_tick(const struct lab *lab);

/* Addresses and PTEs. */
static inline uint64_t lab_page_of(const struct lab *lab, uint64_t va) { return (va - lab->base) / PAGE_SIZE; }
static inline uint64_t lab_va_of(const struct lab *lab, uint64_t page) { return lab->base + page * PAGE_SIZE; }
static inline pte_t *lab_pte(const struct lab *lab, uint64_t page) { return &lab->ptes[page]; }
static inline uint64_t lab_frame_pa(const struct lab *lab, uint64_t frame) { return lab->frame0 + frame * PAGE_SIZE; }
/* The frame a valid PTE points at. */
static inline uint64_t lab_frame_of(const struct lab *lab, pte_t pte) {
    return (((pte >> PTE_PPN_SHIFT) << 12) - lab->frame0) / PAGE_SIZE;
}
/* A leaf PTE for frame f: V plus flags (the workload needs PTE_U | PTE_R | PTE_W). */
static inline pte_t lab_make_pte(const struct lab *lab, uint64_t frame, pte_t flags) {
    return ((lab_frame_pa(lab, frame) >> 12) << PTE_PPN_SHIFT) | flags | PTE_V;
}

/* The TLB: after changing a PTE the TLB may hold (clearing V, A or D, pointing it elsewhere). */
static inline void sfence_vma(uint64_t va) { __asm__ volatile("sfence.vma %0, zero" : : "r"(va) : "memory"); }
static inline void sfence_vma_all(void) { __asm__ volatile("sfence.vma zero, zero" : : : "memory"); }

/* The kernel's services (ecalls to hwsim, which counts them). */
enum { LAB_SVC_SWAP_IN = 1, LAB_SVC_SWAP_OUT, LAB_SVC_LOG };

static inline long lab__svc(long n, long a0, long a1) {
    register long r_a0 __asm__("a0") = a0;
    register long r_a1 __asm__("a1") = a1;
    register long r_a7 __asm__("a7") = n;
    __asm__ volatile("ecall" : "+r"(r_a0) : "r"(r_a1), "r"(r_a7) : "memory");
    return r_a0;
}
/* Read page `page` from the backing store into frame `frame` (a page-in). */
static inline void lab_swap_in(uint64_t page, uint64_t frame) { lab__svc(LAB_SVC_SWAP_IN, (long)page, (long)frame); }
/* Write frame `frame` back to page `page`'s place in the backing store (a write-back). */
static inline void lab_swap_out(uint64_t page, uint64_t frame) { lab__svc(LAB_SVC_SWAP_OUT, (long)page, (long)frame); }
/* Print a line with a number after it (`hwsim lab paging run` shows it; --quiet hides it). */
static inline void lab_log(const char *text, uint64_t value) { lab__svc(LAB_SVC_LOG, (long)text, (long)value); }

#endif
