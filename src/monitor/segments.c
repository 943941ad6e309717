/*
 * Guest segments and their host shadows.
 *
 * The guest's segment registers are virtual: struct seg_cache holds each one's
 * hidden part as the guest loaded it.  Translated code runs on host LDT
 * descriptors that shadow those caches: same base, same type, DPL 3, and a
 * limit truncated so that no offset reaches the monitor region at mon_base.
 * An access that the truncation refuses but the guest's limit allows raises a
 * host #GP that the fault handler tells apart from a real limit violation.
 *
 * Host LDT slots are handed out by descriptor value: slot 0 is the monitor
 * segment (%gs), the rest are allocated on demand and recycled all at once
 * when the LDT is full (then every live shadow is rewritten).  Segment loads
 * are rare (callouts), so a linear search over the live slots is enough.
 */
#define _GNU_SOURCE
#include <asm/ldt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "popek/vm.h"

#define LDT_MONITOR_SLOT 0
#define LDT_TEMP_SLOT(seg) (1 + (seg)) /* one per segment register, see seg_temp_selector */
#define LDT_FLAT_SLOT (1 + SEG_COUNT)   /* vcpu_block.flat_sel; also flat readable code's CS alias */
#define LDT_FLAT_RW_SLOT (2 + SEG_COUNT) /* flat writable data (SYSENTER/SYSEXIT's SS) */
#define LDT_FIRST_DYNAMIC (3 + SEG_COUNT)
#define LDT_SLOTS 8192
#define LDT_SEL(slot) ((uint16_t)(((slot) << 3) | 4 | 3))

/* What a host slot holds, to find it again. */
struct host_desc {
    uint32_t base, limit;
    uint8_t contents;   /* MODIFY_LDT_CONTENTS_* */
    bool read_only, seg32, pages;
};

/* The process's LDT as we wrote it (one VM per process: the LDT is the
 * process's, so is this). */
struct host_ldt {
    struct host_desc slot[LDT_SLOTS];
    unsigned next; /* next free slot */
};

void segments_destroy(struct vm *vm)
{
    free(vm->ldt);
    vm->ldt = NULL;
}

static int ldt_write(unsigned slot, const struct host_desc *d)
{
    struct user_desc ud = {
        .entry_number = slot,
        .base_addr = d->base,
        .limit = d->limit,
        .seg_32bit = d->seg32,
        .contents = d->contents,
        .read_exec_only = d->read_only,
        .limit_in_pages = d->pages,
        .seg_not_present = 0,
        .useable = 1,
    };
    if (syscall(SYS_modify_ldt, 0x11, &ud, sizeof(ud)) < 0)
        return -errno;
    return 0;
}

int segments_init(struct vm *vm)
{
    vm->ldt = calloc(1, sizeof(*vm->ldt));
    if (!vm->ldt)
        return -ENOMEM;
    struct host_desc mon = {
        .base = vm->mon_base,
        .limit = (vm->mon_size >> 12) - 1,
        .contents = MODIFY_LDT_CONTENTS_DATA,
        .seg32 = true,
        .pages = true,
    };
    int err = ldt_write(LDT_MONITOR_SLOT, &mon);
    if (err)
        return err;
    vm->ldt->slot[LDT_MONITOR_SLOT] = mon;
    /* Guest linear memory below the monitor, read-only (how inline segment
     * loads read the guest's GDT) and writable: the shadows of flat 4 GiB
     * segments, in fixed slots so that translated code can name them
     * (inline SYSENTER/SYSEXIT, translate.c). */
    for (unsigned slot = LDT_FLAT_SLOT; slot <= LDT_FLAT_RW_SLOT; slot++) {
        struct host_desc flat = {
            .limit = (vm->mon_base >> 12) - 1,
            .contents = MODIFY_LDT_CONTENTS_DATA,
            .read_only = slot == LDT_FLAT_SLOT,
            .seg32 = true,
            .pages = true,
        };
        if ((err = ldt_write(slot, &flat)))
            return err;
        vm->ldt->slot[slot] = flat;
    }
    vm->ldt->next = LDT_FIRST_DYNAMIC;
    vm->cpu.blk->mon_gs = LDT_SEL(LDT_MONITOR_SLOT);
    vm->cpu.blk->flat_sel = LDT_SEL(LDT_FLAT_SLOT);
    return 0;
}

bool seg_check_limit(const struct seg_cache *sc, uint32_t off, uint32_t len)
{
    uint32_t last = off + len - 1;
    if (last < off && len)
        return false; /* wraps the offset space */
    if ((sc->attr & SEG_ATTR_S) && !(sc->attr & SEG_TYPE_CODE) && (sc->attr & SEG_TYPE_EXPDOWN)) {
        uint32_t upper = (sc->attr & SEG_ATTR_DB) ? 0xffffffffu : 0xffffu;
        return off > sc->limit && last <= upper;
    }
    return last <= sc->limit;
}

/*
 * The host descriptor for a guest segment, or false if no host descriptor can
 * represent it safely (then the slot gets an empty segment and every access
 * faults into the monitor).
 */
static bool host_desc_for(const struct vm *vm, const struct seg_cache *sc, bool cs_alias,
                          struct host_desc *d)
{
    uint16_t type = sc->attr & SEG_ATTR_TYPE;
    bool code = type & SEG_TYPE_CODE;
    memset(d, 0, sizeof(*d));
    d->seg32 = sc->attr & SEG_ATTR_DB;
    d->base = sc->base;
    if (code && (!cs_alias || !(type & SEG_TYPE_READABLE)))
        return false;
    d->contents = MODIFY_LDT_CONTENTS_DATA;
    d->read_only = code || !(type & SEG_TYPE_WRITABLE);

    if (!code && (type & SEG_TYPE_EXPDOWN)) {
        uint64_t upper = (sc->attr & SEG_ATTR_DB) ? 0xffffffffu : 0xffffu;
        if ((uint64_t)sc->base + upper >= vm->mon_base)
            return false;
        d->contents = MODIFY_LDT_CONTENTS_STACK;
        d->limit = sc->limit;
        if (d->limit > 0xfffff) {
            d->pages = true;
            d->limit >>= 12;
        }
        return true;
    }

    if (sc->base >= vm->mon_base)
        return false;
    uint64_t limit = sc->limit;
    uint64_t room = (uint64_t)vm->mon_base - 1 - sc->base;
    if (limit > room)
        limit = room;
    if (limit > 0xfffff) {
        /* Page granular: round down so the host never allows more. */
        d->pages = true;
        d->limit = (uint32_t)(((limit + 1) >> 12) - 1);
    } else {
        d->limit = (uint32_t)limit;
    }
    return true;
}

/* An expand-down segment whose valid range is empty: every access faults. */
static const struct host_desc empty_desc = {
    .contents = MODIFY_LDT_CONTENTS_STACK, .limit = 0xfffff, .pages = true, .seg32 = true,
};

static void ldt_reload_all(struct vm *vm);

/* The host LDT slot holding `d`, written on first use (the fixed flat
 * slots first: they are never recycled). */
static uint16_t ldt_selector(struct vm *vm, const struct host_desc *d)
{
    struct host_ldt *ldt = vm->ldt;
    for (unsigned i = LDT_FLAT_SLOT; i <= LDT_FLAT_RW_SLOT; i++)
        if (!memcmp(&ldt->slot[i], d, sizeof(*d)))
            return LDT_SEL(i);
    for (unsigned i = LDT_FIRST_DYNAMIC; i < ldt->next; i++)
        if (!memcmp(&ldt->slot[i], d, sizeof(*d)))
            return LDT_SEL(i);
    if (ldt->next == LDT_SLOTS) {
        ldt->next = LDT_FIRST_DYNAMIC;
        ldt_reload_all(vm);
        return ldt_selector(vm, d);
    }
    unsigned slot = ldt->next++;
    if (ldt_write(slot, d)) {
        vm_stop(vm, 3, "popek: modify_ldt failed for slot %u", slot);
        return 0;
    }
    ldt->slot[slot] = *d;
    return LDT_SEL(slot);
}

static uint16_t host_selector(struct vm *vm, const struct seg_cache *sc, bool cs_alias)
{
    struct host_desc d;
    if (!sc->valid)
        return 0;
    if (!host_desc_for(vm, sc, cs_alias, &d))
        d = empty_desc;
    return ldt_selector(vm, &d);
}

/*
 * The other half of a flat 4 GiB segment with a non-zero base: the offsets
 * that wrap around 4 GiB, i.e. linear [0, base).  glibc's TLS variables sit
 * at negative offsets from %gs, which the truncated expand-up shadow cannot
 * reach, so the translator uses this expand-down shadow for GS accesses with
 * a negative displacement (translate.c).  Elsewhere it is the normal shadow.
 */
static uint16_t wrap_selector(struct vm *vm, const struct seg_cache *sc, uint16_t normal)
{
    uint16_t type = sc->attr & SEG_ATTR_TYPE;
    if (!sc->valid || sc->base == 0 || sc->base >= vm->mon_base || sc->limit != 0xffffffffu ||
        (type & (SEG_TYPE_CODE | SEG_TYPE_EXPDOWN)) || !(sc->attr & SEG_ATTR_DB))
        return normal;
    /* Valid offsets (limit, 4 GiB): round the page-granular limit up so
     * that nothing at or above `base` is reachable. */
    uint64_t first_valid = (uint64_t)GUEST_SPACE - sc->base; /* offset of linear 0 */
    uint32_t pages_limit = (uint32_t)((first_valid + PAGE_SIZE - 1) / PAGE_SIZE) - 1;
    struct host_desc d = {
        .base = sc->base, .limit = pages_limit, .contents = MODIFY_LDT_CONTENTS_STACK,
        .read_only = !(type & SEG_TYPE_WRITABLE), .seg32 = true, .pages = true,
    };
    return ldt_selector(vm, &d);
}

/*
 * A flat-limit data segment with the given base in the temporary slot of
 * `host_seg`, for executing one instruction whose accesses the monitor has
 * checked (signal.c): limits are no protection while it is loaded.
 */
uint16_t seg_temp_selector(struct vm *vm, unsigned host_seg, uint32_t base, bool writable)
{
    struct host_desc d = {
        .base = base, .limit = 0xfffff, .contents = MODIFY_LDT_CONTENTS_DATA,
        .read_only = !writable, .seg32 = true, .pages = true,
    };
    if (ldt_write(LDT_TEMP_SLOT(host_seg), &d)) {
        vm_stop(vm, 3, "popek: modify_ldt failed for a temporary segment");
        return 0;
    }
    return LDT_SEL(LDT_TEMP_SLOT(host_seg));
}

void seg_refresh_host(struct vm *vm, unsigned seg)
{
    struct vcpu_block *b = vm->cpu.blk;
    const struct seg_cache *sc = &vm->cpu.seg[seg];
    switch (seg) {
    case SEG_CS:
        b->cs_alias = host_selector(vm, sc, true);
        break;
    case SEG_GS:
        b->gs_alias = host_selector(vm, sc, false);
        b->gs_alias_wrap = wrap_selector(vm, sc, b->gs_alias);
        break;
    default:
        b->host_sel[seg] = host_selector(vm, sc, false);
        break;
    }
}

static void ldt_reload_all(struct vm *vm)
{
    tcache_seg_ic_reset(vm); /* their host selectors are stale */
    for (unsigned s = 0; s < SEG_COUNT; s++)
        seg_refresh_host(vm, s);
}

uint16_t seg_flat_host_selector(bool writable)
{
    return LDT_SEL(writable ? LDT_FLAT_RW_SLOT : LDT_FLAT_SLOT);
}

void seg_sysenter(struct vm *vm)
{
    uint16_t cs = (uint16_t)(vm->cpu.sysenter_cs & 0xfffc);
    seg_load_flat(vm, SEG_CS, cs, true);
    seg_load_flat(vm, SEG_SS, (uint16_t)(cs + 8), false);
}

void seg_sysexit(struct vm *vm)
{
    uint16_t cs = (uint16_t)(vm->cpu.sysenter_cs & 0xfffc);
    seg_load_flat(vm, SEG_CS, (uint16_t)((cs + 16) | 3), true);
    seg_load_flat(vm, SEG_SS, (uint16_t)((cs + 24) | 3), false);
}

void seg_sync_inline(struct vm *vm)
{
    struct vcpu_block *b = vm->cpu.blk;
    /* CS and SS as the last inline SYSENTER or SYSEXIT loaded them. */
    if (b->sys_inline == 1)
        seg_sysenter(vm);
    else if (b->sys_inline == 2)
        seg_sysexit(vm);
    b->sys_inline = 0;
    static const unsigned segs[] = { SEG_ES, SEG_DS, SEG_FS, SEG_GS };
    for (unsigned i = 0; i < 4; i++) {
        uint32_t ic = b->seg_site[segs[i]];
        if (ic && ic <= vm->tc.nseg_ics)
            vm->cpu.seg[segs[i]] = vm->tc.seg_ics[ic - 1].cache;
        b->seg_site[segs[i]] = 0;
    }
}

void seg_cache_from_desc(struct seg_cache *sc, uint16_t sel, uint64_t desc)
{
    uint32_t lo = (uint32_t)desc, hi = (uint32_t)(desc >> 32);
    sc->sel = sel;
    sc->base = (lo >> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000u);
    uint32_t limit = (lo & 0xffff) | (hi & 0x000f0000u);
    sc->attr = (uint16_t)(((hi >> 8) & 0xff) | (((hi >> 20) & 0xf) << 8));
    if (sc->attr & SEG_ATTR_G)
        limit = (limit << 12) | 0xfff;
    sc->limit = limit;
    sc->valid = true;
}

uint64_t seg_flat_desc(bool code, unsigned dpl)
{
    return 0x00cf90000000ffffull | (uint64_t)(dpl << 13 | (code ? 0xb : 0x3) << 8) << 32;
}

void seg_load_flat(struct vm *vm, unsigned seg, uint16_t sel, bool code)
{
    struct seg_cache *sc = &vm->cpu.seg[seg];
    sc->sel = sel;
    sc->base = 0;
    sc->limit = 0xffffffffu;
    sc->attr = SEG_ATTR_P | SEG_ATTR_S | SEG_ATTR_DB | SEG_ATTR_G | SEG_TYPE_ACCESSED |
               (code ? SEG_TYPE_CODE | SEG_TYPE_READABLE : SEG_TYPE_WRITABLE) |
               ((sel & 3) << 5);
    sc->valid = true;
    if (seg == SEG_CS)
        seg_set_cs_desc(vm, seg_flat_desc(true, sel & 3));
    seg_refresh_host(vm, seg);
}

bool seg_read_descriptor(struct vm *vm, uint16_t sel, uint64_t *desc, struct fault *f)
{
    const struct vcpu *c = &vm->cpu;
    uint32_t base, limit;
    if (sel & 4) {
        if (!c->ldtr.valid)
            goto gp;
        base = c->ldtr.base;
        limit = c->ldtr.limit;
    } else {
        base = c->gdtr.base;
        limit = c->gdtr.limit;
    }
    if ((uint32_t)(sel & ~7u) + 7 > limit)
        goto gp;
    if (!vm_read_linear(vm, base + (sel & ~7u), desc, 8)) {
        *f = vm->mem_fault;
        return false;
    }
    return true;
gp:
    *f = (struct fault){ EXC_GP, true, sel & 0xfffcu };
    return false;
}

bool seg_set_accessed(struct vm *vm, uint16_t sel, uint64_t *desc)
{
    if (*desc & (1ull << 40))
        return true;
    *desc |= 1ull << 40;
    uint32_t base = (sel & 4) ? vm->cpu.ldtr.base : vm->cpu.gdtr.base;
    uint8_t b = (uint8_t)(*desc >> 40);
    return vm_write_linear(vm, base + (sel & ~7u) + 5, &b, 1);
}

void seg_set_cs_desc(struct vm *vm, uint64_t desc)
{
    desc |= 1ull << 40; /* what the GDT holds once the load set A */
    vm->cpu.blk->cs_desc[0] = (uint32_t)desc;
    vm->cpu.blk->cs_desc[1] = (uint32_t)(desc >> 32);
}

void seg_load_cs(struct vm *vm, uint16_t sel, uint64_t desc, unsigned cpl)
{
    struct seg_cache *sc = &vm->cpu.seg[SEG_CS];
    seg_set_cs_desc(vm, desc);
    seg_cache_from_desc(sc, (uint16_t)((sel & ~3u) | cpl), desc);
    seg_refresh_host(vm, SEG_CS);
}

/* MOV/POP/LxS to DS, ES, FS, GS or SS with the checks of SDM vol. 2, MOV. */
bool seg_load(struct vm *vm, unsigned seg, uint16_t sel, struct fault *f)
{
    struct seg_cache *sc = &vm->cpu.seg[seg];
    unsigned cpl = vcpu_cpl(&vm->cpu), rpl = sel & 3;
    uint64_t desc;

    if ((sel & ~3u) == 0) {
        if (seg == SEG_SS) {
            *f = (struct fault){ EXC_GP, true, 0 };
            return false;
        }
        memset(sc, 0, sizeof(*sc));
        sc->sel = sel;
        seg_refresh_host(vm, seg);
        return true;
    }
    if (!seg_read_descriptor(vm, sel, &desc, f))
        return false;
    struct seg_cache n;
    seg_cache_from_desc(&n, sel, desc);
    unsigned dpl = (n.attr & SEG_ATTR_DPL) >> 5;
    uint16_t type = n.attr & SEG_ATTR_TYPE;
    bool code = type & SEG_TYPE_CODE;
    uint32_t err = sel & 0xfffcu;

    if (!(n.attr & SEG_ATTR_S))
        goto gp;
    if (seg == SEG_SS) {
        if (rpl != cpl || dpl != cpl || code || !(type & SEG_TYPE_WRITABLE))
            goto gp;
        if (!(n.attr & SEG_ATTR_P)) {
            *f = (struct fault){ EXC_SS, true, err };
            return false;
        }
    } else {
        if (code && !(type & SEG_TYPE_READABLE))
            goto gp;
        if ((!code || !(type & SEG_TYPE_CONFORMING)) && (rpl > dpl || cpl > dpl))
            goto gp;
        if (!(n.attr & SEG_ATTR_P)) {
            *f = (struct fault){ EXC_NP, true, err };
            return false;
        }
    }
    if (!seg_set_accessed(vm, sel, &desc))
        goto gp;
    seg_cache_from_desc(sc, sel, desc);
    seg_refresh_host(vm, seg);
    return true;
gp:
    *f = (struct fault){ EXC_GP, true, err };
    return false;
}
