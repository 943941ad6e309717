/*
 * Guest memory as the guest CPU sees it, for the monitor's own accesses
 * (emulated instructions, exception delivery, descriptor tables).
 *
 * Linear addresses are translated here through the guest's page tables
 * (identity while paging is off); a refusal becomes a #PF with CR2 set.
 * Physical addresses outside RAM read as all ones and ignore writes, like an
 * unclaimed bus.  Writes go through the monitor's view of RAM, which the
 * write protection of code pages does not see, so they invalidate
 * translations themselves.
 */
#include <string.h>

#include "popek/vm.h"

struct paging_mode vm_paging_mode(const struct vm *vm)
{
    const struct vcpu *c = &vm->cpu;
    return (struct paging_mode){ c->cr3, c->cr4 & CR4_PSE, c->cr4 & CR4_PGE, c->cr0 & CR0_WP };
}

bool vm_translate(struct vm *vm, uint32_t lin, uint32_t access, struct walk *w, struct fault *f)
{
    if (!(vm->cpu.cr0 & CR0_PG)) {
        *w = (struct walk){ .gpa = lin, .writable = true, .user = true, .global = true, .dirty = true,
                            .large = false };
        return true;
    }
    struct paging_mode m = vm_paging_mode(vm);
    uint32_t err;
    if (paging_walk(&vm->ram, &m, lin, access, w, &err))
        return true;
    vm->cpu.blk->cr2 = lin;
    *f = (struct fault){ EXC_PF, true, err };
    return false;
}

int vm_shadow_fill(struct vm *vm, uint32_t lin, const struct walk *w, uint32_t eip)
{
    /* Read-only until the first write, so that the write sets D.  A guest
     * 4 MiB page shares its A/D bits: one mmap for all of it.  With paging
     * off every page is writable, so map 4 MiB of RAM at a time too. */
    bool writable = w->writable && w->dirty;
    /* Another instruction than the one the last #PF retried uses the page:
     * map it at the next #PF too (emulate.c, pf_retry_map). */
    if (eip != vm->pf_retry_eip)
        vm->shadow.toggles[lin / PAGE_SIZE] = 0;
    if ((w->large || !(vm->cpu.cr0 & CR0_PG)) &&
        shadow_map_large(&vm->shadow, &vm->ram, lin, w->gpa, writable, w->user, w->global) == 0)
        return 0;
    return shadow_map(&vm->shadow, &vm->ram, lin, w->gpa & PAGE_MASK, writable, w->user, w->global,
                      w->large, true);
}

/* Not RAM: the MMIO bus, with the access's own size where it has one. */
static void mmio_access(struct vm *vm, uint32_t gpa, uint8_t *p, uint32_t len, bool write)
{
    vm->devices_touched = true;
    if (len == 1 || len == 2 || len == 4) {
        uint32_t v = 0;
        if (write) {
            memcpy(&v, p, len);
            mmio_write(&vm->mmio, gpa, len, v);
        } else {
            v = mmio_read(&vm->mmio, gpa, len);
            memcpy(p, &v, len);
        }
        return;
    }
    for (uint32_t i = 0; i < len; i++)
        mmio_access(vm, gpa + i, p + i, 1, write);
}

/* Walk [lin, lin+len) page by page; a fault leaves it in vm->mem_fault. */
static bool linear_access(struct vm *vm, uint32_t lin, void *buf, uint32_t len, bool write,
                          bool user)
{
    uint8_t *p = buf;
    while (len) {
        uint32_t chunk = PAGE_SIZE - (lin & (PAGE_SIZE - 1));
        if (chunk > len)
            chunk = len;
        struct walk w;
        if (!vm_translate(vm, lin, (write ? PFERR_W : 0) | (user ? PFERR_U : 0), &w, &vm->mem_fault))
            return false;
        uint32_t gpa = w.gpa;
        uint8_t *host = guest_ram_ptr(&vm->ram, gpa, chunk);
        if (!host) {
            mmio_access(vm, gpa, p, chunk, write);
        } else if (write) {
            memcpy(host, p, chunk);
            if (guest_ram_is_code(&vm->ram, gpa))
                tcache_invalidate_phys(vm, gpa);
        } else {
            memcpy(p, host, chunk);
        }
        p += chunk;
        lin += chunk;
        len -= chunk;
    }
    return true;
}

bool vm_read_linear(struct vm *vm, uint32_t lin, void *buf, uint32_t len)
{
    return linear_access(vm, lin, buf, len, false, false);
}

bool vm_write_linear(struct vm *vm, uint32_t lin, const void *buf, uint32_t len)
{
    return linear_access(vm, lin, (void *)buf, len, true, false);
}

static bool seg_check(struct vm *vm, unsigned seg, uint32_t off, uint32_t len, bool write,
                      struct fault *f)
{
    const struct seg_cache *sc = &vm->cpu.seg[seg];
    uint8_t vec = seg == SEG_SS ? EXC_SS : EXC_GP;
    if (!sc->valid || !seg_check_limit(sc, off, len))
        goto fail;
    uint16_t type = sc->attr & SEG_ATTR_TYPE;
    if (write && ((type & SEG_TYPE_CODE) || !(type & SEG_TYPE_WRITABLE)))
        goto fail;
    if (!write && (type & SEG_TYPE_CODE) && !(type & SEG_TYPE_READABLE))
        goto fail;
    return true;
fail:
    *f = (struct fault){ vec, true, 0 };
    return false;
}

/* Data accesses of emulated instructions are user accesses at CPL 3. */
bool seg_read(struct vm *vm, unsigned seg, uint32_t off, void *buf, uint32_t len, struct fault *f)
{
    if (!seg_check(vm, seg, off, len, false, f))
        return false;
    if (linear_access(vm, vm->cpu.seg[seg].base + off, buf, len, false, vcpu_cpl(&vm->cpu) == 3))
        return true;
    *f = vm->mem_fault;
    return false;
}

bool seg_write(struct vm *vm, unsigned seg, uint32_t off, const void *buf, uint32_t len,
               struct fault *f)
{
    if (!seg_check(vm, seg, off, len, true, f))
        return false;
    if (linear_access(vm, vm->cpu.seg[seg].base + off, (void *)buf, len, true,
                      vcpu_cpl(&vm->cpu) == 3))
        return true;
    *f = vm->mem_fault;
    return false;
}

static uint32_t stack_mask(const struct vm *vm)
{
    return (vm->cpu.seg[SEG_SS].attr & SEG_ATTR_DB) ? 0xffffffffu : 0xffffu;
}

bool vm_push32(struct vm *vm, uint32_t val, struct fault *f)
{
    uint32_t *esp = vm_gpr(vm, R_ESP), mask = stack_mask(vm);
    uint32_t nsp = (*esp - 4) & mask;
    if (!seg_write(vm, SEG_SS, nsp, &val, 4, f))
        return false;
    *esp = (*esp & ~mask) | nsp;
    return true;
}

bool vm_pop32(struct vm *vm, uint32_t *val, struct fault *f)
{
    uint32_t *esp = vm_gpr(vm, R_ESP), mask = stack_mask(vm);
    if (!seg_read(vm, SEG_SS, *esp & mask, val, 4, f))
        return false;
    *esp = (*esp & ~mask) | ((*esp + 4) & mask);
    return true;
}

unsigned vm_fetch(struct vm *vm, uint32_t eip, struct fetch *out)
{
    const struct seg_cache *cs = &vm->cpu.seg[SEG_CS];
    uint32_t access = vcpu_cpl(&vm->cpu) == 3 ? PFERR_U : 0;
    out->n = 0;
    out->phys[0] = out->phys[1] = ~0u;
    out->faulted = false;
    out->global = true;
    if (eip > cs->limit) {
        out->faulted = true;
        out->f = (struct fault){ EXC_GP, true, 0 };
        return 0;
    }
    uint32_t want = cs->limit - eip + 1 < 15 ? cs->limit - eip + 1 : 15;
    uint32_t lin = cs->base + eip;
    if (want < 15) {
        /* An instruction running past the limit is a #GP(0), whatever its bytes. */
        out->faulted = true;
        out->f = (struct fault){ EXC_GP, true, 0 };
    }
    for (unsigned page = 0; page < 2 && out->n < want; page++) {
        struct walk w;
        uint32_t at = lin + out->n;
        struct fault pf;
        if (!vm_translate(vm, at, access, &w, &pf)) {
            if (!out->n || !out->faulted)
                out->f = pf; /* the first fault on the way wins */
            out->faulted = true;
            break;
        }
        uint32_t chunk = PAGE_SIZE - (at & ~PAGE_MASK);
        if (chunk > want - out->n)
            chunk = want - out->n;
        const uint8_t *src = guest_ram_ptr(&vm->ram, w.gpa, chunk);
        if (src)
            memcpy(out->bytes + out->n, src, chunk);
        else
            memset(out->bytes + out->n, 0xff, chunk);
        out->phys[page] = w.gpa & PAGE_MASK;
        out->global &= w.global;
        out->n += chunk;
    }
    return out->n;
}
