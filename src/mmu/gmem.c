/*
 * Guest memory as the guest CPU sees it, for the monitor's own accesses
 * (emulated instructions, exception delivery, descriptor tables).
 *
 * Linear addresses are translated here (identity while paging is off);
 * physical addresses outside RAM read as all ones and ignore writes, like an
 * unclaimed bus.  Writes go through the monitor's view of RAM, which the
 * write protection of code pages does not see, so they invalidate
 * translations themselves.
 */
#include <string.h>

#include "popek/vm.h"

static bool linear_to_phys(struct vm *vm, uint32_t lin, uint32_t *gpa)
{
    (void)vm; /* paging arrives with the shadow page tables */
    *gpa = lin;
    return true;
}

/* Walk [lin, lin+len) page by page. */
static bool linear_access(struct vm *vm, uint32_t lin, void *buf, uint32_t len, bool write)
{
    uint8_t *p = buf;
    while (len) {
        uint32_t chunk = PAGE_SIZE - (lin & (PAGE_SIZE - 1));
        if (chunk > len)
            chunk = len;
        uint32_t gpa;
        if (!linear_to_phys(vm, lin, &gpa))
            return false;
        uint8_t *host = guest_ram_ptr(&vm->ram, gpa, chunk);
        if (write) {
            if (host) {
                memcpy(host, p, chunk);
                if (guest_ram_is_code(&vm->ram, gpa))
                    tcache_invalidate_phys(vm, gpa);
            }
        } else if (host) {
            memcpy(p, host, chunk);
        } else {
            memset(p, 0xff, chunk);
        }
        p += chunk;
        lin += chunk;
        len -= chunk;
    }
    return true;
}

bool vm_read_linear(struct vm *vm, uint32_t lin, void *buf, uint32_t len)
{
    return linear_access(vm, lin, buf, len, false);
}

bool vm_write_linear(struct vm *vm, uint32_t lin, const void *buf, uint32_t len)
{
    return linear_access(vm, lin, (void *)buf, len, true);
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

bool seg_read(struct vm *vm, unsigned seg, uint32_t off, void *buf, uint32_t len, struct fault *f)
{
    if (!seg_check(vm, seg, off, len, false, f))
        return false;
    return vm_read_linear(vm, vm->cpu.seg[seg].base + off, buf, len);
}

bool seg_write(struct vm *vm, unsigned seg, uint32_t off, const void *buf, uint32_t len,
               struct fault *f)
{
    if (!seg_check(vm, seg, off, len, true, f))
        return false;
    return vm_write_linear(vm, vm->cpu.seg[seg].base + off, buf, len);
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
