/*
 * LTR with a null selector raises #GP(0) (SDM vol. 2, LTR: "#GP(0) If the
 * source operand contains a NULL segment selector", whatever its RPL) and
 * leaves TR unchanged.
 *
 * qemu-mismatch: QEMU 7.2's helper_ltr accepts a null selector and makes TR
 * null instead of faulting, so this golden file is the SDM's answer.
 */
#include "lib/guest.h"

#define SEL_TSS 0x18

static TEST_FN void try_ltr(const char *name, uint16_t sel)
{
    extern char ltr_fault[], ltr_resume[];
    uint32_t r = 0xDEADBEEF;

    trap_expect(ltr_resume);
    __asm__ volatile("ltr_fault: ltr %0\nltr_resume:" : : "r"(sel) : "memory");
    trap_print(name, ltr_fault);
    __asm__ volatile("str %0" : "+r"(r));
    printf("str after it: %08x\n", r);
}

void kmain(void)
{
    gdt_set(SEL_TSS >> 3, TSS_ADDR, sizeof(struct tss32) - 1, DESC_P | SYS_TSS32_AVAIL, 0);
    memset((void *)TSS_ADDR, 0, sizeof(struct tss32));
    __asm__ volatile("ltr %w0" : : "r"(SEL_TSS));

    try_ltr("ltr null 0000", 0);
    try_ltr("ltr null 0003", 3);
}
