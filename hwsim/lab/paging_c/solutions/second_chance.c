/* Reference solution: second chance, as a FIFO queue of frames.  The page at the head with A=1 gets its
 * A cleared (and its TLB entry dropped) and goes to the tail; the first with A=0 is the victim, and the
 * new page takes its frame at the tail.  It evicts exactly what clock evicts: the hand is the head. */
#include "lab.h"

#define MAX_FRAMES 64
static uint64_t holder[MAX_FRAMES]; /* frame -> page */
static uint64_t queue[MAX_FRAMES];  /* frames, oldest first */
static uint64_t used;

void lab_init(const struct lab *lab) {
    (void)lab;
    used = 0;
}

void lab_tick(const struct lab *lab) { (void)lab; }

static uint64_t pop_head(uint64_t n) {
    uint64_t head = queue[0];
    for (uint64_t i = 1; i < n; i++) queue[i - 1] = queue[i];
    return head;
}

void lab_page_fault(const struct lab *lab, uint64_t va, int is_store) {
    (void)is_store;
    uint64_t n = lab->nframes, page = lab_page_of(lab, va), frame;
    if (used < n) {
        frame = used;
        queue[used++] = frame;
    } else {
        for (;;) {
            frame = pop_head(n);
            pte_t *pte = lab_pte(lab, holder[frame]);
            if (!(*pte & PTE_A)) break;
            *pte &= ~PTE_A;
            sfence_vma(lab_va_of(lab, holder[frame]));
            queue[n - 1] = frame; /* a second chance: to the tail */
        }
        queue[n - 1] = frame; /* the new page is the youngest */
        uint64_t victim = holder[frame];
        pte_t old = *lab_pte(lab, victim);
        *lab_pte(lab, victim) = 0;
        sfence_vma(lab_va_of(lab, victim));
        if (old & PTE_D) lab_swap_out(victim, frame);
    }
    lab_swap_in(page, frame);
    holder[frame] = page;
    *lab_pte(lab, page) = lab_make_pte(lab, frame, PTE_U | PTE_R | PTE_W);
}
