/*
 * Far CALL/JMP/RET, INT and IRET between the flat code segment (0x08) and a
 * second 32-bit code segment (0x18) whose base is SCRATCH_ADDR.  Checks the
 * EIP a routine sees (call/pop: an offset from the segment base, not a linear
 * address), the CS:EIP pushed by far calls and interrupts, direct ptr16:32 and
 * indirect m16:32 forms, call gates at the same privilege level, far RET imm16,
 * and the 16-bit IRETW/LRETW frames.
 */
#include "lib/guest.h"

#define SEL_BASED   0x18
#define SEL_GATE    0x28   /* call gate -> 0018:00000100 */
#define SEL_GATE_J  0x30   /* call gate -> 0018:00000180 */

extern char blob_start[], blob_end[], flat_callee[];

static struct farptr back;   /* where based-segment code returns with ljmp */

void kmain(void)
{
    uint32_t a, b, c, d;

    memcpy((void *)SCRATCH_ADDR, blob_start, (size_t)(blob_end - blob_start));
    gdt_set(SEL_BASED >> 3, SCRATCH_ADDR, 0xFFFF, ACC_CODE32, DESC_DB);
    gdt_set_raw(SEL_GATE >> 3, 0x00008C0000180100ull);
    gdt_set_raw(SEL_GATE_J >> 3, 0x00008C0000180180ull);

    /* Direct far call. */
    extern char ret_direct[];
    __asm__ volatile("lcall %4, $0x100\nret_direct:"
                     : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "i"(SEL_BASED) : "memory");
    (void)d;
    printf("lcall 0018:00000100: eip seen=%08x pushed cs=%04x eip=ret+%d\n", a, c & 0xFFFF,
           (int)(b - (uint32_t)ret_direct));

    /* Indirect far call through memory. */
    extern char ret_indirect[];
    struct farptr fp = { 0x100, SEL_BASED };
    __asm__ volatile("lcall *(%4)\nret_indirect:"
                     : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "S"(&fp) : "memory");
    printf("lcall *m16:32: eip seen=%08x pushed cs=%04x eip=ret+%d\n", a, c & 0xFFFF,
           (int)(b - (uint32_t)ret_indirect));

    /* Through a call gate: the offset in the instruction is ignored. */
    extern char ret_gate[];
    __asm__ volatile("lcall %4, $0x12345678\nret_gate:"
                     : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "i"(SEL_GATE) : "memory");
    printf("lcall call gate 0028: eip seen=%08x pushed cs=%04x eip=ret+%d\n", a, c & 0xFFFF,
           (int)(b - (uint32_t)ret_gate));

    /* Far RET imm16 pops the parameters. */
    uint32_t esp0, esp1;
    __asm__ volatile("movl %%esp, %0\n\t"
                     "pushl $0x22222222\n\tpushl $0x11111111\n\t"
                     "lcall %5, $0x140\n\t"
                     "movl %%esp, %1"
                     : "=&r"(esp0), "=&r"(esp1), "=a"(a), "=b"(b), "=c"(c) : "i"(SEL_BASED)
                     : "memory");
    printf("lret $8: params %08x %08x esp balanced=%u\n", a, b, esp0 == esp1);

    /* Near call inside the based segment pushes a segment-relative offset. */
    __asm__ volatile("lcall %1, $0x1c0" : "=a"(a) : "i"(SEL_BASED) : "memory");
    printf("near call in 0018 at 1c0: pushed eip=%08x\n", a);

    /* Far call out of the based segment into the flat one. */
    struct farptr flat = { (uint32_t)flat_callee, SEL_CODE32 };
    __asm__ volatile("lcall %3, $0x200" : "=b"(b), "=c"(c), "=a"(a) : "i"(SEL_BASED), "S"(&flat)
                     : "memory");
    printf("lcall from 0018:00000200 to flat: pushed cs=%04x eip=%08x\n", c & 0xFFFF, b);

    /* Direct and indirect far jumps in, far jump back out. */
    extern char back_jmp1[], back_jmp2[], back_jmp3[];
    back = (struct farptr){ (uint32_t)back_jmp1, SEL_CODE32 };
    __asm__ volatile("ljmp %2, $0x180\nback_jmp1:"
                     : "=a"(a), "=d"(d) : "i"(SEL_BASED), "S"(&back) : "memory");
    printf("ljmp 0018:00000180: eip seen=%08x cs=%04x\n", a, d & 0xFFFF);
    back.offset = (uint32_t)back_jmp2;
    fp = (struct farptr){ 0x180, SEL_BASED };
    __asm__ volatile("ljmp *(%2)\nback_jmp2:"
                     : "=a"(a), "=d"(d) : "r"(&fp), "S"(&back) : "memory");
    printf("ljmp *m16:32: eip seen=%08x cs=%04x\n", a, d & 0xFFFF);
    back.offset = (uint32_t)back_jmp3;
    __asm__ volatile("ljmp %2, $0\nback_jmp3:"
                     : "=a"(a), "=d"(d) : "i"(SEL_GATE_J), "S"(&back) : "memory");
    printf("ljmp call gate 0030: eip seen=%08x cs=%04x\n", a, d & 0xFFFF);

    /* INT n through a gate into the based segment, IRET back. */
    extern char ret_int[];
    idt_set_gate(0x41, SEL_BASED, 0x240, DESC_P | SYS_INT_GATE32);
    __asm__ volatile("int $0x41\nret_int:" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : : "memory");
    printf("int 41 -> 0018:00000240: eip seen=%08x frame cs=%04x eip=ret+%d eflags=%08x\n", a,
           c & 0xFFFF, (int)(b - (uint32_t)ret_int), d & ~0x8D5u);

    /* IRET from the flat segment into the based one (same privilege). */
    extern char back_iret[];
    back.offset = (uint32_t)back_iret;
    __asm__ volatile("pushl $0x00000246\n\tpushl %3\n\tpushl $0x280\n\tiret\nback_iret:"
                     : "=a"(a), "=d"(d), "=D"(c) : "i"(SEL_BASED), "S"(&back) : "memory");
    printf("iret to 0018:00000280: eip seen=%08x cs=%04x eflags=%08x\n", a, d & 0xFFFF, c);
    __asm__ volatile("cli");

    /* 16-bit frames: IRETW and LRETW pop a 16-bit IP, CS (and FLAGS). */
    extern char back_iretw[], back_lretw[];
    back.offset = (uint32_t)back_iretw;
    __asm__ volatile("movl %%esp, %%ebx\n\t"
                     "pushw $0x0002\n\tpushw %3\n\tpushw $0x340\n\tiretw\nback_iretw:\n\t"
                     "subl %%esp, %%ebx"
                     : "=a"(a), "=d"(d), "=&b"(b) : "i"(SEL_BASED), "S"(&back) : "memory");
    printf("iretw to 0018:0340: eip seen=%08x cs=%04x esp balanced=%u\n", a, d & 0xFFFF, b == 0);
    back.offset = (uint32_t)back_lretw;
    __asm__ volatile("movl %%esp, %%ebx\n\t"
                     "pushw %3\n\tpushw $0x340\n\tlretw\nback_lretw:\n\t"
                     "subl %%esp, %%ebx"
                     : "=a"(a), "=d"(d), "=&b"(b) : "i"(SEL_BASED), "S"(&back) : "memory");
    printf("lretw to 0018:0340: eip seen=%08x cs=%04x esp balanced=%u\n", a, d & 0xFFFF, b == 0);

    /* A software interrupt and an exception raised inside the based segment
     * are reported with segment-relative EIPs. */
    trap_expect(NULL);
    __asm__ volatile("lcall %0, $0x2c0" : : "i"(SEL_BASED) : "memory");
    printf("int 42 at 0018:000002c0: vector=%02x frame cs=%04x eip=%08x\n", trap_last.vector,
           trap_last.cs, trap_last.eip);
    trap_expect((void *)0x302);
    __asm__ volatile("lcall %0, $0x300" : : "i"(SEL_BASED) : "memory");
    printf("ud2 at 0018:00000300: %s frame cs=%04x eip=%08x\n", vector_name(trap_last.vector),
           trap_last.cs, trap_last.eip);

    /* A far call to the current segment. */
    extern char ret_same[];
    __asm__ volatile("lcall %4, $flat_callee\nret_same:"
                     : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "i"(SEL_CODE32) : "memory");
    printf("lcall 0008:flat_callee: pushed cs=%04x eip=ret+%d\n", c & 0xFFFF,
           (int)(b - (uint32_t)ret_same));
}
