/*
 * Host signals: hidden faults, guest exceptions raised by translated code,
 * exit requests, and the seccomp trap.
 *
 * The handler finds the VM through the one per-thread pointer the design
 * allows: %gs, which always holds the monitor segment, so rdgsbase gives the
 * monitor region and vcpu_block.vm the struct vm.  popek_signal_trampoline
 * (entry.S) restores the host FS base before this C runs.
 *
 * A fault in translated code maps back to the guest instruction through the
 * block's TC->EIP map.  Then either
 *   - it was hidden (a page not shadowed yet, a write to a page holding
 *     translated code) and execution resumes where it stopped, or
 *   - the guest must see something (an exception, an exit request): the
 *     guest state is written to the vCPU and the context is redirected to
 *     mon_stub_exit_host, which returns from popek_enter into the run loop.
 * Faults outside translated code are bugs in Popek: report and die.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "popek/vm.h"

#define HOST_CS64 0x33
#define HOST_CS32 0x23
#define HOST_DS 0x2b
#define ALTSTACK_SIZE (256 * 1024)
#define POLL_STORE_LEN 6

void popek_signal_trampoline(int sig, siginfo_t *si, void *uc);
void popek_signal(int sig, siginfo_t *si, void *ucv);

static struct vm *signal_vm(void)
{
    uint64_t base;
    __asm__ volatile("rdgsbase %0" : "=r"(base));
    return ((struct vcpu_block *)(uintptr_t)(base + MON_BLOCK))->vm;
}

void poll_arm(struct vm *vm, uint32_t page, bool armed)
{
    if (page == MON_POLL_EXIT)
        vm->poll_exit_armed = armed;
    mprotect((void *)(uintptr_t)(vm->mon_base + page), PAGE_SIZE,
             PROT_READ | (armed ? 0 : PROT_WRITE));
}

/* Guest state at the fault, into the vCPU, and leave for the run loop. */
static const int uc_gpr[8] = { REG_RAX, REG_RCX, REG_RDX, REG_RBX,
                               REG_RSP, REG_RBP, REG_RSI, REG_RDI };

static void redirect_to_monitor(struct vm *vm, ucontext_t *uc, uint32_t eip, uint8_t restore)
{
    greg_t *g = uc->uc_mcontext.gregs;
    struct vcpu_block *b = vm->cpu.blk;
    for (unsigned i = 0; i < 8; i++)
        b->gpr[i] = (uint32_t)g[uc_gpr[i]];
    if (restore & TB_RESTORE_EAX)
        b->gpr[R_EAX] = b->scratch[0];
    if (restore & TB_RESTORE_ECX)
        b->gpr[R_ECX] = b->scratch[1];
    b->eflags = (uint32_t)g[REG_EFL] & EFLAGS_ARITH;
    b->exit_reason = EXIT_SIGNAL;
    b->in_guest_fs = 0;
    vm->reloc_step = vm->smc_step = vm->loop_step = vm->shadow_step = false;
    vm->cpu.eip = eip;
    g[REG_RIP] = vm->tc.stub_exit_host;
    g[REG_RSP] = (greg_t)b->host_rsp;
    g[REG_EFL] = EFLAGS_IF | EFLAGS_FIXED;
    g[REG_CSGSFS] = (g[REG_CSGSFS] & ~(greg_t)0xffff) | HOST_CS64;
    g[REG_CSGSFS] = (g[REG_CSGSFS] & ~((greg_t)0xffff << 48)) | ((greg_t)HOST_DS << 48);
}

static void raise_guest(struct vm *vm, ucontext_t *uc, const struct tb_map *m,
                        const struct tblock *tb, uint8_t vector, bool has_err, uint32_t err)
{
    vm->pending_fault = (struct fault){ vector, has_err, err };
    vm->has_pending_fault = true;
    vm->stats.guest_exceptions++;
    redirect_to_monitor(vm, uc, tb->eip + m->eip_off, m->restore);
}

static void __attribute__((noreturn)) monitor_bug(int sig, siginfo_t *si, ucontext_t *uc)
{
    char msg[200];
    int n = snprintf(msg, sizeof(msg),
                     "popek: internal error: signal %d (code %d) at %llx, address %p\n", sig,
                     si->si_code, (unsigned long long)uc->uc_mcontext.gregs[REG_RIP], si->si_addr);
    if (n > 0)
        (void)!write(2, msg, (size_t)n);
    console_restore(signal_vm());
    signal(SIGABRT, SIG_DFL);
    abort();
}

/* One memory access of the faulting instruction, in guest terms and in the
 * host segment register translated code used for it. */
struct access {
    unsigned seg, host_seg;
    uint32_t off, size;
    bool write;
};

/* Decode the guest instruction at the fault and list its memory accesses
 * with the offsets the guest registers give.  Translated code reaches the
 * guest's GS and CS through FS (segment swap, translate.c) and every other
 * segment through its own register.  -1 if undecodable. */
static int fault_accesses(struct vm *vm, ucontext_t *uc, uint32_t eip, uint8_t restore,
                          struct access acc[4])
{
    greg_t *g = uc->uc_mcontext.gregs;
    const struct seg_cache *cs = &vm->cpu.seg[SEG_CS];
    uint8_t bytes[15];
    struct dbt_insn in;
    if (!vm_read_linear(vm, cs->base + eip, bytes, sizeof(bytes)) ||
        !dbt_decode(&vm->tc.dec, bytes, sizeof(bytes), vcpu_cpl(&vm->cpu), &in))
        return -1;
    ZydisRegisterContext ctx;
    memset(&ctx, 0, sizeof(ctx));
    static const ZydisRegister r32[8] = { ZYDIS_REGISTER_EAX, ZYDIS_REGISTER_ECX,
        ZYDIS_REGISTER_EDX, ZYDIS_REGISTER_EBX, ZYDIS_REGISTER_ESP, ZYDIS_REGISTER_EBP,
        ZYDIS_REGISTER_ESI, ZYDIS_REGISTER_EDI };
    for (unsigned r = 0; r < 8; r++)
        ctx.values[r32[r]] = (uint32_t)g[uc_gpr[r]];
    if (restore & TB_RESTORE_EAX)
        ctx.values[ZYDIS_REGISTER_EAX] = vm->cpu.blk->scratch[0];
    if (restore & TB_RESTORE_ECX)
        ctx.values[ZYDIS_REGISTER_ECX] = vm->cpu.blk->scratch[1];
    int n = 0;
    for (unsigned i = 0; i < in.zi.operand_count && n < 4; i++) {
        const ZydisDecodedOperand *op = &in.ops[i];
        if (op->type != ZYDIS_OPERAND_TYPE_MEMORY || op->mem.type != ZYDIS_MEMOP_TYPE_MEM)
            continue;
        ZyanU64 ea = 0;
        int s = dbt_seg_index(op->mem.segment);
        int hs = s == SEG_GS || s == SEG_CS ? SEG_FS : s;
        if (s < 0 || !ZYAN_SUCCESS(ZydisCalcAbsoluteAddressEx(&in.zi, op, eip, &ctx, &ea)))
            return -1;
        /* Pushes and calls write below the stack pointer. */
        uint32_t size = op->size / 8 ? op->size / 8 : 1;
        acc[n++] = (struct access){ (unsigned)s, (unsigned)hs, (uint32_t)ea, size,
                                    (op->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) != 0 };
    }
    return n;
}

/* A segment register of the interrupted context. */
static void set_host_seg(struct vm *vm, ucontext_t *uc, unsigned seg, uint16_t sel)
{
    greg_t *g = uc->uc_mcontext.gregs;
    switch (seg) {
    case SEG_DS:
        __asm__ volatile("movw %0, %%ds" ::"r"(sel));
        break;
    case SEG_ES:
        __asm__ volatile("movw %0, %%es" ::"r"(sel));
        break;
    case SEG_SS:
        g[REG_CSGSFS] = (g[REG_CSGSFS] & ~((greg_t)0xffff << 48)) | ((greg_t)sel << 48);
        break;
    case SEG_FS:
        vm->cpu.blk->resume_fs = sel;
        break;
    default:
        break;
    }
}

/*
 * Execute the faulting instruction once, single-stepped, with temporary host
 * segments that reach what the guest's segments reach: the monitor truncated
 * their limits (or could not represent them: expand-down, wrap-around), and
 * the accesses have been checked against the guest's own limits.  Targets the
 * guest cannot map natively (page 0, the monitor region) go through the
 * monitor's two-page window onto the same guest memory.
 */
static bool relocate_step(struct vm *vm, ucontext_t *uc, const struct access *acc, int n,
                          struct fault *pf)
{
    uint8_t *window = (uint8_t *)(uintptr_t)(vm->mon_base + MON_WINDOW);
    bool window_used = false;
    uint32_t window_page = 0;
    vm->reloc_saved_fs = vm->cpu.blk->resume_fs;
    for (int i = 0; i < n; i++) {
        const struct seg_cache *sc = &vm->cpu.seg[acc[i].seg];
        uint32_t lin = sc->base + acc[i].off, base = sc->base;
        bool direct = lin >= PAGE_SIZE && lin + acc[i].size - 1 >= lin &&
                      lin + acc[i].size - 1 < vm->mon_base;
        if (!direct) {
            uint32_t page = lin & PAGE_MASK;
            if (window_used && page != window_page)
                return false;
            for (unsigned p = 0; p < 2 && !window_used; p++) {
                struct walk w;
                struct fault f;
                uint32_t access = (acc[i].write ? PFERR_W : 0) | (vcpu_cpl(&vm->cpu) == 3 ? PFERR_U : 0);
                bool needed = p == 0 || lin + acc[i].size > page + PAGE_SIZE;
                if (!vm_translate(vm, page + p * PAGE_SIZE, access, &w, &f)) {
                    if (needed) {
                        *pf = f; /* the guest's own page tables refuse it */
                        return false;
                    }
                    continue;
                }
                if (!guest_ram_contains(&vm->ram, w.gpa & PAGE_MASK, PAGE_SIZE)) {
                    if (needed)
                        return false;
                    continue;
                }
                uint32_t gpa = w.gpa & PAGE_MASK;
                if (mmap(window + p * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_FIXED, vm->ram.memfd, gpa) == MAP_FAILED)
                    return false;
            }
            window_used = true;
            window_page = page;
            base = (uint32_t)(uintptr_t)window + (lin & ~PAGE_MASK) - acc[i].off;
        }
        bool writable = (sc->attr & SEG_TYPE_WRITABLE) && !(sc->attr & SEG_TYPE_CODE);
        set_host_seg(vm, uc, acc[i].host_seg,
                     seg_temp_selector(vm, acc[i].host_seg, base, writable));
    }
    vm->reloc_step = true;
    uc->uc_mcontext.gregs[REG_EFL] |= EFLAGS_TF;
    return true;
}

static void relocate_done(struct vm *vm, ucontext_t *uc)
{
    struct vcpu_block *b = vm->cpu.blk;
    set_host_seg(vm, uc, SEG_DS, b->host_sel[SEG_DS]);
    set_host_seg(vm, uc, SEG_ES, b->host_sel[SEG_ES]);
    set_host_seg(vm, uc, SEG_SS, b->host_sel[SEG_SS]);
    b->resume_fs = vm->reloc_saved_fs;
    uc->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)EFLAGS_TF;
    vm->reloc_step = false;
}

/*
 * A GS access through the segment swap (translate.c) whose offset wraps past
 * 4 GiB: glibc reaches TLS variables below the thread pointer through a
 * register (`mov %gs:(%edi),%ebp`), which the translator could not see.
 * Point that site's FS load at the wrap-around shadow (or back) and restart
 * it; the access then runs natively from now on.
 */
static bool repoint_gs_swap(struct vm *vm, ucontext_t *uc, const struct tblock *tb,
                            const struct tb_map *m, const struct access *a)
{
    const struct vcpu_block *b = vm->cpu.blk;
    const struct seg_cache *gs = &vm->cpu.seg[SEG_GS];
    uint8_t *load = (uint8_t *)(uintptr_t)(tb->tc + m->tc_off);
    static const uint8_t fs_load[3] = { 0x65, 0x8e, 0x25 }; /* mov %gs:disp32,%fs */
    if (b->gs_alias_wrap == b->gs_alias || memcmp(load, fs_load, 3))
        return false;
    uint32_t want = (uint64_t)gs->base + a->off >= GUEST_SPACE ? VB_GS_ALIAS_WRAP : VB_GS_ALIAS;
    uint32_t cur;
    memcpy(&cur, load + 3, 4);
    if (cur == MON_BLOCK + want)
        return false; /* already the right shadow: a genuine refusal */
    want += MON_BLOCK;
    memcpy(load + 3, &want, 4);
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)load;
    return true;
}

/* #GP or #SS (or #PF on page 0) from a guest memory access: either the guest
 * broke its own segment limits, or only the monitor's shadow refused it. */
static void handle_access_fault(struct vm *vm, ucontext_t *uc, struct tblock *tb,
                                const struct tb_map *m)
{
    uint32_t eip = tb->eip + m->eip_off;
    struct access acc[4];
    int n = fault_accesses(vm, uc, eip, m->restore, acc);
    if (n <= 0) {
        raise_guest(vm, uc, m, tb, EXC_GP, true, 0);
        return;
    }
    for (int i = 0; i < n; i++) {
        const struct seg_cache *sc = &vm->cpu.seg[acc[i].seg];
        uint16_t type = sc->attr & SEG_ATTR_TYPE;
        bool code = type & SEG_TYPE_CODE;
        bool denied = acc[i].write ? code || !(type & SEG_TYPE_WRITABLE)
                                   : code && !(type & SEG_TYPE_READABLE);
        if (!sc->valid || denied || !seg_check_limit(sc, acc[i].off, acc[i].size)) {
            raise_guest(vm, uc, m, tb, acc[i].seg == SEG_SS ? EXC_SS : EXC_GP, true, 0);
            return;
        }
    }
    /* Faulting again under the relocated segments: the guest's own access is
     * at fault after all (e.g. a read-only page). */
    for (int i = 0; i < n; i++)
        if (acc[i].seg == SEG_GS && repoint_gs_swap(vm, uc, tb, m, &acc[i]))
            return;
    struct fault pf = { 0 };
    if (!vm->reloc_step && relocate_step(vm, uc, acc, n, &pf))
        return;
    if (pf.vector == EXC_PF) {
        raise_guest(vm, uc, m, tb, EXC_PF, true, pf.error);
        return;
    }
    vm_stop(vm, 3, "popek: guest access at eip %08x to %08x (%u bytes) that the monitor cannot "
            "alias (MMIO or accesses on several pages are not supported yet)", eip,
            vm->cpu.seg[acc[0].seg].base + acc[0].off, acc[0].size);
    redirect_to_monitor(vm, uc, eip, m->restore);
}

static void handle_page_fault(struct vm *vm, siginfo_t *si, ucontext_t *uc, struct tblock *tb,
                              const struct tb_map *m)
{
    greg_t *g = uc->uc_mcontext.gregs;
    uint64_t addr = (uint64_t)(uintptr_t)si->si_addr;
    bool write = g[REG_ERR] & PFERR_W;
    uint32_t eip = tb->eip + m->eip_off;

    if (addr >= vm->mon_base && addr < (uint64_t)vm->mon_base + MON_BLOCK) {
        uint32_t page = (uint32_t)(addr - vm->mon_base) & PAGE_MASK;
        if (page == MON_POLL_IRQ && !vm->cpu.blk->vif) {
            g[REG_RIP] += POLL_STORE_LEN; /* nothing deliverable: skip the check */
            return;
        }
        if (page == MON_POLL_EXIT && vm->cpu.irq_shadow && !(g[REG_EFL] & EFLAGS_TF)) {
            /* Leaving here would not run the instruction in the shadow, and
             * the monitor would only come back: step it first. */
            poll_exit_disarm(vm);
            vm->shadow_step = true;
            vm->shadow_starts = 0;
            g[REG_EFL] |= EFLAGS_TF;
            return;
        }
        redirect_to_monitor(vm, uc, eip, m->restore);
        return;
    }
    if (addr >= vm->mon_base) {
        vm_stop(vm, 3, "popek: internal error: translated code touched %llx (guest eip %08x)",
                (unsigned long long)addr, eip);
        redirect_to_monitor(vm, uc, eip, m->restore);
        return;
    }
    uint32_t lin = (uint32_t)addr;
    uint32_t access = (write ? PFERR_W : 0) | (vcpu_cpl(&vm->cpu) == 3 ? PFERR_U : 0);
    struct walk w;
    struct fault f;
    /* At the very start of an instruction's translation: a fault site,
     * which may get a page check (tcache_note_fault). */
    bool site = !m->restore && (uint32_t)g[REG_RIP] == tb->tc + m->tc_off;
    if (!vm_translate(vm, lin, access, &w, &f)) {
        if (site)
            tcache_note_fault(vm, tb, eip);
        raise_guest(vm, uc, m, tb, f.vector, true, f.error);
        return;
    }
    uint32_t gpa = w.gpa & PAGE_MASK;
    if (lin < PAGE_SIZE && guest_ram_contains(&vm->ram, gpa, 1)) {
        handle_access_fault(vm, uc, tb, m); /* page 0 can never be shadowed */
        return;
    }
    if (!guest_ram_contains(&vm->ram, gpa, 1)) {
        /* MMIO is never mapped: the run loop emulates the instruction. */
        vm->mmio_pending = true;
        redirect_to_monitor(vm, uc, eip, m->restore);
        return;
    }
    bool smc = write && guest_ram_is_code(&vm->ram, gpa);
    if (smc) {
        vm->stats.smc_faults++;
        tcache_invalidate_phys(vm, gpa);
        if (!tb->valid) {
            /* The block wrote its own code: let this instruction finish,
             * then leave the stale block (see the SIGTRAP case). */
            vm->smc_step = true;
            g[REG_EFL] |= EFLAGS_TF;
        }
    }
    vm->shadow.hidden_faults++;
    /* As vm_shadow_fill maps it, but a write the guest allows only because
     * CR0.WP=0 (supervisor, read-only page) gets the page writable for this
     * one instruction. */
    bool wp0 = write && !w.writable;
    int err = wp0 ? shadow_map(&vm->shadow, &vm->ram, lin, gpa, true, w.user, w.global, w.large, true)
                  : vm_shadow_fill(vm, lin, &w, eip);
    if (site && !smc && !wp0)
        tcache_note_fault(vm, tb, eip);
    if (err < 0) {
        vm_stop(vm, 3, "popek: cannot map guest page %08x at %08x: %s", gpa, lin, strerror(-err));
        redirect_to_monitor(vm, uc, eip, m->restore);
        return;
    }
    if (wp0) {
        vm->wp0_step_page = lin;
        g[REG_EFL] |= EFLAGS_TF;
    }
}

/* The block whose code (not its stubs) holds rip, or NULL; *start is its map
 * entry if rip is exactly where one of its guest instructions begins (the
 * guest state then all in registers), else NULL. */
static struct tblock *block_at_rip(struct vm *vm, uint32_t rip, const struct tb_map **start)
{
    struct tblock *tb = tcache_find_by_tc(vm, rip);
    *start = NULL;
    if (!tb || rip < tb->tc || rip >= tb->tc_end)
        return NULL;
    const struct tb_map *m = tcache_map_tc(tb, rip);
    if (m && rip - tb->tc == m->tc_off && !m->restore)
        *start = m;
    return tb;
}

static void exit_at_start(struct vm *vm, ucontext_t *uc, const struct tblock *tb,
                          const struct tb_map *m)
{
    seg_sync_inline(vm);
    redirect_to_monitor(vm, uc, tb->eip + m->eip_off, 0);
}

/*
 * Plain blocks chain to each other past their poll stores (tcache_chain),
 * so a pending exit request cannot wait for the next block entry there:
 * leave now if execution is at the start of one of a plain block's guest
 * instructions (the guest state is then all in registers; a plain block
 * has no STI or POPF whose interrupt shadow this could break), or
 * single-step to one.  False if the interrupted code is not in a plain block
 * (then the next entry into any other block polls).
 */
static bool plain_block_exit(struct vm *vm, ucontext_t *uc)
{
    greg_t *g = uc->uc_mcontext.gregs;
    const struct tb_map *m;
    struct tblock *tb = block_at_rip(vm, (uint32_t)g[REG_RIP], &m);
    if (!tb || !tb->plain)
        return false;
    if (m) {
        exit_at_start(vm, uc, tb, m);
    } else {
        vm->loop_step = true;
        g[REG_EFL] |= EFLAGS_TF;
    }
    return true;
}

/*
 * One step of the instruction in an interrupt shadow: at the start of the
 * guest instruction after it, leave for the monitor (which then delivers the
 * interrupt); out of translated code (a callout or block exit, which the
 * shadowed instruction ended in, or ran first), stop stepping and let the
 * exit happen.
 */
static void shadow_step(struct vm *vm, ucontext_t *uc, bool in_tc)
{
    greg_t *g = uc->uc_mcontext.gregs;
    const struct tb_map *m = NULL;
    struct tblock *tb = in_tc ? block_at_rip(vm, (uint32_t)g[REG_RIP], &m) : NULL;
    if (!tb) {
        if (vm->shadow_starts)
            vm->cpu.irq_shadow = false;
        vm->shadow_step = false;
        g[REG_EFL] &= ~(greg_t)EFLAGS_TF;
        return;
    }
    if (m && ++vm->shadow_starts == 2) {
        vm->cpu.irq_shadow = false;
        exit_at_start(vm, uc, tb, m);
    }
}

void popek_signal(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    struct vm *vm = signal_vm();
    greg_t *g = uc->uc_mcontext.gregs;
    uint64_t rip = (uint64_t)g[REG_RIP];
    bool in_tc = (g[REG_CSGSFS] & 0xffff) == HOST_CS32;

    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGALRM) {
        /* Only note it and make translated code come out at the next block
         * boundary: device state belongs to the run loop. */
        if (sig == SIGALRM)
            vm->timer_fired = 1;
        else
            vm->stop_signal = sig;
        poll_arm(vm, MON_POLL_EXIT, true);
        if (in_tc && !vm->reloc_step && !vm->smc_step && !vm->wp0_step_page && !vm->loop_step &&
            !(g[REG_EFL] & EFLAGS_TF))
            plain_block_exit(vm, uc);
        return;
    }
    if (sig == SIGTRAP && vm->shadow_step) {
        shadow_step(vm, uc, in_tc);
        return;
    }
    if (sig == SIGTRAP && vm->loop_step) {
        vm->loop_step = false;
        if (!in_tc || !plain_block_exit(vm, uc))
            g[REG_EFL] &= ~(greg_t)EFLAGS_TF; /* out of plain blocks: the next poll exits */
        return;
    }
    if (!in_tc) {
        if (sig == SIGSYS) {
            static const char msg[] = "popek: blocked a system call from outside the monitor\n";
            (void)!write(2, msg, sizeof(msg) - 1);
            _exit(3);
        }
        monitor_bug(sig, si, uc);
    }
    struct tblock *tb = tcache_find_by_tc(vm, (uint32_t)rip);
    const struct tb_map *m = tb ? tcache_map_tc(tb, (uint32_t)rip) : NULL;
    if (sig == SIGSYS) {
        vm_stop(vm, 3, "popek: guest code reached a host system call (nr %d) at tc %08llx: stopped",
                si->si_syscall, (unsigned long long)rip);
        if (m)
            redirect_to_monitor(vm, uc, tb->eip + m->eip_off, m->restore);
        else
            _exit(3);
        return;
    }
    if (!m)
        monitor_bug(sig, si, uc);
    seg_sync_inline(vm);
    uint32_t eip = tb->eip + m->eip_off;
    unsigned trapno = (unsigned)g[REG_TRAPNO];
    vm_log(vm, LOG_FAULT, "fault: sig %d trap %u err %llx addr %p tc %08llx guest %08x\n", sig,
           trapno, (unsigned long long)g[REG_ERR], si->si_addr, (unsigned long long)rip, eip);

    if (sig == SIGTRAP && vm->reloc_step) {
        relocate_done(vm, uc);
        return;
    }
    if (sig == SIGTRAP && vm->wp0_step_page) {
        shadow_unmap_page(&vm->shadow, vm->wp0_step_page);
        if (vm->shadow.broken)
            poll_arm(vm, MON_POLL_EXIT, true); /* the run loop stops the guest */
        vm->wp0_step_page = 0;
        uc->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)EFLAGS_TF;
        return;
    }
    if (sig == SIGTRAP && vm->smc_step) {
        /* Single-stepped past a self-modifying write; stop at the next guest
         * instruction boundary. */
        if ((uint32_t)rip - tb->tc != m->tc_off)
            return;
        vm->smc_step = false;
        redirect_to_monitor(vm, uc, eip, m->restore);
        return;
    }
    switch (trapno) {
    case EXC_PF:
        handle_page_fault(vm, si, uc, tb, m);
        return;
    case EXC_GP:
    case EXC_SS:
        handle_access_fault(vm, uc, tb, m);
        return;
    case EXC_DE:
    case EXC_UD:
    case EXC_BR:
    case EXC_MF:
    case EXC_XM:
        raise_guest(vm, uc, m, tb, (uint8_t)trapno, false, 0);
        return;
    case EXC_NM:
        raise_guest(vm, uc, m, tb, EXC_NM, false, 0);
        return;
    default:
        vm_stop(vm, 3, "popek: unexpected host exception %u (signal %d) in guest code at eip %08x",
                trapno, sig, eip);
        redirect_to_monitor(vm, uc, eip, m->restore);
        return;
    }
}

int signals_init(struct vm *vm)
{
    stack_t ss = { .ss_size = ALTSTACK_SIZE };
    vm->altstack = ss.ss_sp = malloc(ALTSTACK_SIZE);
    if (!ss.ss_sp || sigaltstack(&ss, NULL) < 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = popek_signal_trampoline;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    static const int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS,
                                SIGINT, SIGTERM, SIGHUP, SIGALRM };
    for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (sigaction(sigs[i], &sa, NULL) < 0)
            return -1;
    return 0;
}
