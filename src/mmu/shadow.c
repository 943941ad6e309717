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
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
    sh->spaces = calloc(SHADOW_SPACES, sizeof(*sh->spaces));
    if (!sh->mapped || !sh->global || !sh->large || !sh->rmap_head || !sh->rmap_next ||
        !sh->rmap_frame || !sh->nonglobal || !sh->listed || !sh->attr || !sh->spaces)
        return -ENOMEM;
    sh->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    /* Without protection keys, ring 3 cannot be told from ring 0 in the
     * shadow; refuse rather than let guest user code read kernel pages. */
    sh->pkey_sup = pkey_alloc(0, 0);
    return sh->pkey_sup < 0 ? -errno : 0;
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
    free(sh->spaces);
    if (sh->pagemap >= 0)
        close(sh->pagemap);
    memset(sh, 0, sizeof(*sh));
}

bool shadow_is_mapped(const struct shadow *sh, uint32_t linear)
{
    return bit(sh->mapped, linear / PAGE_SIZE);
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

int shadow_map(struct shadow *sh, struct guest_ram *ram, uint32_t linear, uint32_t gpa,
               bool writable, bool user, bool global, bool large, bool populate)
{
    linear &= PAGE_MASK;
    gpa &= PAGE_MASK;
    uint32_t pn = linear / PAGE_SIZE;
    if (linear < PAGE_SIZE || !guest_ram_contains(ram, gpa, PAGE_SIZE))
        return -EFAULT;
    if (bit(sh->mapped, pn))
        rmap_remove(sh, pn);
    int prot = PROT_READ | (writable && !guest_ram_is_code(ram, gpa) ? PROT_WRITE : 0);
    void *p = mmap((void *)(uintptr_t)linear, PAGE_SIZE, prot,
                   MAP_SHARED | MAP_FIXED | (populate ? MAP_POPULATE : 0), ram->memfd, gpa);
    if (p == MAP_FAILED)
        return -errno;
    sh->maps++;
    if (!user && pkey_mprotect(p, PAGE_SIZE, prot, sh->pkey_sup) < 0)
        return -errno;
    set_bit(sh->mapped, pn, true);
    set_bit(sh->global, pn, global);
    set_bit(sh->large, pn, large);
    sh->attr[pn] = (uint8_t)((writable ? SHADOW_W : 0) | (user ? SHADOW_U : 0));
    if (!global)
        note_nonglobal(sh, pn);
    if (large)
        sh->large_region[pn >> 10] = 1;
    uint32_t frame = gpa / PAGE_SIZE;
    sh->rmap_frame[pn] = frame;
    sh->rmap_next[pn] = sh->rmap_head[frame];
    sh->rmap_head[frame] = pn + 1;
    return 0;
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
    return 0;
}

static void reserve(struct shadow *sh, uint32_t linear, uint64_t len)
{
    sh->unmaps++;
    mmap((void *)(uintptr_t)linear, len, PROT_NONE,
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}

static void forget(struct shadow *sh, uint32_t pn)
{
    rmap_remove(sh, pn);
    set_bit(sh->mapped, pn, false);
    set_bit(sh->global, pn, false);
    set_bit(sh->large, pn, false);
}

void shadow_unmap_page(struct shadow *sh, uint32_t linear)
{
    uint32_t pn = linear / PAGE_SIZE;
    if (!bit(sh->mapped, pn))
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
}

/* The slot remembering page directory `cr3`, or, with `claim`, the least
 * recently used one other than `spare`, emptied for it. */
static struct shadow_space *space_slot(struct shadow *sh, uint32_t cr3, bool claim,
                                       const struct shadow_space *spare)
{
    struct shadow_space *lru = NULL;
    for (unsigned i = 0; i < SHADOW_SPACES; i++) {
        struct shadow_space *s = &sh->spaces[i];
        if (s->npages && s->cr3 == cr3) {
            s->last_used = ++sh->clock;
            return s;
        }
        if (s != spare && (!lru || s->last_used < lru->last_used))
            lru = s;
    }
    if (!claim)
        return NULL;
    *lru = (struct shadow_space){ .cr3 = cr3, .last_used = ++sh->clock };
    return lru;
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

static int cmp_pn(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Into `space`, the mapped non-global 4 KiB pages the guest has touched since
 * they were mapped: those with a host page-table entry (mmap does not make
 * one; the first access does), read from /proc/self/pagemap.
 * Pages mapped but never used are not worth mapping again. */
static void remember_touched(struct shadow *sh, struct shadow_space *space)
{
    uint32_t *pn = space->pn, n = 0;
    space->npages = 0;
    if (sh->pagemap < 0)
        return;
    for (uint32_t i = 0; i < sh->nnonglobal && i < sh->max_nonglobal && n < SHADOW_SPACE_PAGES; i++) {
        uint32_t p = sh->nonglobal[i];
        if (bit(sh->mapped, p) && !bit(sh->global, p) && !bit(sh->large, p))
            pn[n++] = p;
    }
    qsort(pn, n, sizeof(*pn), cmp_pn);
    /* One read per window of 512 pages holding any: a pread costs far
     * more than the entries of the holes between a process's pages. */
    for (uint32_t i = 0; i < n;) {
        uint64_t entry[512];
        uint32_t first = pn[i], k = i;
        while (k < n && pn[k] - first < 512)
            k++;
        uint32_t len = pn[k - 1] - first + 1;
        ssize_t got = pread(sh->pagemap, entry, len * sizeof(entry[0]), (off_t)first * 8);
        uint32_t have = got > 0 ? (uint32_t)got / 8 : 0;
        for (; i < k; i++)
            if (pn[i] - first < have && entry[pn[i] - first] >> 63)
                pn[space->npages++] = pn[i];
    }
}

void shadow_switch(struct shadow *sh, struct guest_ram *ram, const struct paging_mode *m,
                   uint32_t old_cr3)
{
    struct shadow_space *new = space_slot(sh, m->cr3 & PAGE_MASK, false, NULL);
    struct shadow_space *old = space_slot(sh, old_cr3 & PAGE_MASK, true, new);
    remember_touched(sh, old);
    if (sh->nnonglobal > sh->max_nonglobal) {
        shadow_unmap_all(sh, true);
    } else {
        /* Keep what maps the same, drop the rest (runs of consecutive pages
         * in one mmap); the list is rebuilt in place with the kept pages. */
        uint32_t n = sh->nnonglobal;
        sh->nnonglobal = 0;
        for (uint32_t i = 0; i < n;) {
            uint32_t pn = sh->nonglobal[i++];
            set_bit(sh->listed, pn, false);
            if (!bit(sh->mapped, pn) || bit(sh->global, pn))
                continue;
            if (maps_same(sh, ram, m, pn)) {
                note_nonglobal(sh, pn);
                sh->kept++;
                continue;
            }
            uint32_t end = pn;
            forget(sh, end++);
            while (i < n && sh->nonglobal[i] == end && bit(sh->mapped, end) &&
                   !bit(sh->global, end) && !maps_same(sh, ram, m, end)) {
                set_bit(sh->listed, end, false);
                forget(sh, end++);
                i++;
            }
            reserve(sh, pn * PAGE_SIZE, (uint64_t)(end - pn) * PAGE_SIZE);
        }
    }
    for (uint32_t i = 0; new && i < new->npages; i++) {
        uint32_t pn = new->pn[i];
        struct walk w;
        uint8_t attr;
        if (bit(sh->mapped, pn) || pn * PAGE_SIZE >= sh->limit || !probe(ram, m, pn, &w, &attr) ||
            shadow_map(sh, ram, pn * PAGE_SIZE, w.gpa, attr & SHADOW_W, attr & SHADOW_U, w.global,
                       false, false) < 0)
            continue;
        sh->restored++;
    }
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
        if (code)
            mprotect((void *)(uintptr_t)(pn * PAGE_SIZE), PAGE_SIZE, PROT_READ);
        else
            shadow_unmap_page(sh, pn * PAGE_SIZE);
    }
}
