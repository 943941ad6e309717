/*
 * Model-specific registers the virtual CPU implements.  Everything else
 * raises #GP(0), which is what Linux's rdmsr_safe()/wrmsr_safe() expect of an
 * MSR that does not exist.
 */
#include <x86intrin.h>

#include "popek/vm.h"

#define MISC_ENABLE_FAST_STRINGS 1u

bool msr_read(struct vm *vm, uint32_t msr, uint64_t *val)
{
    struct vcpu *c = &vm->cpu;
    switch (msr) {
    case MSR_IA32_TSC:
        *val = __rdtsc() + (uint64_t)c->tsc_offset;
        return true;
    case MSR_IA32_SYSENTER_CS:
        *val = c->sysenter_cs;
        return true;
    case MSR_IA32_SYSENTER_ESP:
        *val = c->blk->sysenter_esp;
        return true;
    case MSR_IA32_SYSENTER_EIP:
        *val = c->blk->sysenter_eip;
        return true;
    case MSR_IA32_MISC_ENABLE:
        *val = MISC_ENABLE_FAST_STRINGS;
        return true;
    case MSR_IA32_BIOS_SIGN_ID:
        *val = 0; /* microcode revision: none loaded */
        return true;
    default:
        vm_log(vm, LOG_UNIMP, "rdmsr %#x: #GP\n", msr);
        return false;
    }
}

bool msr_write(struct vm *vm, uint32_t msr, uint64_t val)
{
    struct vcpu *c = &vm->cpu;
    switch (msr) {
    case MSR_IA32_TSC:
        /* The guest reads the host TSC natively (RDTSC is not trapped), so
         * only RDMSR sees the offset. */
        c->tsc_offset = (int64_t)(val - __rdtsc());
        return true;
    case MSR_IA32_SYSENTER_CS:
        if (((uint32_t)val & 0xffff) != c->sysenter_cs && vm->tc.nsys_inline)
            tcache_flush(vm); /* inline SYSENTER/SYSEXIT have the selectors built in */
        c->sysenter_cs = (uint32_t)val & 0xffff;
        return true;
    case MSR_IA32_SYSENTER_ESP:
        c->blk->sysenter_esp = (uint32_t)val;
        return true;
    case MSR_IA32_SYSENTER_EIP:
        c->blk->sysenter_eip = (uint32_t)val;
        return true;
    case MSR_IA32_MISC_ENABLE:
    case MSR_IA32_BIOS_SIGN_ID: /* Linux clears it before CPUID 1 to read the revision */
        return true;
    default:
        vm_log(vm, LOG_UNIMP, "wrmsr %#x <- %#llx: #GP\n", msr, (unsigned long long)val);
        return false;
    }
}
