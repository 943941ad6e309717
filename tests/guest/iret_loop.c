/*
 * IRET at CPL 0 back to CPL 0, through one instruction many times (Popek
 * runs such IRETs inline after the first; SDM vol. 2 IRET, "return to the
 * same privilege level").  Checked:
 *   - EFLAGS comes from the frame, arithmetic flags, DF and IF included, and
 *     AC and IOPL too (the inline path leaves those to the monitor), with ID
 *     set in the frame and before it (as Linux runs) or in only one;
 *   - CS comes from the frame: alternating between two flat code selectors
 *     through the same IRET gives the frame's selector every time;
 *   - the code segment is reloaded from the GDT even when the selector is
 *     the one CS holds: after the entry of the current CS is rewritten as
 *     execute-only, an IRET to it makes a read through CS raise #GP(0), and
 *     after the entry is restored the next IRET makes it work again;
 *   - an interrupt pending while IF=0 is taken right after an IRET that sets
 *     IF, at the frame's EIP (twice, so the second time runs what the first
 *     taught the translated code).
 * QEMU's TCG does not check the type of CS for reads through it (an
 * execute-only CS reads fine there), so the golden file is the SDM's answer
 * and the kernel is in GUEST_QEMU_MISMATCH.
 */
#include "lib/guest.h"

#define SEL_CODE_B 0x60 /* a second flat code selector */
#define ROUNDS 1000

/* uint32_t iret_to(uint32_t eflags, uint32_t cs): IRET to iret_back with that
 * EFLAGS and CS; returns EFLAGS as found there (then CLD, CLI). */
uint32_t iret_to(uint32_t eflags, uint32_t cs);
extern char iret_site[], iret_back[];

/* uint32_t cs_read(void): the dword at cs:cs_read; 0xdead if that faults. */
uint32_t cs_read(void);
extern char cs_read_at[], cs_read_resume[];
__asm__(".text\n"
        "iret_to:\n"
        "  movl 4(%esp), %eax\n"
        "  movl 8(%esp), %edx\n"
        "  pushl %eax\n"
        "  pushl %edx\n"
        "  pushl $iret_back\n"
        "iret_site:\n"
        "  iret\n"
        "iret_back:\n"
        "  pushfl\n"
        "  popl %eax\n"
        "  cld\n"
        "  cli\n"
        "  ret\n"
        "cs_read:\n"
        "cs_read_at:\n"
        "  movl %cs:cs_read, %eax\n"
        "  ret\n"
        "cs_read_resume:\n"
        "  movl $0xdead, %eax\n"
        "  ret\n");

static uint32_t cs_now(void)
{
    uint32_t cs;
    __asm__ volatile("movl %%cs, %0" : "=r"(cs));
    return cs & 0xffff;
}

#define FLAGS_KEPT (EFLAGS_CF | EFLAGS_PF | EFLAGS_AF | EFLAGS_ZF | EFLAGS_SF | EFLAGS_OF | \
                    EFLAGS_DF | EFLAGS_IF | EFLAGS_IOPL | EFLAGS_AC | EFLAGS_ID | EFLAGS_FIXED)

static uint32_t irq_count, irq_bad;

static void irq0(struct trap_frame *f)
{
    irq_count++;
    if (f->eip != (uint32_t)iret_back)
        irq_bad++;
    outb(PIC1_DATA, inb(PIC1_DATA) | 1);
    outb(PIC1_CMD, PIC_OCW2_EOI);
}

/* IRQ 0 from a short PIT one-shot, pending in the PIC while IF=0. */
static void raise_irq0(void)
{
    outb(PIT_MODE, PIT_SEL_CH0 | PIT_RW_LOHI); /* mode 0 */
    outb(PIT_CH0, 100);
    outb(PIT_CH0, 0);
    outb(PIC1_DATA, inb(PIC1_DATA) & ~1);
    do
        outb(PIC1_CMD, PIC_OCW3_READ_IRR);
    while (!(inb(PIC1_CMD) & 1));
}

void kmain(void)
{
    static const uint32_t flags[] = {
        EFLAGS_FIXED,
        EFLAGS_FIXED | EFLAGS_CF | EFLAGS_ZF | EFLAGS_SF | EFLAGS_OF,
        EFLAGS_FIXED | EFLAGS_PF | EFLAGS_AF | EFLAGS_DF,
        EFLAGS_FIXED | EFLAGS_IF | EFLAGS_OF,
        EFLAGS_FIXED | EFLAGS_IF | EFLAGS_DF | EFLAGS_CF,
    };
    cr0_write(cr0_read() & ~CR0_AM); /* AC is set below */
    gdt_set(SEL_CODE_B >> 3, 0, 0xFFFFF, ACC_CODE32, DESC_G | DESC_DB);

    unsigned bad = 0;
    for (unsigned i = 0; i < ROUNDS; i++) {
        uint32_t fl = flags[i % 5];
        if ((iret_to(fl, SEL_CODE32) & FLAGS_KEPT) != fl)
            bad++;
    }
    printf("%u irets, eflags from the frame: %u wrong\n", ROUNDS, bad);

    /* ID set before and in the frame; then set in only one of them. */
    bad = 0;
    write_eflags(EFLAGS_FIXED | EFLAGS_ID);
    for (unsigned i = 0; i < ROUNDS; i++) {
        uint32_t fl = flags[i % 5] | EFLAGS_ID;
        if ((iret_to(fl, SEL_CODE32) & FLAGS_KEPT) != fl)
            bad++;
    }
    printf("%u irets with id set: %u wrong\n", ROUNDS, bad);
    printf("id set, iret without it: %08x after\n", iret_to(EFLAGS_FIXED, SEL_CODE32) & FLAGS_KEPT);
    printf("id clear, iret with it: %08x after\n",
           iret_to(EFLAGS_FIXED | EFLAGS_ID, SEL_CODE32) & FLAGS_KEPT);
    write_eflags(EFLAGS_FIXED);

    static const uint32_t odd[] = { EFLAGS_FIXED | EFLAGS_AC, EFLAGS_FIXED | EFLAGS_IOPL,
                                    EFLAGS_FIXED | EFLAGS_CF };
    for (unsigned i = 0; i < 3; i++)
        printf("iret with eflags %08x: %08x after\n", odd[i],
               iret_to(odd[i], SEL_CODE32) & FLAGS_KEPT);

    bad = 0;
    for (unsigned i = 0; i < ROUNDS; i++) {
        uint32_t cs = i & 1 ? SEL_CODE_B : SEL_CODE32;
        iret_to(EFLAGS_FIXED, cs);
        if (cs_now() != cs)
            bad++;
    }
    iret_to(EFLAGS_FIXED, SEL_CODE32);
    printf("%u irets alternating cs %04x and %04x: %u with the wrong cs, now %04x\n", ROUNDS,
           SEL_CODE32, SEL_CODE_B, bad, cs_now());

    /* In CS SEL_CODE_B, IRETs to it; then its entry made execute-only. */
    for (unsigned i = 0; i < 3; i++)
        iret_to(EFLAGS_FIXED, SEL_CODE_B);
    uint32_t before = cs_read();
    gdt_set(SEL_CODE_B >> 3, 0, 0xFFFFF, ACC_CODE32 & ~DESC_TYPE_READ, DESC_G | DESC_DB);
    iret_to(EFLAGS_FIXED, SEL_CODE_B);
    trap_expect(cs_read_resume);
    uint32_t after = cs_read();
    trap_print("read through cs after an iret to its entry made execute-only", cs_read_at);
    gdt_set(SEL_CODE_B >> 3, 0, 0xFFFFF, ACC_CODE32, DESC_G | DESC_DB);
    iret_to(EFLAGS_FIXED, SEL_CODE_B);
    printf("  before %s, after %s; entry restored and iret: %s\n",
           before == 0xdead ? "faulted" : "read", after == 0xdead ? "faulted" : "read",
           cs_read() == 0xdead ? "faulted" : "read");
    iret_to(EFLAGS_FIXED, SEL_CODE32);

    trap_set_handler(VEC_IRQ0, irq0);
    for (unsigned i = 0; i < 2; i++) {
        raise_irq0();
        iret_to(EFLAGS_FIXED | EFLAGS_IF, SEL_CODE32);
    }
    printf("iret setting if with irq 0 pending, twice: taken %u times, %u not at the frame's eip\n",
           irq_count, irq_bad);
}
