/*
 * Faults on segment register loads (SDM vol. 2, MOV/POP/LDS: protected-mode
 * exceptions).  The error code is the selector with its RPL bits replaced by
 * EXT=0, IDT=0, i.e. selector & 0xFFFC.  A faulting POP leaves ESP unchanged.
 *   DS/ES/FS/GS: #GP(sel) beyond the table limit, for system descriptors and
 *                exec-only code, when max(CPL,RPL) > DPL for data and
 *                non-conforming code; #NP(sel) when not present.
 *   SS:          #GP(0) for a null selector; #GP(sel) when RPL != CPL,
 *                DPL != CPL, or the segment is not writable data;
 *                #SS(sel) when not present.
 */
#include "lib/guest.h"

#define SEL_CODE_XO   0x18  /* exec-only code */
#define SEL_CODE_R    0x20  /* readable code */
#define SEL_TSS       0x28
#define SEL_DATA_NP   0x30  /* not present */
#define SEL_DATA_RO   0x38  /* read-only data */
#define SEL_DATA_D3   0x40  /* data DPL 3 */
#define SEL_CONF_R    0x48  /* conforming readable code DPL 0 */
#define SEL_LDT       0x50

static TEST_FN void try_ds(const char *name, uint16_t sel)
{
    extern char lds_fault[], lds_resume[];
    uint32_t got;
    trap_expect(lds_resume);
    __asm__ volatile("movl $0xdeadbeef, %0\n"
                     "lds_fault: movw %w1, %%ds\n"
                     "movl %%ds, %0\n"
                     "lds_resume:\n\t"
                     "movw %w2, %%ds"
                     : "=&r"(got) : "r"(sel), "r"(SEL_DATA32) : "memory");
    if (trap_last.count)
        trap_print(name, lds_fault);
    else
        printf("%s: loaded ds=%04x\n", name, got);
}

static TEST_FN void try_ss(const char *name, uint16_t sel)
{
    extern char lss_fault[], lss_resume[];
    uint32_t got;
    trap_expect(lss_resume);
    __asm__ volatile("movl $0xdeadbeef, %0\n"
                     "lss_fault: movw %w1, %%ss\n"
                     "movl %%ss, %0\n"
                     "lss_resume:\n\t"
                     "movw %w2, %%ss"
                     : "=&r"(got) : "r"(sel), "r"(SEL_DATA32) : "memory");
    if (trap_last.count)
        trap_print(name, lss_fault);
    else
        printf("%s: loaded ss=%04x\n", name, got);
}

static TEST_FN void try_pop_es(const char *name, uint32_t sel)
{
    extern char pop_fault[], pop_resume[];
    uint32_t before, after;
    trap_expect(pop_resume);
    __asm__ volatile("pushl %2\n\t"
                     "movl %%esp, %0\n"
                     "pop_fault: popl %%es\n\t"
                     "pushl %%eax\n"
                     "pop_resume:\n\t"
                     "movl %%esp, %1\n\t"
                     "addl $4, %%esp\n\t"
                     "movw %w3, %%es"
                     : "=&r"(before), "=&r"(after) : "r"(sel), "r"(SEL_DATA32) : "memory");
    trap_print(name, pop_fault);
    printf("%s: esp unchanged=%u\n", name, before == after);
}

static TEST_FN void try_lfs(const char *name, uint16_t sel)
{
    extern char lfsp_fault[], lfsp_resume[];
    struct farptr fp = { 0x1000, sel };
    uint32_t reg = 0xDEADBEEF;
    trap_expect(lfsp_resume);
    __asm__ volatile("lfsp_fault: lfsl (%1), %0\n"
                     "lfsp_resume:\n\t"
                     "movw %w2, %%fs"
                     : "+r"(reg) : "r"(&fp), "r"(SEL_DATA32) : "memory");
    trap_print(name, lfsp_fault);
    printf("%s: register unchanged=%u\n", name, reg == 0xDEADBEEF);
}

void kmain(void)
{
    gdt_set(SEL_CODE_XO >> 3, 0, 0xFFFFF, DESC_P | DESC_S | DESC_TYPE_CODE | DESC_TYPE_A, DESC_G | DESC_DB);
    gdt_set(SEL_CODE_R >> 3, 0, 0xFFFFF, ACC_CODE32, DESC_G | DESC_DB);
    gdt_set(SEL_TSS >> 3, TSS_ADDR, 0x67, DESC_P | SYS_TSS32_AVAIL, 0);
    gdt_set(SEL_DATA_NP >> 3, 0, 0xFFFFF, ACC_DATA32 & ~DESC_P, DESC_G | DESC_DB);
    gdt_set(SEL_DATA_RO >> 3, 0, 0xFFFFF, DESC_P | DESC_S | DESC_TYPE_A, DESC_G | DESC_DB);
    gdt_set(SEL_DATA_D3 >> 3, 0, 0xFFFFF, ACC_DATA32 | DESC_DPL(3), DESC_G | DESC_DB);
    gdt_set(SEL_CONF_R >> 3, 0, 0xFFFFF, ACC_CODE32 | DESC_TYPE_CONFORM, DESC_G | DESC_DB);
    gdt_set(SEL_LDT >> 3, LDT_ADDR, 0x0F, DESC_P | SYS_LDT, 0);
    memset((void *)LDT_ADDR, 0, 16);
    ldt_set(1, 0, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    __asm__ volatile("lldt %w0" : : "r"(0));

    try_ds("ds <- 0000 null", 0x0000);
    try_ds("ds <- 0002 null rpl2", 0x0002);
    try_ds("ds <- 0100 beyond gdt limit", 0x0100);
    try_ds("ds <- 0103 beyond gdt limit rpl3", 0x0103);
    try_ds("ds <- 0018 exec-only code", SEL_CODE_XO);
    try_ds("ds <- 0020 readable code", SEL_CODE_R);
    try_ds("ds <- 0023 readable code rpl3", SEL_CODE_R | 3);
    try_ds("ds <- 004b conforming code rpl3", SEL_CONF_R | 3);
    try_ds("ds <- 0028 tss", SEL_TSS);
    try_ds("ds <- 0050 ldt descriptor", SEL_LDT);
    try_ds("ds <- 0030 not present", SEL_DATA_NP);
    try_ds("ds <- 0031 not present rpl1", SEL_DATA_NP | 1);
    try_ds("ds <- 0038 read-only data", SEL_DATA_RO);
    try_ds("ds <- 0013 data dpl0 rpl3", SEL_DATA32 | 3);
    try_ds("ds <- 0043 data dpl3 rpl3", SEL_DATA_D3 | 3);
    try_ds("ds <- 000c ldt selector, ldtr null", 0x000C);
    __asm__ volatile("lldt %w0" : : "r"(SEL_LDT));
    try_ds("ds <- 000c ldt selector", 0x000C);
    try_ds("ds <- 0014 beyond ldt limit", 0x0014);
    __asm__ volatile("lldt %w0" : : "r"(0));

    try_ss("ss <- 0000 null", 0x0000);
    try_ss("ss <- 0003 null rpl3", 0x0003);
    try_ss("ss <- 0013 rpl3 != cpl", SEL_DATA32 | 3);
    try_ss("ss <- 0040 dpl3 != cpl", SEL_DATA_D3);
    try_ss("ss <- 0038 read-only data", SEL_DATA_RO);
    try_ss("ss <- 0020 code", SEL_CODE_R);
    try_ss("ss <- 0028 tss", SEL_TSS);
    try_ss("ss <- 0030 not present", SEL_DATA_NP);
    try_ss("ss <- 0100 beyond gdt limit", 0x0100);

    try_pop_es("pop es <- 0030 not present", SEL_DATA_NP);
    try_pop_es("pop es <- 0018 exec-only", SEL_CODE_XO);
    try_lfs("lfs <- 0028 tss", SEL_TSS);
}
