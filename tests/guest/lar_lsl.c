/*
 * LAR and LSL on every kind of selector (SDM vol. 2, LAR/LSL).  ZF=1 and the
 * destination written when the selector is valid for the instruction, ZF=0 and
 * the destination unchanged otherwise.  LAR with a 32-bit operand returns the
 * descriptor's high dword AND 00FxFF00H (bits 19:16 undefined, so they are
 * masked here); LSL returns the byte-granular limit, scaled by 4 KiB when G=1.
 * Valid for LAR: code, data, TSS (16/32, available/busy), LDT, call and task
 * gates; for LSL the same without gates.  Not-present descriptors are valid for
 * both; a DPL below the RPL makes non-conforming segments invalid.
 */
#include "lib/guest.h"

struct sel_case {
    uint16_t sel;
    const char *what;
};

static const struct sel_case cases[] = {
    { 0x0000, "null" },
    { 0x0003, "null rpl3" },
    { 0x0008, "flat code" },
    { 0x0010, "flat data" },
    { 0x0018, "data byte-gran limit 00abc" },
    { 0x0020, "data page-gran limit 00012" },
    { 0x0028, "exec-only code" },
    { 0x0030, "tss32 available" },
    { 0x0038, "ldt" },
    { 0x0040, "call gate 32" },
    { 0x0048, "interrupt gate in gdt" },
    { 0x0050, "system type 0" },
    { 0x0058, "tss16 available" },
    { 0x0060, "task gate" },
    { 0x006B, "data dpl0 rpl3" },
    { 0x0073, "conforming code dpl0 rpl3" },
    { 0x0078, "data not present" },
    { 0x0080, "trap gate in gdt" },
    { 0x0088, "data dpl3 rpl3" },
    { 0x0090, "tss32 busy" },
    { 0x0100, "beyond gdt limit" },
    { 0x0004, "ldt selector, ldtr null" },
};

void kmain(void)
{
    gdt_set(3, 0x12345678, 0x00ABC, ACC_DATA32, DESC_DB);
    gdt_set(4, 0, 0x00012, ACC_DATA32, DESC_G | DESC_DB);
    gdt_set(5, 0, 0xFFFFF, DESC_P | DESC_S | DESC_TYPE_CODE | DESC_TYPE_A, DESC_G | DESC_DB);
    gdt_set(6, TSS_ADDR, 0x67, DESC_P | SYS_TSS32_AVAIL, 0);
    gdt_set(7, LDT_ADDR, 0x1F, DESC_P | SYS_LDT, 0);
    /* Gates: selector 0x0008, offset 0x00105678, 2 parameters for the call gate. */
    gdt_set_raw(8, 0x0010EC0200085678ull & ~0x0000600000000000ull);
    gdt_set_raw(9, 0x00108E0000085678ull);
    gdt_set(10, 0, 0xFFFF, DESC_P, 0);
    gdt_set(11, TSS_ADDR, 0x2B, DESC_P | SYS_TSS16_AVAIL, 0);
    gdt_set_raw(12, 0x0000850000300000ull);
    gdt_set(13, 0, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    gdt_set(14, 0, 0xFFFFF, ACC_CODE32 | DESC_TYPE_CONFORM, DESC_G | DESC_DB);
    gdt_set(15, 0x00010000, 0x0FFFF, ACC_DATA32 & ~DESC_P, DESC_DB);
    gdt_set_raw(16, 0x00108F0000085678ull);
    gdt_set(17, 0, 0xFFFFF, ACC_DATA32 | DESC_DPL(3), DESC_G | DESC_DB);
    gdt_set(18, TSS_ADDR, 0x67, DESC_P | SYS_TSS32_BUSY, 0);
    __asm__ volatile("lldt %w0" : : "r"(0));

    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t ar = 0xDEADBEEF, lim = 0xDEADBEEF;
        uint8_t zl, zs;
        __asm__ volatile("larl %2, %0\n\tsetz %1" : "+r"(ar), "=q"(zl) : "r"((uint32_t)cases[i].sel) : "cc");
        __asm__ volatile("lsll %2, %0\n\tsetz %1" : "+r"(lim), "=q"(zs) : "r"((uint32_t)cases[i].sel) : "cc");
        printf("%04x %s: lar zf=%u ar=%08x lsl zf=%u limit=%08x\n", cases[i].sel, cases[i].what,
               zl, zl ? (ar & 0x00F0FF00) : ar, zs, lim);
    }

    /* 16-bit operand forms write only the low word. */
    uint32_t ar = 0xDEADBEEF, lim = 0xDEADBEEF;
    __asm__ volatile("larw %w1, %w0" : "+r"(ar) : "r"(0x18u) : "cc");
    __asm__ volatile("lslw %w1, %w0" : "+r"(lim) : "r"(0x20u) : "cc");
    printf("larw 0018: %08x  lslw 0020: %08x\n", ar, lim);

    /* The selector may come from memory; only its low 16 bits count. */
    uint32_t msel = 0xFFFF0018;
    lim = 0;
    __asm__ volatile("lsll %1, %0" : "+r"(lim) : "m"(msel) : "cc");
    printf("lsl m16 ffff0018: %08x\n", lim);
}
