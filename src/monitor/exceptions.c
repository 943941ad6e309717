/*
 * Delivering exceptions and interrupts through the guest IDT (SDM vol. 3A,
 * 6.12), with the double-fault rules of table 6-5 and the triple fault that
 * resets the machine.
 *
 * 32-bit interrupt and trap gates are supported, to the same or to a more
 * privileged level (stack from the 32-bit TSS).  Task gates and 16-bit gates
 * stop the VM with a named error: no guest we target uses them.
 */
#include <string.h>

#include "popek/vm.h"

#define GATE_TASK 0x5
#define GATE_INT16 0x6
#define GATE_TRAP16 0x7
#define GATE_INT32 0xe
#define GATE_TRAP32 0xf

static bool contributory(uint8_t v)
{
    return v == EXC_DE || v == EXC_TS || v == EXC_NP || v == EXC_SS || v == EXC_GP;
}

static bool has_error_code(uint8_t v)
{
    return v == EXC_DF || v == EXC_TS || v == EXC_NP || v == EXC_SS || v == EXC_GP ||
           v == EXC_PF || v == EXC_AC;
}

/* Inner-level stack from the TSS (32-bit TSS: ESPn at 4+8n, SSn at 8+8n). */
static bool tss_stack(struct vm *vm, unsigned dpl, uint16_t *ss, uint32_t *esp, struct fault *f)
{
    const struct seg_cache *tr = &vm->cpu.tr;
    uint32_t off = 4 + 8 * dpl;
    if (!tr->valid || off + 7 > tr->limit) {
        *f = (struct fault){ EXC_TS, true, tr->sel & 0xfffcu };
        return false;
    }
    uint32_t v[2];
    if (!vm_read_linear(vm, tr->base + off, v, 8)) {
        *f = vm->mem_fault;
        return false;
    }
    *esp = v[0];
    *ss = (uint16_t)v[1];
    return true;
}

bool deliver_interrupt(struct vm *vm, uint8_t vector, bool soft, bool has_error, uint32_t error,
                       uint32_t return_eip, struct fault *f)
{
    struct vcpu *c = &vm->cpu;
    unsigned cpl = vcpu_cpl(c);
    uint32_t ext = soft ? 0 : 1;
    uint32_t idt_err = vector * 8u + 2 + ext;

    if (vector * 8u + 7 > c->idtr.limit) {
        *f = (struct fault){ EXC_GP, true, idt_err };
        return false;
    }
    uint64_t gate;
    if (!vm_read_linear(vm, c->idtr.base + vector * 8u, &gate, 8)) {
        *f = vm->mem_fault;
        return false;
    }
    uint32_t lo = (uint32_t)gate, hi = (uint32_t)(gate >> 32);
    unsigned type = (hi >> 8) & 0x1f; /* S bit included: must be 0 */
    unsigned gdpl = (hi >> 13) & 3;
    if (type == GATE_TASK || type == GATE_INT16 || type == GATE_TRAP16) {
        vm_stop(vm, 3, "popek: guest IDT vector %u uses a %s gate (not supported)", vector,
                type == GATE_TASK ? "task" : "16-bit");
        return true;
    }
    if (type != GATE_INT32 && type != GATE_TRAP32) {
        *f = (struct fault){ EXC_GP, true, idt_err };
        return false;
    }
    if (soft && gdpl < cpl) {
        *f = (struct fault){ EXC_GP, true, idt_err };
        return false;
    }
    if (!(hi & (1u << 15))) {
        *f = (struct fault){ EXC_NP, true, idt_err };
        return false;
    }
    uint16_t sel = (uint16_t)(lo >> 16);
    uint32_t offset = (lo & 0xffff) | (hi & 0xffff0000u);
    if ((sel & ~3u) == 0) {
        *f = (struct fault){ EXC_GP, true, ext };
        return false;
    }
    uint64_t desc;
    if (!seg_read_descriptor(vm, sel, &desc, f)) {
        f->error = (sel & 0xfffcu) | ext;
        return false;
    }
    struct seg_cache ncs;
    seg_cache_from_desc(&ncs, sel, desc);
    unsigned dpl = (ncs.attr & SEG_ATTR_DPL) >> 5;
    if (!(ncs.attr & SEG_ATTR_S) || !(ncs.attr & SEG_TYPE_CODE) || dpl > cpl) {
        *f = (struct fault){ EXC_GP, true, (sel & 0xfffcu) | ext };
        return false;
    }
    if (!(ncs.attr & SEG_ATTR_P)) {
        *f = (struct fault){ EXC_NP, true, (sel & 0xfffcu) | ext };
        return false;
    }
    if (offset > ncs.limit) {
        *f = (struct fault){ EXC_GP, true, 0 };
        return false;
    }

    uint32_t eflags = vcpu_get_eflags(c);
    bool conforming = ncs.attr & SEG_TYPE_CONFORMING;
    unsigned new_cpl = conforming ? cpl : dpl;
    struct seg_cache saved_ss = c->seg[SEG_SS];
    uint32_t saved_esp = *vm_gpr(vm, R_ESP);
    uint16_t old_cs = c->seg[SEG_CS].sel;

    /* The new stack is loaded and written at the new privilege level: those
     * are supervisor accesses (SDM 6.12.1), so switch the CPL first. */
    c->seg[SEG_CS].sel = (uint16_t)((old_cs & ~3u) | new_cpl);
    if (new_cpl < cpl) {
        uint16_t nss;
        uint32_t nesp;
        if (!tss_stack(vm, new_cpl, &nss, &nesp, f))
            goto unwind;
        if (!seg_load(vm, SEG_SS, nss, f)) {
            if (f->vector == EXC_GP)
                f->vector = EXC_TS;
            goto unwind;
        }
        *vm_gpr(vm, R_ESP) = nesp;
        if (!vm_push32(vm, saved_ss.sel, f) || !vm_push32(vm, saved_esp, f))
            goto unwind;
    }
    if (!vm_push32(vm, eflags, f) || !vm_push32(vm, old_cs, f) ||
        !vm_push32(vm, return_eip, f) || (has_error && !vm_push32(vm, error, f)))
        goto unwind;

    seg_load_cs(vm, sel, desc, new_cpl);
    seg_set_accessed(vm, sel, &desc);
    c->eip = offset;
    eflags &= ~(EFLAGS_TF | EFLAGS_NT | EFLAGS_RF | EFLAGS_VM);
    if (type == GATE_INT32)
        eflags &= ~EFLAGS_IF;
    vcpu_set_eflags(c, eflags);
    c->halted = false;
    vm_log(vm, LOG_INT, "int: vector %u%s err %x -> %04x:%08x (from eip %08x)\n", vector,
           soft ? " (soft)" : "", has_error ? error : 0, c->seg[SEG_CS].sel, offset, return_eip);
    return true;

unwind:
    c->seg[SEG_CS].sel = old_cs;
    c->seg[SEG_SS] = saved_ss;
    seg_refresh_host(vm, SEG_SS);
    *vm_gpr(vm, R_ESP) = saved_esp;
    return false;
}

static void triple_fault(struct vm *vm)
{
    vm_log(vm, LOG_INT, "triple fault at eip %08x\n", vm->cpu.eip);
    vm->ctl.reset_requested = true;
}

void deliver_fault(struct vm *vm, const struct fault *exc)
{
    struct fault cur = *exc, next;
    if (exc->vector == EXC_PF) {
        vm_log(vm, LOG_INT, "int: #PF cr2 %08x err %x at eip %08x\n", vm->cpu.blk->cr2, exc->error,
               vm->cpu.eip);
        vm->cpu.blk->pf_retry = 1;
        vm->pf_retry_eip = vm->cpu.eip;
        vm->pf_retry_cs_base = vm->cpu.seg[SEG_CS].base;
        vm->pf_retry_lin = vm->cpu.blk->cr2;
    }
    cur.has_error = has_error_code(cur.vector);
    for (;;) {
        if (deliver_interrupt(vm, cur.vector, false, cur.has_error, cur.error, vm->cpu.eip, &next))
            return;
        vm_log(vm, LOG_INT, "int: delivering vector %u raised vector %u err %x (cr2 %08x)\n",
               cur.vector, next.vector, next.error, vm->cpu.blk->cr2);
        if (cur.vector == EXC_DF) {
            triple_fault(vm);
            return;
        }
        bool df = (contributory(cur.vector) && contributory(next.vector)) ||
                  (cur.vector == EXC_PF && (contributory(next.vector) || next.vector == EXC_PF));
        cur = df ? (struct fault){ EXC_DF, true, 0 } : next;
        cur.has_error = has_error_code(cur.vector);
    }
}
