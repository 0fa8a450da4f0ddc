/* Reference solution: FIFO.  Free frames are taken lowest first; then the hand goes round the frames,
 * and the frame under it (the oldest page) is the victim. */
#include "lab.h"

#define MAX_FRAMES 64
static uint64_t holder[MAX_FRAMES]; /* frame -> page, LAB_NO_FRAME when free */
static uint64_t used, hand;

void lab_init(const struct lab *lab) {
    for (uint64_t f = 0; f < lab->nframes; f++) holder[f] = LAB_NO_FRAME;
    used = hand = 0;
}

void lab_tick(const struct lab *lab) { (void)lab; }

void lab_page_fault(const struct lab *lab, uint64_t va, int is_store) {
    (void)is_store;
    uint64_t page = lab_page_of(lab, va), frame;
    if (used < lab->nframes) {
        frame = used++;
    } else {
        frame = hand;
        hand = (hand + 1) % lab->nframes;
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
