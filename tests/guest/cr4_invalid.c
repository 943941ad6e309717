/*
 * CR4 bits that must not be set (SDM vol. 2, MOV to CRn: "#GP(0) If an
 * attempt is made to write a 1 to any reserved bit in CR4"; bits whose
 * feature CPUID does not report are reserved, vol. 3A 2.5): a reserved bit
 * (15, and 31) and VMXE (bit 13; Popek and the test CPUs report no VMX).
 * CR4 keeps its old value.
 *
 * qemu-mismatch: QEMU 7.2's reserved-bit check in helper_write_crN does not
 * cover these bits for the default qemu32 CPU (it also accepts VME/PVI, which
 * qemu32 does not report), so this golden file is the SDM's answer.
 */
#include "lib/guest.h"

static uint32_t read_cr4(void) { uint32_t v; __asm__ volatile("movl %%cr4, %0" : "=r"(v)); return v; }

static TEST_FN void try_write_cr4(const char *name, uint32_t bit)
{
    extern char wcr4_at[], wcr4_resume[];
    uint32_t before = read_cr4();
    trap_expect(wcr4_resume);
    __asm__ volatile("wcr4_at: movl %0, %%cr4\nwcr4_resume:" : : "r"(before | bit) : "memory");
    trap_print(name, wcr4_at);
    printf("%s: cr4 unchanged=%u\n", name, read_cr4() == before);
    __asm__ volatile("movl %0, %%cr4" : : "r"(before) : "memory");
}

void kmain(void)
{
    uint32_t a, b, c, d;
    cpuid(1, 0, &a, &b, &c, &d);
    printf("cpuid.1:ecx.vmx=%u\n", (c >> 5) & 1);
    try_write_cr4("cr4 bit 13 vmxe", CR4_VMXE);
    try_write_cr4("cr4 bit 15 reserved", 1u << 15);
    try_write_cr4("cr4 bit 31 reserved", 1u << 31);
}
