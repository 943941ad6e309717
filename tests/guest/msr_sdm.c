/*
 * MSR behaviour QEMU's TCG does not model (SDM vol. 2, RDMSR/WRMSR; vol. 3B,
 * 18.17 "Time-Stamp Counter"):
 *   RDMSR/WRMSR of an MSR the processor does not implement is #GP(0).
 *   MSR 0x10 (IA32_TIME_STAMP_COUNTER) reads the same counter as RDTSC, so
 *   it is never behind an earlier RDTSC.
 *   SYSENTER checks IA32_SYSENTER_CS[15:2], so SYSENTER_CS=0003 (a null
 *   selector with RPL 3) is #GP(0) like 0000.
 *
 * qemu-mismatch: QEMU 7.2's helper_rdmsr/helper_wrmsr silently ignore unknown
 * MSRs (reads return 0), its MSR 0x10 read is not consistent with RDTSC, and
 * its SYSENTER only rejects SYSENTER_CS == 0 (with 0003 it loads a null CS and
 * the guest hangs), so this golden file is the SDM's answer.
 */
#include "lib/guest.h"

#define MSR_TSC   0x010
#define MSR_BOGUS 0xC0DE0000

static TEST_FN void bogus_rdmsr(void)
{
    extern char rd_at[], rd_resume[];
    trap_expect(rd_resume);
    __asm__ volatile("rd_at: rdmsr\nrd_resume:" : : "c"(MSR_BOGUS) : "eax", "edx", "memory");
    trap_print("rdmsr c0de0000", rd_at);
}

static TEST_FN void bogus_wrmsr(void)
{
    extern char wr_at[], wr_resume[];
    trap_expect(wr_resume);
    __asm__ volatile("wr_at: wrmsr\nwr_resume:" : : "c"(MSR_BOGUS), "a"(0), "d"(0) : "memory");
    trap_print("wrmsr c0de0000", wr_at);
}

static TEST_FN void sysenter_cs3(void)
{
    extern char se_at[], se_resume[];
    __asm__ volatile("wrmsr" : : "c"(0x174), "a"(3), "d"(0));
    trap_expect(se_resume);
    __asm__ volatile("se_at: sysenter\nse_resume:" : : : "memory");
    trap_print("sysenter, sysenter_cs=0003", se_at);
    __asm__ volatile("wrmsr" : : "c"(0x174), "a"(0), "d"(0));
}

void kmain(void)
{
    uint32_t lo, hi, mlo, mhi;

    bogus_rdmsr();
    bogus_wrmsr();
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    __asm__ volatile("rdmsr" : "=a"(mlo), "=d"(mhi) : "c"(MSR_TSC));
    uint64_t t = (uint64_t)hi << 32 | lo, m = (uint64_t)mhi << 32 | mlo;
    printf("rdmsr tsc >= earlier rdtsc: %u\n", m >= t);
    sysenter_cs3();
}
