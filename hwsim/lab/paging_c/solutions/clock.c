/* Reference solution: clock (second chance).  Free frames are taken lowest first; then the hand goes
 * round the frames: a page with A=1 gets a second chance (A cleared, and its TLB entry dropped so the
 * MMU sets A again on the next access), the first page with A=0 is the victim. */
#include "lab.h"

#define MAX_FRAMES 64
static uint64_t holder[MAX_FRAMES]; /* frame -> page */
static uint64_t used, hand;

void lab_init(const struct lab *lab) {
    (void)lab;
    used = hand = 0;
}

void lab_tick(const struct lab *lab) { (void)lab; }

void lab_page_fault(const struct lab *lab, uint64_t va, int is_store) {
    (void)is_store;
    uint64_t page = lab_page_of(lab, va), frame;
    if (used < lab->nframes) {
        frame = used++;
    } else {
        for (;;) {
            pte_t *pte = lab_pte(lab, holder[hand]);
            if (!(*pte & PTE_A)) break;
            *pte &= ~PTE_A;
            sfence_vma(lab_va_of(lab, holder[hand]));
            hand = (hand + 1) % lab->nframes;
        }
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
