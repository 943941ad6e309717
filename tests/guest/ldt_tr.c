/*
 * LLDT/SLDT and LTR/STR: selectors read back (register forms zero-extend to
 * 32 bits on P6 and later, 16-bit and memory forms write only 16 bits), a
 * segment loads through the LDT, LTR marks the TSS descriptor busy, and the
 * faults of SDM vol. 2 LLDT/LTR: #GP(selector) for a wrong descriptor type,
 * TI=1 or a busy TSS, #NP(selector) for a not-present descriptor.  LTR of a
 * null selector is in ltr_null.c (QEMU accepts it).
 */
#include "lib/guest.h"

#define SEL_LDT       0x18
#define SEL_TSS       0x20
#define SEL_LDT_NP    0x30
#define SEL_TSS_NP    0x38
#define SEL_LDT_DATA  0x0C  /* LDT index 1, TI=1, RPL 0 */

static TEST_FN void try_lldt(const char *name, uint16_t sel)
{
    extern char lldt_fault[], lldt_resume[];
    trap_expect(lldt_resume);
    __asm__ volatile("lldt_fault: lldt %0\nlldt_resume:" : : "r"(sel) : "memory");
    trap_print(name, lldt_fault);
}

static TEST_FN void try_ltr(const char *name, uint16_t sel)
{
    extern char ltr_fault[], ltr_resume[];
    trap_expect(ltr_resume);
    __asm__ volatile("ltr_fault: ltr %0\nltr_resume:" : : "r"(sel) : "memory");
    trap_print(name, ltr_fault);
}

static TEST_FN void try_load_fs(const char *name, uint16_t sel)
{
    extern char lfs_fault[], lfs_resume[];
    trap_expect(lfs_resume);
    __asm__ volatile("lfs_fault: movw %0, %%fs\nlfs_resume:\n\tmovw %1, %%fs"
                     : : "r"(sel), "r"((uint16_t)SEL_DATA32) : "memory");
    trap_print(name, lfs_fault);
}

void kmain(void)
{
    uint32_t r, m;

    gdt_set(SEL_LDT >> 3, LDT_ADDR, 4 * 8 - 1, DESC_P | SYS_LDT, 0);
    gdt_set(SEL_TSS >> 3, TSS_ADDR, sizeof(struct tss32) - 1, DESC_P | SYS_TSS32_AVAIL, 0);
    gdt_set(SEL_LDT_NP >> 3, LDT_ADDR, 4 * 8 - 1, SYS_LDT, 0);
    gdt_set(SEL_TSS_NP >> 3, TSS_ADDR, sizeof(struct tss32) - 1, SYS_TSS32_AVAIL, 0);
    memset((void *)LDT_ADDR, 0, 4 * 8);
    ldt_set(1, SCRATCH_ADDR, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    memset((void *)TSS_ADDR, 0, sizeof(struct tss32));
    *(volatile uint32_t *)(SCRATCH_ADDR + 8) = 0x5EED1234;

    __asm__ volatile("lldt %w0" : : "r"(0));
    r = 0xDEADBEEF;
    __asm__ volatile("sldt %0" : "+r"(r));
    printf("lldt 0000, sldt r32: %08x\n", r);

    __asm__ volatile("lldt %w0" : : "r"(SEL_LDT));
    r = 0xDEADBEEF;
    __asm__ volatile("sldt %0" : "+r"(r));
    printf("lldt %04x, sldt r32: %08x\n", SEL_LDT, r);
    r = 0xDEADBEEF;
    __asm__ volatile("sldt %w0" : "+r"(r));
    printf("sldt r16: %08x\n", r);
    m = 0xFFFFFFFF;
    __asm__ volatile("sldt %0" : "+m"(m));
    printf("sldt m16: %08x\n", m);

    uint32_t v;
    __asm__ volatile("movw %w1, %%fs\n\t"
                     "movl %%fs:8, %0\n\t"
                     "movw %w2, %%fs"
                     : "=r"(v) : "r"(SEL_LDT_DATA), "r"(SEL_DATA32));
    printf("fs=%04x (ldt, base %08x) fs:8 = %08x\n", SEL_LDT_DATA, SCRATCH_ADDR, v);

    try_lldt("lldt data segment 0010", SEL_DATA32);
    try_lldt("lldt not-present ldt 0030", SEL_LDT_NP);
    try_lldt("lldt ti=1 000c", SEL_LDT_DATA);
    try_lldt("lldt beyond gdt limit 0100", 0x100);
    r = 0xDEADBEEF;
    __asm__ volatile("sldt %0" : "+r"(r));
    printf("sldt after faults: %08x\n", r);

    printf("tss descriptor type before ltr: %x\n", (unsigned)(gdt_get_raw(SEL_TSS >> 3) >> 40) & 0xF);
    try_ltr("ltr 0020", SEL_TSS);
    printf("tss descriptor type after ltr: %x\n", (unsigned)(gdt_get_raw(SEL_TSS >> 3) >> 40) & 0xF);
    r = 0xDEADBEEF;
    __asm__ volatile("str %0" : "+r"(r));
    printf("str r32: %08x\n", r);
    r = 0xDEADBEEF;
    __asm__ volatile("str %w0" : "+r"(r));
    printf("str r16: %08x\n", r);
    m = 0xFFFFFFFF;
    __asm__ volatile("str %0" : "+m"(m));
    printf("str m16: %08x\n", m);

    try_ltr("ltr busy tss 0020", SEL_TSS);
    try_ltr("ltr ldt descriptor 0018", SEL_LDT);
    try_ltr("ltr not-present tss 0038", SEL_TSS_NP);
    try_ltr("ltr ti=1 000c", SEL_LDT_DATA);
    r = 0xDEADBEEF;
    __asm__ volatile("str %0" : "+r"(r));
    printf("str after faults: %08x\n", r);

    __asm__ volatile("lldt %w0" : : "r"(0));
    try_load_fs("lldt 0000 then fs=000c", SEL_LDT_DATA);
}
