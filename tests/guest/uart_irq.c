/*
 * Interrupt-driven transmission on COM1 (PC16550D data sheet; the PC wiring
 * of COM1 to IRQ4, gated by MCR.OUT2, and the 8259A).  With IER.ETBEI set and
 * THR empty, IIR reads 02 (THR empty, highest pending) and IRQ4 is raised;
 * reading IIR or writing THR clears that source, and it comes back when the
 * byte has left THR.  The handler sends the next byte of a line on each THRE
 * interrupt and clears IER after the last one, as Linux's 8250 driver does;
 * the line itself is part of the golden output.  That makes one interrupt per
 * byte plus the one raised when ETBEI is set.  The received-data interrupt
 * needs input and is not tested.  Everything is printed after the interrupt
 * phase, with polled output as usual.
 */
#include "lib/guest.h"

#define COM1 0x3F8
#define UART_THR 0
#define UART_IER 1
#define UART_IIR 2
#define UART_MCR 4
#define UART_LSR 5
#define UART_IER_ETBEI 0x02
#define UART_IIR_THRI  0x02
#define UART_MCR_OUT2  0x08
#define UART_LSR_THRE  0x20
#define UART_LSR_TEMT  0x40

#define IRQ_COM1 4
#define VEC_COM1 (0x20 + IRQ_COM1)   /* rt_init() put the master PIC at 0x20 */

/* The line being sent by the handler. */
static const char *volatile line;
static volatile unsigned len, sent, irqs, done, other_iir;
static volatile uint32_t first_iir, first_vector, first_cs;

static void com1_irq(struct trap_frame *f)
{
    uint8_t iir = inb(COM1 + UART_IIR);

    if (irqs++ == 0) {
        first_iir = iir;
        first_vector = f->vector;
        first_cs = f->cs & 0xFFFF;
    }
    if ((iir & 0x0F) != UART_IIR_THRI) {
        other_iir++;
    } else if (sent < len) {
        outb(COM1 + UART_THR, (uint8_t)line[sent++]);
    } else {
        outb(COM1 + UART_IER, 0);
        done = 1;
    }
    outb(PIC1_CMD, PIC_OCW2_EOI);
}

/*
 * Sends `text` from the THRE handler, waiting either in a bounded loop with
 * IF=1 (a missing interrupt then shows up in the counts instead of hanging
 * the test) or in STI; HLT, as an idle kernel does, which needs the UART
 * interrupt to end HLT.
 */
static void send(const char *text, int use_hlt)
{
    while ((inb(COM1 + UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT)) != (UART_LSR_THRE | UART_LSR_TEMT))
        ;
    line = text;
    len = 0;
    while (text[len])
        len++;
    sent = irqs = done = other_iir = 0;
    first_iir = first_vector = first_cs = 0;

    uint8_t mcr = inb(COM1 + UART_MCR);
    uint8_t imr = inb(PIC1_DATA);
    outb(COM1 + UART_MCR, mcr | UART_MCR_OUT2);
    outb(PIC1_DATA, imr & ~(1u << IRQ_COM1));
    outb(COM1 + UART_IER, UART_IER_ETBEI);
    if (use_hlt) {
        while (!done)
            __asm__ volatile("sti\n\thlt\n\tcli" : : : "memory");
    } else {
        __asm__ volatile("sti" : : : "memory");
        for (unsigned long spins = 0; !done && spins < 200000000ul; spins++)
            __asm__ volatile("pause" : : : "memory");
        __asm__ volatile("cli" : : : "memory");
    }
    outb(PIC1_DATA, imr);
    uint8_t iir_after = inb(COM1 + UART_IIR);
    outb(COM1 + UART_MCR, mcr);

    printf("%s: thre interrupts: %u for %u bytes, other iir values: %u, done=%u\n",
           use_hlt ? "sti; hlt" : "busy wait", irqs, sent, other_iir, done);
    printf("  first: vector=%02x cs=%04x iir=%02x; iir after ier=0: %02x\n", first_vector,
           first_cs, first_iir, iir_after);
}

void kmain(void)
{
    trap_set_handler(VEC_COM1, com1_irq);
    send("uart: this line was sent by the thre interrupt handler\n", 0);
    send("uart: and this one while the cpu waited in hlt\n", 1);
}
