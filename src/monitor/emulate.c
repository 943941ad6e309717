/*
 * The instruction emulator behind callouts.
 *
 * Translated code exits here with the guest EIP of one sensitive or
 * privileged instruction (decode.c says which).  The instruction is decoded
 * again with Zydis and executed against the virtual CPU: guest registers in
 * the vCPU block, segment caches, control registers, the I/O bus.  Every
 * check the SDM lists for the instruction in protected mode is made here and
 * raises the architectural exception; what Popek does not implement stops the
 * VM with the instruction named, never silently.
 */
#include <string.h>

#include "popek/vm.h"

struct emu {
    struct vm *vm;
    const struct dbt_insn *in;  /* the callout site's, or decoded into `own` */
    const uint8_t *bytes;       /* 15 of them */
    struct dbt_insn own;        /* left uninitialized unless decoded here */
    uint8_t own_bytes[15];
    uint32_t eip, next;
    unsigned cpl;
    struct fault *f;
    struct emu *retried;        /* room to decode the instruction an IRET returns to */
    bool run_retried;           /* ... which is to run here too (pf_retry_map) */
};

/* An emulation of the instruction at eip at the current CPL, faults to *f
 * (`in` is set by fetch_decode). */
static void emu_init(struct emu *e, struct vm *vm, uint32_t eip, struct fault *f)
{
    e->vm = vm;
    e->eip = eip;
    e->cpl = vcpu_cpl(&vm->cpu);
    e->f = f;
    e->retried = NULL;
    e->run_retried = false;
}

#define GP0(e) fault_set((e), EXC_GP, true, 0)
#define UD(e) fault_set((e), EXC_UD, false, 0)

static bool fault_set(struct emu *e, uint8_t v, bool has, uint32_t err)
{
    *e->f = (struct fault){ v, has, err };
    return false;
}

static bool unsupported(struct emu *e, const char *what)
{
    fault_set(e, EXC_UD, false, 0); /* not delivered: the VM stops */
    char hex[48] = "";
    for (unsigned i = 0; i < e->in->zi.length && i < 15; i++)
        snprintf(hex + 3 * i, 4, "%02x ", e->bytes[i]);
    vm_stop(e->vm, 3, "popek: guest executed unsupported %s (%s) at %04x:%08x: %s",
            ZydisMnemonicGetString(e->in->zi.mnemonic), what, e->vm->cpu.seg[SEG_CS].sel,
            e->eip, hex);
    return false;
}

/* ---- registers and operands ------------------------------------------------------ */

static uint32_t reg_get(struct vm *vm, ZydisRegister r)
{
    int id = ZydisRegisterGetId(r);
    uint32_t *g = vm->cpu.blk->gpr;
    switch (ZydisRegisterGetClass(r)) {
    case ZYDIS_REGCLASS_GPR32: return g[id];
    case ZYDIS_REGCLASS_GPR16: return g[id] & 0xffff;
    case ZYDIS_REGCLASS_GPR8: return id < 4 ? g[id] & 0xff : (g[id - 4] >> 8) & 0xff;
    case ZYDIS_REGCLASS_SEGMENT: return vm->cpu.seg[dbt_seg_index(r)].sel;
    default: return 0;
    }
}

static void reg_set(struct vm *vm, ZydisRegister r, uint32_t v)
{
    int id = ZydisRegisterGetId(r);
    uint32_t *g = vm->cpu.blk->gpr;
    switch (ZydisRegisterGetClass(r)) {
    case ZYDIS_REGCLASS_GPR32: g[id] = v; break;
    case ZYDIS_REGCLASS_GPR16: g[id] = (g[id] & 0xffff0000u) | (v & 0xffff); break;
    case ZYDIS_REGCLASS_GPR8:
        if (id < 4)
            g[id] = (g[id] & ~0xffu) | (v & 0xff);
        else
            g[id - 4] = (g[id - 4] & ~0xff00u) | ((v & 0xff) << 8);
        break;
    default: break;
    }
}

static uint32_t op_ea(struct emu *e, const ZydisDecodedOperand *op)
{
    uint32_t a = (uint32_t)op->mem.disp.value;
    if (op->mem.base != ZYDIS_REGISTER_NONE)
        a += reg_get(e->vm, op->mem.base);
    if (op->mem.index != ZYDIS_REGISTER_NONE)
        a += reg_get(e->vm, op->mem.index) * op->mem.scale;
    return e->in->zi.address_width == 16 ? a & 0xffff : a;
}

static bool op_read(struct emu *e, const ZydisDecodedOperand *op, unsigned size, uint32_t *v)
{
    switch (op->type) {
    case ZYDIS_OPERAND_TYPE_REGISTER:
        *v = reg_get(e->vm, op->reg.value);
        return true;
    case ZYDIS_OPERAND_TYPE_IMMEDIATE:
        *v = (uint32_t)op->imm.value.u;
        return true;
    case ZYDIS_OPERAND_TYPE_MEMORY:
        *v = 0;
        return seg_read(e->vm, (unsigned)dbt_seg_index(op->mem.segment), op_ea(e, op), v, size, e->f);
    default:
        return UD(e);
    }
}

static bool op_write(struct emu *e, const ZydisDecodedOperand *op, unsigned size, uint32_t v)
{
    if (op->type == ZYDIS_OPERAND_TYPE_REGISTER) {
        reg_set(e->vm, op->reg.value, v);
        return true;
    }
    return seg_write(e->vm, (unsigned)dbt_seg_index(op->mem.segment), op_ea(e, op), &v, size, e->f);
}

static bool push(struct emu *e, uint32_t v, unsigned size)
{
    if (size == 4)
        return vm_push32(e->vm, v, e->f);
    uint32_t *esp = vm_gpr(e->vm, R_ESP);
    uint32_t mask = (e->vm->cpu.seg[SEG_SS].attr & SEG_ATTR_DB) ? ~0u : 0xffffu;
    uint32_t nsp = (*esp - 2) & mask;
    uint16_t w = (uint16_t)v;
    if (!seg_write(e->vm, SEG_SS, nsp, &w, 2, e->f))
        return false;
    *esp = (*esp & ~mask) | nsp;
    return true;
}

static bool pop(struct emu *e, uint32_t *v, unsigned size)
{
    if (size == 4)
        return vm_pop32(e->vm, v, e->f);
    uint32_t *esp = vm_gpr(e->vm, R_ESP);
    uint32_t mask = (e->vm->cpu.seg[SEG_SS].attr & SEG_ATTR_DB) ? ~0u : 0xffffu;
    uint16_t w;
    if (!seg_read(e->vm, SEG_SS, *esp & mask, &w, 2, e->f))
        return false;
    *esp = (*esp & ~mask) | ((*esp + 2) & mask);
    *v = w;
    return true;
}

static unsigned opsize(const struct emu *e)
{
    return e->in->zi.operand_width / 8;
}

static void set_zf(struct vm *vm, bool z)
{
    vm->cpu.blk->eflags = (vm->cpu.blk->eflags & ~EFLAGS_ZF) | (z ? EFLAGS_ZF : 0);
}

static unsigned iopl(const struct vm *vm)
{
    return (vm->cpu.blk->vflags & EFLAGS_IOPL) >> EFLAGS_IOPL_SHIFT;
}

/* ---- flags ------------------------------------------------------------------------- */

static bool emu_cli_sti(struct emu *e, bool sti)
{
    if (e->cpl > iopl(e->vm))
        return GP0(e);
    e->vm->cpu.blk->vif = sti ? EFLAGS_IF : 0;
    if (sti)
        e->vm->cpu.irq_shadow = true;
    return true;
}

static bool emu_pushf(struct emu *e)
{
    return push(e, vcpu_get_eflags(&e->vm->cpu) & ~(EFLAGS_VM | EFLAGS_RF), opsize(e));
}

/* POPF/IRET flag loading: which bits the current privilege may change. */
static void load_eflags(struct vm *vm, uint32_t val, unsigned size, unsigned cpl)
{
    uint32_t old = vcpu_get_eflags(&vm->cpu);
    uint32_t mask = EFLAGS_ARITH | EFLAGS_TF | EFLAGS_NT | EFLAGS_AC | EFLAGS_ID;
    if (cpl == 0)
        mask |= EFLAGS_IOPL;
    if (cpl <= ((old & EFLAGS_IOPL) >> EFLAGS_IOPL_SHIFT))
        mask |= EFLAGS_IF;
    if (size == 2)
        mask &= 0xffff;
    vcpu_set_eflags(&vm->cpu, (old & ~mask) | (val & mask));
}

static bool emu_popf(struct emu *e)
{
    uint32_t v;
    if (!pop(e, &v, opsize(e)))
        return false;
    load_eflags(e->vm, v, opsize(e), e->cpl);
    return true;
}

/* ---- I/O ----------------------------------------------------------------------------- */

/* IOPL, then the TSS I/O permission bitmap (SDM vol. 1, 19.5). */
static bool io_allowed(struct emu *e, uint16_t port, unsigned size)
{
    struct vm *vm = e->vm;
    if (e->cpl <= iopl(vm))
        return true;
    const struct seg_cache *tr = &vm->cpu.tr;
    uint16_t base;
    if (!tr->valid || tr->limit < 0x67 || !vm_read_linear(vm, tr->base + 0x66, &base, 2))
        return GP0(e);
    uint32_t byte = base + port / 8u;
    if (byte + 1 > tr->limit)
        return GP0(e);
    uint16_t bits;
    vm_read_linear(vm, tr->base + byte, &bits, 2);
    if ((bits >> (port % 8)) & ((1u << size) - 1))
        return GP0(e);
    return true;
}

static bool emu_io(struct emu *e)
{
    struct vm *vm = e->vm;
    const ZydisDecodedInstruction *zi = &e->in->zi;
    const ZydisDecodedOperand *ops = e->in->ops;
    bool in = zi->mnemonic == ZYDIS_MNEMONIC_IN;
    if (in || zi->mnemonic == ZYDIS_MNEMONIC_OUT) {
        const ZydisDecodedOperand *data = in ? &ops[0] : &ops[1];
        const ZydisDecodedOperand *portop = in ? &ops[1] : &ops[0];
        unsigned size = data->size / 8;
        uint16_t port = (uint16_t)(portop->type == ZYDIS_OPERAND_TYPE_IMMEDIATE
                                       ? portop->imm.value.u
                                       : reg_get(vm, ZYDIS_REGISTER_DX));
        if (!io_allowed(e, port, size))
            return false;
        if (in)
            reg_set(vm, data->reg.value, vm_io_in(vm, port, size));
        else
            vm_io_out(vm, port, size, reg_get(vm, data->reg.value));
        return true;
    }
    /* INS / OUTS, with REP. */
    bool ins = zi->mnemonic == ZYDIS_MNEMONIC_INSB || zi->mnemonic == ZYDIS_MNEMONIC_INSW ||
               zi->mnemonic == ZYDIS_MNEMONIC_INSD;
    unsigned size = zi->operand_width / 8;
    if (zi->mnemonic == ZYDIS_MNEMONIC_INSB || zi->mnemonic == ZYDIS_MNEMONIC_OUTSB)
        size = 1;
    uint16_t port = (uint16_t)reg_get(vm, ZYDIS_REGISTER_DX);
    if (!io_allowed(e, port, size))
        return false;
    bool rep = zi->attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE);
    uint32_t amask = zi->address_width == 16 ? 0xffff : 0xffffffffu;
    int32_t step = (vm->cpu.blk->eflags & EFLAGS_DF) ? -(int32_t)size : (int32_t)size;
    int src_seg = SEG_DS;
    for (unsigned i = 0; i < zi->operand_count; i++)
        if (ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY && !ins)
            src_seg = dbt_seg_index(ops[i].mem.segment);
    uint32_t *ecx = vm_gpr(vm, R_ECX);
    uint32_t *idx = vm_gpr(vm, ins ? R_EDI : R_ESI);
    while (!rep || (*ecx & amask)) {
        uint32_t off = *idx & amask, v = 0;
        if (ins) {
            v = vm_io_in(vm, port, size);
            if (!seg_write(vm, SEG_ES, off, &v, size, e->f))
                return false;
        } else {
            if (!seg_read(vm, (unsigned)src_seg, off, &v, size, e->f))
                return false;
            vm_io_out(vm, port, size, v);
        }
        *idx = (*idx & ~amask) | ((*idx + (uint32_t)step) & amask);
        if (!rep)
            break;
        *ecx = (*ecx & ~amask) | ((*ecx - 1) & amask);
    }
    return true;
}

/* ---- control registers ------------------------------------------------------------- */

/* Exactly the CR4 bits whose features the filtered CPUID reports (cpuid.c);
 * the others raise #GP(0) as on a CPU without them. */
#define CR4_SUPPORTED (CR4_TSD | CR4_DE | CR4_PSE | CR4_PGE | CR4_PCE | CR4_OSFXSR | CR4_OSXMMEXCPT)

/* CR0.PG/WP or CR4.PSE/PGE changed: everything derived from the old
 * translation goes, global entries included. */
static void paging_mode_changed(struct vm *vm)
{
    shadow_unmap_all(&vm->shadow, false);
    tcache_flush(vm);
}

static bool write_cr(struct emu *e, unsigned n, uint32_t v)
{
    struct vcpu *c = &e->vm->cpu;
    switch (n) {
    case 0:
        if (((v & CR0_PG) && !(v & CR0_PE)) || ((v & CR0_NW) && !(v & CR0_CD)))
            return GP0(e);
        if (!(v & CR0_PE))
            return unsupported(e, "return to real mode");
        v |= CR0_ET;
        if ((v ^ c->cr0) & (CR0_PG | CR0_WP))
            paging_mode_changed(e->vm);
        c->cr0 = v;
        return true;
    case 2:
        c->blk->cr2 = v;
        return true;
    case 3: {
        uint32_t old = c->cr3;
        c->cr3 = v;
        if (c->cr0 & CR0_PG) {
            /* A TLB flush of non-global entries. */
            struct paging_mode m = vm_paging_mode(e->vm);
            shadow_switch(&e->vm->shadow, &e->vm->ram, &m, old);
            tcache_address_space_changed(e->vm, old, v);
        }
        return true;
    }
    case 4:
        if (v & ~CR4_SUPPORTED)
            return GP0(e);
        if ((v ^ c->cr4) & CR4_PSE) {
            paging_mode_changed(e->vm);
        } else if ((v ^ c->cr4) & CR4_PGE) {
            /* How Linux flushes global TLB entries: a full TLB flush. */
            shadow_unmap_all(&e->vm->shadow, false);
            tcache_unchain_all(e->vm);
        } else if ((v ^ c->cr4) & CR4_TSD) {
            tcache_flush(e->vm); /* RDTSC is translated per TSD */
        }
        c->cr4 = v;
        return true;
    default:
        return UD(e);
    }
}

static bool read_cr(struct emu *e, unsigned n, uint32_t *v)
{
    const struct vcpu *c = &e->vm->cpu;
    switch (n) {
    case 0: *v = c->cr0; return true;
    case 2: *v = c->blk->cr2; return true;
    case 3: *v = c->cr3; return true;
    case 4: *v = c->cr4; return true;
    default: return UD(e);
    }
}

static bool emu_mov_crdr(struct emu *e)
{
    const ZydisDecodedOperand *dst = &e->in->ops[0], *src = &e->in->ops[1];
    struct vcpu *c = &e->vm->cpu;
    if (e->cpl != 0)
        return GP0(e);
    bool to_special = ZydisRegisterGetClass(dst->reg.value) != ZYDIS_REGCLASS_GPR32;
    ZydisRegister special = to_special ? dst->reg.value : src->reg.value;
    int n = ZydisRegisterGetId(special);
    if (ZydisRegisterGetClass(special) == ZYDIS_REGCLASS_CONTROL) {
        if (to_special)
            return write_cr(e, (unsigned)n, reg_get(e->vm, src->reg.value));
        uint32_t v;
        if (!read_cr(e, (unsigned)n, &v))
            return false;
        reg_set(e->vm, dst->reg.value, v);
        return true;
    }
    if (c->dr[7] & DR7_GD) {
        /* General detect: the debug registers are in use by a debugger. */
        c->dr[7] &= ~DR7_GD;
        c->dr[6] |= DR6_BD;
        return fault_set(e, EXC_DB, false, 0);
    }
    if (n == 4 || n == 5) {
        if (c->cr4 & CR4_DE)
            return UD(e);
        n += 2;
    }
    if (to_special)
        c->dr[n] = reg_get(e->vm, src->reg.value);
    else
        reg_set(e->vm, dst->reg.value, c->dr[n]);
    return true;
}

/* ---- descriptor tables ---------------------------------------------------------------- */

static bool emu_desctable(struct emu *e)
{
    struct vm *vm = e->vm;
    struct vcpu *c = &vm->cpu;
    const ZydisDecodedOperand *op = &e->in->ops[0];
    ZydisMnemonic m = e->in->zi.mnemonic;

    if (m == ZYDIS_MNEMONIC_SGDT || m == ZYDIS_MNEMONIC_SIDT) {
        const struct dtr *t = m == ZYDIS_MNEMONIC_SGDT ? &c->gdtr : &c->idtr;
        uint8_t buf[6];
        memcpy(buf, &t->limit, 2);
        memcpy(buf + 2, &t->base, 4);
        return seg_write(vm, (unsigned)dbt_seg_index(op->mem.segment), op_ea(e, op), buf, 6, e->f);
    }
    if (m == ZYDIS_MNEMONIC_SLDT || m == ZYDIS_MNEMONIC_STR) {
        uint16_t sel = m == ZYDIS_MNEMONIC_SLDT ? c->ldtr.sel : c->tr.sel;
        return op_write(e, op, op->type == ZYDIS_OPERAND_TYPE_MEMORY ? 2 : op->size / 8, sel);
    }
    if (e->cpl != 0)
        return GP0(e);
    if (m == ZYDIS_MNEMONIC_LGDT || m == ZYDIS_MNEMONIC_LIDT) {
        uint8_t buf[6];
        if (!seg_read(vm, (unsigned)dbt_seg_index(op->mem.segment), op_ea(e, op), buf, 6, e->f))
            return false;
        struct dtr *t = m == ZYDIS_MNEMONIC_LGDT ? &c->gdtr : &c->idtr;
        memcpy(&t->limit, buf, 2);
        memcpy(&t->base, buf + 2, 4);
        if (e->in->zi.operand_width == 16)
            t->base &= 0xffffff;
        if (m == ZYDIS_MNEMONIC_LGDT)
            tcache_seg_ic_reset(vm);
        return true;
    }
    uint32_t sel;
    if (!op_read(e, op, 2, &sel))
        return false;
    sel &= 0xffff;
    struct seg_cache *target = m == ZYDIS_MNEMONIC_LLDT ? &c->ldtr : &c->tr;
    if ((sel & ~3u) == 0) {
        if (m == ZYDIS_MNEMONIC_LTR)
            return GP0(e);
        memset(target, 0, sizeof(*target));
        return true;
    }
    if (sel & 4)
        return fault_set(e, EXC_GP, true, sel & 0xfffc);
    uint64_t desc;
    if (!seg_read_descriptor(vm, (uint16_t)sel, &desc, e->f))
        return false;
    struct seg_cache n;
    seg_cache_from_desc(&n, (uint16_t)sel, desc);
    unsigned type = n.attr & (SEG_ATTR_S | SEG_ATTR_TYPE);
    bool ok = m == ZYDIS_MNEMONIC_LLDT ? type == 2 : (type == 9 || type == 1);
    if (!ok)
        return fault_set(e, EXC_GP, true, sel & 0xfffc);
    if (!(n.attr & SEG_ATTR_P))
        return fault_set(e, EXC_NP, true, sel & 0xfffc);
    if (m == ZYDIS_MNEMONIC_LTR) {
        uint8_t access = (uint8_t)(desc >> 40) | 2; /* busy */
        vm_write_linear(vm, c->gdtr.base + (sel & ~7u) + 5, &access, 1);
        n.attr |= 2;
    }
    *target = n;
    return true;
}

/* LAR, LSL, VERR, VERW: ZF says whether the selector passed the checks. */
static bool emu_segcheck(struct emu *e)
{
    struct vm *vm = e->vm;
    ZydisMnemonic m = e->in->zi.mnemonic;
    const ZydisDecodedOperand *src = m == ZYDIS_MNEMONIC_LAR || m == ZYDIS_MNEMONIC_LSL
                                         ? &e->in->ops[1] : &e->in->ops[0];
    uint32_t sel;
    if (!op_read(e, src, 2, &sel))
        return false;
    sel &= 0xffff;
    struct fault ignore;
    uint64_t desc;
    if ((sel & ~3u) == 0 || !seg_read_descriptor(vm, (uint16_t)sel, &desc, &ignore)) {
        set_zf(vm, false);
        return true;
    }
    struct seg_cache n;
    seg_cache_from_desc(&n, (uint16_t)sel, desc);
    unsigned dpl = (n.attr & SEG_ATTR_DPL) >> 5, rpl = sel & 3;
    bool sys = !(n.attr & SEG_ATTR_S);
    unsigned type = n.attr & SEG_ATTR_TYPE;
    bool code = !sys && (type & SEG_TYPE_CODE);
    bool conforming = code && (type & SEG_TYPE_CONFORMING);
    bool priv_ok = conforming || (dpl >= e->cpl && dpl >= rpl);
    bool ok;
    switch (m) {
    case ZYDIS_MNEMONIC_LAR:
        ok = priv_ok && (!sys || (type && type != 8 && type != 10 && type != 13 && type != 14 &&
                                  type != 15 && type != 6 && type != 7));
        if (ok)
            reg_set(vm, e->in->ops[0].reg.value,
                    (uint32_t)(desc >> 32) & (e->in->zi.operand_width == 16 ? 0xff00 : 0x00f0ff00));
        break;
    case ZYDIS_MNEMONIC_LSL:
        ok = priv_ok && (!sys || type == 1 || type == 2 || type == 3 || type == 9 || type == 11);
        if (ok)
            reg_set(vm, e->in->ops[0].reg.value, n.limit);
        break;
    case ZYDIS_MNEMONIC_VERR:
        ok = !sys && priv_ok && (!code || (type & SEG_TYPE_READABLE));
        break;
    default: /* VERW */
        ok = !sys && !code && priv_ok && (type & SEG_TYPE_WRITABLE);
        break;
    }
    set_zf(vm, ok);
    return true;
}

/* ---- segment register loads ----------------------------------------------------------- */

static bool load_seg_checked(struct emu *e, int seg, uint16_t sel)
{
    if (seg == SEG_CS || seg < 0)
        return UD(e);
    if (!seg_load(e->vm, (unsigned)seg, sel, e->f))
        return false;
    if (seg == SEG_SS)
        e->vm->cpu.irq_shadow = true;
    return true;
}

static bool emu_segment(struct emu *e)
{
    struct vm *vm = e->vm;
    const ZydisDecodedOperand *ops = e->in->ops;
    uint32_t v;
    switch (e->in->zi.mnemonic) {
    case ZYDIS_MNEMONIC_MOV:
        if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
            ZydisRegisterGetClass(ops[0].reg.value) == ZYDIS_REGCLASS_SEGMENT) {
            if (!op_read(e, &ops[1], 2, &v))
                return false;
            return load_seg_checked(e, dbt_seg_index(ops[0].reg.value), (uint16_t)v);
        }
        v = reg_get(vm, ops[1].reg.value);
        return op_write(e, &ops[0], ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY ? 2 : ops[0].size / 8, v);
    case ZYDIS_MNEMONIC_PUSH: {
        /* 32-bit push of a segment register: current Intel CPUs write only
         * the low 16 bits and leave the rest of the slot alone. */
        uint32_t *esp = vm_gpr(vm, R_ESP);
        unsigned size = opsize(e);
        uint32_t nsp = *esp - size;
        uint16_t sel = (uint16_t)reg_get(vm, ops[0].reg.value);
        if (!seg_write(vm, SEG_SS, nsp, &sel, 2, e->f))
            return false;
        if (size == 4 && !seg_check_limit(&vm->cpu.seg[SEG_SS], nsp, 4))
            return fault_set(e, EXC_SS, true, 0);
        *esp = nsp;
        return true;
    }
    case ZYDIS_MNEMONIC_POP: {
        uint32_t esp = *vm_gpr(vm, R_ESP);
        if (!pop(e, &v, opsize(e)))
            return false;
        if (!load_seg_checked(e, dbt_seg_index(ops[0].reg.value), (uint16_t)v)) {
            *vm_gpr(vm, R_ESP) = esp;
            return false;
        }
        return true;
    }
    case ZYDIS_MNEMONIC_LDS: case ZYDIS_MNEMONIC_LES: case ZYDIS_MNEMONIC_LFS:
    case ZYDIS_MNEMONIC_LGS: case ZYDIS_MNEMONIC_LSS: {
        static const int segs[] = { SEG_DS, SEG_ES, SEG_FS, SEG_GS, SEG_SS };
        static const ZydisMnemonic mn[] = { ZYDIS_MNEMONIC_LDS, ZYDIS_MNEMONIC_LES,
            ZYDIS_MNEMONIC_LFS, ZYDIS_MNEMONIC_LGS, ZYDIS_MNEMONIC_LSS };
        int seg = SEG_DS;
        for (unsigned i = 0; i < 5; i++)
            if (mn[i] == e->in->zi.mnemonic)
                seg = segs[i];
        const ZydisDecodedOperand *mem = &ops[1];
        unsigned size = opsize(e);
        uint32_t off = 0;
        uint16_t sel;
        unsigned s = (unsigned)dbt_seg_index(mem->mem.segment);
        uint32_t ea = op_ea(e, mem);
        if (!seg_read(vm, s, ea, &off, size, e->f) || !seg_read(vm, s, ea + size, &sel, 2, e->f))
            return false;
        if (!load_seg_checked(e, seg, sel))
            return false;
        reg_set(vm, ops[0].reg.value, off);
        return true;
    }
    default:
        return emu_segcheck(e);
    }
}

/* ---- far transfers ------------------------------------------------------------------- */

/* Where a far JMP/CALL lands (SDM vol. 2A, CALL and JMP, protected mode). */
struct far_dest {
    uint16_t cs;        /* selector, RPL not yet adjusted */
    uint64_t desc;      /* its descriptor */
    uint32_t eip;
    unsigned cpl;       /* privilege after the transfer */
    bool gate32;        /* through a call gate of this size */
    bool via_gate;
    unsigned params;    /* call gate parameter count */
};

static bool code_desc_ok(struct emu *e, uint16_t sel, uint64_t *desc, struct seg_cache *n)
{
    if ((sel & ~3u) == 0)
        return GP0(e);
    if (!seg_read_descriptor(e->vm, sel, desc, e->f))
        return false;
    seg_cache_from_desc(n, sel, *desc);
    if (!(n->attr & SEG_ATTR_S) || !(n->attr & SEG_TYPE_CODE))
        return fault_set(e, EXC_GP, true, sel & 0xfffc);
    return true;
}

static bool far_target(struct emu *e, uint16_t sel, uint32_t off, bool call, struct far_dest *d)
{
    uint64_t desc;
    uint32_t err = sel & 0xfffc;
    unsigned rpl = sel & 3;
    if ((sel & ~3u) == 0)
        return GP0(e);
    if (!seg_read_descriptor(e->vm, sel, &desc, e->f))
        return false;
    struct seg_cache n;
    seg_cache_from_desc(&n, sel, desc);
    unsigned dpl = (n.attr & SEG_ATTR_DPL) >> 5;
    memset(d, 0, sizeof(*d));

    if (n.attr & SEG_ATTR_S) {
        if (!(n.attr & SEG_TYPE_CODE))
            return fault_set(e, EXC_GP, true, err);
        if (n.attr & SEG_TYPE_CONFORMING) {
            if (dpl > e->cpl)
                return fault_set(e, EXC_GP, true, err);
        } else if (rpl > e->cpl || dpl != e->cpl) {
            return fault_set(e, EXC_GP, true, err);
        }
        if (!(n.attr & SEG_ATTR_P))
            return fault_set(e, EXC_NP, true, err);
        *d = (struct far_dest){ .cs = sel, .desc = desc, .eip = off, .cpl = e->cpl };
    } else {
        unsigned type = n.attr & SEG_ATTR_TYPE;
        if (type != 0x4 && type != 0xc)
            return unsupported(e, "task gates and task switches");
        if (dpl < e->cpl || dpl < rpl)
            return fault_set(e, EXC_GP, true, err);
        if (!(n.attr & SEG_ATTR_P))
            return fault_set(e, EXC_NP, true, err);
        uint32_t lo = (uint32_t)desc, hi = (uint32_t)(desc >> 32);
        d->via_gate = true;
        d->gate32 = type == 0xc;
        d->params = hi & 0x1f;
        d->cs = (uint16_t)(lo >> 16);
        d->eip = d->gate32 ? (lo & 0xffff) | (hi & 0xffff0000u) : lo & 0xffff;
        struct seg_cache t;
        if (!code_desc_ok(e, d->cs, &d->desc, &t))
            return false;
        unsigned tdpl = (t.attr & SEG_ATTR_DPL) >> 5;
        bool conforming = t.attr & SEG_TYPE_CONFORMING;
        if (tdpl > e->cpl || (!call && !conforming && tdpl != e->cpl))
            return fault_set(e, EXC_GP, true, d->cs & 0xfffc);
        if (!(t.attr & SEG_ATTR_P))
            return fault_set(e, EXC_NP, true, d->cs & 0xfffc);
        d->cpl = conforming ? e->cpl : tdpl;
    }
    struct seg_cache t;
    seg_cache_from_desc(&t, d->cs, d->desc);
    if (d->eip > t.limit)
        return GP0(e);
    return true;
}

/* CALL through a gate to an inner level: the TSS stack, then the outer SS,
 * ESP and the gate's parameters copied across (SDM 5.8.5). */
static bool call_inner(struct emu *e, const struct far_dest *d, unsigned size)
{
    struct vm *vm = e->vm;
    struct vcpu *c = &vm->cpu;
    const struct seg_cache *tr = &c->tr;
    uint32_t v[2], off = 4 + 8 * d->cpl;
    if (!tr->valid || off + 7 > tr->limit)
        return fault_set(e, EXC_TS, true, tr->sel & 0xfffc);
    if (!vm_read_linear(vm, tr->base + off, v, 8)) {
        *e->f = vm->mem_fault;
        return false;
    }
    struct seg_cache old_ss = c->seg[SEG_SS];
    uint32_t old_esp = *vm_gpr(vm, R_ESP);
    uint32_t params[32];
    for (unsigned i = 0; i < d->params; i++) {
        params[i] = 0;
        if (!seg_read(vm, SEG_SS, old_esp + i * size, &params[i], size, e->f))
            return false;
    }
    /* Loaded and written at the new privilege level (supervisor accesses). */
    uint16_t cs_sel = c->seg[SEG_CS].sel;
    c->seg[SEG_CS].sel = (uint16_t)((cs_sel & ~3u) | d->cpl);
    bool pushed = seg_load(vm, SEG_SS, (uint16_t)v[1], e->f);
    if (!pushed && e->f->vector == EXC_GP)
        e->f->vector = EXC_TS;
    if (pushed) {
        *vm_gpr(vm, R_ESP) = v[0];
        pushed = push(e, old_ss.sel, size) && push(e, old_esp, size);
        for (unsigned i = d->params; pushed && i > 0; i--)
            pushed = push(e, params[i - 1], size);
        pushed = pushed && push(e, cs_sel, size) && push(e, e->next, size);
    }
    if (!pushed) {
        c->seg[SEG_CS].sel = cs_sel;
        c->seg[SEG_SS] = old_ss;
        seg_refresh_host(vm, SEG_SS);
        *vm_gpr(vm, R_ESP) = old_esp;
    }
    return pushed;
}

static bool read_far_pointer(struct emu *e, const ZydisDecodedOperand *op, uint16_t *sel, uint32_t *off)
{
    if (op->type == ZYDIS_OPERAND_TYPE_POINTER) {
        *sel = op->ptr.segment;
        *off = op->ptr.offset;
        return true;
    }
    unsigned size = opsize(e), s = (unsigned)dbt_seg_index(op->mem.segment);
    uint32_t ea = op_ea(e, op);
    *off = 0;
    return seg_read(e->vm, s, ea, off, size, e->f) && seg_read(e->vm, s, ea + size, sel, 2, e->f);
}

/* Return to an outer privilege level: pop ESP and SS (after EIP/CS), reload
 * SS, and null data segments the new level may not use. */
static bool return_outer(struct emu *e, unsigned rpl, uint32_t imm)
{
    struct vm *vm = e->vm;
    uint32_t nesp, nss;
    unsigned size = opsize(e);
    *vm_gpr(vm, R_ESP) += imm;
    if (!pop(e, &nesp, size) || !pop(e, &nss, size))
        return false;
    unsigned saved_cpl = vm->cpu.seg[SEG_CS].sel & 3;
    vm->cpu.seg[SEG_CS].sel = (uint16_t)((vm->cpu.seg[SEG_CS].sel & ~3u) | rpl);
    bool ok = seg_load(vm, SEG_SS, (uint16_t)nss, e->f);
    vm->cpu.seg[SEG_CS].sel = (uint16_t)((vm->cpu.seg[SEG_CS].sel & ~3u) | saved_cpl);
    if (!ok)
        return false;
    *vm_gpr(vm, R_ESP) = size == 2 ? (*vm_gpr(vm, R_ESP) & 0xffff0000u) | (nesp & 0xffff) : nesp;
    static const unsigned data[] = { SEG_ES, SEG_DS, SEG_FS, SEG_GS };
    for (unsigned i = 0; i < 4; i++) {
        struct seg_cache *sc = &vm->cpu.seg[data[i]];
        unsigned dpl = (sc->attr & SEG_ATTR_DPL) >> 5;
        bool conf_code = (sc->attr & SEG_TYPE_CODE) && (sc->attr & SEG_TYPE_CONFORMING);
        if (sc->valid && dpl < rpl && !conf_code) {
            memset(sc, 0, sizeof(*sc));
            seg_refresh_host(vm, data[i]);
        }
    }
    return true;
}

/* Checks for the CS popped by RETF/IRET (SDM RET, "return to ..."). */
static bool return_cs_ok(struct emu *e, uint16_t sel, uint64_t *desc)
{
    unsigned rpl = sel & 3;
    uint32_t err = sel & 0xfffc;
    if ((sel & ~3u) == 0)
        return GP0(e);
    if (!seg_read_descriptor(e->vm, sel, desc, e->f))
        return false;
    struct seg_cache n;
    seg_cache_from_desc(&n, sel, *desc);
    unsigned dpl = (n.attr & SEG_ATTR_DPL) >> 5;
    if (!(n.attr & SEG_ATTR_S) || !(n.attr & SEG_TYPE_CODE) || rpl < e->cpl)
        return fault_set(e, EXC_GP, true, err);
    if ((n.attr & SEG_TYPE_CONFORMING) ? dpl > rpl : dpl != rpl)
        return fault_set(e, EXC_GP, true, err);
    if (!(n.attr & SEG_ATTR_P))
        return fault_set(e, EXC_NP, true, err);
    return true;
}

static bool emu_farbranch(struct emu *e)
{
    struct vm *vm = e->vm;
    struct vcpu *c = &vm->cpu;
    unsigned size = opsize(e);
    ZydisMnemonic m = e->in->zi.mnemonic;
    uint64_t desc;

    if (m == ZYDIS_MNEMONIC_RET) {
        uint32_t saved_esp = *vm_gpr(vm, R_ESP), eip, cs;
        uint32_t imm = e->in->zi.operand_count_visible ? (uint32_t)e->in->ops[0].imm.value.u : 0;
        if (!pop(e, &eip, size) || !pop(e, &cs, size))
            goto undo;
        if (!return_cs_ok(e, (uint16_t)cs, &desc))
            goto undo;
        unsigned rpl = cs & 3;
        if (rpl > e->cpl) {
            if (!return_outer(e, rpl, imm))
                goto undo;
        } else {
            *vm_gpr(vm, R_ESP) += imm;
        }
        struct seg_cache n;
        seg_cache_from_desc(&n, (uint16_t)cs, desc);
        if (eip > n.limit) {
            GP0(e);
            goto undo;
        }
        seg_load_cs(vm, (uint16_t)cs, desc, rpl);
        e->next = eip;
        return true;
    undo:
        *vm_gpr(vm, R_ESP) = saved_esp;
        return false;
    }

    uint16_t sel;
    uint32_t off;
    struct far_dest d;
    if (!read_far_pointer(e, &e->in->ops[0], &sel, &off))
        return false;
    if (size == 2)
        off &= 0xffff;
    bool call = m == ZYDIS_MNEMONIC_CALL;
    if (!far_target(e, sel, off, call, &d))
        return false;
    if (d.via_gate)
        size = d.gate32 ? 4 : 2;
    if (call && d.cpl < e->cpl) {
        if (!call_inner(e, &d, size))
            return false;
    } else if (call) {
        uint32_t saved_esp = *vm_gpr(vm, R_ESP);
        if (!push(e, c->seg[SEG_CS].sel, size) || !push(e, e->next, size)) {
            *vm_gpr(vm, R_ESP) = saved_esp;
            return false;
        }
    }
    seg_load_cs(vm, d.cs, d.desc, d.cpl);
    seg_set_accessed(vm, d.cs, &d.desc);
    e->next = d.eip;
    return true;
}

/* ---- interrupts and system calls ------------------------------------------------------- */

static bool fetch_decode(struct emu *e, const struct callout_site *site);
static bool emu_data_supported(const struct dbt_insn *in);

/*
 * IRET back to the instruction of the last #PF: if the guest's handler made
 * the page valid, map it now, as a TLB fill would when the instruction
 * retries, instead of taking a second host fault for it.  The walk is a
 * probe (A must already be set, as Linux's new PTEs have it; nothing in the
 * guest's tables changes) and the page is writable only if D is set.
 *
 * A page the guest keeps making not present and present again on the same
 * frame (SHADOW_TOGGLE_HOT times: a dead page revived here each time, nothing
 * else touching it in between) is not mapped: the retried instruction is
 * emulated instead (true; the caller runs it), if the emulator has it.  The
 * page stays dead, which saves the two host protection changes of mapping it
 * and of the INVLPG that will drop it again.  A hidden fault on the page
 * by another instruction ends that (vm_shadow_fill).
 */
static bool pf_retry_map(struct vm *vm, uint32_t eip, struct emu *r)
{
    const struct vcpu *c = &vm->cpu;
    uint32_t lin = vm->pf_retry_lin & PAGE_MASK;
    c->blk->pf_retry = 0;
    if (!(c->cr0 & CR0_PG) || eip != vm->pf_retry_eip ||
        c->seg[SEG_CS].base != vm->pf_retry_cs_base || lin < PAGE_SIZE || lin >= vm->mon_base ||
        shadow_is_mapped(&vm->shadow, lin))
        return false;
    uint8_t *toggles = &vm->shadow.toggles[lin / PAGE_SIZE];
    uint32_t dead_frame = shadow_dead_frame(&vm->shadow, lin);
    if (dead_frame != ~0u && *toggles >= SHADOW_TOGGLE_HOT && !(c->blk->vflags & EFLAGS_TF)) {
        emu_init(r, vm, eip, r->f);
        if (fetch_decode(r, NULL) && emu_data_supported(r->in))
            return true;
    }
    struct paging_mode m = vm_paging_mode(vm);
    struct walk w;
    uint32_t err;
    if (!paging_walk(&vm->ram, &m, lin, WALK_PROBE | (vcpu_cpl(c) == 3 ? PFERR_U : 0), &w, &err) ||
        w.large || !guest_ram_contains(&vm->ram, w.gpa & PAGE_MASK, PAGE_SIZE))
        return false;
    if (dead_frame == (w.gpa & PAGE_MASK) && *toggles < SHADOW_TOGGLE_HOT)
        (*toggles)++;
    shadow_map(&vm->shadow, &vm->ram, lin, w.gpa & PAGE_MASK, w.writable && w.dirty, w.user,
               w.global, false, true);
    return false;
}

static bool emu_iret(struct emu *e)
{
    struct vm *vm = e->vm;
    unsigned size = opsize(e);
    uint32_t saved_esp = *vm_gpr(vm, R_ESP), eip, cs, fl;
    uint64_t desc;
    if (vm->cpu.blk->vflags & EFLAGS_NT)
        return unsupported(e, "task return (IRET with NT set)");
    if (!pop(e, &eip, size) || !pop(e, &cs, size) || !pop(e, &fl, size))
        goto undo;
    if ((fl & EFLAGS_VM) && e->cpl == 0 && size == 4)
        return unsupported(e, "return to virtual-8086 mode");
    if (!return_cs_ok(e, (uint16_t)cs, &desc))
        goto undo;
    struct seg_cache n;
    seg_cache_from_desc(&n, (uint16_t)cs, desc);
    if ((size == 2 ? eip & 0xffff : eip) > n.limit) {
        GP0(e);
        goto undo;
    }
    unsigned rpl = cs & 3;
    if (rpl > e->cpl && !return_outer(e, rpl, 0))
        goto undo;
    load_eflags(vm, fl, size, e->cpl);
    seg_load_cs(vm, (uint16_t)cs, desc, rpl);
    e->next = size == 2 ? eip & 0xffff : eip;
    if (vm->cpu.blk->pf_retry)
        e->run_retried = pf_retry_map(vm, e->next, e->retried);
    return true;
undo:
    *vm_gpr(vm, R_ESP) = saved_esp;
    return false;
}

static bool emu_interrupt(struct emu *e)
{
    struct vm *vm = e->vm;
    uint8_t vector;
    bool soft = true;
    switch (e->in->zi.mnemonic) {
    case ZYDIS_MNEMONIC_IRET:
    case ZYDIS_MNEMONIC_IRETD:
        return emu_iret(e);
    case ZYDIS_MNEMONIC_INT3:
        vector = EXC_BP;
        break;
    case ZYDIS_MNEMONIC_INTO:
        if (!(vm->cpu.blk->eflags & EFLAGS_OF))
            return true;
        vector = EXC_OF;
        break;
    case ZYDIS_MNEMONIC_INT1:
        vector = EXC_DB;
        soft = false;
        break;
    default:
        vector = (uint8_t)e->in->ops[0].imm.value.u;
        break;
    }
    if (!deliver_interrupt(vm, vector, soft, false, 0, e->next, e->f))
        return false;
    e->next = vm->cpu.eip;
    return true;
}

static bool emu_syscall(struct emu *e)
{
    struct vm *vm = e->vm;
    struct vcpu *c = &vm->cpu;
    bool no_cs = !(c->sysenter_cs & 0xfffc);
    switch (e->in->zi.mnemonic) {
    case ZYDIS_MNEMONIC_SYSENTER:
        if (no_cs)
            return GP0(e);
        vcpu_set_eflags(c, vcpu_get_eflags(c) & ~(EFLAGS_VM | EFLAGS_IF | EFLAGS_RF));
        seg_sysenter(vm);
        *vm_gpr(vm, R_ESP) = c->blk->sysenter_esp;
        e->next = c->blk->sysenter_eip;
        return true;
    case ZYDIS_MNEMONIC_SYSEXIT:
        if (no_cs || e->cpl != 0)
            return GP0(e);
        seg_sysexit(vm);
        *vm_gpr(vm, R_ESP) = *vm_gpr(vm, R_ECX);
        e->next = *vm_gpr(vm, R_EDX);
        return true;
    default:
        /* SYSCALL/SYSRET: EFER.SCE is 0 and the CPUID bit is hidden. */
        return UD(e);
    }
}

/* ---- near branches the translator leaves to us (16-bit operands, GS/CS memory) ---- */

static bool cond_true(uint32_t fl, unsigned cc)
{
    bool cf = fl & EFLAGS_CF, zf = fl & EFLAGS_ZF, sf = fl & EFLAGS_SF, of = fl & EFLAGS_OF,
         pf = fl & EFLAGS_PF;
    bool r;
    switch (cc >> 1) {
    case 0: r = of; break;
    case 1: r = cf; break;
    case 2: r = zf; break;
    case 3: r = cf || zf; break;
    case 4: r = sf; break;
    case 5: r = pf; break;
    case 6: r = sf != of; break;
    default: r = zf || sf != of; break;
    }
    return (cc & 1) ? !r : r;
}

static bool emu_branch(struct emu *e)
{
    struct vm *vm = e->vm;
    const ZydisDecodedInstruction *zi = &e->in->zi;
    unsigned size = opsize(e);
    uint32_t mask = size == 2 ? 0xffff : 0xffffffffu, target = 0;
    bool taken = true;
    if (zi->mnemonic == ZYDIS_MNEMONIC_RET) {
        uint32_t saved = *vm_gpr(vm, R_ESP);
        if (!pop(e, &target, size))
            return false;
        *vm_gpr(vm, R_ESP) += zi->operand_count_visible ? (uint32_t)e->in->ops[0].imm.value.u : 0;
        if ((target & mask) > vm->cpu.seg[SEG_CS].limit) {
            *vm_gpr(vm, R_ESP) = saved;
            return GP0(e);
        }
        e->next = target & mask;
        return true;
    }
    const ZydisDecodedOperand *op = &e->in->ops[0];
    if (zi->attributes & ZYDIS_ATTRIB_IS_RELATIVE) {
        ZyanU64 t = 0;
        ZydisCalcAbsoluteAddress(zi, op, e->eip, &t);
        target = (uint32_t)t;
    } else if (!op_read(e, op, size, &target)) {
        return false;
    }
    target &= mask;
    uint32_t *ecx = vm_gpr(vm, R_ECX);
    uint32_t amask = zi->address_width == 16 ? 0xffff : 0xffffffffu;
    uint32_t fl = vm->cpu.blk->eflags;
    switch (zi->mnemonic) {
    case ZYDIS_MNEMONIC_JMP:
    case ZYDIS_MNEMONIC_CALL:
        break;
    case ZYDIS_MNEMONIC_JCXZ:
    case ZYDIS_MNEMONIC_JECXZ:
        taken = (*ecx & amask) == 0;
        break;
    case ZYDIS_MNEMONIC_LOOP:
    case ZYDIS_MNEMONIC_LOOPE:
    case ZYDIS_MNEMONIC_LOOPNE:
        *ecx = (*ecx & ~amask) | ((*ecx - 1) & amask);
        taken = (*ecx & amask) != 0;
        if (zi->mnemonic == ZYDIS_MNEMONIC_LOOPE)
            taken = taken && (fl & EFLAGS_ZF);
        if (zi->mnemonic == ZYDIS_MNEMONIC_LOOPNE)
            taken = taken && !(fl & EFLAGS_ZF);
        break;
    default: /* Jcc */
        taken = cond_true(fl, zi->opcode & 0xf);
        break;
    }
    if (!taken)
        return true;
    if (target > vm->cpu.seg[SEG_CS].limit)
        return GP0(e);
    if (zi->mnemonic == ZYDIS_MNEMONIC_CALL && !push(e, e->next, size))
        return false;
    e->next = target;
    return true;
}

/* ---- data instructions on MMIO -------------------------------------------------------- */


/*
 * The ALU operation on the host CPU, for its flags (MMIO registers are read
 * with MOV, tested with TEST/CMP/AND and set with OR/AND; ADC, SBB and the
 * rest are left unsupported): operands are shifted to
 * the top of 32 bits so that CF, OF, SF and ZF come out for the operand's
 * width; PF and AF are worked out from the unshifted values.
 */
static uint32_t alu(ZydisMnemonic m, uint32_t a, uint32_t b, unsigned size, uint32_t *fl)
{
    unsigned sh = 32 - 8 * size;
    uint32_t x = a << sh, y = b << sh;
    uint64_t flags;
#define ALU(insn)                                                                              \
    __asm__("pushq $0x202\n\tpopfq\n\t" insn " %[y], %[x]\n\tpushfq\n\tpopq %[f]"           \
            : [x] "+r"(x), [f] "=r"(flags) : [y] "r"(y) : "cc")
    switch (m) {
    case ZYDIS_MNEMONIC_ADD: ALU("addl"); break;
    case ZYDIS_MNEMONIC_OR: ALU("orl"); break;
    case ZYDIS_MNEMONIC_AND: case ZYDIS_MNEMONIC_TEST: ALU("andl"); break;
    case ZYDIS_MNEMONIC_XOR: ALU("xorl"); break;
    default: /* SUB, CMP */ ALU("subl"); break;
    }
#undef ALU
    uint32_t r = x >> sh, f = *fl;
    uint32_t keep = EFLAGS_CF | EFLAGS_OF | EFLAGS_SF | EFLAGS_ZF;
    f = (f & ~(keep | EFLAGS_PF | EFLAGS_AF)) | ((uint32_t)flags & keep);
    if (!__builtin_parity(r & 0xff))
        f |= EFLAGS_PF;
    if ((m == ZYDIS_MNEMONIC_ADD || m == ZYDIS_MNEMONIC_SUB || m == ZYDIS_MNEMONIC_CMP) &&
        ((a ^ b ^ r) & 0x10))
        f |= EFLAGS_AF;
    *fl = f;
    return r;
}

/* The data instructions emu_data runs: MOV, MOVZX/MOVSX and two-operand ALU
 * forms, each with one memory operand. */
static bool emu_data_supported(const struct dbt_insn *in)
{
    switch (in->zi.mnemonic) {
    case ZYDIS_MNEMONIC_MOV: case ZYDIS_MNEMONIC_MOVZX: case ZYDIS_MNEMONIC_MOVSX:
    case ZYDIS_MNEMONIC_ADD: case ZYDIS_MNEMONIC_OR: case ZYDIS_MNEMONIC_AND:
    case ZYDIS_MNEMONIC_SUB: case ZYDIS_MNEMONIC_XOR: case ZYDIS_MNEMONIC_CMP:
    case ZYDIS_MNEMONIC_TEST:
        return in->cls == DBT_IDENT && in->zi.operand_count_visible == 2;
    default:
        return false;
    }
}

/* Run a data instruction emu_data_supported accepts, through the guest's
 * segments and page tables (memory or MMIO alike); false if it faulted. */
static bool emu_data(struct emu *e)
{
    struct vm *vm = e->vm;
    const ZydisDecodedOperand *dst = &e->in->ops[0], *src = &e->in->ops[1];
    unsigned size = dst->size / 8;
    uint32_t a, b, *fl = &vm->cpu.blk->eflags;
    switch (e->in->zi.mnemonic) {
    case ZYDIS_MNEMONIC_MOV:
        return op_read(e, src, size, &a) && op_write(e, dst, size, a);
    case ZYDIS_MNEMONIC_MOVZX:
    case ZYDIS_MNEMONIC_MOVSX: {
        unsigned ss = src->size / 8;
        if (!op_read(e, src, ss, &a))
            return false;
        if (e->in->zi.mnemonic == ZYDIS_MNEMONIC_MOVSX)
            a = ss == 1 ? (uint32_t)(int8_t)a : (uint32_t)(int16_t)a;
        return op_write(e, dst, size, a);
    }
    default: {
        if (!op_read(e, dst, size, &a) || !op_read(e, src, size, &b))
            return false;
        if (src->type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
            b &= size == 4 ? ~0u : (1u << (8 * size)) - 1; /* sign-extended imm8 */
        uint32_t r = alu(e->in->zi.mnemonic, a, b, size, fl);
        bool writes = e->in->zi.mnemonic != ZYDIS_MNEMONIC_CMP && e->in->zi.mnemonic != ZYDIS_MNEMONIC_TEST;
        return !writes || op_write(e, dst, size, r);
    }
    }
}

bool emulate_mmio(struct vm *vm, struct fault *f)
{
    struct emu e; /* not zero-filled: `own` is a kilobyte most callouts never use */
    emu_init(&e, vm, vm->cpu.eip, f);
    if (!fetch_decode(&e, NULL))
        return false;
    vm_log(vm, LOG_IO, "mmio: %08x %s\n", e.eip, ZydisMnemonicGetString(e.in->zi.mnemonic));
    if (!emu_data_supported(e.in))
        return unsupported(&e, "memory-mapped I/O access by this instruction");
    if (!emu_data(&e))
        return false;
    vm->cpu.eip = e.next;
    return true;
}

/* ---- dispatch --------------------------------------------------------------------------- */

/* The instruction at e->eip: the translator's decoding of its callout site
 * when there is one, else fetched and decoded now. */
static bool fetch_decode(struct emu *e, const struct callout_site *site)
{
    struct vm *vm = e->vm;
    if (site) {
        e->in = &site->in;
        e->bytes = site->bytes;
    } else {
        struct fetch ft;
        vm_fetch(vm, e->eip, &ft);
        memcpy(e->own_bytes, ft.bytes, sizeof(e->own_bytes));
        e->bytes = e->own_bytes;
        e->in = &e->own;
        if (!dbt_decode(&vm->tc.dec, ft.bytes, ft.n, e->cpl, &e->own)) {
            /* Cut short by the CS limit or a page fault: that fault; else #UD. */
            if (ft.faulted) {
                *e->f = ft.f;
                return false;
            }
            e->own.zi.length = (uint8_t)(ft.n < 3 ? ft.n : 3);
            return UD(e);
        }
        dbt_apply_mode(&e->own, e->cpl, vm->cpu.cr0 & (CR0_TS | CR0_EM), vm->cpu.cr4 & CR4_TSD);
    }
    e->next = e->eip + e->in->zi.length;
    return true;
}

/*
 * A checked fault site's miss (translate.c, emit_page_check): the hint says
 * the page of the instruction's access is not mapped.  Do what the host
 * fault would have led to, without the signal: map the page as a hidden
 * fault does, or deliver the guest's #PF; then the instruction runs natively.
 * What the monitor does not map here (a DS that is not flat or not writable
 * for a write, page 0 or the monitor region, MMIO, a write to a code page or
 * one only CR0.WP=0 allows) unchecks the site, which then faults and is
 * served as before.
 */
static bool emu_page_check(struct emu *e, const struct callout_site *site)
{
    struct vm *vm = e->vm;
    e->in = &site->in;
    const struct seg_cache *ds = &vm->cpu.seg[SEG_DS];
    bool write;
    const ZydisDecodedOperand *op = dbt_checkable_access(e->in, &write);
    uint32_t lin = op ? ds->base + op_ea(e, op) : 0;
    struct walk w;
    if (!op || ds->base || ds->limit != 0xffffffffu ||
        (ds->attr & (SEG_ATTR_S | SEG_TYPE_CODE | SEG_TYPE_EXPDOWN)) != SEG_ATTR_S ||
        (write && !(ds->attr & SEG_TYPE_WRITABLE)))
        goto uncheck; /* the segment's checks come first */
    uint8_t need = write ? SHADOW_HINT_WRITE : SHADOW_HINT_READ;
    if (vm->shadow.hints[lin / PAGE_SIZE] >= need)
        goto uncheck; /* the check cannot have tested this page: it would only miss again */
    if (!vm_translate(vm, lin, (write ? PFERR_W : 0) | (e->cpl == 3 ? PFERR_U : 0), &w, e->f)) {
        vm->tc.stats.checks_faulted++;
        vm_log(vm, LOG_FAULT, "fault: page check at %08x: %08x not mapped for the guest\n",
               e->eip, lin);
        return false;
    }
    uint32_t gpa = w.gpa & PAGE_MASK;
    if (lin < PAGE_SIZE || lin >= vm->mon_base || !guest_ram_contains(&vm->ram, gpa, PAGE_SIZE) ||
        (write && (!w.writable || guest_ram_is_code(&vm->ram, gpa))))
        goto uncheck;
    if (shadow_hint(&vm->shadow, lin) < need) {
        int err = vm_shadow_fill(vm, lin, &w, e->eip);
        if (err < 0) {
            vm_stop(vm, 3, "popek: cannot map guest page %08x at %08x: %s", gpa, lin, strerror(-err));
            return false;
        }
        vm->tc.stats.checks_mapped++;
        vm_log(vm, LOG_FAULT, "fault: page check at %08x: mapped %08x\n", e->eip, lin);
    }
    /* The hint may only have been stale (a page parked and taken back). */
    uint8_t hint = shadow_hint(&vm->shadow, lin);
    if (hint < need)
        goto uncheck;
    vm->shadow.hints[lin / PAGE_SIZE] = hint;
    return true;
uncheck:
    vm_log(vm, LOG_FAULT, "fault: page check at %08x unchecked (access to %08x)\n", e->eip, lin);
    tcache_uncheck_site(vm, site->tb, e->eip);
    return true;
}

bool emulate_page_check(struct vm *vm, const struct callout_site *site, struct fault *f)
{
    struct emu e;
    emu_init(&e, vm, vm->cpu.eip, f);
    return emu_page_check(&e, site);
}

/* DIV/IDIV come here only from the translator's zero-divisor check. */
static bool emu_divide(struct emu *e)
{
    uint32_t v;
    const ZydisDecodedOperand *op = &e->in->ops[0];
    if (!op_read(e, op, op->size / 8, &v))
        return false;
    if (v == 0)
        return fault_set(e, EXC_DE, false, 0);
    return unsupported(e, "division with a non-zero divisor in the monitor");
}

bool emulate_insn(struct vm *vm, const struct callout_site *site, struct fault *f)
{
    struct emu e; /* not zero-filled: `own` is a kilobyte most callouts never use */
    struct emu retried; /* an IRET's: see pf_retry_map */
    emu_init(&e, vm, vm->cpu.eip, f);
    retried.f = f;
    e.retried = &retried;
    if (!fetch_decode(&e, site))
        return false;
    vm_log(vm, LOG_CALLOUT, "callout: %08x %s\n", e.eip, ZydisMnemonicGetString(e.in->zi.mnemonic));
    if (e.in->zi.mnemonic == ZYDIS_MNEMONIC_DIV || e.in->zi.mnemonic == ZYDIS_MNEMONIC_IDIV)
        return emu_divide(&e);
    bool ok;
    uint32_t regs[4];
    uint64_t v64;
    switch (e.in->cls) {
    case DBT_CLI: case DBT_STI: case DBT_PUSHF: case DBT_POPF:
    case DBT_JUMP: case DBT_JCC: case DBT_LOOP: case DBT_CALL:
    case DBT_IND_JMP: case DBT_IND_CALL: case DBT_RET: case DBT_IDENT:
        /* Reached only when the translator could not run it (e.g. the
         * instruction straddles the end of a block's fetch window). */
        return unsupported(&e, "emulation of a natively executable instruction");
    case DBT_INVALID:
        return UD(&e);
    case DBT_CALLOUT:
        break;
    }
    vm->stats.callouts_run[e.in->kind]++;
    switch (e.in->kind) {
    case CO_DESCTABLE:
        ok = emu_desctable(&e);
        break;
    case CO_SEGMENT:
        ok = emu_segment(&e);
        if (ok && site && site->ic && e.in->zi.mnemonic == ZYDIS_MNEMONIC_VERW) {
            uint32_t sel;
            if (op_read(&e, &e.in->ops[0], 2, &sel))
                tcache_verw_ic_patch(vm, site->ic, (uint16_t)sel, vm->cpu.blk->eflags & EFLAGS_ZF);
        } else if (ok && site && site->ic) {
            tcache_seg_ic_patch(vm, site->ic, (unsigned)dbt_seg_index(e.in->ops[0].reg.value));
        }
        break;
    case CO_FARBRANCH:
        ok = emu_farbranch(&e);
        break;
    case CO_INTERRUPT:
        ok = emu_interrupt(&e);
        if (ok && site && site->ic)
            tcache_iret_ic_patch(vm, site->ic);
        break;
    case CO_SYSCALL:
        ok = emu_syscall(&e);
        break;
    case CO_IO:
        ok = emu_io(&e);
        break;
    case CO_CONTROL:
        switch (e.in->zi.mnemonic) {
        case ZYDIS_MNEMONIC_SMSW: {
            const ZydisDecodedOperand *op = &e.in->ops[0];
            bool mem = op->type == ZYDIS_OPERAND_TYPE_MEMORY;
            ok = op_write(&e, op, mem ? 2 : op->size / 8, vm->cpu.cr0 & (mem ? 0xffff : ~0u));
            break;
        }
        case ZYDIS_MNEMONIC_LMSW: {
            uint32_t v;
            ok = e.cpl == 0 ? op_read(&e, &e.in->ops[0], 2, &v) : GP0(&e);
            if (ok)
                vm->cpu.cr0 = (vm->cpu.cr0 & ~0xeu) | (v & 0xf) | (vm->cpu.cr0 & CR0_PE);
            break;
        }
        case ZYDIS_MNEMONIC_CLTS:
            ok = e.cpl == 0 ? (vm->cpu.cr0 &= ~CR0_TS, true) : GP0(&e);
            break;
        case ZYDIS_MNEMONIC_INVLPG: {
            const ZydisDecodedOperand *op = &e.in->ops[0];
            ok = e.cpl == 0 ? true : GP0(&e);
            if (ok) {
                uint32_t lin = vm->cpu.seg[dbt_seg_index(op->mem.segment)].base + op_ea(&e, op);
                shadow_invlpg(&vm->shadow, lin);
                tcache_invalidate_linear_page(vm, lin);
            }
            break;
        }
        case ZYDIS_MNEMONIC_INVD: case ZYDIS_MNEMONIC_WBINVD:
            ok = e.cpl == 0 ? true : GP0(&e);
            break;
        default:
            ok = emu_mov_crdr(&e);
            break;
        }
        break;
    case CO_MSR:
        if (e.cpl != 0 || e.in->zi.mnemonic == ZYDIS_MNEMONIC_RDPMC) {
            ok = GP0(&e);
        } else if (e.in->zi.mnemonic == ZYDIS_MNEMONIC_RDMSR) {
            ok = msr_read(vm, *vm_gpr(vm, R_ECX), &v64) || GP0(&e);
            if (ok) {
                *vm_gpr(vm, R_EAX) = (uint32_t)v64;
                *vm_gpr(vm, R_EDX) = (uint32_t)(v64 >> 32);
            }
        } else {
            v64 = *vm_gpr(vm, R_EAX) | (uint64_t)*vm_gpr(vm, R_EDX) << 32;
            ok = msr_write(vm, *vm_gpr(vm, R_ECX), v64) || GP0(&e);
        }
        break;
    case CO_CPUID:
        cpuid_filtered(*vm_gpr(vm, R_EAX), *vm_gpr(vm, R_ECX), regs);
        *vm_gpr(vm, R_EAX) = regs[0];
        *vm_gpr(vm, R_EBX) = regs[1];
        *vm_gpr(vm, R_ECX) = regs[2];
        *vm_gpr(vm, R_EDX) = regs[3];
        ok = true;
        break;
    case CO_HLT:
        ok = e.cpl == 0 ? (vm->cpu.halted = true) : GP0(&e);
        break;
    case CO_FLAGS:
        switch (e.in->zi.mnemonic) {
        case ZYDIS_MNEMONIC_CLI: ok = emu_cli_sti(&e, false); break;
        case ZYDIS_MNEMONIC_STI: ok = emu_cli_sti(&e, true); break;
        case ZYDIS_MNEMONIC_PUSHF: case ZYDIS_MNEMONIC_PUSHFD: ok = emu_pushf(&e); break;
        default: ok = emu_popf(&e); break;
        }
        break;
    case CO_BRANCH:
        ok = emu_branch(&e);
        break;
    case CO_FPU: {
        /* Translated as a callout because CR0.TS or EM was set (table 2-2). */
        uint32_t cr0 = vm->cpu.cr0;
        switch (dbt_fpu_use(e.in)) {
        case FPU_WAIT:
            ok = (cr0 & CR0_TS) && (cr0 & CR0_MP) ? fault_set(&e, EXC_NM, false, 0) : true;
            break;
        case FPU_SIMD:
            ok = fault_set(&e, (cr0 & CR0_EM) ? EXC_UD : EXC_NM, false, 0);
            break;
        default:
            ok = fault_set(&e, EXC_NM, false, 0);
            break;
        }
        break;
    }
    default:
        /* WRPKRU, XSAVE and friends, MONITOR/MWAIT, RSM: features the
         * virtual CPU does not have. */
        ok = UD(&e);
        break;
    }
    if (ok)
        vm->cpu.eip = e.next;
    if (ok && e.run_retried) {
        /* The instruction an IRET returned to, in place of mapping its page
         * (pf_retry_map); a fault is its own, at its EIP. */
        if (!emu_data(e.retried))
            return false;
        vm->shadow.retries_emulated++;
        vm->cpu.eip = e.retried->next;
    }
    return ok;
}
