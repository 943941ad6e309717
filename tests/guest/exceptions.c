/*
 * Exceptions delivered through the IDT: vector, error code and saved EIP
 * (relative to the faulting instruction: faults save its own address, traps
 * the next one).  #DE for division by zero (each divisor form), INT_MIN/-1,
 * 8-bit quotient overflow and AAM 0; #UD for UD2, UD0 and a LOCK prefix where none is
 * allowed; #BR from BOUND; #GP and #NP from descriptor checks during INT n
 * (SDM vol. 3A, 6.12.1 and vol. 2 INT n: error code = vector*8+2 when the IDT
 * entry is at fault, the code segment selector & 0xFFFC when the gate's target
 * is, 0 for a null target selector; EXT=0 because INT n is a software event).
 */
#include "lib/guest.h"

#define SEL_DATA_B   0x18
#define SEL_CODE_NP  0x20

static TEST_FN void div_zero(void)
{
    extern char de1_at[], de1_resume[];
    uint32_t a = 0x12345678, d = 0x9, c = 0;
    trap_expect(de1_resume);
    __asm__ volatile("de1_at: divl %2\nde1_resume:" : "+a"(a), "+d"(d) : "r"(c) : "memory");
    trap_print("div by zero", de1_at);
    printf("div by zero: edx:eax unchanged=%u\n", a == 0x12345678 && d == 0x9);
}

static TEST_FN void idiv_overflow(void)
{
    extern char de2_at[], de2_resume[];
    uint32_t a = 0x80000000, d = 0xFFFFFFFF, c = 0xFFFFFFFF;
    trap_expect(de2_resume);
    __asm__ volatile("de2_at: idivl %2\nde2_resume:" : "+a"(a), "+d"(d) : "r"(c) : "memory");
    trap_print("idiv INT_MIN / -1", de2_at);
}

static TEST_FN void div8_overflow(void)
{
    extern char de3_at[], de3_resume[];
    uint32_t a = 0x1000, c = 2;
    trap_expect(de3_resume);
    __asm__ volatile("de3_at: divb %b1\nde3_resume:" : "+a"(a) : "q"(c) : "memory");
    trap_print("div 1000h / 2 (8-bit)", de3_at);
}

static TEST_FN void aam_zero(void)
{
    extern char de4_at[], de4_resume[];
    trap_expect(de4_resume);
    __asm__ volatile("de4_at: .byte 0xd4, 0x00\nde4_resume:" : : : "eax", "memory", "cc");
    trap_print("aam 0", de4_at);
}

static TEST_FN void div_ok(void)
{
    uint32_t a = 100, d = 0, c = 7;
    trap_expect(NULL);
    __asm__ volatile("divl %2" : "+a"(a), "+d"(d) : "r"(c) : "memory");
    trap_print("div 100 / 7", 0);
    printf("div 100 / 7: quotient=%u remainder=%u\n", a, d);
}

/* Divisor forms: register of each size (the upper part of the register does
 * not count), %ecx itself, memory, memory addressed through %ecx. */
#define DIV_CASE(name, insn, ain, din, cin, mem0, mem1)                                      \
    do {                                                                                  \
        extern char name##_at[], name##_resume[];                                         \
        static volatile uint32_t m[2];                                                    \
        uint32_t a = (ain), d = (din), c = (cin);                                         \
        m[0] = (mem0);                                                                    \
        m[1] = (mem1);                                                                    \
        trap_expect(name##_resume);                                                       \
        __asm__ volatile(#name "_at: " insn "\n" #name "_resume:"                          \
                         : "+a"(a), "+d"(d), "+c"(c) : "b"(m) : "memory", "cc");          \
        trap_print(#name, name##_at);                                                     \
        printf(#name ": eax=%08x edx=%08x ecx %s\n", a, d,                                \
               c == (uint32_t)(cin) ? "unchanged" : c == (uint32_t)m ? "= m" : "changed");  \
    } while (0)

static TEST_FN void div_forms(void)
{
    DIV_CASE(dw_cx, "divw %%cx", 100, 0, 0x10000, 0, 0);
    DIV_CASE(dl_ecx, "divl %%ecx", 0x20001, 0, 0x10000, 0, 0);
    DIV_CASE(dl_ecx0, "divl %%ecx", 5, 0, 0, 0, 0);
    DIV_CASE(db_ah, "divb %%ah", 0x0005, 0, 0, 0, 0);
    DIV_CASE(db_cl, "divb %%cl", 0x0105, 0, 0x700, 0, 0);
    DIV_CASE(dl_mem0, "divl 4(%%ebx)", 7, 0, 0, 3, 0);
    DIV_CASE(dl_mem1, "divl (%%ebx)", 7, 0, 0, 3, 0);
    DIV_CASE(dw_mem0, "divw 4(%%ebx)", 7, 0, 0, 3, 0x50000);
    DIV_CASE(db_mem0, "divb 4(%%ebx)", 7, 0, 0, 3, 0x100);
    DIV_CASE(idl_ecxmem0, "movl %%ebx, %%ecx\n\tidivl 4(%%ecx)", -100, -1, 0, 0, 0);
    DIV_CASE(idl_ecxmem1, "movl %%ebx, %%ecx\n\tidivl 4(%%ecx)", -100, -1, 0, 0, -5);
}

static TEST_FN void ud_forms(void)
{
    extern char ud1_at[], ud1_resume[], ud2_at[], ud2_resume[], ud3_at[], ud3_resume[];
    extern char ud4_at[], ud4_resume[];
    trap_expect(ud1_resume);
    __asm__ volatile("ud1_at: ud2\nud1_resume:" : : : "memory");
    trap_print("ud2", ud1_at);
    trap_expect(ud2_resume);
    __asm__ volatile("ud2_at: .byte 0x0f, 0xff, 0xc0\nud2_resume:" : : : "memory");
    trap_print("ud0", ud2_at);
    trap_expect(ud3_resume);
    __asm__ volatile("ud3_at: .byte 0xf0, 0x90\nud3_resume:" : : : "memory");
    trap_print("lock nop", ud3_at);
    trap_expect(ud4_resume);
    __asm__ volatile("ud4_at: .byte 0xf0, 0x01, 0xc3\nud4_resume:" : : : "memory", "cc");
    trap_print("lock add %eax,%ebx", ud4_at);
}

static TEST_FN void bound_forms(void)
{
    extern char br1_at[], br1_resume[], br2_at[], br2_resume[];
    static const int32_t bounds[2] = { 10, 20 };
    trap_expect(br1_resume);
    __asm__ volatile("br1_at: boundl %0, (%1)\nbr1_resume:" : : "r"(15), "r"(bounds) : "memory");
    trap_print("bound 15 in [10,20]", br1_at);
    trap_expect(br2_resume);
    __asm__ volatile("br2_at: boundl %0, (%1)\nbr2_resume:" : : "r"(21), "r"(bounds) : "memory");
    trap_print("bound 21 in [10,20]", br2_at);
}

/* INT 0x50 with the gate (or IDTR) set up by the caller; resumes after it. */
static TEST_FN void int50(const char *name)
{
    extern char int50_at[], int50_resume[];
    trap_expect(int50_resume);
    __asm__ volatile("int50_at: int $0x50\nint50_resume:" : : : "memory");
    trap_print(name, int50_at);
}

static TEST_FN void gp_bad_ds(void)
{
    extern char gp1_at[], gp1_resume[];
    trap_expect(gp1_resume);
    __asm__ volatile("gp1_at: movw %w0, %%ds\ngp1_resume:" : : "r"(0x00F8) : "memory");
    trap_print("mov ds, 00f8 (all-zero descriptor)", gp1_at);
}

void kmain(void)
{
    gdt_set(SEL_DATA_B >> 3, 0, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    gdt_set(SEL_CODE_NP >> 3, 0, 0xFFFFF, ACC_CODE32 & ~DESC_P, DESC_G | DESC_DB);

    div_zero();
    idiv_overflow();
    div8_overflow();
    aam_zero();
    div_ok();
    div_forms();
    ud_forms();
    bound_forms();
    gp_bad_ds();

    uint32_t stub = isr_stub(0x50);
    int50("int 50, gate ok");
    idt_set_gate(0x50, SEL_CODE32, stub, SYS_INT_GATE32);
    int50("int 50, gate not present");
    idt_set_gate(0x50, SEL_CODE32, stub, DESC_P | 0x08);
    int50("int 50, gate type 8 (reserved)");
    idt_set_gate(0x50, SEL_CODE32, stub, DESC_P | SYS_TSS32_AVAIL);
    int50("int 50, gate type 9 (tss descriptor)");
    idt_set_gate(0x50, SEL_CODE32, stub, DESC_P | SYS_CALL_GATE32);
    int50("int 50, gate type c (call gate)");
    idt_set_gate(0x50, 0x0000, stub, DESC_P | SYS_INT_GATE32);
    int50("int 50, gate selector null");
    idt_set_gate(0x50, SEL_DATA_B, stub, DESC_P | SYS_INT_GATE32);
    int50("int 50, gate selector -> data segment 0018");
    idt_set_gate(0x50, SEL_CODE_NP, stub, DESC_P | SYS_INT_GATE32);
    int50("int 50, gate selector -> not-present code 0020");
    idt_set_gate(0x50, 0x0103, stub, DESC_P | SYS_INT_GATE32);
    int50("int 50, gate selector 0103 beyond gdt limit");
    idt_reset_gate(0x50);
    idt_load(IDT_ADDR, 0x50 * 8 + 6);
    int50("int 50, idt limit 0286 (one byte short)");
    idt_load(IDT_ADDR, 0x50 * 8 + 7);
    int50("int 50, idt limit 0287");
    idt_load(IDT_ADDR, IDT_ENTRIES * 8 - 1);
}
