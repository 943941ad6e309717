/*
 * Timer interrupts reach code that spins in a tight loop (SDM vol. 3A 6.8.1:
 * with IF=1 an interrupt is taken at an instruction boundary).  Popek runs a
 * block that jumps back to itself without its interrupt poll and takes such
 * a loop out from the timer signal, so each loop here is one such block:
 *   - a bare spin on a counter the IRQ 0 handler increments;
 *   - a spin whose body also has instructions Popek rewrites into several
 *     host instructions (PUSH DS, then POP), where the signal often lands
 *     mid-sequence and the monitor steps to the next guest instruction;
 *   - a counting loop at CPL 3 that stops when the handler clears a flag.
 * PIT channel 0 runs in mode 2 at 1 kHz; the handler counts and sends EOI.
 */
#include "lib/guest.h"

#define TIMER_HZ 1000
#define TICKS 20

static volatile uint32_t ticks;
uint32_t user_go; /* cleared by the handler after TICKS more ticks */
static uint32_t stop_at;

static void timer_irq(struct trap_frame *f)
{
    (void)f;
    ticks++;
    if (ticks == stop_at)
        user_go = 0;
    outb(PIC1_CMD, PIC_OCW2_EOI);
}

static TEST_FN void spin_bare(uint32_t until)
{
    while (ticks < until)
        ;
}

static TEST_FN void spin_push_ds(uint32_t until)
{
    __asm__ volatile("1: pushl %%ds\n\t"
                     "popl %%eax\n\t"
                     "cmpl %1, %0\n\t"
                     "jb 1b"
                     : : "m"(ticks), "r"(until) : "eax", "memory", "cc");
}

/* Ring 3: count until the handler clears user_go; returns the count. */
static TEST_FN uint32_t user_count(uint32_t arg)
{
    uint32_t n = arg;
    __asm__ volatile("1: incl %0\n\t"
                     "cmpl $0, user_go\n\t"
                     "jne 1b"
                     : "+r"(n) : : "memory", "cc");
    return n;
}

void kmain(void)
{
    user_init();
    trap_set_handler(VEC_IRQ0, timer_irq);
    uint16_t divisor = PIT_HZ / TIMER_HZ;
    outb(PIT_MODE, PIT_SEL_CH0 | PIT_RW_LOHI | PIT_MODE2);
    outb(PIT_CH0, divisor & 0xFF);
    outb(PIT_CH0, divisor >> 8);
    outb(PIC1_DATA, inb(PIC1_DATA) & ~1);
    __asm__ volatile("sti");

    spin_bare(TICKS);
    printf("bare spin: reached %u ticks\n", ticks >= TICKS ? TICKS : ticks);
    spin_push_ds(2 * TICKS);
    printf("spin with push ds: reached %u ticks\n", ticks >= 2 * TICKS ? 2 * TICKS : ticks);

    user_go = 1;
    stop_at = ticks + TICKS;
    uint32_t n = user_run(user_count, 0, EFLAGS_FIXED | EFLAGS_IF, SEL_USER_DATA32);
    printf("ring 3 counting loop: stopped by the handler, counted %s\n", n ? "something" : "nothing");

    __asm__ volatile("cli");
    outb(PIC1_DATA, inb(PIC1_DATA) | 1);
}
