/*
 * The interrupt shadow of an STI the monitor emulates (SDM vol. 3A 6.8.3,
 * vol. 2 STI): at CPL 3 with IOPL 3, STI with an interrupt pending sets IF,
 * and the interrupt is taken after the next instruction, not before it.
 * Popek emulates that STI, steps the next instruction, then delivers; it
 * used to exit before that instruction again and again.  Twice, so the
 * second run has the translation the first made.
 */
#include "lib/guest.h"

static volatile uint32_t hits, bad, ring;
extern char after_shadow[];

static void irq0(struct trap_frame *f)
{
    hits++;
    ring = f->cs & 3;
    if (f->eip != (uint32_t)after_shadow)
        bad++;
    outb(PIC1_DATA, inb(PIC1_DATA) | 1);
    outb(PIC1_CMD, PIC_OCW2_EOI);
}

static TEST_FN uint32_t user_sti(uint32_t arg)
{
    __asm__ volatile("sti\n\t"
                     "nop\n"
                     "after_shadow: nop\n\t"
                     "cli"
                     : : : "memory");
    return arg;
}

void kmain(void)
{
    user_init();
    trap_set_handler(VEC_IRQ0, irq0);
    for (unsigned i = 0; i < 2; i++) {
        outb(PIT_MODE, PIT_SEL_CH0 | PIT_RW_LOHI); /* mode 0: one IRQ 0 */
        outb(PIT_CH0, 100);
        outb(PIT_CH0, 0);
        outb(PIC1_DATA, inb(PIC1_DATA) & ~1);
        do
            outb(PIC1_CMD, PIC_OCW3_READ_IRR);
        while (!(inb(PIC1_CMD) & 1));
        user_run(user_sti, 0, EFLAGS_FIXED | EFLAGS_IOPL, SEL_USER_DATA32);
    }
    printf("ring 3, iopl 3: sti; nop with irq 0 pending, twice: taken %u times in ring %u, "
           "%u not right after the nop\n", hits, ring, bad);
}
