/* hwsim's compiled TLB-fill helper: the Sv39/Sv48 walk and the model TLB in C (see native.py).
 *
 *      Unicorn TLB miss                      hwsim_fill (this file)
 *   ----------------------> context (priv, satp, SUM, MXR) from the hart's registers
 *                           model TLB lookup  --hit, allowed--------------------------> fill
 *                           | miss (or a store through an entry with D=0)
 *                           walk the tables in the RAM buffer (bounds-checked) --ok--> insert, fill
 *                           | anything else: a fault, a PTE outside RAM, A/D under Svade,
 *                           | a TLB entry that denies, tracing, a watched page, a stop
 *                           v
 *                           the Python hook (Machine._tlb_fill), which finds the same thing and says why
 *
 * The C side changes nothing (no counter, no A/D bit, no TLB entry) before it decides to defer, so the
 * Python hook sees exactly what it would have seen alone.  The rules are walker.py's walk_quick and
 * check_permission, machine.py's _unicorn_perms and tlb.py's Tlb (LRU order, per-level probing,
 * global entries, the four sfence.vma forms), transcribed; tests/test_machine_native.py compares them.
 *
 * Every physical read or write is checked against the RAM buffer's bounds first: a PTE address
 * outside RAM is never dereferenced (the Python walker then reports the access fault).
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HWSIM_NATIVE_ABI 7

/* Unicorn's types, as unicorn.h declares them (only what is used here). */
typedef struct {
    uint64_t paddr;
    uint32_t perms;
} uc_tlb_entry;
typedef int (*uc_reg_fn)(void *uc, int regid, void *value);
typedef bool (*fill_fn)(void *uc, uint64_t va, int type, uc_tlb_entry *entry, void *data);
typedef void (*flush_page_fn)(void *cpu, uint64_t va); /* QEMU's tlb_flush_page (see cputlb.py) */

enum { UC_MEM_READ = 16, UC_MEM_WRITE = 17, UC_MEM_FETCH = 18 };
enum { UC_PROT_READ = 1, UC_PROT_WRITE = 2, UC_PROT_EXEC = 4, UC_PROT_ALL = 7 };
enum { ACCESS_LOAD, ACCESS_STORE, ACCESS_FETCH };
enum { PRIV_U = 0, PRIV_S = 1, PRIV_M = 3 };

#define PTE_V (1ull << 0)
#define PTE_R (1ull << 1)
#define PTE_W (1ull << 2)
#define PTE_X (1ull << 3)
#define PTE_U (1ull << 4)
#define PTE_G (1ull << 5)
#define PTE_A (1ull << 6)
#define PTE_D (1ull << 7)
#define PTE_PPN(pte) (((pte) >> 10) & ((1ull << 44) - 1))
#define PTE_HIGH_RESERVED (0x3FFull << 54)
#define MSTATUS_MPRV (1ull << 17)
#define MSTATUS_SUM (1ull << 18)
#define MSTATUS_MXR (1ull << 19)
#define MSTATUS_MPP_SHIFT 11
#define GLOBAL_TAG (-1)
#define LEVELS 5

/* -- the model TLB ------------------------------------------------------------------------------ */

typedef struct {
    uint64_t va, pa, page_size, pte_addr, pte, vpn;
    int64_t tag; /* the ASID, or GLOBAL_TAG */
    int32_t level, global;
    int32_t older, newer; /* the LRU list */
    int32_t chain;        /* the next entry in this hash bucket (or the next free entry) */
    int32_t pad;
} tlb_entry;

typedef struct {
    uint64_t lookups, hits, misses, fills, evictions, flushes, flushed_entries;
} tlb_stats;

typedef struct {
    tlb_stats stats; /* first: native.py reads it in place */
    int64_t count, capacity;
    int64_t per_level[LEVELS];
    int32_t oldest, newest, free_list;
    uint32_t bucket_mask;
    int32_t *buckets;
    tlb_entry *entries;
} tlb_t;

static const int SHIFTS[LEVELS] = {12, 21, 30, 39, 48};

static uint32_t bucket_of(const tlb_t *t, int level, uint64_t vpn, int64_t tag) {
    uint64_t h = (vpn * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)tag * 0xC2B2AE3D27D4EB4Full) ^ (uint64_t)level;
    h ^= h >> 29;
    return (uint32_t)h & t->bucket_mask;
}

tlb_t *hwsim_tlb_new(int64_t capacity) {
    if (capacity <= 0 || capacity > (1 << 24)) return NULL;
    tlb_t *t = calloc(1, sizeof(tlb_t));
    if (!t) return NULL;
    uint32_t buckets = 16;
    while (buckets < 2 * (uint64_t)capacity) buckets <<= 1;
    t->buckets = malloc(sizeof(int32_t) * buckets);
    t->entries = calloc((size_t)capacity + 1, sizeof(tlb_entry)); /* one spare: insert before evicting */
    if (!t->buckets || !t->entries) {
        free(t->buckets);
        free(t->entries);
        free(t);
        return NULL;
    }
    t->bucket_mask = buckets - 1;
    t->capacity = capacity;
    memset(t->buckets, 0xFF, sizeof(int32_t) * buckets);
    t->oldest = t->newest = -1;
    for (int64_t i = 0; i <= capacity; i++) t->entries[i].chain = i < capacity ? (int32_t)(i + 1) : -1;
    t->free_list = 0;
    return t;
}

void hwsim_tlb_free(tlb_t *t) {
    if (!t) return;
    free(t->buckets);
    free(t->entries);
    free(t);
}

static int32_t find(const tlb_t *t, int level, uint64_t vpn, int64_t tag) {
    int32_t i = t->buckets[bucket_of(t, level, vpn, tag)];
    while (i >= 0) {
        const tlb_entry *e = &t->entries[i];
        if (e->vpn == vpn && e->tag == tag && e->level == level) return i;
        i = e->chain;
    }
    return -1;
}

static void lru_unlink(tlb_t *t, int32_t i) {
    tlb_entry *e = &t->entries[i];
    if (e->older >= 0) t->entries[e->older].newer = e->newer; else t->oldest = e->newer;
    if (e->newer >= 0) t->entries[e->newer].older = e->older; else t->newest = e->older;
}

static void lru_append(tlb_t *t, int32_t i) {
    tlb_entry *e = &t->entries[i];
    e->older = t->newest;
    e->newer = -1;
    if (t->newest >= 0) t->entries[t->newest].newer = i; else t->oldest = i;
    t->newest = i;
}

static void touch(tlb_t *t, int32_t i) {
    if (t->newest != i) {
        lru_unlink(t, i);
        lru_append(t, i);
    }
}

static void drop(tlb_t *t, int32_t i) {
    tlb_entry *e = &t->entries[i];
    int32_t *link = &t->buckets[bucket_of(t, e->level, e->vpn, e->tag)];
    while (*link != i) link = &t->entries[*link].chain;
    *link = e->chain;
    lru_unlink(t, i);
    t->per_level[e->level]--;
    t->count--;
    e->chain = t->free_list;
    t->free_list = i;
}

/* Tlb.hit's search without its side effects: the entry for (asid, va), levels probed from 4 KiB up. */
static int32_t probe(const tlb_t *t, int64_t asid, uint64_t va) {
    for (int level = 0; level < LEVELS; level++) {
        if (!t->per_level[level]) continue;
        uint64_t vpn = va >> SHIFTS[level];
        int32_t i = find(t, level, vpn, asid);
        if (i < 0) i = find(t, level, vpn, GLOBAL_TAG);
        if (i >= 0) return i;
    }
    return -1;
}

typedef struct {
    uint64_t va, pa, page_size, pte_addr, pte;
    int64_t tag;
    int64_t level, global;
} tlb_record;

static void record(const tlb_entry *e, tlb_record *out) {
    out->va = e->va;
    out->pa = e->pa;
    out->page_size = e->page_size;
    out->pte_addr = e->pte_addr;
    out->pte = e->pte;
    out->tag = e->tag;
    out->level = e->level;
    out->global = e->global;
}

/* Tlb.probe (count = 0), Tlb.hit (count = 1: a hit counted and made the newest; ``flags``: only an entry
 * with them all) or Tlb.lookup (count = 2: a miss counted too).  Returns 1 and the entry in ``out``, or 0. */
int hwsim_tlb_find(tlb_t *t, int64_t asid, uint64_t va, uint64_t flags, int count, tlb_record *out) {
    int32_t i = probe(t, asid, va);
    if (i < 0 || (t->entries[i].pte & flags) != flags) {
        if (count == 2) {
            t->stats.lookups++;
            t->stats.misses++;
        }
        return 0;
    }
    if (count) {
        touch(t, i);
        t->stats.lookups++;
        t->stats.hits++;
    }
    record(&t->entries[i], out);
    return 1;
}

void hwsim_tlb_insert(tlb_t *t, int64_t asid, uint64_t va, uint64_t pa, int64_t level, uint64_t page_size,
                      uint64_t pte_addr, uint64_t pte, int64_t global) {
    if (level < 0 || level >= LEVELS) return;
    int64_t tag = global ? GLOBAL_TAG : asid;
    uint64_t vpn = va >> SHIFTS[level];
    int32_t i = find(t, (int)level, vpn, tag);
    if (i < 0) {
        i = t->free_list;
        t->free_list = t->entries[i].chain;
        tlb_entry *e = &t->entries[i];
        e->vpn = vpn;
        e->tag = tag;
        e->level = (int32_t)level;
        uint32_t b = bucket_of(t, (int)level, vpn, tag);
        e->chain = t->buckets[b];
        t->buckets[b] = i;
        lru_append(t, i);
        t->per_level[level]++;
        t->count++;
    } else {
        touch(t, i);
    }
    tlb_entry *e = &t->entries[i];
    e->va = va;
    e->pa = pa;
    e->page_size = page_size;
    e->pte_addr = pte_addr;
    e->pte = pte;
    e->global = global != 0;
    t->stats.fills++;
    while (t->count > t->capacity) {
        drop(t, t->oldest);
        t->stats.evictions++;
    }
}

/* The two calls Python makes on every fill it serves, with their operands in one record (ctypes converts
 * two pointers faster than eight integers): hwsim_tlb_find with ``io``'s tag (the ASID), va, pte (the
 * flags) and level (count), the entry found written back into ``io``; hwsim_tlb_insert of ``in`` under
 * its tag (the ASID; ``global`` says whether the entry is global). */
int hwsim_tlb_find_record(tlb_t *t, tlb_record *io) {
    return hwsim_tlb_find(t, io->tag, io->va, io->pte, (int)io->level, io);
}

void hwsim_tlb_insert_record(tlb_t *t, const tlb_record *in) {
    hwsim_tlb_insert(t, in->tag, in->va, in->pa, in->level, in->page_size, in->pte_addr, in->pte, in->global);
}

/* ``sfence.vma`` (has_va / has_asid 0: x0), Tlb.flush's rules; returns the entries removed. */
int64_t hwsim_tlb_flush(tlb_t *t, int has_va, uint64_t va, int has_asid, int64_t asid) {
    int64_t dropped = 0;
    t->stats.flushes++;
    int32_t i = t->oldest;
    while (i >= 0) {
        tlb_entry *e = &t->entries[i];
        int32_t next = e->newer;
        bool doomed;
        if (!has_va && !has_asid) doomed = true;
        else if (!has_va) doomed = e->tag == asid;
        else if (!has_asid) doomed = e->vpn == va >> SHIFTS[e->level];
        else doomed = e->tag == asid && e->vpn == va >> SHIFTS[e->level];
        if (doomed) {
            drop(t, i);
            dropped++;
        }
        i = next;
    }
    t->stats.flushed_entries += dropped;
    return dropped;
}

/* Up to ``max`` entries, oldest first, into ``out``; returns how many. */
int64_t hwsim_tlb_entries(const tlb_t *t, tlb_record *out, int64_t max) {
    int64_t n = 0;
    for (int32_t i = t->oldest; i >= 0 && n < max; i = t->entries[i].newer) record(&t->entries[i], &out[n++]);
    return n;
}

/* -- the fill hook --------------------------------------------------------------------------------- */

/* One hart's state.  native.py mirrors this layout (HartState): every field 8 bytes, in this order. */
typedef struct {
    void *uc;
    uc_reg_fn reg_read, reg_write;
    fill_fn fallback; /* the Python hook */
    uint8_t *ram;
    uint64_t ram_base, ram_size;
    tlb_t *tlb;
    const int32_t *traced; /* nonzero while a page_walk or tlb_miss trace is on (shared by every hart) */
    int64_t defer;         /* nonzero: every fill goes to Python (a stop under way) */
    int64_t ad_fault;      /* 1: AdPolicy.FAULT (Svade): a clear A or D bit is Python's fault to report */
    int64_t reg_priv, reg_satp, reg_mstatus;
    uint64_t fills, walks;   /* fills served here (Python counts its own), of which walked */
    const uint64_t *watched; /* the physical pages Machine.watch_page watches, ascending: their fills */
    int64_t n_watched;       /* go to Python (Machine._watch_fill), whatever the access */
    /* The record of the pages handed to Unicorn's TLB since its last whole flush: (va page, pa page, the
     * size of the leaf that mapped it) each, what Python's fills hand included (hwsim_handed_add), so a
     * change to one page flushes only the virtual pages that may hold it (hwsim_flush_pa, hwsim_flush_va). */
    uint64_t *handed;
    int64_t n_handed, cap_handed;
    int64_t handed_lost; /* nonzero: the record overflowed (what Unicorn holds is no longer known) */
    int64_t n_super;     /* pages handed from superpages (counted when lost too) */
    flush_page_fn flush_page; /* NULL: no per-page flush (every flush is whole, Machine.flush_cpu_tlb) */
    void *cpu;                /* its CPUState */
} hart_state;

/* Note page ``va`` handed to Unicorn as physical page ``pa`` from a leaf of ``size`` bytes. */
static void handed_add(hart_state *st, uint64_t va, uint64_t pa, uint64_t size) {
    if (size > 0x1000) st->n_super++;
    if (st->n_handed >= st->cap_handed) {
        st->handed_lost = 1;
        return;
    }
    uint64_t *e = &st->handed[3 * st->n_handed++];
    e[0] = va & ~0xFFFull, e[1] = pa & ~0xFFFull, e[2] = size;
}

void hwsim_handed_add(hart_state *st, uint64_t va, uint64_t pa, uint64_t size) { handed_add(st, va, pa, size); }

/* Whether record entry ``e`` must go for a flush of [va, end): its page is there, or its leaf reaches it. */
static int handed_in(const uint64_t *e, uint64_t va, uint64_t end) {
    uint64_t lo = e[0] & ~(e[2] - 1), hi = lo + e[2];
    return lo < end && va < hi;
}

/* Flush (page by page) and forget the record's entries that ``pa_page`` (a physical page: pa_page != ~0) or
 * [va, end) select; -1 when the record cannot say (lost) or more than ``max`` pages would go (then the
 * caller flushes whole, which empties the record), else how many pages were flushed. */
static int64_t handed_flush(hart_state *st, uint64_t pa_page, uint64_t va, uint64_t end, int64_t max) {
    if (st->flush_page == NULL || st->handed_lost) return -1;
    int64_t n = 0;
    for (int64_t i = 0; i < st->n_handed; i++) {
        const uint64_t *e = &st->handed[3 * i];
        if (pa_page != ~0ull ? e[1] == pa_page : handed_in(e, va, end)) n++;
    }
    if (n > max) return -1;
    n = 0;
    for (int64_t i = 0; i < st->n_handed;) {
        uint64_t *e = &st->handed[3 * i];
        if (pa_page != ~0ull ? e[1] == pa_page : handed_in(e, va, end)) {
            uint64_t page = e[0];
            st->flush_page(st->cpu, page);
            n++;
            for (int64_t j = st->n_handed - 1; j >= i; j--) /* that page's every entry (a page refilled) */
                if (st->handed[3 * j] == page) memmove(&st->handed[3 * j], &st->handed[3 * --st->n_handed], 24);
        } else {
            i++;
        }
    }
    return n;
}

/* Drop from Unicorn's TLB every virtual page the record has seen handed physical page ``pa_page`` (a watch
 * begins there); none when it was not handed.  -1: flush whole instead (see handed_flush). */
int64_t hwsim_flush_pa(hart_state *st, uint64_t pa_page, int64_t max) {
    pa_page &= ~0xFFFull;
    if (!st->handed_lost) {
        int64_t n = 0;
        for (int64_t i = 0; i < st->n_handed; i++) n += st->handed[3 * i + 1] == pa_page;
        if (n == 0) return 0; /* never handed since the last whole flush: nothing to drop */
    }
    return handed_flush(st, pa_page, 0, 0, max);
}

/* Drop the ``pages`` pages from ``va`` from Unicorn's TLB, and every page it holds from a superpage that
 * reaches into them (sfence.vma of an address drops the whole leaf that maps it).  -1: flush whole. */
int64_t hwsim_flush_va(hart_state *st, uint64_t va, int64_t pages, int64_t max) {
    if (st->flush_page == NULL || pages > max) return -1;
    va &= ~0xFFFull;
    uint64_t end = va + ((uint64_t)pages << 12);
    if (st->n_super && st->handed_lost) return -1; /* a superpage the record lost may reach in */
    int64_t n = 0;
    if (st->n_super) {
        for (int64_t i = 0; i < st->n_handed; i++) {
            const uint64_t *e = &st->handed[3 * i];
            if (e[2] > 0x1000 && handed_in(e, va, end) && (e[0] < va || e[0] >= end)) n++;
        }
        if (n + pages > max) return -1;
    }
    for (uint64_t page = va; page != end; page += 0x1000) st->flush_page(st->cpu, page);
    if (!st->handed_lost) handed_flush(st, ~0ull, va, end, INT64_MAX); /* the superpages' pages, and forget */
    return pages + n;
}

/* Whether the 4 KiB physical page ``pa_page`` is watched (a binary search of st->watched). */
static int is_watched(const hart_state *st, uint64_t pa_page) {
    int64_t lo = 0, hi = st->n_watched;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (st->watched[mid] == pa_page) return 1;
        if (st->watched[mid] < pa_page) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

/* The 4 KiB physical page ``va`` reaches through a leaf at ``pa`` (its page's base) of ``page_size``. */
static uint64_t page_of(uint64_t va, uint64_t pa, uint64_t page_size) {
    return ((pa & ~(page_size - 1)) | (va & (page_size - 1))) & ~0xFFFull;
}

typedef struct {
    uint64_t va, pa, page_size, pte_addr, pte;
    int level, global;
} translation;

/* check_permission: 1 when allowed. */
static int allowed(uint64_t pte, int access, int priv, int sum, int mxr) {
    if (pte & PTE_U) {
        if (priv == PRIV_S && (access == ACCESS_FETCH || !sum)) return 0;
    } else if (priv == PRIV_U) {
        return 0;
    }
    if (access == ACCESS_LOAD) return (pte & PTE_R) || (mxr && (pte & PTE_X));
    if (access == ACCESS_STORE) return (pte & PTE_W) != 0;
    return (pte & PTE_X) != 0;
}

/* _unicorn_perms: the rights Unicorn may cache for this leaf (W only with D set). */
static uint32_t unicorn_perms(uint64_t pte, int priv, int sum, int mxr) {
    int execute;
    if (pte & PTE_U) {
        if (priv == PRIV_S && !sum) return 0;
        execute = priv == PRIV_U;
    } else {
        if (priv == PRIV_U) return 0;
        execute = 1;
    }
    uint32_t perms = 0;
    if ((pte & PTE_R) || (mxr && (pte & PTE_X))) perms = UC_PROT_READ;
    if ((pte & PTE_W) && (pte & PTE_D)) perms |= UC_PROT_WRITE;
    if (execute && (pte & PTE_X)) perms |= UC_PROT_EXEC;
    return perms;
}

/* The PTE word at ``pa`` in the RAM buffer, or NULL when it is not wholly inside (or not aligned). */
static uint64_t *pte_at(const hart_state *st, uint64_t pa) {
    if (pa < st->ram_base || (pa & 7)) return NULL;
    uint64_t off = pa - st->ram_base;
    if (st->ram_size < 8 || off > st->ram_size - 8) return NULL;
    return (uint64_t *)(st->ram + off);
}

/* walk_quick: 1 and ``tr`` when the walk translates (the A/D update done), 0 when it would fault, read
 * outside RAM or reach a watched page (nothing written). */
static int walk(const hart_state *st, uint64_t root, int levels, uint64_t va, int access, int priv, int sum,
                int mxr, translation *tr) {
    int va_bits = 12 + 9 * levels;
    uint64_t top = va >> (va_bits - 1);
    if (top && top != (1ull << (65 - va_bits)) - 1) return 0;
    uint64_t a = root;
    int global = 0;
    for (int level = levels - 1; level >= 0; level--) {
        int shift = SHIFTS[level];
        uint64_t pte_addr = a + (((va >> shift) & 511) << 3);
        uint64_t *word = pte_at(st, pte_addr);
        if (!word) return 0;
        uint64_t pte;
        memcpy(&pte, word, 8);
        if (!(pte & PTE_V)) return 0;
        if (((pte & PTE_W) && !(pte & PTE_R)) || (pte & PTE_HIGH_RESERVED)) return 0;
        if (pte & PTE_G) global = 1;
        if (!(pte & (PTE_R | PTE_X))) { /* a pointer to the next level */
            if ((pte & (PTE_D | PTE_A | PTE_U)) || level == 0) return 0;
            a = PTE_PPN(pte) << 12;
            continue;
        }
        if (!allowed(pte, access, priv, sum, mxr)) return 0;
        uint64_t ppn = PTE_PPN(pte);
        if (ppn & ((1ull << (9 * level)) - 1)) return 0; /* a misaligned superpage */
        uint64_t page_size = 1ull << shift;
        if (st->n_watched && is_watched(st, page_of(va, ppn << 12, page_size))) return 0; /* Python's */
        uint64_t updated = pte | PTE_A | (access == ACCESS_STORE ? PTE_D : 0);
        if (updated != pte) {
            if (st->ad_fault) return 0;
            memcpy(word, &updated, 8);
        }
        tr->va = va;
        tr->pa = (ppn << 12) | (va & (page_size - 1));
        tr->page_size = page_size;
        tr->pte_addr = pte_addr;
        tr->pte = updated;
        tr->level = level;
        tr->global = global;
        return 1;
    }
    return 0;
}

static uint64_t reg(const hart_state *st, int64_t id) {
    uint64_t value = 0;
    st->reg_read(st->uc, (int)id, &value);
    return value;
}

static void set_priv(const hart_state *st, uint64_t priv) { st->reg_write(st->uc, (int)st->reg_priv, &priv); }

static void fill_entry(uc_tlb_entry *entry, uint64_t va, uint64_t pa, uint64_t page_size, uint32_t perms) {
    entry->paddr = ((pa & ~(page_size - 1)) | (va & (page_size - 1))) & ~0xFFFull;
    entry->perms = perms;
}

/* The UC_HOOK_TLB_FILL callback; ``data`` is the hart's hart_state. */
bool hwsim_fill(void *uc, uint64_t va, int type, uc_tlb_entry *entry, void *data) {
    hart_state *st = data;
    if (st->defer || *st->traced) return st->fallback(uc, va, type, entry, data);
    int access = type == UC_MEM_WRITE ? ACCESS_STORE : type == UC_MEM_FETCH ? ACCESS_FETCH : ACCESS_LOAD;
    uint64_t priv = reg(st, st->reg_priv), satp, status;
    if (priv == PRIV_M) {
        status = reg(st, st->reg_mstatus);
        priv = (status >> MSTATUS_MPP_SHIFT) & 3;
        if (access == ACCESS_FETCH || !(status & MSTATUS_MPRV) || priv == PRIV_M) {
            priv = PRIV_M;
            satp = 0;
        } else {
            satp = reg(st, st->reg_satp);
        }
    } else { /* satp (and, in U-mode, mstatus) are read as M-mode, as Machine._context does */
        set_priv(st, PRIV_M);
        satp = reg(st, st->reg_satp);
        status = reg(st, st->reg_mstatus);
        set_priv(st, priv);
    }
    if (priv != PRIV_U && priv != PRIV_S && priv != PRIV_M) return st->fallback(uc, va, type, entry, data);
    uint64_t mode = satp >> 60;
    if (priv == PRIV_M || (mode != 8 && mode != 9)) { /* no translation: the VA is the PA */
        if (st->n_watched && is_watched(st, va & ~0xFFFull)) return st->fallback(uc, va, type, entry, data);
        st->fills++;
        entry->paddr = va;
        entry->perms = UC_PROT_ALL;
        handed_add(st, va, va, 0x1000);
        return true;
    }
    int levels = mode == 8 ? 3 : 4;
    int sum = (status & MSTATUS_SUM) != 0, mxr = (status & MSTATUS_MXR) != 0;
    int64_t asid = (int64_t)((satp >> 44) & 0xFFFF);
    uint64_t root = (satp & ((1ull << 44) - 1)) << 12;
    tlb_t *t = st->tlb;
    int32_t hit = probe(t, asid, va);
    if (hit >= 0) {
        const tlb_entry *e = &t->entries[hit];
        if (!allowed(e->pte, access, (int)priv, sum, mxr) ||
            (st->n_watched && is_watched(st, page_of(va, e->pa, e->page_size))))
            return st->fallback(uc, va, type, entry, data);
        if (access != ACCESS_STORE || (e->pte & PTE_D)) {
            touch(t, hit);
            t->stats.lookups++;
            t->stats.hits++;
            st->fills++;
            fill_entry(entry, va, e->pa, e->page_size, unicorn_perms(e->pte, (int)priv, sum, mxr));
            handed_add(st, va, entry->paddr, e->page_size);
            return true;
        }
    }
    translation tr;
    if (!walk(st, root, levels, va, access, (int)priv, sum, mxr, &tr)) return st->fallback(uc, va, type, entry, data);
    t->stats.lookups++;
    if (hit >= 0) { /* a store through an entry with D clear: a hit that walked again to set D */
        touch(t, hit);
        t->stats.hits++;
    } else {
        t->stats.misses++;
    }
    st->fills++;
    st->walks++;
    hwsim_tlb_insert(t, asid, tr.va, tr.pa, tr.level, tr.page_size, tr.pte_addr, tr.pte, tr.global);
    fill_entry(entry, va, tr.pa, tr.page_size, unicorn_perms(tr.pte, (int)priv, sum, mxr));
    handed_add(st, va, entry->paddr, tr.page_size);
    return true;
}

/* -- the PC-syncing memory hook over the MMIO windows (Machine.track_mmio_pcs) -------------------- */

/* What one hart's hook needs: how to read a register, and where it leaves the PC of the access. */
typedef struct {
    uc_reg_fn reg_read; /* uc_reg_read */
    int64_t reg_pc;     /* UC_RISCV_REG_PC */
    uint64_t pc;        /* the PC of the last device access (Machine.mmio_pc reads it while one is served) */
} access_hook;

/* The UC_HOOK_MEM_READ_PROT | UC_HOOK_MEM_WRITE_PROT callback over a window the machine mapped without
 * rights: Unicorn writes the guest PC back before calling it, the hook keeps it for Machine.mmio_pc, and
 * it lets every access through (true) to the device's callback, which runs the device-access observers. */
bool hwsim_mmio_access(void *uc, int type, uint64_t address, int size, int64_t value, void *data) {
    access_hook *h = data;
    (void)type, (void)address, (void)size, (void)value;
    h->reg_read(uc, (int)h->reg_pc, &h->pc);
    return true;
}

/* -- stores to RAM pages watched by protection (storewatch.py) ---------------------------------------- */

#define STORE_REGS 31 /* x1..x31: what tells the rest of a page-crossing store from the same store made again */

/* What one hart's hook needs: the RAM buffer, the watched ranges, and Python to show a store to. */
typedef struct {
    void *uc;
    uc_reg_fn reg_read;
    int64_t reg_pc, reg_x1; /* Unicorn's register IDs of the PC and x1 (x1..x31 follow it) */
    uint8_t *ram;
    uint64_t ram_base, ram_size;
    const uint64_t *ranges; /* [start, end) of each watch, ascending by start (shared by the harts) */
    int64_t n_ranges;
    void (*show)(uint64_t pa, int64_t size, uint64_t value); /* runs the watches' handlers */
    /* A misaligned store Unicorn is carrying out byte by byte (see hwsim_ram_store): */
    uint64_t pending_pc;         /* its PC */
    int64_t pending;             /* how many of its byte stores may still come */
    uint64_t pending_pa;         /* the address of its next byte on its first page */
    int64_t pending_first;       /* how many of its bytes on its first page have not come yet */
    int64_t tail_next;           /* the page offset of its next byte on the page after (a crossing store) */
    int64_t pending_shown;       /* whether it was shown whole (else its bytes on the page after may be) */
    uint64_t regs[STORE_REGS];   /* x1..x31 as it began (a crossing store only) */
    uint64_t stores, shown;      /* stores carried out here, stores shown */
} store_hook;

static int in_ranges(const store_hook *h, uint64_t pa) {
    for (int64_t i = 0; i < h->n_ranges && h->ranges[2 * i] <= pa; i++)
        if (pa < h->ranges[2 * i + 1]) return 1;
    return 0;
}

static void ram_write(store_hook *h, uint64_t pa, int size, uint64_t value) {
    uint8_t *p = h->ram + (pa - h->ram_base);
    for (int i = 0; i < size; i++) p[i] = (uint8_t)(value >> (8 * i)); /* little-endian, whatever the host */
}

/* Whether x1..x31 hold what they held when the pending store began (into h->regs when ``save``). */
static int same_regs(store_hook *h, int save) {
    int same = 1;
    for (int i = 0; i < STORE_REGS; i++) {
        uint64_t x = 0;
        h->reg_read(h->uc, (int)h->reg_x1 + i, &x);
        if (save) h->regs[i] = x;
        else if (x != h->regs[i]) same = 0;
    }
    return same;
}

/* Whether the byte store at ``pa`` is the next byte of the pending misaligned store: on its first page, the
 * byte after the last one (they all come: the page is protected), 1; on the page after it (they come when
 * that page is protected too), the next offset there, with every register as the store found it, 2.  A
 * byte store from the same PC that is not (the same instruction again, crossing into a protected page from
 * the page before it, after the rest of a crossing store never came) is a store of its own: 0. */
static int pending_byte(store_hook *h, uint64_t pa) {
    uint64_t pc = 0;
    h->reg_read(h->uc, (int)h->reg_pc, &pc);
    if (pc != h->pending_pc) return 0;
    if (h->pending_first && pa == h->pending_pa) {
        h->pending_first--;
        h->pending_pa++;
        return 1;
    }
    if (h->pending <= h->pending_first || (pa & 0xFFF) != (uint64_t)h->tail_next || !same_regs(h, 0)) return 0;
    h->pending -= h->pending_first; /* (its bytes on its first page that did not come never will) */
    h->pending_first = 0;
    h->tail_next++;
    return 2;
}

/* The UC_HOOK_MEM_WRITE_PROT callback over RAM (Unicorn 2.1.4's store_helper, see storewatch.py): a guest
 * store to a page mapped READ|EXEC.  It shows the store to the watches its first byte is in (Unicorn has
 * written the PC back), writes it into the RAM buffer and returns true; Unicorn then drops its own write
 * (the read-only section's TLB_DISCARD_WRITE).  A misaligned store comes once whole (shown, not written)
 * and then once per byte from the same PC (written, not shown): its bytes on its page, then, if it crosses
 * into a protected page, its bytes there (see pending_byte), shown one by one when the whole was not (its
 * first byte in no watch), as the bytes of a store crossing from a writable page are. */
bool hwsim_ram_store(void *uc, int type, uint64_t pa, int size, int64_t value, void *data) {
    store_hook *h = data;
    (void)uc, (void)type;
    if (size < 1 || size > 8 || pa < h->ram_base || pa - h->ram_base > h->ram_size - (uint64_t)size) return false;
    uint64_t v = (uint64_t)value;
    if (size < 8) v &= (1ull << (8 * size)) - 1;
    if (h->pending) {
        int own = size == 1 ? pending_byte(h, pa) : 0;
        if (own) {
            h->pending--;
            if (own == 2 && !h->pending_shown && h->n_ranges && in_ranges(h, pa)) {
                h->shown++;
                h->show(pa, 1, v);
            }
            ram_write(h, pa, 1, v);
            return true;
        }
        h->pending = 0;
    }
    int misaligned = (pa & (uint64_t)(size - 1)) != 0;
    if (misaligned) {
        uint64_t on_page = 0x1000 - (pa & 0xFFF);
        h->reg_read(h->uc, (int)h->reg_pc, &h->pending_pc);
        h->pending = size;
        h->pending_pa = pa;
        h->pending_first = (uint64_t)size < on_page ? size : (int64_t)on_page;
        h->tail_next = 0;
        if (h->pending_first < size) same_regs(h, 1); /* it crosses: the registers tell its rest */
    }
    int shown = h->n_ranges && in_ranges(h, pa);
    if (misaligned) h->pending_shown = shown;
    if (shown) {
        h->shown++;
        h->show(pa, size, v);
    }
    h->stores++;
    if (!misaligned) ram_write(h, pa, size, v);
    return true;
}

/* The walk alone, for the differential test: 1 and ``out`` (tag = 0) as walk_quick, or 0. */
int hwsim_walk(hart_state *st, uint64_t root, int levels, uint64_t va, int access, int priv, int sum, int mxr,
               tlb_record *out) {
    translation tr;
    if (!walk(st, root, levels, va, access, priv, sum, mxr, &tr)) return 0;
    out->va = tr.va;
    out->pa = tr.pa;
    out->page_size = tr.page_size;
    out->pte_addr = tr.pte_addr;
    out->pte = tr.pte;
    out->tag = 0;
    out->level = tr.level;
    out->global = tr.global;
    return 1;
}

int hwsim_native_abi(void) { return HWSIM_NATIVE_ABI; }
