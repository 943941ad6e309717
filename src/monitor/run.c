/*
 * The vCPU run loop: find or translate the block at EIP, enter the
 * translation cache, and handle whatever brought execution back (an exit to
 * chain, a callout, an indirect-branch miss, a fault or request redirected by
 * a signal handler).
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include "popek/vm.h"

int popek_enter(struct vcpu_block *blk);

/* The block at EIP, translated if needed.  NULL if the guest cannot even
 * fetch its first instruction: then the fault is pending for delivery. */
static struct tblock *block_at(struct vm *vm, uint32_t eip)
{
    struct tblock *tb = tcache_lookup(vm, eip);
    if (!tb) {
        struct fault f = { 0 };
        tb = tcache_translate(vm, eip, &f);
        if (!tb && !vm->stop) {
            vm->pending_fault = f;
            vm->has_pending_fault = true;
        }
    }
    if (tb)
        tcache_wake_links(vm, tb);
    return tb;
}

/* Chain the exit that brought us here (exit_arg: tb_exit_arg) to the block
 * at the target. */
static void chain_exit(struct vm *vm, uint32_t exit_arg, struct tblock *to)
{
    uint32_t index;
    unsigned exit;
    if (!tb_exit_arg_decode(exit_arg, &index, &exit) || index >= vm->tc.nblocks)
        return;
    struct tblock *from = &vm->tc.blocks[index];
    if (!from->valid || exit >= from->nexits || from->cpl != to->cpl || from->cs_base != to->cs_base)
        return;
    tcache_chain(vm, from, exit, to);
}

/* Machine-level requests that devices or signals left for us. */
static bool handle_requests(struct vm *vm)
{
    if (vm->stop_signal) {
        vm_stop(vm, 128 + vm->stop_signal, "popek: terminated by signal %d", vm->stop_signal);
        return false;
    }
    if (vm->ctl.exit_requested) {
        vm_stop(vm, vm->ctl.exit_status, NULL);
        return false;
    }
    if (vm->ctl.reset_requested) {
        if (vm->cfg.no_reboot) {
            vm_stop(vm, 0, NULL);
            return false;
        }
        return vm_reset(vm) == 0;
    }
    return true;
}

/* Bring timers up to date, and the host timer in line with the next deadline.
 * Needed only when that deadline passed (the host timer fired) or the guest
 * reprogrammed a device: between the two nothing in the timers changes. */
static void devices_update(struct vm *vm)
{
    vm->devices_touched = false;
    i8254_update(&vm->pit);
    mc146818_update(&vm->rtc);
    uint64_t next = i8254_next_event_ns(&vm->pit);
    uint64_t rtc = mc146818_next_event_ns(&vm->rtc);
    if (rtc < next)
        next = rtc;
    if (next == UINT64_MAX)
        next = 0;
    if (next != vm->timer_deadline) {
        struct itimerspec its = { .it_value = { (time_t)(next / 1000000000u),
                                                (long)(next % 1000000000u) } };
        if (next && !its.it_value.tv_sec && !its.it_value.tv_nsec)
            its.it_value.tv_nsec = 1;
        timer_settime(vm->host_timer, TIMER_ABSTIME, &its, NULL);
        vm->timer_deadline = next;
    }
}

/* An interrupt from the PIC if the virtual CPU takes one now; otherwise make
 * the IF-setting instructions (STI, POPF) check back while one is pending. */
static void interrupts(struct vm *vm)
{
    struct vcpu *c = &vm->cpu;
    bool pending = i8259_has_interrupt(&vm->pic);
    if (pending && c->blk->vif && !c->irq_shadow) {
        int vec = i8259_acknowledge(&vm->pic);
        struct fault f;
        c->halted = false;
        if (!deliver_interrupt(vm, (uint8_t)vec, false, false, 0, c->eip, &f))
            deliver_fault(vm, &f);
        pending = i8259_has_interrupt(&vm->pic);
    }
    if (pending && c->blk->vif && c->irq_shadow)
        poll_arm(vm, MON_POLL_EXIT, true); /* deliver after the next instruction or so */
    c->blk->irq_pending = pending ? 256 : 0;
    if (pending != vm->poll_irq_armed) {
        poll_arm(vm, MON_POLL_IRQ, pending);
        vm->poll_irq_armed = pending;
    }
}

/* HLT: sleep until the next timer deadline, a signal or terminal input. */
static void halt_wait(struct vm *vm, uint64_t deadline)
{
    struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
    struct timespec ts, *tsp = NULL;
    if (deadline) {
        uint64_t now = clock_now(&vm->clock);
        uint64_t d = deadline > now ? deadline - now : 0;
        ts = (struct timespec){ (time_t)(d / 1000000000u), (long)(d % 1000000000u) };
        tsp = &ts;
    }
    /* Terminal input wakes us too, until the console has seen end of file
     * (then stdin would be "readable" for ever). */
    ppoll(&p, vm->console_eof ? 0 : 1, tsp, NULL);
    uart16550_poll_rx(&vm->uart);
}

/* The block after a callout, as last time if nothing could have changed
 * what a lookup finds (the callout's own EIP result included). */
static struct tblock *after_callout(struct vm *vm, struct callout_site *s)
{
    const struct vcpu *c = &vm->cpu;
    struct tblock *tb = s ? s->next : NULL;
    if (tb && tb->valid && s->next_eip == c->eip && s->next_gen == vm->tc.space_gen &&
        tb->cs_base == c->seg[SEG_CS].base && tb->cpl == vcpu_cpl(c) &&
        tb->fpu_trap == !!(c->cr0 & (CR0_TS | CR0_EM)))
        return tb;
    tb = block_at(vm, c->eip);
    if (tb && s) {
        s->next = tb;
        s->next_eip = c->eip;
        s->next_gen = vm->tc.space_gen;
    }
    return tb;
}

int vm_run(struct vm *vm)
{
    struct vcpu *c = &vm->cpu;
    struct vcpu_block *b = c->blk;
    struct callout_site *resumed = NULL; /* the callout the guest continues after */

    while (!vm->stop) {
        /* Before the request flags are read: a signal after this arms again. */
        poll_exit_disarm(vm);
        if (!handle_requests(vm))
            break;
        if (vm->shadow.broken) {
            vm_stop(vm, 3, "popek: the host refused to unmap a guest page (out of memory?)");
            break;
        }
        if (vm->has_pending_fault) {
            vm->has_pending_fault = false;
            deliver_fault(vm, &vm->pending_fault);
            continue;
        }
        if (vm->timer_fired) {
            vm->timer_fired = 0;
            vm->timer_deadline = 0; /* a one-shot timer: it is disarmed now */
            vm->devices_touched = true;
            uart16550_poll_rx(&vm->uart);
        }
        if (vm->devices_touched || c->halted)
            devices_update(vm);
        interrupts(vm);
        if (c->halted) {
            /* With IF clear and no NMI sources, nothing can wake the CPU:
             * the machine is off (Linux's halt and poweroff without ACPI). */
            if (!b->vif) {
                vm_stop(vm, 0, "popek: guest halted with interrupts disabled (powered off)");
                break;
            }
            halt_wait(vm, vm->timer_deadline);
            continue;
        }
        struct tblock *tb = resumed ? after_callout(vm, resumed) : block_at(vm, c->eip);
        resumed = NULL;
        if (!tb)
            continue;
        vm_log(vm, LOG_EXEC, "exec: %08x (tc %08x)\n", tb->eip, tb->tc);
        b->entry_far_off = tb->tc;
        b->exit_reason = EXIT_NONE;
        b->pkru_cpl[0] = vm_pkru(vm, 0);
        b->pkru_cpl[1] = vm_pkru(vm, 3);
        b->pkru = b->pkru_cpl[vcpu_cpl(c) == 3];
        b->ds_key = seg_ds_key(&c->seg[SEG_DS]);
        b->entry_fs = vcpu_cpl(c) == 3 ? b->gs_alias : b->host_sel[SEG_FS]; /* translate.c, fs_home */
        for (unsigned s = 0; s < SEG_COUNT; s++)
            b->guest_sel[s] = c->seg[s].sel;
        popek_enter(b);
        /* Stepping belongs to one stint in translated code (a POPF of a guest
         * image, inline IRET's, may have cleared TF before it ended). */
        vm->loop_step = vm->shadow_step = false;
        seg_sync_inline(vm);
        vm->stats.monitor_entries++;
        vm->tc.stats.ibl_hits += b->ibl_hits;
        b->ibl_hits = 0;

        switch (b->exit_reason) {
        case EXIT_CHAIN: {
            uint32_t exit_arg = b->exit_arg;
            uint64_t flushes = vm->tc.stats.flushes;
            c->eip = b->exit_eip;
            vm->tc.stats.unchained_exits++;
            struct tblock *to = block_at(vm, c->eip);
            if (to && flushes == vm->tc.stats.flushes)
                chain_exit(vm, exit_arg, to);
            break;
        }
        case EXIT_EMULATE: {
            struct fault f;
            bool check = b->exit_arg & EXIT_ARG_PAGE_CHECK;
            struct callout_site *site = tcache_callout_site(vm, b->exit_arg & ~EXIT_ARG_PAGE_CHECK);
            c->eip = b->exit_eip;
            if (check) {
                /* Nothing has run; a check from a block invalidated since
                 * (a fault site of its own got checked) just runs again. */
                if (site && !emulate_page_check(vm, site, &f) && !vm->stop)
                    deliver_fault(vm, &f);
                break;
            }
            c->irq_shadow = false; /* the instruction after STI / MOV SS has run */
            if (emulate_insn(vm, site, &f))
                resumed = site;
            else if (!vm->stop)
                deliver_fault(vm, &f);
            break;
        }
        case EXIT_IBL_MISS: {
            uint32_t exit_arg = b->exit_arg; /* a RET inline cache's first miss, or 0 */
            uint64_t flushes = vm->tc.stats.flushes;
            c->eip = b->exit_eip;
            vm->tc.stats.ibl_misses++;
            struct tblock *to = block_at(vm, c->eip);
            if (to) {
                tcache_ibl_insert(vm, to);
                if (flushes == vm->tc.stats.flushes)
                    chain_exit(vm, exit_arg, to);
            }
            break;
        }
        case EXIT_SIGNAL:
            if (vm->mmio_pending) {
                struct fault f;
                vm->mmio_pending = false;
                if (!emulate_mmio(vm, &f) && !vm->stop)
                    deliver_fault(vm, &f);
            }
            break;
        default:
            vm_stop(vm, 3, "popek: internal error: translated code exited with reason %u",
                    b->exit_reason);
            break;
        }
    }
    return vm->exit_status;
}
