/*
 * CPUID, RDMSR/WRMSR and RDTSC at CPL 0.  Only architecturally fixed facts
 * are printed, never vendor strings or raw values: leaf 0 reports at least
 * leaf 1; leaf 1 reports an FPU, TSC and MSRs and no VMX (Popek hides it).
 * SYSENTER_CS/ESP/EIP (0x174-0x176) read back what was written.  The TSC
 * never goes backwards, and CR4.TSD does not affect CPL 0.  Unimplemented
 * MSRs and the TSC through MSR 0x10 are in msr_sdm.c (QEMU gets them wrong).
 */
#include "lib/guest.h"

#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176

static uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t)hi << 32 | lo;
}

static void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

void kmain(void)
{
    uint32_t a, b, c, d;

    cpuid(0, 0, &a, &b, &c, &d);
    printf("cpuid 0: max leaf >= 1: %s\n", a >= 1 ? "yes" : "no");
    cpuid(1, 0, &a, &b, &c, &d);
    printf("cpuid 1: edx.fpu=%u edx.tsc=%u edx.msr=%u ecx.vmx=%u\n", d & 1, (d >> 4) & 1,
           (d >> 5) & 1, (c >> 5) & 1);

    static const struct { uint32_t msr; uint32_t val; } rt[] = {
        { MSR_IA32_SYSENTER_CS, 0x00000008 },
        { MSR_IA32_SYSENTER_ESP, 0x00345678 },
        { MSR_IA32_SYSENTER_EIP, 0x00123456 },
        { MSR_IA32_SYSENTER_CS, 0x0000ABC8 },
        { MSR_IA32_SYSENTER_ESP, 0xFFFFFFF0 },
        { MSR_IA32_SYSENTER_EIP, 0 },
    };
    for (unsigned i = 0; i < sizeof rt / sizeof rt[0]; i++) {
        wrmsr(rt[i].msr, rt[i].val);
        uint64_t v = rdmsr(rt[i].msr);
        printf("wrmsr %03x <- %08x, rdmsr: %08x:%08x\n", rt[i].msr, rt[i].val,
               (uint32_t)(v >> 32), (uint32_t)v);
    }
    wrmsr(MSR_IA32_SYSENTER_CS, 0);

    uint64_t prev = rdtsc(), first = prev;
    unsigned backwards = 0;
    for (unsigned i = 0; i < 1000; i++) {
        uint64_t t = rdtsc();
        if (t < prev)
            backwards++;
        prev = t;
    }
    printf("rdtsc: 1000 reads, backwards steps=%u, advanced=%u\n", backwards, prev > first);

    uint32_t cr4;
    __asm__ volatile("movl %%cr4, %0" : "=r"(cr4));
    __asm__ volatile("movl %0, %%cr4" : : "r"(cr4 | CR4_TSD));
    trap_expect(NULL);
    uint64_t t = rdtsc();
    __asm__ volatile("movl %0, %%cr4" : : "r"(cr4));
    printf("rdtsc with cr4.tsd=1 at cpl 0: exceptions=%u monotonic=%u\n", trap_last.count, t >= prev);
    trap_disarm();
}
