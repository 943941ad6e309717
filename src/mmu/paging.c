/*
 * The guest page walker: 32-bit paging (SDM vol. 3A, 4.3), 4 KiB pages and,
 * with CR4.PSE, 4 MiB pages; CR0.WP; global pages with CR4.PGE.  Accessed and
 * dirty bits are set as the CPU sets them: A on every walk that succeeds, D on
 * a write.  The tables are read from guest RAM; a table outside RAM reads as
 * not present.
 */
#include <string.h>

#include "popek/mmu.h"

static uint32_t *entry_at(struct guest_ram *ram, uint32_t gpa)
{
    return guest_ram_ptr(ram, gpa & ~3u, 4);
}

bool paging_walk(struct guest_ram *ram, const struct paging_mode *m, uint32_t lin,
                 uint32_t access, struct walk *w, uint32_t *err)
{
    uint32_t *pde = entry_at(ram, (m->cr3 & PAGE_MASK) + (lin >> 22) * 4);
    if (!pde || !(*pde & PTE_P))
        goto not_present;
    uint32_t *pte = NULL;
    uint32_t eff; /* effective W/U: the AND of both levels */
    if ((*pde & PTE_PS) && m->pse) {
        /* Bits 21:13 are reserved without PSE-36 (which CPUID does not offer). */
        if (*pde & 0x003fe000u) {
            *err = PFERR_P | PFERR_RSVD | (access & (PFERR_W | PFERR_U));
            return false;
        }
        eff = *pde;
        w->gpa = (*pde & 0xffc00000u) | (lin & 0x003fffffu);
        w->global = m->pge && (*pde & PTE_G);
        w->large = true;
    } else {
        pte = entry_at(ram, (*pde & PAGE_MASK) + ((lin >> 12) & 0x3ff) * 4);
        if (!pte || !(*pte & PTE_P))
            goto not_present;
        eff = *pde & *pte;
        w->gpa = (*pte & PAGE_MASK) | (lin & ~PAGE_MASK);
        w->global = m->pge && (*pte & PTE_G);
        w->large = false;
    }
    w->user = eff & PTE_U;
    w->writable = eff & PTE_W;
    if ((access & PFERR_U) && !w->user)
        goto protection;
    if ((access & PFERR_W) && !w->writable && ((access & PFERR_U) || m->wp))
        goto protection;
    uint32_t *leaf = pte ? pte : pde;
    if (access & WALK_PROBE) {
        if (!(*pde & PTE_A) || !(*leaf & PTE_A))
            goto not_present;
        w->dirty = *leaf & PTE_D;
        return true;
    }
    /* Success: the CPU sets A in both levels, D in the leaf on a write. */
    *pde |= PTE_A;
    *leaf |= PTE_A | ((access & PFERR_W) ? PTE_D : 0);
    w->dirty = *leaf & PTE_D;
    return true;

not_present:
    *err = access & (PFERR_W | PFERR_U);
    return false;
protection:
    *err = PFERR_P | (access & (PFERR_W | PFERR_U));
    return false;
}
