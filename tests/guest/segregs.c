/*
 * MOV to/from segment registers, PUSH/POP of each, their 16-bit operand forms,
 * LDS/LES/LFS/LGS/LSS, and MOV to CS (#UD).
 *
 * Reads into a 32-bit register zero-extend (P6 and later); MOV to memory writes
 * 16 bits.  A 32-bit PUSH of a segment register moves ESP by 4 but may write
 * only 16 bits (SDM vol. 2, PUSH: recent processors do a 16-bit move), so only
 * the low word of the slot is printed.  A 16-bit PUSH/POP moves ESP by 2.
 */
#include "lib/guest.h"

#define SEL_DATA_B  0x18   /* flat data, second selector */
#define SEL_DATA_D3 0x23   /* flat data DPL 3, loaded with RPL 3 */

#define READ_SEG(reg, out) __asm__ volatile("movl $0xdeadbeef, %0\n\tmovl %%" reg ", %0" : "=r"(out))

static void show_all(const char *when)
{
    uint32_t cs, ds, es, fs, gs, ss;
    READ_SEG("cs", cs);
    READ_SEG("ds", ds);
    READ_SEG("es", es);
    READ_SEG("fs", fs);
    READ_SEG("gs", gs);
    READ_SEG("ss", ss);
    printf("%s: cs=%08x ds=%08x es=%08x fs=%08x gs=%08x ss=%08x\n", when, cs, ds, es, fs, gs, ss);
}

#define PUSH_SEG(reg)                                                                      \
    do {                                                                                   \
        uint32_t before, after, slot;                                                      \
        __asm__ volatile("pushl $0xffffffff\n\tpopl %%eax\n\t"                             \
                         "movl %%esp, %0\n\tpushl %%" reg "\n\tmovl %%esp, %1\n\tpopl %2"   \
                         : "=&r"(before), "=&r"(after), "=r"(slot) : : "eax", "memory");   \
        printf("push %s: esp-=%u low16=%04x\n", reg, before - after, slot & 0xFFFF);       \
    } while (0)

#define PUSHW_POPW_SEG(reg)                                                                \
    do {                                                                                   \
        uint32_t before, after, back;                                                      \
        uint16_t slot;                                                                     \
        __asm__ volatile("movl %%esp, %0\n\tpushw %%" reg "\n\tmovl %%esp, %1\n\t"        \
                         "movw (%%esp), %2\n\tpopw %%" reg "\n\tmovl %%esp, %3"           \
                         : "=&r"(before), "=&r"(after), "=&r"(slot), "=&r"(back)          \
                         : : "memory");                                                    \
        printf("pushw/popw %s: esp-=%u value=%04x esp restored=%u\n", reg,                \
               before - after, slot, back == before);                                      \
    } while (0)

TEST_FN static void mov_cs(void)
{
    extern char movcs_fault[], movcs_resume[];
    trap_expect(movcs_resume);
    /* 8e c8 = mov %eax, %cs, which GNU as refuses to assemble. */
    __asm__ volatile("movl $0x08, %%eax\nmovcs_fault: .byte 0x8e, 0xc8\nmovcs_resume:" : : : "eax");
    trap_print("mov to cs", movcs_fault);
}

void kmain(void)
{
    uint32_t v;
    gdt_set(SEL_DATA_B >> 3, 0, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    gdt_set(SEL_DATA_D3 >> 3, 0, 0xFFFFF, ACC_DATA32 | DESC_DPL(3), DESC_G | DESC_DB);

    show_all("initial");
    __asm__ volatile("movl %0, %%eax\n\tmovl %%eax, %%es\n\tmovl %%eax, %%fs\n\tmovl %%eax, %%gs"
                     : : "i"(SEL_DATA_B) : "eax");
    __asm__ volatile("movw %w0, %%ds\n\tmovw %w0, %%ss" : : "r"(SEL_DATA_B));
    show_all("all data = 0018");
    __asm__ volatile("movw %w0, %%ds\n\tmovw %w0, %%es" : : "r"(SEL_DATA_D3));
    show_all("ds=es=0023 (dpl3 rpl3)");
    __asm__ volatile("movw %w0, %%es\n\tmovw %w1, %%fs\n\tmovw %w2, %%gs"
                     : : "r"(0), "r"(1), "r"(3));
    show_all("es=0000 fs=0001 gs=0003 (null)");
    gdt_load(GDT_ENTRIES);
    show_all("reloaded");

    v = 0xFFFFFFFF;
    __asm__ volatile("movw %%ds, %0" : "+m"(v));
    printf("mov ds -> m16: %08x\n", v);
    v = 0xDEADBEEF;
    __asm__ volatile("movw %%ds, %w0" : "+r"(v));
    printf("mov ds -> r16: %08x\n", v);
    v = 0x00180000 | SEL_DATA_B;
    __asm__ volatile("movw %0, %%gs" : : "m"(v));
    READ_SEG("gs", v);
    printf("mov m16 -> gs: %08x\n", v);

    PUSH_SEG("cs");
    PUSH_SEG("ds");
    PUSH_SEG("es");
    PUSH_SEG("fs");
    PUSH_SEG("gs");
    PUSH_SEG("ss");

    __asm__ volatile("pushl %0\n\tpopl %%ds\n\tpushl %0\n\tpopl %%es\n\tpushl %0\n\tpopl %%fs\n\t"
                     "pushl %0\n\tpopl %%gs\n\tpushl %0\n\tpopl %%ss"
                     : : "i"(SEL_DATA_B) : "memory");
    show_all("after pop 0018 into each");
    __asm__ volatile("pushl $0xabcd0010\n\tpopl %%ds\n\tpushl $0xabcd0010\n\tpopl %%ss" : : : "memory");
    show_all("after pop abcd0010 into ds, ss");
    gdt_load(GDT_ENTRIES);

    PUSHW_POPW_SEG("ds");
    PUSHW_POPW_SEG("es");
    PUSHW_POPW_SEG("fs");
    PUSHW_POPW_SEG("gs");
    PUSHW_POPW_SEG("ss");
    uint32_t before, after;
    uint16_t w;
    __asm__ volatile("movl %%esp, %0\n\tpushw %%cs\n\tmovl %%esp, %1\n\tpopw %2"
                     : "=&r"(before), "=&r"(after), "=r"(w) : : "memory");
    printf("pushw cs: esp-=%u value=%04x\n", before - after, w);
    __asm__ volatile("pushw %1\n\tmovl %%esp, %0\n\tpopw %%es" : "=r"(before) : "i"(SEL_DATA_B) : "memory");
    __asm__ volatile("movl %%esp, %0" : "=r"(after));
    READ_SEG("es", v);
    printf("popw es: esp+=%u es=%08x\n", after - before, v);
    gdt_load(GDT_ENTRIES);

    /* Far pointer loads: offset into the register, selector into the segment. */
    struct farptr fp = { 0x12345678, SEL_DATA_B };
    uint32_t off, sel;
    __asm__ volatile("lesl %2, %0\n\tmovl %%es, %1" : "=r"(off), "=r"(sel) : "m"(fp));
    printf("les: reg=%08x es=%08x\n", off, sel);
    __asm__ volatile("lfsl %2, %0\n\tmovl %%fs, %1" : "=r"(off), "=r"(sel) : "m"(fp));
    printf("lfs: reg=%08x fs=%08x\n", off, sel);
    __asm__ volatile("lgsl %2, %0\n\tmovl %%gs, %1" : "=r"(off), "=r"(sel) : "m"(fp));
    printf("lgs: reg=%08x gs=%08x\n", off, sel);
    __asm__ volatile("pushl %%ds\n\tldsl (%2), %0\n\tmovl %%ds, %1\n\tpopl %%ds"
                     : "=&r"(off), "=&r"(sel) : "r"(&fp) : "memory");
    printf("lds: reg=%08x ds=%08x\n", off, sel);
    struct farptr sp = { 0, SEL_DATA_B };
    __asm__ volatile("movl %%esp, %%ecx\n\tmovl %%ecx, %2\n\t"
                     "lssl %2, %%esp\n\tmovl %%esp, %0\n\tmovl %%ss, %1\n\t"
                     "movw %w3, %%ss\n\tmovl %%ecx, %%esp"
                     : "=&r"(off), "=&r"(sel), "+m"(sp) : "r"(SEL_DATA32) : "ecx", "memory");
    printf("lss: esp unchanged=%u ss=%08x\n", off == sp.offset, sel);
    struct { uint16_t off; uint16_t sel; } __attribute__((packed)) fp16 = { 0x5678, SEL_DATA_B };
    off = 0xDEADBEEF;
    __asm__ volatile("lfsw %2, %w0\n\tmovl %%fs, %1" : "+r"(off), "=r"(sel) : "m"(fp16));
    printf("lfs m16:16: reg=%08x fs=%08x\n", off, sel);
    gdt_load(GDT_ENTRIES);

    mov_cs();
}
