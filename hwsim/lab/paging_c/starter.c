/* The page-fault lab: your page-fault handler (hwsim lab paging run DIR builds and runs it).
 *
 * The workload runs in U-mode over lab->npages virtual pages but only lab->nframes physical frames
 * exist for them.  Every PTE starts at 0.  When the workload touches a page whose PTE is invalid,
 * hwsim traps to lab_page_fault in S-mode; you make the page resident and return, and the access is
 * retried.  When no frame is free you must pick a victim with your replacement policy (FIFO, clock,
 * second chance, aging: read lab.h and docs/teaching.md for the exact rules `run` compares with).
 *
 *   - the MMU sets A (accessed) and D (dirty) in the PTEs for you; read them, clear A to sample it
 *   - a dirty victim must be written back (lab_swap_out) before its frame is reused
 *   - after clearing V or A of a PTE the TLB may hold, execute sfence_vma(va) for that page
 *   - a new page is read in with lab_swap_in(page, frame); map it with
 *     lab_make_pte(lab, frame, PTE_U | PTE_R | PTE_W)
 *
 * Run: hwsim lab paging run DIR [--frames N] [--workload NAME]
 */
#include "lab.h"

#define MAX_FRAMES 64
static uint64_t holder[MAX_FRAMES]; /* frame -> the page in it */
static uint64_t used;               /* frames handed out so far (free frames are used lowest first) */

void lab_init(const struct lab *lab) {
    (void)lab;
    used = 0;
}

void lab_tick(const struct lab *lab) {
    (void)lab; /* aging: shift each resident page's A bit into its counter here, then clear A */
}

void lab_page_fault(const struct lab *lab, uint64_t va, int is_store) {
    (void)is_store;
    uint64_t page = lab_page_of(lab, va);
    uint64_t frame;
    if (used < lab->nframes) {
        frame = used++;
    } else {
        /* TODO: choose a victim frame with your policy, unmap its page (PTE = 0, then sfence_vma),
         * and write it back first if its PTE has D set. */
        lab_log("no free frame for page", page);
        return;
    }
    lab_swap_in(page, frame);
    holder[frame] = page;
    *lab_pte(lab, page) = lab_make_pte(lab, frame, PTE_U | PTE_R | PTE_W);
}
