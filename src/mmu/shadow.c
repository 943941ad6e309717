/*
 * The shadow mappings of the low 4 GiB (see mmu.h for why they behave as a
 * TLB).  Every mapping is one page of the RAM memfd placed with MAP_FIXED;
 * unmapping puts the PROT_NONE reservation back rather than leaving a hole,
 * so nothing else can ever be placed in the guest's space.  Adjacent pages of
 * consecutive frames with equal protection merge into one VMA in the host
 * kernel, which keeps an identity-mapped guest cheap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "popek/mmu.h"

static bool bit(const uint8_t *map, uint32_t pn)
{
    return (map[pn / 8] >> (pn % 8)) & 1;
}

static void set_bit(uint8_t *map, uint32_t pn, bool v)
{
    if (v)
        map[pn / 8] |= (uint8_t)(1u << (pn % 8));
    else
        map[pn / 8] &= (uint8_t)~(1u << (pn % 8));
}

int shadow_init(struct shadow *sh, const struct guest_ram *ram)
{
    memset(sh, 0, sizeof(*sh));
    sh->mapped = calloc(SHADOW_PAGES / 8, 1);
    sh->global = calloc(SHADOW_PAGES / 8, 1);
    sh->large = calloc(SHADOW_PAGES / 8, 1);
    sh->rmap_head = calloc(ram->size / PAGE_SIZE, sizeof(uint32_t));
    sh->rmap_next = calloc(SHADOW_PAGES, sizeof(uint32_t));
    sh->rmap_frame = calloc(SHADOW_PAGES, sizeof(uint32_t));
    sh->max_nonglobal = 1u << 16;
    sh->nonglobal = malloc(sh->max_nonglobal * sizeof(uint32_t));
    sh->listed = calloc(SHADOW_PAGES / 8, 1);
    sh->attr = calloc(SHADOW_PAGES, 1);
    sh->owner = calloc(SHADOW_PAGES, 1);
    sh->code_pages = calloc(SHADOW_PAGES / 8, 1);
    sh->dead = malloc(SHADOW_DEAD_MAX * sizeof(uint32_t));
    sh->toggles = calloc(SHADOW_PAGES, 1);
    if (!sh->dead || !sh->toggles || !sh->mapped || !sh->global || !sh->large || !sh->rmap_head || !sh->rmap_next ||
        !sh->rmap_frame || !sh->nonglobal || !sh->listed || !sh->attr || !sh->owner ||
        !sh->code_pages)
        return -ENOMEM;
    sh->cur = -1;
    /* Without protection keys, ring 3 cannot be told from ring 0 in the
     * shadow; refuse rather than let guest user code read kernel pages. */
    sh->pkey_sup = pkey_alloc(0, 0);
    if (sh->pkey_sup < 0)
        return -errno;
    sh->key_bits = 3u << (2 * sh->pkey_sup);
    /* Keys for parked address spaces: as many as the host gives (none
     * just means every CR3 write drops the old space's pages). */
    while (sh->nspaces < SHADOW_SPACES) {
        int key = pkey_alloc(0, 0);
        if (key < 0)
            break;
        sh->spaces[sh->nspaces++].key = key;
        sh->key_bits |= 3u << (2 * key);
    }
    return 0;
}

void shadow_destroy(struct shadow *sh)
{
    free(sh->mapped);
    free(sh->global);
    free(sh->large);
    free(sh->rmap_head);
    free(sh->rmap_next);
    free(sh->rmap_frame);
    free(sh->nonglobal);
    free(sh->listed);
    free(sh->attr);
    free(sh->owner);
    free(sh->code_pages);
    free(sh->dead);
    free(sh->toggles);
    for (unsigned i = 0; i < sh->nspaces; i++) {
        free(sh->spaces[i].pn);
        pkey_free(sh->spaces[i].key);
    }
    if (sh->pkey_sup >= 0)
        pkey_free(sh->pkey_sup);
    memset(sh, 0, sizeof(*sh));
}

/* Mapped from the memfd and not dead (maybe parked). */
static bool live(const struct shadow *sh, uint32_t pn)
{
    return bit(sh->mapped, pn) && sh->owner[pn] != SHADOW_DEAD;
}

static void hint_set(struct shadow *sh, uint32_t pn, bool usable)
{
    if (sh->hints)
        sh->hints[pn] = !usable ? SHADOW_HINT_NONE
                        : (sh->attr[pn] & SHADOW_W) ? SHADOW_HINT_WRITE : SHADOW_HINT_READ;
}

/* Page pn's bit in the INVLPG map and its hint after its state changed. */
static void invlpg_update(struct shadow *sh, uint32_t pn)
{
    if (sh->invlpg_map)
        set_bit(sh->invlpg_map, pn, live(sh, pn) || sh->large_region[pn >> 10] ||
                                        bit(sh->code_pages, pn));
    hint_set(sh, pn, shadow_is_mapped(sh, pn * PAGE_SIZE));
}

void shadow_note_code_page(struct shadow *sh, uint32_t linear)
{
    uint32_t pn = linear / PAGE_SIZE;
    set_bit(sh->code_pages, pn, true);
    invlpg_update(sh, pn);
}

bool shadow_is_mapped(const struct shadow *sh, uint32_t linear)
{
    uint32_t pn = linear / PAGE_SIZE;
    return bit(sh->mapped, pn) && (!sh->owner[pn] || sh->owner[pn] == sh->cur + 1);
}

uint32_t shadow_dead_frame(const struct shadow *sh, uint32_t linear)
{
    uint32_t pn = linear / PAGE_SIZE;
    return bit(sh->mapped, pn) && sh->owner[pn] == SHADOW_DEAD ? sh->rmap_frame[pn] * PAGE_SIZE : ~0u;
}

uint8_t shadow_hint(const struct shadow *sh, uint32_t linear)
{
    uint32_t pn = linear / PAGE_SIZE;
    if (!shadow_is_mapped(sh, linear))
        return SHADOW_HINT_NONE;
    return (sh->attr[pn] & SHADOW_W) ? SHADOW_HINT_WRITE : SHADOW_HINT_READ;
}

static void rmap_remove(struct shadow *sh, uint32_t pn)
{
    uint32_t frame = sh->rmap_frame[pn];
    for (uint32_t *pp = &sh->rmap_head[frame]; *pp; pp = &sh->rmap_next[*pp - 1])
        if (*pp - 1 == pn) {
            *pp = sh->rmap_next[pn];
            break;
        }
}

/* Past the list's capacity, the next CR3 write scans the bitmaps instead. */
static void note_nonglobal(struct shadow *sh, uint32_t pn)
{
    if (bit(sh->listed, pn))
        return;
    if (sh->nnonglobal < sh->max_nonglobal) {
        sh->nonglobal[sh->nnonglobal] = pn;
        set_bit(sh->listed, pn, true);
    }
    sh->nnonglobal++;
}

static void clear_nonglobal(struct shadow *sh)
{
    uint32_t n = sh->nnonglobal < sh->max_nonglobal ? sh->nnonglobal : sh->max_nonglobal;
    for (uint32_t i = 0; i < n; i++)
        set_bit(sh->listed, sh->nonglobal[i], false);
    sh->nnonglobal = 0;
}

static void reserve(struct shadow *sh, uint32_t linear, uint64_t len);
static bool evict_parked(struct shadow *sh);

/* The host protection of a shadow page: frames holding translated code stay
 * read-only in every alias. */
static int host_prot(const struct guest_ram *ram, bool writable, uint32_t gpa)
{
    return PROT_READ | (writable && !guest_ram_is_code(ram, gpa) ? PROT_WRITE : 0);
}

static int map_page(struct shadow *sh, struct guest_ram *ram, uint32_t linear, uint32_t gpa,
                    bool writable, bool user, bool global, bool large, bool populate)
{
    linear &= PAGE_MASK;
    gpa &= PAGE_MASK;
    uint32_t pn = linear / PAGE_SIZE;
    if (linear < PAGE_SIZE || !guest_ram_contains(ram, gpa, PAGE_SIZE))
        return -EFAULT;
    int prot = host_prot(ram, writable, gpa);
    uint8_t attr = (uint8_t)((writable ? SHADOW_W : 0) | (user ? SHADOW_U : 0));
    if (bit(sh->mapped, pn) && sh->owner[pn] && !large && sh->rmap_frame[pn] == gpa / PAGE_SIZE) {
        /* Dead, or parked for another space (text two processes share), and
         * the same frame again (maybe with other rights: a page fork made
         * read-only): one protection change, no mmap. */
        if (pkey_mprotect((void *)(uintptr_t)linear, PAGE_SIZE, prot, user ? 0 : sh->pkey_sup) < 0)
            return -errno;
        if (sh->owner[pn] == SHADOW_DEAD)
            sh->revived++;
        sh->owner[pn] = 0;
        sh->attr[pn] = attr;
        set_bit(sh->global, pn, global);
        if (!global)
            note_nonglobal(sh, pn);
        invlpg_update(sh, pn);
        return 0;
    }
    if (bit(sh->mapped, pn))
        rmap_remove(sh, pn);
    void *p = mmap((void *)(uintptr_t)linear, PAGE_SIZE, prot,
                   MAP_SHARED | MAP_FIXED | (populate ? MAP_POPULATE : 0), ram->memfd, gpa);
    if (p == MAP_FAILED)
        return -errno;
    sh->maps++;
    if (!user && pkey_mprotect(p, PAGE_SIZE, prot, sh->pkey_sup) < 0) {
        int err = -errno;
        set_bit(sh->mapped, pn, false); /* rmap_remove was done */
        sh->owner[pn] = 0;
        reserve(sh, linear, PAGE_SIZE); /* never leave it open to ring 3 */
        return err;
    }
    set_bit(sh->mapped, pn, true);
    set_bit(sh->global, pn, global);
    set_bit(sh->large, pn, large);
    sh->attr[pn] = attr;
    sh->owner[pn] = 0;
    if (!global)
        note_nonglobal(sh, pn);
    if (large && !sh->large_region[pn >> 10]) {
        sh->large_region[pn >> 10] = 1;
        for (uint32_t i = pn & ~1023u; i < (pn | 1023u) + 1; i++)
            invlpg_update(sh, i);
    }
    invlpg_update(sh, pn);
    uint32_t frame = gpa / PAGE_SIZE;
    sh->rmap_frame[pn] = frame;
    sh->rmap_next[pn] = sh->rmap_head[frame];
    sh->rmap_head[frame] = pn + 1;
    return 0;
}

/* Out of host mappings (vm.max_map_count: every page of a parked space
 * can be a mapping of its own): the parked spaces give theirs back, and
 * then, as a TLB may drop any entry, every other page goes. */
int shadow_map(struct shadow *sh, struct guest_ram *ram, uint32_t linear, uint32_t gpa,
               bool writable, bool user, bool global, bool large, bool populate)
{
    int err = map_page(sh, ram, linear, gpa, writable, user, global, large, populate);
    if (err == -ENOMEM && evict_parked(sh))
        err = map_page(sh, ram, linear, gpa, writable, user, global, large, populate);
    if (err == -ENOMEM) {
        shadow_unmap_all(sh, false);
        err = map_page(sh, ram, linear, gpa, writable, user, global, large, populate);
    }
    return err;
}

int shadow_map_large(struct shadow *sh, struct guest_ram *ram, uint32_t linear, uint32_t gpa,
                     bool writable, bool user, bool global)
{
    uint32_t base = linear & 0xffc00000u, gbase = gpa & 0xffc00000u;
    const uint32_t size = 4u << 20;
    /* Some of the region is mapped already, so a page of it was dropped
     * (its frame stopped holding translated code, say, as kernel text
     * patching does): map that page alone rather than the region again,
     * which would repeat the read-only protection of every code frame in it. */
    if (base < PAGE_SIZE || base + (uint64_t)size > sh->limit ||
        !guest_ram_contains(ram, gbase, size))
        return -EFAULT;
    if (sh->large_region[base >> 22])
        return shadow_map(sh, ram, linear, gpa, writable, user, global, true, true);
    int prot = PROT_READ | (writable ? PROT_WRITE : 0);
    void *p = mmap((void *)(uintptr_t)base, size, prot, MAP_SHARED | MAP_FIXED, ram->memfd, gbase);
    if (p == MAP_FAILED)
        return -errno;
    if (!user && pkey_mprotect(p, size, prot, sh->pkey_sup) < 0)
        return -errno;
    for (uint32_t i = 0; i < 1024; i++) {
        uint32_t pn = base / PAGE_SIZE + i, frame = gbase / PAGE_SIZE + i;
        if (bit(sh->mapped, pn))
            rmap_remove(sh, pn);
        set_bit(sh->mapped, pn, true);
        set_bit(sh->global, pn, global);
        set_bit(sh->large, pn, true);
        sh->owner[pn] = 0;
        if (!global)
            note_nonglobal(sh, pn);
        sh->rmap_frame[pn] = frame;
        sh->rmap_next[pn] = sh->rmap_head[frame];
        sh->rmap_head[frame] = pn + 1;
        /* Frames holding translated code stay read-only in every alias. */
        if (writable && guest_ram_is_code(ram, frame * PAGE_SIZE))
            mprotect((void *)(uintptr_t)(pn * PAGE_SIZE), PAGE_SIZE, PROT_READ);
    }
    sh->large_region[base >> 22] = 1;
    for (uint32_t i = 0; i < 1024; i++)
        invlpg_update(sh, base / PAGE_SIZE + i);
    return 0;
}

static void reserve(struct shadow *sh, uint32_t linear, uint64_t len)
{
    sh->unmaps++;
    if (mmap((void *)(uintptr_t)linear, len, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED)
        sh->broken = true; /* what should be gone may still be there */
}

static void forget(struct shadow *sh, uint32_t pn)
{
    rmap_remove(sh, pn);
    sh->owner[pn] = 0;
    set_bit(sh->mapped, pn, false);
    set_bit(sh->global, pn, false);
    set_bit(sh->large, pn, false);
    invlpg_update(sh, pn);
}

static void drop_dead(struct shadow *sh);

/* Make mapped page `pn` dead; false if it has to go instead. */
static bool make_dead(struct shadow *sh, uint32_t pn)
{
    if (bit(sh->large, pn))
        return false; /* its region's bookkeeping wants it gone */
    if (sh->ndead == SHADOW_DEAD_MAX)
        drop_dead(sh);
    if (mprotect((void *)(uintptr_t)(pn * PAGE_SIZE), PAGE_SIZE, PROT_NONE) < 0)
        return false;
    sh->killed++;
    sh->owner[pn] = SHADOW_DEAD;
    set_bit(sh->global, pn, false);
    sh->dead[sh->ndead++] = pn;
    invlpg_update(sh, pn);
    return true;
}

void shadow_unmap_page(struct shadow *sh, uint32_t linear)
{
    uint32_t pn = linear / PAGE_SIZE;
    if (!live(sh, pn) || make_dead(sh, pn))
        return;
    forget(sh, pn);
    reserve(sh, linear & PAGE_MASK, PAGE_SIZE);
}

void shadow_invlpg(struct shadow *sh, uint32_t linear)
{
    uint32_t region = linear >> 22;
    if (!sh->large_region[region]) {
        shadow_unmap_page(sh, linear);
        return;
    }
    if (bit(sh->mapped, linear / PAGE_SIZE) && !bit(sh->large, linear / PAGE_SIZE))
        shadow_unmap_page(sh, linear);
    for (uint32_t pn = region << 10; pn < (region + 1) << 10; pn++)
        if (bit(sh->large, pn))
            shadow_unmap_page(sh, pn * PAGE_SIZE);
    sh->large_region[region] = 0;
    for (uint32_t pn = region << 10; pn < (region + 1) << 10; pn++)
        invlpg_update(sh, pn);
}

void shadow_unmap_all(struct shadow *sh, bool keep_global)
{
    clear_nonglobal(sh);
    /* Runs of pages to drop, one mmap each; the bitmaps are scanned a byte
     * at a time where nothing is mapped. */
    for (uint64_t pn = 1; pn < SHADOW_PAGES;) {
        if (!sh->mapped[pn / 8] && pn % 8 == 0) {
            pn += 8;
            continue;
        }
        if (!bit(sh->mapped, (uint32_t)pn) || (keep_global && bit(sh->global, (uint32_t)pn))) {
            pn++;
            continue;
        }
        uint64_t end = pn;
        while (end < SHADOW_PAGES && bit(sh->mapped, (uint32_t)end) &&
               !(keep_global && bit(sh->global, (uint32_t)end)))
            forget(sh, (uint32_t)end++);
        reserve(sh, (uint32_t)(pn * PAGE_SIZE), (end - pn) * PAGE_SIZE);
        pn = end;
    }
    if (!keep_global)
        memset(sh->large_region, 0, sizeof(sh->large_region));
    for (unsigned i = 0; i < sh->nspaces; i++)
        sh->spaces[i].npages = 0; /* their pages went too */
    sh->ndead = 0;                /* as did the dead (never global) */
}

/* What the new tables make of linear page `pn`, as shadow_map's attributes;
 * false where a TLB could not load it without setting an A bit. */
static bool probe(struct guest_ram *ram, const struct paging_mode *m, uint32_t pn,
                  struct walk *w, uint8_t *attr)
{
    uint32_t err;
    if (!paging_walk(ram, m, pn * PAGE_SIZE, WALK_PROBE, w, &err) || w->large)
        return false;
    *attr = (uint8_t)((w->writable && w->dirty ? SHADOW_W : 0) | (w->user ? SHADOW_U : 0));
    return true;
}

static bool maps_same(struct shadow *sh, struct guest_ram *ram, const struct paging_mode *m,
                      uint32_t pn)
{
    struct walk w;
    uint8_t attr;
    return !bit(sh->large, pn) && probe(ram, m, pn, &w, &attr) && !w.global &&
           w.gpa / PAGE_SIZE == sh->rmap_frame[pn] && attr == sh->attr[pn];
}

/* Consecutive linear pages that a CR3 write re-keys (key >= 0, all with
 * protection `prot`) or drops (key < 0): one system call for the run. */
struct run {
    uint32_t start, end;
    int key, prot;
};

static void run_flush(struct shadow *sh, struct run *r)
{
    if (r->end == r->start)
        return;
    void *addr = (void *)(uintptr_t)(r->start * PAGE_SIZE);
    size_t len = (size_t)(r->end - r->start) * PAGE_SIZE;
    if (r->key >= 0 && pkey_mprotect(addr, len, r->prot, r->key) < 0) {
        /* Not re-keyed (out of host mappings, say): the pages go instead,
         * or the next space could use them. */
        for (uint32_t pn = r->start; pn < r->end; pn++)
            if (bit(sh->mapped, pn))
                forget(sh, pn);
        r->key = -1;
    }
    if (r->key < 0)
        reserve(sh, r->start * PAGE_SIZE, len);
    r->start = r->end = 0;
}

static void run_add(struct shadow *sh, struct run *r, uint32_t pn, int key, int prot)
{
    if (r->end != r->start && (pn != r->end || key != r->key || prot != r->prot))
        run_flush(sh, r);
    if (r->end == r->start)
        *r = (struct run){ .start = pn, .end = pn, .key = key, .prot = prot };
    r->end = pn + 1;
}

static void drop(struct shadow *sh, struct run *r, uint32_t pn)
{
    forget(sh, pn);
    run_add(sh, r, pn, -1, 0);
}

/* The host protection of mapped page `pn` (as shadow_map chose it). */
static int page_prot(struct shadow *sh, struct guest_ram *ram, uint32_t pn)
{
    return host_prot(ram, sh->attr[pn] & SHADOW_W, sh->rmap_frame[pn] * PAGE_SIZE);
}

/* Into the space's list; false if it cannot grow (then the page must go:
 * its key will be another space's one day). */
static bool park(struct shadow_space *s, uint32_t pn)
{
    if (s->npages == s->cap) {
        uint32_t cap = s->cap ? 2 * s->cap : 256;
        uint32_t *p = realloc(s->pn, cap * sizeof(*p));
        if (!p)
            return false;
        s->pn = p;
        s->cap = cap;
    }
    s->pn[s->npages++] = pn;
    return true;
}

/* Drop the pages carrying space `s`'s key; true if there were any. */
static bool space_drop(struct shadow *sh, struct shadow_space *s)
{
    struct run r = { 0 };
    uint8_t slot = (uint8_t)(s - sh->spaces + 1);
    bool any = false;
    for (uint32_t i = 0; i < s->npages; i++)
        if (sh->owner[s->pn[i]] == slot && bit(sh->mapped, s->pn[i])) {
            drop(sh, &r, s->pn[i]);
            any = true;
        }
    run_flush(sh, &r);
    s->npages = 0;
    return any;
}

/* Drop the dead pages for good. */
static void drop_dead(struct shadow *sh)
{
    struct run r = { 0 };
    for (uint32_t i = 0; i < sh->ndead; i++)
        if (sh->owner[sh->dead[i]] == SHADOW_DEAD && bit(sh->mapped, sh->dead[i]))
            drop(sh, &r, sh->dead[i]);
    run_flush(sh, &r);
    sh->ndead = 0;
}

static bool evict_parked(struct shadow *sh)
{
    bool any = sh->ndead > 0;
    drop_dead(sh);
    for (unsigned i = 0; i < sh->nspaces; i++)
        if ((int)i != sh->cur)
            any |= space_drop(sh, &sh->spaces[i]);
    return any;
}

/* Each parked page may be a host mapping of its own, and the host allows a
 * process only so many (vm.max_map_count, 65530 by default): past
 * SHADOW_PARKED_MAX listed pages, the least recently used spaces go. */
static void limit_parked(struct shadow *sh)
{
    for (;;) {
        uint32_t total = 0;
        struct shadow_space *lru = NULL;
        for (unsigned i = 0; i < sh->nspaces; i++) {
            struct shadow_space *s = &sh->spaces[i];
            total += s->npages;
            if ((int)i != sh->cur && s->npages && (!lru || s->last_used < lru->last_used))
                lru = s;
        }
        if (total <= SHADOW_PARKED_MAX || !lru)
            return;
        space_drop(sh, lru);
    }
}

/* The slot of page directory `cr3`; with `claim`, if it has none, the least
 * recently used one other than `spare`, its parked pages dropped. */
static struct shadow_space *space_slot(struct shadow *sh, uint32_t cr3, bool claim,
                                       const struct shadow_space *spare)
{
    struct shadow_space *lru = NULL;
    for (unsigned i = 0; i < sh->nspaces; i++) {
        struct shadow_space *s = &sh->spaces[i];
        if (s->last_used && s->cr3 == cr3) {
            s->last_used = ++sh->clock;
            return s;
        }
        if (s != spare && (!lru || s->last_used < lru->last_used))
            lru = s;
    }
    if (!claim || !lru)
        return NULL;
    space_drop(sh, lru);
    lru->cr3 = cr3;
    lru->last_used = ++sh->clock;
    return lru;
}

void shadow_switch(struct shadow *sh, struct guest_ram *ram, const struct paging_mode *m,
                   uint32_t old_cr3)
{
    struct shadow_space *new = space_slot(sh, m->cr3 & PAGE_MASK, false, NULL);
    struct shadow_space *old = space_slot(sh, old_cr3 & PAGE_MASK, false, NULL);
    uint8_t new_slot = new ? (uint8_t)(new - sh->spaces + 1) : 0;
    /* A space is parked from the second time it is left: the first time it
     * only gets a slot, so that the short-lived (a fork child that execs,
     * say) do not cost a re-keying and then an eviction. */
    if (!old)
        space_slot(sh, old_cr3 & PAGE_MASK, true, new);
    else if (old == new)
        old = NULL; /* the same directory again: nothing to park */
    uint8_t old_slot = old ? (uint8_t)(old - sh->spaces + 1) : 0;
    struct run r = { 0 };
    if (sh->nnonglobal > sh->max_nonglobal) {
        shadow_unmap_all(sh, true);
    } else {
        /* The pages with key 0: keep what the new tables map the same, park
         * the old space's user pages under its key, drop the rest.  The list
         * is rebuilt in place with the kept pages.  (The old space's pages
         * that carry its key already are in its list and stay there.) */
        uint32_t n = sh->nnonglobal;
        sh->nnonglobal = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t pn = sh->nonglobal[i];
            set_bit(sh->listed, pn, false);
            if (!bit(sh->mapped, pn) || bit(sh->global, pn) || sh->owner[pn])
                continue;
            if (maps_same(sh, ram, m, pn)) {
                note_nonglobal(sh, pn);
                sh->kept++;
            } else if (old && (sh->attr[pn] & SHADOW_U) && !bit(sh->large, pn) && park(old, pn)) {
                run_add(sh, &r, pn, old->key, page_prot(sh, ram, pn));
                sh->owner[pn] = old_slot;
                hint_set(sh, pn, false);
                sh->parked++;
            } else {
                drop(sh, &r, pn);
            }
        }
    }
    if (new) {
        /* The new space's keyed pages (its list, compacted in place: entries
         * whose page lost the key since, and repeats, go): those its tables
         * still map the same way are used again, the rest are dropped.
         * `listed`, clear for keyed pages, marks the ones seen. */
        uint32_t k = 0;
        for (uint32_t i = 0; i < new->npages; i++) {
            uint32_t pn = new->pn[i];
            if (sh->owner[pn] != new_slot || bit(sh->listed, pn))
                continue;
            if (maps_same(sh, ram, m, pn)) {
                set_bit(sh->listed, pn, true);
                hint_set(sh, pn, true);
                new->pn[k++] = pn;
                sh->reloaded++;
            } else {
                drop(sh, &r, pn);
            }
        }
        new->npages = k;
        for (uint32_t i = 0; i < k; i++)
            set_bit(sh->listed, new->pn[i], false);
    }
    run_flush(sh, &r);
    sh->cur = new ? new_slot - 1 : -1;
    limit_parked(sh);
    sh->pkru_deny = 0;
    for (unsigned i = 0; i < sh->nspaces; i++)
        if ((int)i != sh->cur)
            sh->pkru_deny |= 1u << (2 * sh->spaces[i].key);
}

void shadow_set_code(struct shadow *sh, struct guest_ram *ram, uint32_t gpa, bool code)
{
    gpa &= PAGE_MASK;
    if (guest_ram_is_code(ram, gpa) == code)
        return;
    guest_ram_set_code(ram, gpa, code);
    /* Becoming code: every alias read-only.  No longer code: drop the
     * aliases and let them fault back in with the guest's permissions. */
    uint32_t next;
    for (uint32_t e = sh->rmap_head[gpa / PAGE_SIZE]; e; e = next) {
        uint32_t pn = e - 1;
        next = sh->rmap_next[pn];
        if (!code)
            shadow_unmap_page(sh, pn * PAGE_SIZE);
        else if (sh->owner[pn] != SHADOW_DEAD) /* PROT_NONE stays */
            mprotect((void *)(uintptr_t)(pn * PAGE_SIZE), PAGE_SIZE, PROT_READ);
    }
}
