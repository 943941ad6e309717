/*
 * CPUID as the guest sees it: the host's answers with everything Popek does
 * not virtualize masked out (SDM vol. 2A, CPUID).  The guest gets a
 * uniprocessor 32-bit CPU without APIC, VMX, long mode, XSAVE/AVX, PAE/NX,
 * MTRR/MCA, MONITOR, protection keys or other features whose state or
 * instructions the monitor would have to emulate.
 */
#include <cpuid.h>
#include <string.h>

#include "popek/vm.h"

#define MAX_BASIC_LEAF 7u
#define MAX_EXT_LEAF 0x80000008u

/* Leaf 1 EDX: FPU VME DE PSE TSC MSR PAE MCE CX8 APIC . SEP MTRR PGE MCA CMOV PAT PSE36 PSN CLFSH . DS ACPI MMX FXSR SSE SSE2 SS HTT TM . PBE */
#define L1_EDX_KEEP ((1u << 0) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 8) | (1u << 11) | \
                     (1u << 13) | (1u << 15) | (1u << 19) | (1u << 23) | (1u << 24) |         \
                     (1u << 25) | (1u << 26))
/* Leaf 1 ECX: SSE3 PCLMULQDQ SSSE3 CX16 SSE4.1 SSE4.2 MOVBE POPCNT AES RDRAND (bit 31, the
 * hypervisor bit, is set below). */
#define L1_ECX_KEEP ((1u << 0) | (1u << 1) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 20) | \
                     (1u << 22) | (1u << 23) | (1u << 25) | (1u << 30))
#define L1_ECX_HYPERVISOR (1u << 31)
/* Leaf 7 EBX: BMI1 ERMS BMI2 ADX SHA (no FSGSBASE, SMEP, SMAP, AVX2, RDSEED...).  SHA
 * only adds instructions on the XMM registers: no state the exit path does not save. */
#define L7_EBX_KEEP ((1u << 3) | (1u << 8) | (1u << 9) | (1u << 19) | (1u << 29))
/* 0x80000001 ECX: LAHF/SAHF, ABM (LZCNT), 3DNowPrefetch */
#define E1_ECX_KEEP ((1u << 0) | (1u << 5) | (1u << 8))

static void filter(uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
    uint32_t a = 0, b = 0, c = 0, d = 0;
    __cpuid_count(leaf, subleaf, a, b, c, d);
    switch (leaf) {
    case 0:
        if (a > MAX_BASIC_LEAF)
            a = MAX_BASIC_LEAF;
        break;
    case 1:
        a &= 0x0fff3fffu;                 /* family/model/stepping */
        b &= 0x0000ff00u;                 /* CLFLUSH line size only: APIC id 0, one CPU */
        c = (c & L1_ECX_KEEP) | L1_ECX_HYPERVISOR;
        d &= L1_EDX_KEEP;
        break;
    case 2:
        break;                            /* cache descriptors */
    case 7:
        if (subleaf == 0) {
            a = 0;
            b &= L7_EBX_KEEP;
            c = d = 0;
        } else {
            a = b = c = d = 0;
        }
        break;
    case 0x80000000u:
        if (a > MAX_EXT_LEAF)
            a = MAX_EXT_LEAF;
        break;
    case 0x80000001u:
        a = b = 0;
        c &= E1_ECX_KEEP;
        d = 0;                            /* no SYSCALL, NX, 1G pages, RDTSCP, LM */
        break;
    case 0x80000002u: case 0x80000003u: case 0x80000004u: /* brand string */
    case 0x80000006u:                     /* L2 cache */
        break;
    case 0x80000008u:
        a &= 0xffffu;                     /* address sizes */
        b = c = d = 0;
        break;
    default:
        a = b = c = d = 0;                /* topology, power, XSAVE: not virtualized */
        break;
    }
    out[0] = a;
    out[1] = b;
    out[2] = c;
    out[3] = d;
}

/* The answers depend on the leaf (and for leaf 7 on whether the subleaf is 0)
 * and on the host, which does not change: each is worked out once, because a
 * CPUID in a virtual machine host is an exit to its hypervisor (glibc asks a
 * dozen of them in every process it starts). */
void cpuid_filtered(uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
    static struct {
        bool valid;
        uint32_t v[4];
    } memo[MAX_BASIC_LEAF + 2 + (MAX_EXT_LEAF - 0x80000000u + 1)];
    bool ext = leaf >= 0x80000000u;
    if (leaf > (ext ? MAX_EXT_LEAF : MAX_BASIC_LEAF))
        leaf = MAX_BASIC_LEAF; /* Intel: out-of-range leaves return the highest basic leaf */
    if (leaf != 7)
        subleaf = 0;           /* the filtered answers of the others do not depend on it */
    unsigned i = leaf >= 0x80000000u ? MAX_BASIC_LEAF + 2 + (leaf - 0x80000000u)
                 : leaf == 7 && subleaf ? MAX_BASIC_LEAF + 1 : leaf;
    if (!memo[i].valid) {
        filter(leaf, subleaf ? 1 : 0, memo[i].v);
        memo[i].valid = true;
    }
    memcpy(out, memo[i].v, sizeof(memo[i].v));
}
