/*
 * INT n, INT3, INTO and IRET at the same privilege level (SDM vol. 3A,
 * 6.12): the frame holds EFLAGS, CS and the EIP of the next instruction; an
 * interrupt gate clears IF (and TF, NT, RF) in the handler, a trap gate leaves
 * IF alone; IRET restores EFLAGS from the frame, including a value the handler
 * changed.  INT3 (CC) and INT 3 (CD 03) differ only in length; INTO traps only
 * when OF=1.
 */
#include "lib/guest.h"

static uint32_t handler_eflags;
static uint32_t handler_calls;

static void record_flags(struct trap_frame *f)
{
    handler_eflags = read_eflags();
    handler_calls++;
    (void)f;
}

static void set_cf_in_frame(struct trap_frame *f)
{
    f->eflags |= EFLAGS_CF;
    f->eax = 0x1234ABCD;
}

static TEST_FN void int_plain(void)
{
    extern char int40_at[], int40_next[];
    trap_expect(NULL);
    __asm__ volatile("int40_at: int $0x40\nint40_next:" : : : "memory");
    printf("int 40: vector=%02x cs=%04x eip=insn+%d (next=+%d) eflags=%08x\n", trap_last.vector,
           trap_last.cs, (int)(trap_last.eip - (uint32_t)int40_at), (int)(int40_next - int40_at),
           trap_last.eflags & ~0x8D5u);
}

static TEST_FN void int3_forms(void)
{
    extern char cc_at[], cd03_at[];
    trap_expect(NULL);
    __asm__ volatile("cc_at: .byte 0xcc" : : : "memory");
    trap_print("int3 (cc)", cc_at);
    trap_expect(NULL);
    __asm__ volatile("cd03_at: .byte 0xcd, 0x03" : : : "memory");
    trap_print("int 3 (cd 03)", cd03_at);
}

static TEST_FN void into_forms(void)
{
    extern char into0_at[], into1_at[];
    trap_expect(NULL);
    __asm__ volatile("pushl $0x002\n\tpopfl\ninto0_at: into" : : : "memory", "cc");
    trap_print("into of=0", into0_at);
    trap_expect(NULL);
    __asm__ volatile("pushl $0x802\n\tpopfl\ninto1_at: into\n\tpushl $2\n\tpopfl" : : : "memory", "cc");
    trap_print("into of=1", into1_at);
    extern char into2_at[];
    trap_expect(NULL);
    __asm__ volatile("movl $0x7fffffff, %%eax\n\taddl $1, %%eax\ninto2_at: into"
                     : : : "eax", "memory", "cc");
    trap_print("add overflow, into", into2_at);
}

void kmain(void)
{
    uint32_t f, r;

    int_plain();
    int3_forms();
    into_forms();

    /* Interrupt gate vs trap gate, entered with IF=1 (the PICs are masked). */
    trap_set_handler(0x40, record_flags);
    __asm__ volatile("sti\n\tint $0x40\n\tcli" : : : "memory");
    printf("interrupt gate: handler if=%u\n", (handler_eflags & EFLAGS_IF) ? 1 : 0);
    idt_set_gate(0x40, SEL_CODE32, isr_stub(0x40), DESC_P | SYS_TRAP_GATE32);
    __asm__ volatile("sti\n\tint $0x40\n\tcli" : : : "memory");
    printf("trap gate: handler if=%u\n", (handler_eflags & EFLAGS_IF) ? 1 : 0);
    __asm__ volatile("pushl $0x4002\n\tpopfl\n\tint $0x40\n\tpushfl\n\tpopl %0\n\tpushl $2\n\tpopfl"
                     : "=r"(f) : : "memory", "cc");
    printf("nt=1 into trap gate: handler nt=%u, after iret nt=%u\n",
           (handler_eflags & EFLAGS_NT) ? 1 : 0, (f & EFLAGS_NT) ? 1 : 0);
    idt_reset_gate(0x40);
    trap_set_handler(0x40, NULL);
    printf("handler calls: %u\n", handler_calls);

    /* IRET takes EFLAGS (and registers restored by the stub) from the frame. */
    trap_set_handler(0x44, set_cf_in_frame);
    __asm__ volatile("movl $0, %%eax\n\tclc\n\tint $0x44\n\tpushfl\n\tpopl %0"
                     : "=r"(f), "=a"(r) : : "memory", "cc");
    printf("iret after handler set cf and eax: cf=%u eax=%08x\n", f & EFLAGS_CF, r);
    trap_set_handler(0x44, NULL);

    /* A hand-built IRET frame at the same privilege level. */
    extern char iret_target[];
    __asm__ volatile("pushl $0x00000ad7\n\tpushl %1\n\tpushl $iret_target\n\tiret\n\t"
                     "ud2\n"
                     "iret_target:\n\t"
                     "pushfl\n\tpopl %0\n\tcld\n\tpushl $2\n\tpopfl"
                     : "=r"(f) : "i"(SEL_CODE32) : "memory", "cc");
    printf("iret to own frame: eflags=%08x\n", f);
    (void)iret_target;

    /* IRET pops exactly the three dwords INT pushed. */
    uint32_t esp_before, esp_after;
    trap_expect(NULL);
    __asm__ volatile("movl %%esp, %0\n\tint $0x45\n\tmovl %%esp, %1"
                     : "=&r"(esp_before), "=r"(esp_after) : : "memory");
    printf("int 45 + iret: esp balanced=%u\n", esp_before == esp_after);
}
