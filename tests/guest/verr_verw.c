/*
 * VERR/VERW (SDM vol. 2): ZF=1 when the segment is a code or data segment
 * that is readable (VERR) / writable (VERW) at max(CPL, RPL), conforming code
 * ignoring the privilege check; ZF=0 for null selectors, selectors beyond the
 * table limit and system descriptors.  The present bit is not examined.
 * Neither instruction faults on any of these.
 */
#include "lib/guest.h"

struct sel_case {
    uint16_t sel;
    const char *what;
};

static const struct sel_case cases[] = {
    { 0x0000, "null" },
    { 0x0008, "flat code (readable)" },
    { 0x0010, "flat data (writable)" },
    { 0x0018, "exec-only code" },
    { 0x0020, "read-only data" },
    { 0x0028, "read-only expand-down data" },
    { 0x0030, "tss32" },
    { 0x0038, "ldt" },
    { 0x0043, "data dpl0 rpl3" },
    { 0x004B, "data dpl3 rpl3" },
    { 0x0053, "conforming readable code dpl0 rpl3" },
    { 0x0058, "conforming exec-only code" },
    { 0x0060, "writable data not present" },
    { 0x0100, "beyond gdt limit" },
};

void kmain(void)
{
    gdt_set(3, 0, 0xFFFFF, DESC_P | DESC_S | DESC_TYPE_CODE | DESC_TYPE_A, DESC_G | DESC_DB);
    gdt_set(4, 0, 0xFFFFF, DESC_P | DESC_S | DESC_TYPE_A, DESC_G | DESC_DB);
    gdt_set(5, 0, 0x00FFF, DESC_P | DESC_S | DESC_TYPE_EXPDOWN | DESC_TYPE_A, DESC_DB);
    gdt_set(6, TSS_ADDR, 0x67, DESC_P | SYS_TSS32_AVAIL, 0);
    gdt_set(7, LDT_ADDR, 0x1F, DESC_P | SYS_LDT, 0);
    gdt_set(8, 0, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    gdt_set(9, 0, 0xFFFFF, ACC_DATA32 | DESC_DPL(3), DESC_G | DESC_DB);
    gdt_set(10, 0, 0xFFFFF, ACC_CODE32 | DESC_TYPE_CONFORM, DESC_G | DESC_DB);
    gdt_set(11, 0, 0xFFFFF, DESC_P | DESC_S | DESC_TYPE_CODE | DESC_TYPE_CONFORM | DESC_TYPE_A,
            DESC_G | DESC_DB);
    gdt_set(12, 0, 0xFFFFF, ACC_DATA32 & ~DESC_P, DESC_G | DESC_DB);

    trap_expect(NULL);
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t zr, zw;
        __asm__ volatile("verr %w1\n\tsetz %0" : "=q"(zr) : "r"(cases[i].sel) : "cc");
        __asm__ volatile("verw %w1\n\tsetz %0" : "=q"(zw) : "r"(cases[i].sel) : "cc");
        printf("%04x %s: verr zf=%u verw zf=%u\n", cases[i].sel, cases[i].what, zr, zw);
    }
    printf("exceptions: %u\n", trap_last.count);

    uint32_t msel = 0xABCD0010;
    uint8_t z;
    __asm__ volatile("verw %1\n\tsetz %0" : "=q"(z) : "m"(msel) : "cc");
    printf("verw m16 abcd0010: zf=%u\n", z);
}
