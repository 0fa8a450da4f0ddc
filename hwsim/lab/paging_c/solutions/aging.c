/* Reference solution: aging.  Every tick shifts each resident page's A bit into the top of an 8-bit
 * counter and clears A (dropping the TLB entry, so the MMU sets A again on the next access).  The victim
 * is the page with the smallest A << 8 | counter (an A bit not yet shifted in counts above every past
 * tick); the lowest frame wins a tie.  A loaded page's counter starts at 0. */
#include "lab.h"

#define MAX_FRAMES 64
static uint64_t holder[MAX_FRAMES]; /* frame -> page */
static uint8_t counter[MAX_FRAMES];
static uint64_t used;

void lab_init(const struct lab *lab) {
    (void)lab;
    used = 0;
}

void lab_tick(const struct lab *lab) {
    for (uint64_t f = 0; f < used; f++) {
        pte_t *pte = lab_pte(lab, holder[f]);
        counter[f] = (uint8_t)(counter[f] >> 1 | ((*pte & PTE_A) ? 0x80 : 0));
        if (*pte & PTE_A) {
            *pte &= ~PTE_A;
            sfence_vma(lab_va_of(lab, holder[f]));
        }
    }
}

void lab_page_fault(const struct lab *lab, uint64_t va, int is_store) {
    (void)is_store;
    uint64_t page = lab_page_of(lab, va), frame;
    if (used < lab->nframes) {
        frame = used++;
    } else {
        uint64_t best = ~0ul;
        frame = 0;
        for (uint64_t f = 0; f < lab->nframes; f++) {
            uint64_t key = ((*lab_pte(lab, holder[f]) & PTE_A) ? 0x100 : 0) | counter[f];
            if (key < best) {
                best = key;
                frame = f;
            }
        }
        uint64_t victim = holder[frame];
        pte_t old = *lab_pte(lab, victim);
        *lab_pte(lab, victim) = 0;
        sfence_vma(lab_va_of(lab, victim));
        if (old & PTE_D) lab_swap_out(victim, frame);
    }
    lab_swap_in(page, frame);
    holder[frame] = page;
    counter[frame] = 0;
    *lab_pte(lab, page) = lab_make_pte(lab, frame, PTE_U | PTE_R | PTE_W);
}
