/*
 * Guest memory.
 *
 * Guest physical RAM is one memfd.  It is mapped once above 4 GiB (`host`),
 * where the monitor, loaders and devices read and write it, and piecewise into
 * the low 4 GiB of the process, which *is* the guest linear address space: the
 * host page tables of that range are the shadow page tables.
 *
 *   0x0000_0000 +-----------------------------+
 *               | guest linear space          |  PROT_NONE until a hidden fault
 *               |  (shadow mappings of memfd) |  maps a page (page 0 never: mmap_min_addr)
 *   mon_base    +-----------------------------+
 *               | monitor region              |  TC, stubs, vCPU block, poll pages
 *   4 GiB       +-----------------------------+
 *               | host: popek (PIE), heap,    |
 *               | libs, `host` view of RAM    |
 */
#ifndef POPEK_MMU_H
#define POPEK_MMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGE_SIZE 4096u
#define PAGE_MASK (~(uint32_t)(PAGE_SIZE - 1))
#define GUEST_SPACE (1ull << 32)

struct guest_ram {
    int memfd;
    uint8_t *host;      /* whole RAM, mapped above 4 GiB */
    uint32_t size;      /* bytes, multiple of PAGE_SIZE */
    uint8_t *code_bits; /* one bit per page: translations exist from it */
};

/* Reserve the low 4 GiB (PROT_NONE) and create RAM.  -errno on failure. */
int guest_ram_init(struct guest_ram *ram, uint32_t size);
void guest_ram_destroy(struct guest_ram *ram);

static inline bool guest_ram_contains(const struct guest_ram *ram, uint64_t gpa, uint64_t len)
{
    return gpa < ram->size && len <= ram->size - gpa;
}

/* Host pointer for [gpa, gpa+len) or NULL when it is not all RAM. */
static inline void *guest_ram_ptr(const struct guest_ram *ram, uint64_t gpa, uint64_t len)
{
    return guest_ram_contains(ram, gpa, len) ? ram->host + gpa : NULL;
}

static inline bool guest_ram_is_code(const struct guest_ram *ram, uint32_t gpa)
{
    uint32_t pfn = gpa / PAGE_SIZE;
    return gpa < ram->size && (ram->code_bits[pfn / 8] >> (pfn % 8)) & 1;
}

static inline void guest_ram_set_code(struct guest_ram *ram, uint32_t gpa, bool code)
{
    uint32_t pfn = gpa / PAGE_SIZE;
    if (gpa >= ram->size)
        return;
    if (code)
        ram->code_bits[pfn / 8] |= (uint8_t)(1u << (pfn % 8));
    else
        ram->code_bits[pfn / 8] &= (uint8_t)~(1u << (pfn % 8));
}

/*
 * The shadow: the host page tables of the low 4 GiB, managed with mmap.
 *
 * It behaves like an unbounded TLB, which makes it architecturally exact
 * without tracing the guest's page tables: x86 lets a TLB keep any entry
 * until INVLPG, a CR3 write (non-global entries) or a paging-mode change, and
 * never caches not-present entries, so a mapping made on a hidden fault from
 * the guest's tables at that moment stays valid until one of those events,
 * which drop it here.  Pages holding translated code are the one thing traced:
 * their every linear alias (found through the reverse map) is read-only.
 *
 * Supervisor-only guest pages carry protection key `pkey_sup`, which PKRU
 * denies while the guest runs at CPL 3.
 *
 * A CR3 write is where this costs: every non-global page would refault, at a
 * host signal each, and be mapped again, at an mmap each.  So the pages of the
 * last SHADOW_SPACES page directories stay mapped, each space's behind a
 * protection key of its own that PKRU denies while another space is loaded
 * ("parked"; U/S pages only: supervisor pages already carry pkey_sup).  A CR3
 * write re-keys the old space's fresh pages (key 0) to its key, in runs, and
 * checks each parked page of the new space against its tables with a probe
 * walk, as a TLB may load any entry whose A bit is already set: what maps
 * the same is used again as it is, the rest is dropped.  Pages the new
 * tables map exactly as the old ones (text shared by two processes) are
 * simply kept with key 0.  A page the loaded space touches while another
 * space's key covers it faults like an unmapped one and is mapped again (or
 * only loses the key, if it maps the same frame the same way).  A space is
 * parked from the second time it is left, so a fork child that execs costs
 * no re-keying.
 *
 * A single page dropped (INVLPG, the end of a CR0.WP=0 write step, a frame
 * that stops holding code) is only made PROT_NONE ("dead"), keeping its frame:
 * if the guest maps that frame there again the same way (a kernel that unmaps
 * and remaps a page, a #PF handler making a page present), one mprotect takes
 * it back instead of an mmap placing it.  At most SHADOW_DEAD_MAX dead pages
 * are kept (host mappings are finite; see the parked pages).
 */
#define SHADOW_PAGES (GUEST_SPACE / PAGE_SIZE)
#define SHADOW_SPACES 12  /* at most: as many as the host has protection keys for */
#define SHADOW_PARKED_MAX 16384 /* pages in all parked spaces' lists */
#define SHADOW_DEAD_MAX 4096    /* dead pages */
#define SHADOW_DEAD 0xffu       /* `owner` of a dead page */
#define SHADOW_TOGGLE_HOT 3     /* revivals after which the page stays dead (emulate.c) */

struct shadow_space {
    uint32_t cr3;       /* page directory base */
    int key;            /* its protection key */
    uint64_t last_used; /* 0: slot unused */
    /* The pages carrying its key, parked or (while it is loaded) in use;
     * may hold entries of pages that lost the key since (see owner). */
    uint32_t *pn;
    uint32_t npages, cap;
};

struct paging_mode;

struct shadow {
    uint8_t *mapped;    /* one bit per linear page: mapped from the memfd */
    uint8_t *global;    /* one bit per linear page: from a global guest mapping */
    uint8_t *large;     /* one bit per linear page: part of a guest 4 MiB page */
    uint8_t large_region[GUEST_SPACE >> 22]; /* some page of this 4 MiB region is */
    /* Reverse map, physical frame -> linear pages mapping it: a list per frame. */
    uint32_t *rmap_head;   /* per frame: entry index + 1, 0 = empty */
    uint32_t *rmap_next;   /* per linear page: next entry + 1 */
    uint32_t *rmap_frame;  /* per linear page: the frame it maps */
    int pkey_sup;
    uint32_t limit;     /* the monitor region starts here: never shadowed */
    /* Linear pages mapped with key 0 or pkey_sup from non-global guest
     * mappings, in mapping order (may hold stale entries): what a CR3 write
     * parks or drops, without scanning the bitmaps of all 4 GiB. */
    uint32_t *nonglobal;
    uint32_t nnonglobal, max_nonglobal;
    uint8_t *listed;    /* one bit per linear page: in `nonglobal` */
    uint8_t *attr;      /* per linear page: SHADOW_W/SHADOW_U it was mapped with */
    /* Per linear page: slot + 1 of the space whose key the mapping carries,
     * 0 for key 0 or pkey_sup (the loaded space's own, or kept for it),
     * SHADOW_DEAD for a dead page. */
    uint8_t *owner;
    uint32_t *dead;     /* the dead pages (may hold entries revived since) */
    uint32_t ndead;
    struct shadow_space spaces[SHADOW_SPACES];
    unsigned nspaces;   /* slots with a key */
    int cur;            /* slot of the loaded space, -1 if it has none */
    uint32_t key_bits;  /* both PKRU bits of every key the shadow owns */
    uint32_t pkru_deny; /* access-disable bits of the keys of parked spaces */
    uint64_t clock;
    uint64_t hidden_faults;
    uint64_t maps, unmaps;  /* host mmap calls placing / dropping shadow pages */
    uint64_t kept, parked, reloaded; /* pages a CR3 write kept / parked / found valid again */
    uint64_t killed, revived;        /* pages made dead / mapped again from dead */
    uint64_t retries_emulated;       /* instructions an IRET returned to, emulated instead of
                                      * reviving their page (emulate.c, pf_retry_map) */
    /* Per linear page: times a #PF handler's IRET revived it from dead with
     * the same frame, up to SHADOW_TOGGLE_HOT; 0 again on a hidden fault. */
    uint8_t *toggles;
    bool broken;        /* a page could not be dropped: the guest must not run on */
    /* One bit per linear page that an INVLPG has work on: mapped, in a 4 MiB
     * region with large mappings, or holding translated code (code_pages,
     * never cleared).  In the monitor region, where inline INVLPG tests it;
     * NULL until the VM sets it.  A set bit may be stale; a clear one never. */
    uint8_t *invlpg_map;
    uint8_t *code_pages;
    /* A byte per linear page, SHADOW_HINT_*: what translated code at a
     * checked site (translate.c, emit_page_check) tests before an access
     * that faulted there before.  Only a hint: a page hinted mapped that is
     * not (parked under another space's key, say) faults as without it.  In
     * the monitor region; NULL until the VM sets it. */
    uint8_t *hints;
};

#define SHADOW_W 1u
#define SHADOW_U 2u

#define SHADOW_HINT_NONE 0u     /* not mapped, or dead */
#define SHADOW_HINT_READ 1u     /* mapped read-only */
#define SHADOW_HINT_WRITE 3u    /* mapped writable */

int shadow_init(struct shadow *sh, const struct guest_ram *ram);
void shadow_destroy(struct shadow *sh);
/* Mapped for the loaded space (not under a parked space's key). */
bool shadow_is_mapped(const struct shadow *sh, uint32_t linear);
/* Map guest frame gpa at linear: read-only if !writable or gpa holds code;
 * supervisor pages get the supervisor protection key.  With `populate` the
 * host page-table entry is made too (for a page about to be accessed: that
 * saves the host a fault on the first touch). */
int shadow_map(struct shadow *sh, struct guest_ram *ram, uint32_t linear, uint32_t gpa,
               bool writable, bool user, bool global, bool large, bool populate);
/* All of the guest 4 MiB page containing `linear` (backed by RAM from the
 * frame of `gpa`): -EFAULT if it is not all RAM or would reach `limit`. */
int shadow_map_large(struct shadow *sh, struct guest_ram *ram, uint32_t linear, uint32_t gpa,
                     bool writable, bool user, bool global);
void shadow_unmap_page(struct shadow *sh, uint32_t linear);
/* INVLPG: the page, or every page of the guest 4 MiB page containing it. */
void shadow_invlpg(struct shadow *sh, uint32_t linear);
/* Drop every mapping, or every non-global one. */
void shadow_unmap_all(struct shadow *sh, bool keep_global);
/* A CR3 write, `m` the new paging state: keep the non-global pages the new
 * tables map the same way, park the old space's others (or drop them), and
 * take back those of the new space's parked pages its tables still map the
 * same way.  PKRU must then follow pkru_deny (vm_pkru). */
void shadow_switch(struct shadow *sh, struct guest_ram *ram, const struct paging_mode *m,
                   uint32_t old_cr3);
/* The frame (physical address) a dead page keeps, ~0u if the page is not dead. */
uint32_t shadow_dead_frame(const struct shadow *sh, uint32_t linear);
/* The page's hint as its state says (SHADOW_HINT_*). */
uint8_t shadow_hint(const struct shadow *sh, uint32_t linear);
/* Translated code starts on, or spills onto, linear page `linear`. */
void shadow_note_code_page(struct shadow *sh, uint32_t linear);
/* A page of RAM now holds translated code (or no longer does). */
void shadow_set_code(struct shadow *sh, struct guest_ram *ram, uint32_t gpa, bool code);

/* ---- the guest page walker (paging.c): 2-level 32-bit paging, 4 KiB and 4 MiB pages ---- */

#define PTE_P 0x001u
#define PTE_W 0x002u
#define PTE_U 0x004u
#define PTE_A 0x020u
#define PTE_D 0x040u
#define PTE_PS 0x080u
#define PTE_G 0x100u

#define PFERR_P 0x1u   /* #PF error code: protection violation (else not present) */
#define PFERR_W 0x2u   /* write access */
#define PFERR_U 0x4u   /* user-mode access */
#define PFERR_RSVD 0x8u /* a reserved bit was set in a paging entry */

struct walk {
    uint32_t gpa;      /* the translated physical address */
    bool writable, user, global;
    bool dirty;        /* the leaf's D bit after the walk */
    bool large;        /* through a 4 MiB page */
};

struct paging_mode {
    uint32_t cr3;
    bool pse, pge, wp;
};

/* Access flag: a TLB fill that changes nothing; it fails unless A is already
 * set at both levels. */
#define WALK_PROBE 0x80000000u

/* Translate `lin` for an access (PFERR_W, PFERR_U bits), setting A (and D on
 * writes) as the CPU does.  False with the #PF error code in *err if the
 * guest's tables refuse it. */
bool paging_walk(struct guest_ram *ram, const struct paging_mode *m, uint32_t lin,
                 uint32_t access, struct walk *w, uint32_t *err);

#endif
