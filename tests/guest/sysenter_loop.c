/*
 * SYSENTER and SYSEXIT the way Linux uses them: many round trips through the
 * same two instructions (Popek runs them inline in translated code after the
 * first pass), with paging on and a supervisor-only page (SDM vol. 2
 * SYSENTER, SYSEXIT; vol. 3A 5.8.7).  Checked:
 *   - 1000 round trips: the entry runs at CPL 0 (it reads the supervisor page
 *     and CR0) with CS = IA32_SYSENTER_CS, SS = CS+8, ESP = IA32_SYSENTER_ESP
 *     and IF clear; back in ring 3 CS = CS+16|3, SS = CS+24|3, ESP = ECX,
 *     EIP = EDX, and the sum of the entry's results is right;
 *   - ring 3 is ring 3 again after SYSEXIT: reading the supervisor page right
 *     after it takes #PF err=0005 at CPL 3;
 *   - an exception in the entry (INT3) is taken at CPL 0 and returns there;
 *   - IA32_SYSENTER_EIP and _ESP changed between calls take effect, and so
 *     does IA32_SYSENTER_CS (the entry sees CS=0008, SS=0010; it restores the
 *     MSR before its SYSEXIT, which then loads the usual ring-3 selectors);
 *   - SYSENTER with EFLAGS.AC set in ring 3 keeps AC and clears IF;
 *   - STI; SYSEXIT with IRQ 0 pending (raised while the entry ran with IF
 *     clear): the interrupt is taken after SYSEXIT, at its target in ring 3,
 *     not in the STI shadow.
 */
#include "lib/guest.h"

#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define PD       ((volatile uint32_t *)(SCRATCH_ADDR + 0x0000))
#define PT_LOW   ((volatile uint32_t *)(SCRATCH_ADDR + 0x1000))
#define PT_TEST  ((volatile uint32_t *)(SCRATCH_ADDR + 0x2000))
#define STACK_A  (SCRATCH_ADDR + 0x4000)
#define STACK_B  (SCRATCH_ADDR + 0x5000)
#define SUP_FRAME (SCRATCH_ADDR + 0x10000)
#define VA_SUP   0x00400000   /* supervisor page holding SUP_MAGIC */
#define SUP_MAGIC 0x5e1f5e1f
#define ROUNDS   1000

#define PG_URW (PTE_P | PTE_RW | PTE_US)

/* Written by the entries and ring 3; global so inline asm can name them. */
uint32_t se_cs, se_ss, se_esp, se_eflags, se_sup, se_cr0;
uint32_t u_bad, u_cs, u_ss;

/*
 * The entries.  A: record the ring-0 state, read the supervisor page and CR0,
 * return EAX+EBX+1.  B: INT3, then as A.  C: restore IA32_SYSENTER_CS first.
 * D: with IF clear, start PIT channel 0 (mode 0, short count), unmask IRQ 0
 * and wait for it in the PIC's IRR, then STI; SYSEXIT.
 */
__asm__(".text\n"
        "record:\n\t"
        "movl %cs, %esi\n\tmovl %esi, se_cs\n\t"
        "movl %ss, %esi\n\tmovl %esi, se_ss\n\t"
        "leal 4(%esp), %esi\n\tmovl %esi, se_esp\n\t"
        "pushfl\n\tpopl se_eflags\n\t"
        "movl 0x00400000, %esi\n\tmovl %esi, se_sup\n\t"
        "movl %cr0, %esi\n\tmovl %esi, se_cr0\n\t"
        "leal 1(%eax,%ebx), %eax\n\t"
        "ret\n"
        "entry_a:\n\t"
        "call record\n\t"
        "sysexit\n"
        "entry_b:\n\t"
        "entry_b_int3: int3\n\t"
        "call record\n\t"
        "sysexit\n"
        "entry_c:\n\t"
        "pushl %eax\n\tpushl %ecx\n\tpushl %edx\n\t"
        "movl $0x174, %ecx\n\tmovl $0x60, %eax\n\txorl %edx, %edx\n\twrmsr\n\t"
        "popl %edx\n\tpopl %ecx\n\tpopl %eax\n\t"
        "call record\n\t"
        "sysexit\n"
        "entry_d:\n\t"
        "call record\n\t"
        "pushl %eax\n\t"
        "movb $0x30, %al\n\toutb %al, $0x43\n\t"      /* ch 0, lo/hi, mode 0 */
        "movb $100, %al\n\toutb %al, $0x40\n\t"
        "xorb %al, %al\n\toutb %al, $0x40\n\t"
        "inb $0x21, %al\n\tandb $0xfe, %al\n\toutb %al, $0x21\n\t"
        "1: movb $0x0a, %al\n\toutb %al, $0x20\n\t"
        "inb $0x20, %al\n\ttestb $1, %al\n\tjz 1b\n\t"
        "popl %eax\n\t"
        "sti\n\t"
        "sysexit\n");
extern char entry_a[], entry_b[], entry_b_int3[], entry_c[], entry_d[];

static TEST_FN uint32_t user_loop(uint32_t n)
{
    uint32_t acc = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t esp0, esp1, cs, ss;
        __asm__ volatile("movl %%esp, %0" : "=r"(esp0));
        __asm__ volatile("movl %%esp, %%ecx\n\t"
                         "movl $1f, %%edx\n\t"
                         "sysenter\n"
                         "1:"
                         : "+a"(acc) : "b"(i) : "ecx", "edx", "esi", "memory", "cc");
        __asm__ volatile("movl %%esp, %0\n\tmovl %%cs, %1\n\tmovl %%ss, %2"
                         : "=r"(esp1), "=r"(cs), "=r"(ss));
        if (esp0 != esp1 || (cs & 0xffff) != 0x73 || (ss & 0xffff) != 0x7b ||
            (se_cs & 0xffff) != 0x60 || (se_ss & 0xffff) != 0x68 || se_esp != STACK_A ||
            (se_eflags & EFLAGS_IF) || se_sup != SUP_MAGIC)
            u_bad++;
    }
    return acc;
}

/* In ring 3: BEFORE, then SYSENTER with EAX = acc and EBX = arg, whose SYSEXIT
 * comes back (ESP = ECX, EIP = EDX) to LABEL, where AFTER runs. */
#define SYSENTER_ASM(before, label, after)                                      \
    __asm__ volatile(before "movl %%esp, %%ecx\n\tmovl $" label ", %%edx\n\t"   \
                     "sysenter\n" label ": " after                              \
                     : "+a"(acc) : "b"(arg) : "ecx", "edx", "esi", "memory", "cc")

/* A read of the supervisor page right after SYSEXIT. */
static TEST_FN uint32_t user_then_sup(uint32_t arg)
{
    uint32_t acc = 0;
    SYSENTER_ASM("", "sup_after", "movl 0x00400000, %%esi\nsup_resume:");
    return acc;
}

static TEST_FN uint32_t user_once(uint32_t arg)
{
    uint32_t acc = 0;
    SYSENTER_ASM("", "once_back",
                 "movl %%cs, %%ecx\n\tmovl %%ecx, u_cs\n\tmovl %%ss, %%ecx\n\tmovl %%ecx, u_ss");
    return acc;
}

static TEST_FN uint32_t user_ac(uint32_t arg)
{
    uint32_t acc = 0;
    SYSENTER_ASM("pushfl\n\torl $0x40000, (%%esp)\n\tpopfl\n\t", "ac_back",
                 "pushfl\n\tandl $~0x40000, (%%esp)\n\tpopfl");
    return acc;
}

static TEST_FN uint32_t user_irq_once(uint32_t arg)
{
    uint32_t acc = 0;
    SYSENTER_ASM("", "irq_target", "nop");
    return acc;
}

/* Twice: the second time the target is known to the translated code. */
static TEST_FN uint32_t user_irq(uint32_t arg)
{
    return user_irq_once(arg) + user_irq_once(arg);
}

static uint32_t irq_count, irq_bad, irq_cs;

static void irq0(struct trap_frame *f)
{
    extern char irq_target[];
    irq_count++;
    if (f->eip != (uint32_t)irq_target)
        irq_bad++;
    irq_cs = f->cs & 0xffff;
    outb(PIC1_DATA, inb(PIC1_DATA) | 1);
    outb(PIC1_CMD, PIC_OCW2_EOI);
}

static void set_entry(const char *eip, uint32_t esp)
{
    msr_write(MSR_IA32_SYSENTER_EIP, (uint32_t)eip);
    msr_write(MSR_IA32_SYSENTER_ESP, esp);
}

static void print_entry(const char *what)
{
    printf("%s: entry cs=%04x ss=%04x esp=%08x if=%u ac=%u sup=%08x cr0.pe=%u\n", what,
           se_cs & 0xffff, se_ss & 0xffff, se_esp, (se_eflags & EFLAGS_IF) ? 1 : 0,
           (se_eflags & EFLAGS_AC) ? 1 : 0, se_sup, se_cr0 & 1);
}

void kmain(void)
{
    extern char sup_after[], sup_resume[];
    cr0_write(cr0_read() & ~CR0_AM); /* AC is set at CPL 3 below */
    user_init();
    paging_map_low(PD, PT_LOW, PG_URW);
    memset((void *)PT_TEST, 0, 4096);
    PD[1] = (uint32_t)PT_TEST | PG_URW;
    PT_TEST[0] = SUP_FRAME | PTE_P | PTE_RW;
    *(volatile uint32_t *)SUP_FRAME = SUP_MAGIC;
    cr3_write((uint32_t)PD);
    cr0_write(cr0_read() | CR0_PG);

    msr_write(MSR_IA32_SYSENTER_CS, SEL_SYS_CODE32);
    set_entry(entry_a, STACK_A);
    uint32_t sum = user_run(user_loop, ROUNDS, EFLAGS_FIXED | EFLAGS_IF, SEL_USER_DATA32);
    printf("%u round trips: sum=%u (expected %u), bad rounds=%u\n", ROUNDS, sum,
           ROUNDS * (ROUNDS + 1) / 2, u_bad);
    print_entry("last round");

    trap_expect(sup_resume);
    user_call(user_then_sup, 1);
    trap_print("supervisor page read right after sysexit", sup_after);

    set_entry(entry_b, STACK_B);
    trap_expect(NULL);
    uint32_t r = user_call(user_once, 5);
    trap_print("int3 in the entry", entry_b_int3 + 1);
    print_entry("entry b, esp b");
    printf("  back: cs=%04x ss=%04x eax=%u\n", u_cs & 0xffff, u_ss & 0xffff, r);

    msr_write(MSR_IA32_SYSENTER_CS, SEL_CODE32);
    set_entry(entry_c, STACK_A);
    r = user_call(user_once, 7);
    print_entry("sysenter_cs=0008");
    printf("  back (msr restored to 0060 in the entry): cs=%04x ss=%04x eax=%u\n", u_cs & 0xffff,
           u_ss & 0xffff, r);

    set_entry(entry_a, STACK_A);
    r = user_run(user_ac, 9, EFLAGS_FIXED | EFLAGS_IF, SEL_USER_DATA32);
    print_entry("ac=1 in ring 3");
    printf("  eax=%u\n", r);

    trap_set_handler(VEC_IRQ0, irq0);
    set_entry(entry_d, STACK_A);
    r = user_run(user_irq, 11, EFLAGS_FIXED | EFLAGS_IF, SEL_USER_DATA32);
    printf("sti; sysexit with irq 0 pending, twice: taken %u times, %u not at the target, "
           "cs=%04x, eax=%u\n", irq_count, irq_bad, irq_cs, r);
}
