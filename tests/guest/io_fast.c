/*
 * Port reads that translated code serves from the I/O bus's fast-read table
 * without leaving for the monitor (the PIC mask registers, the ELCRs, port
 * 0x80) must follow every change the guest makes, through the same IN
 * instruction executed again: each loop below reads its port at one site,
 * with the immediate form (IN AL, imm8) and the DX form (IN AL, DX).  The
 * 8259A poll command turns the next data-port read into the poll byte
 * (no interrupt pending: bit 7 clear), after which the mask reads back again.
 */
#include "lib/guest.h"

#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_DATA 0xA1
#define ELCR1     0x4D0
#define OCW3_POLL 0x0C

static uint8_t in_dx(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %%dx, %%al" : "=a"(v) : "d"(port));
    return v;
}

void kmain(void)
{
    static const uint8_t masks[] = { 0xFF, 0x00, 0x5A, 0xA5, 0xFE, 0xFB };
    static const uint16_t ports[] = { PIC1_DATA, PIC2_DATA, 0x80, ELCR1, PIC1_DATA };

    for (unsigned i = 0; i < sizeof masks; i++) {
        outb(PIC1_DATA, masks[i]);
        uint8_t v;
        __asm__ volatile("inb $0x21, %%al" : "=a"(v));
        printf("imr1 <- %02x, in $21: %02x\n", masks[i], v);
    }
    for (unsigned i = 0; i < sizeof masks; i++) {
        outb(PIC2_DATA, (uint8_t)~masks[i]);
        printf("imr2 <- %02x, in dx=a1: %02x\n", (uint8_t)~masks[i], in_dx(PIC2_DATA));
    }
    outb(ELCR1, 0x20);
    outb(PIC1_DATA, 0x3C);
    outb(PIC2_DATA, 0xC3);
    for (unsigned i = 0; i < sizeof ports / sizeof ports[0]; i++)
        printf("in dx=%03x: %02x\n", ports[i], in_dx(ports[i]));
    for (unsigned i = 0; i < 3; i++) {
        if (i == 1)
            outb(PIC1_CMD, OCW3_POLL);
        uint8_t v;
        __asm__ volatile("inb $0x21, %%al" : "=a"(v));
        printf("%s in $21: %02x\n", i == 1 ? "after poll command," : "", v & (i == 1 ? 0x80 : 0xFF));
    }
    outb(ELCR1, 0x00);
    outb(PIC1_DATA, 0xFF);
    outb(PIC2_DATA, 0xFF);
}
