/*
 * The vCPU run loop: find or translate the block at EIP, enter the
 * translation cache, and handle whatever brought execution back (an exit to
 * chain, a callout, an indirect-branch miss, a fault or request redirected by
 * a signal handler).
 */
#include <signal.h>
#include <unistd.h>

#include "popek/vm.h"

int popek_enter(struct vcpu_block *blk);

/* The block at EIP, translated if needed.  NULL if the guest cannot even
 * fetch its first instruction: then the fault is pending for delivery. */
static struct tblock *block_at(struct vm *vm, uint32_t eip)
{
    struct tblock *tb = tcache_lookup(vm, eip);
    if (tb)
        return tb;
    struct fault f = { 0 };
    tb = tcache_translate(vm, eip, &f);
    if (!tb && !vm->stop) {
        vm->pending_fault = f;
        vm->has_pending_fault = true;
    }
    return tb;
}

/* Chain the exit whose slot brought us here to the block at the target. */
static void chain_exit(struct vm *vm, uint32_t slot, struct tblock *to)
{
    struct tblock *from = tcache_find_by_tc(vm, slot);
    if (!from || !from->valid || from->cpl != to->cpl || from->cs_base != to->cs_base)
        return;
    for (unsigned i = 0; i < from->nexits; i++)
        if (from->exits[i].slot == slot)
            tcache_chain(vm, from, i, to);
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

int vm_run(struct vm *vm)
{
    struct vcpu *c = &vm->cpu;
    struct vcpu_block *b = c->blk;

    while (!vm->stop && handle_requests(vm)) {
        if (vm->has_pending_fault) {
            vm->has_pending_fault = false;
            deliver_fault(vm, &vm->pending_fault);
            continue;
        }
        if (c->halted) {
            /* No interrupt sources yet: a halted CPU waits for a signal. */
            pause();
            continue;
        }
        struct tblock *tb = block_at(vm, c->eip);
        if (!tb)
            continue;
        vm_log(vm, LOG_EXEC, "exec: %08x (tc %08x)\n", tb->eip, tb->tc);
        b->entry_far_off = tb->tc;
        b->exit_reason = EXIT_NONE;
        unsigned key_bits = 3u << (2 * vm->shadow.pkey_sup);
        b->pkru = vcpu_cpl(c) == 3 ? (vm->host_pkru & ~key_bits) | (1u << (2 * vm->shadow.pkey_sup))
                                   : vm->host_pkru & ~key_bits;
        popek_enter(b);
        vm->stats.monitor_entries++;
        vm->tc.stats.ibl_hits += b->ibl_hits;
        b->ibl_hits = 0;

        switch (b->exit_reason) {
        case EXIT_CHAIN: {
            uint32_t slot = b->exit_arg;
            uint64_t flushes = vm->tc.stats.flushes;
            c->eip = b->exit_eip;
            vm->tc.stats.unchained_exits++;
            struct tblock *to = block_at(vm, c->eip);
            if (to && flushes == vm->tc.stats.flushes)
                chain_exit(vm, slot, to);
            break;
        }
        case EXIT_EMULATE: {
            struct fault f;
            c->eip = b->exit_eip;
            c->irq_shadow = false;
            if (!emulate_insn(vm, &f) && !vm->stop)
                deliver_fault(vm, &f);
            break;
        }
        case EXIT_IBL_MISS: {
            uint32_t site = b->exit_arg;
            uint64_t flushes = vm->tc.stats.flushes;
            c->eip = b->exit_eip;
            vm->tc.stats.ibl_misses++;
            struct tblock *to = block_at(vm, c->eip);
            if (to) {
                tcache_ibl_insert(vm, to);
                if (site && flushes == vm->tc.stats.flushes)
                    chain_exit(vm, site, to);
            }
            break;
        }
        case EXIT_SIGNAL:
            poll_arm(vm, MON_POLL_EXIT, false);
            break;
        default:
            vm_stop(vm, 3, "popek: internal error: translated code exited with reason %u",
                    b->exit_reason);
            break;
        }
    }
    return vm->exit_status;
}
