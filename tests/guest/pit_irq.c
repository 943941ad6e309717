/*
 * Timer interrupts through the 8259A pair (Intel 8259A and 8254 data sheets;
 * SDM vol. 3A 6.8.1 for IF, vol. 2 HLT/STI).  The PICs are initialised with
 * ICW1-ICW4 (edge triggered, cascaded on IR2, vectors 0x20/0x28, 8086 mode)
 * and PIT channel 0 runs in mode 2 at 100 Hz.  Checked, without depending on
 * timing:
 *   - after ICW1 the IMR is clear; OCW1 sets it and it reads back;
 *   - STI; HLT with IRQ0 unmasked: every HLT ends with a timer interrupt
 *     (vector 0x20 through an interrupt gate: IF=0 in the handler, ISR bit 0
 *     set until the non-specific EOI clears it);
 *   - with IRQ0 masked, IF=1 and the timer running for several periods
 *     (counted by latching channel 0: each reload shows as a larger count),
 *     no interrupt arrives but IRR bit 0 is set; unmasking delivers it;
 *   - with IRQ0 unmasked and IF=0 the request waits, and is taken right after
 *     the instruction following STI.
 * Spurious IRQ7 cannot be provoked reliably and is not tested.
 */
#include "lib/guest.h"

#define TIMER_HZ 100

static volatile uint32_t irq_count;
static volatile uint32_t first_eflags, first_cs, first_isr, first_isr_after_eoi, first_vector;

static uint8_t pic_read(uint16_t cmd, uint8_t ocw3)
{
    outb(cmd, ocw3);
    return inb(cmd);
}

static void timer_irq(struct trap_frame *f)
{
    if (irq_count == 0) {
        first_vector = f->vector;
        first_cs = f->cs & 0xFFFF;
        first_eflags = read_eflags();
        first_isr = pic_read(PIC1_CMD, PIC_OCW3_READ_ISR);
    }
    outb(PIC1_CMD, PIC_OCW2_EOI);
    if (irq_count == 0)
        first_isr_after_eoi = pic_read(PIC1_CMD, PIC_OCW3_READ_ISR);
    irq_count++;
}

static uint16_t pit_ch0_count(void)
{
    outb(PIT_MODE, PIT_LATCH_CH0);
    uint8_t lo = inb(PIT_CH0);
    return (uint16_t)(lo | inb(PIT_CH0) << 8);
}

/* Returns after channel 0 has reloaded `n` times (at least n-1 full periods). */
static void wait_reloads(unsigned n)
{
    uint16_t prev = pit_ch0_count();
    while (n) {
        uint16_t cur = pit_ch0_count();
        if (cur > prev)
            n--;
        prev = cur;
    }
}

void kmain(void)
{
    trap_set_handler(VEC_IRQ0, timer_irq);

    outb(PIC1_CMD, PIC_ICW1_INIT | PIC_ICW1_IC4);
    outb(PIC2_CMD, PIC_ICW1_INIT | PIC_ICW1_IC4);
    uint8_t imr1 = inb(PIC1_DATA), imr2 = inb(PIC2_DATA);
    outb(PIC1_DATA, VEC_IRQ0);       /* ICW2: vector base */
    outb(PIC2_DATA, VEC_IRQ0 + 8);
    outb(PIC1_DATA, 0x04);           /* ICW3: slave on IR2 */
    outb(PIC2_DATA, 0x02);           /* ICW3: slave id 2 */
    outb(PIC1_DATA, PIC_ICW4_8086);
    outb(PIC2_DATA, PIC_ICW4_8086);
    outb(PIC1_DATA, 0xFF);           /* OCW1: mask everything */
    outb(PIC2_DATA, 0xFF);
    printf("imr after icw1: %02x %02x, after ocw1 ff: %02x %02x\n", imr1, imr2, inb(PIC1_DATA),
           inb(PIC2_DATA));

    uint16_t divisor = (PIT_HZ + TIMER_HZ / 2) / TIMER_HZ;
    outb(PIT_MODE, PIT_SEL_CH0 | PIT_RW_LOHI | PIT_MODE2);
    outb(PIT_CH0, divisor & 0xFF);
    outb(PIT_CH0, divisor >> 8);
    printf("pit channel 0: mode 2, divisor %u (%u Hz)\n", divisor, TIMER_HZ);

    /* HLT until ten timer interrupts have arrived. */
    outb(PIC1_DATA, 0xFE);
    unsigned woke_by_irq = 0;
    for (unsigned i = 0; i < 10; i++) {
        uint32_t before = irq_count;
        __asm__ volatile("sti\n\thlt\n\tcli" : : : "memory");
        woke_by_irq += irq_count != before;
    }
    printf("sti; hlt x10 with irq0 unmasked: woken by the timer %u times, irqs>=10: %u\n",
           woke_by_irq, irq_count >= 10);
    printf("first irq0: vector=%02x cs=%04x handler if=%u isr=%02x, after eoi isr=%02x\n",
           first_vector, first_cs, (first_eflags & EFLAGS_IF) ? 1 : 0, first_isr,
           first_isr_after_eoi);

    /* Masked: the request is latched in IRR but not delivered. */
    outb(PIC1_DATA, 0xFF);
    uint32_t before = irq_count;
    __asm__ volatile("sti" : : : "memory");
    wait_reloads(3);
    uint32_t masked = irq_count - before;
    uint8_t irr = pic_read(PIC1_CMD, PIC_OCW3_READ_IRR);
    for (unsigned i = 0; i < 100 && !(irr & 1); i++)
        irr |= pic_read(PIC1_CMD, PIC_OCW3_READ_IRR);
    printf("irq0 masked, if=1, 3 timer reloads: irqs=%u irr bit 0=%u\n", masked, irr & 1);
    outb(PIC1_DATA, 0xFE);
    wait_reloads(2);
    __asm__ volatile("cli" : : : "memory");
    printf("irq0 unmasked: delivered=%u\n", irq_count != before);

    /* IF=0: pending until STI, taken after the instruction that follows it. */
    before = irq_count;
    wait_reloads(2);
    uint32_t while_cli = irq_count - before;
    __asm__ volatile("sti\n\tnop\n\tcli" : : : "memory");
    printf("irq0 unmasked, if=0, 2 timer reloads: irqs=%u; sti; nop; cli: taken=%u\n", while_cli,
           irq_count != before);

    outb(PIC1_DATA, 0xFF);
}
