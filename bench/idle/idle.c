/*
 * The idle benchmark guest: the PIT at 100 Hz, and a STI; HLT loop for 1000
 * ticks (10 s).  bench/run-idle.sh measures the host CPU time Popek spends on
 * it; the target is under 2% of one core.
 */
#include "lib/guest.h"

#define IDLE_HZ 100
#define IDLE_TICKS 1000

static volatile uint32_t ticks;

static void timer_irq(struct trap_frame *f)
{
    (void)f;
    outb(PIC1_CMD, PIC_OCW2_EOI);
    ticks++;
}

void kmain(void)
{
    trap_set_handler(VEC_IRQ0, timer_irq);
    outb(PIC1_DATA, 0xFE); /* rt_init left the PICs at VEC_IRQ0, all masked */
    uint16_t divisor = (PIT_HZ + IDLE_HZ / 2) / IDLE_HZ;
    outb(PIT_MODE, PIT_SEL_CH0 | PIT_RW_LOHI | PIT_MODE2);
    outb(PIT_CH0, divisor & 0xFF);
    outb(PIT_CH0, divisor >> 8);
    while (ticks < IDLE_TICKS)
        __asm__ volatile("sti\n\thlt\n\tcli" : : : "memory");
    printf("idle: %u ticks\n", ticks);
    exit_qemu(0);
}
