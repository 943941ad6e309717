/*
 * The COM1 16550A seen from the guest (National Semiconductor PC16550D data
 * sheet; Linux's 8250 autoconfig relies on each of these):
 *   SCR stores any byte; LSR reads THRE|TEMT (60) when idle with no input;
 *   DLAB=1 exposes DLL/DLM, which read back; LCR reads back;
 *   IER keeps its low 4 bits only; IIR reads 01 (no interrupt) with FIFOs off
 *   and c1 with FIFOs on; with IER.ETBEI=1 and THR empty IIR reads 02 (THRE
 *   interrupt pending) once, the read clearing it;
 *   loopback (MCR bit 4): MSR[7:4] mirror OUT2/OUT1/DTR/RTS, transmitted bytes
 *   arrive in RBR with LSR.DR set.
 * Results are gathered first and printed after the UART is restored.
 */
#include "lib/guest.h"

#define COM1 0x3F8
#define UART_RBR 0
#define UART_THR 0
#define UART_DLL 0
#define UART_IER 1
#define UART_DLM 1
#define UART_IIR 2
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7
#define UART_LCR_DLAB 0x80
#define UART_IER_ETBEI 0x02
#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR 0x06
#define UART_MCR_LOOP 0x10
#define UART_LSR_DR 0x01
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40

static void wait_tx_idle(void)
{
    while ((inb(COM1 + UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT)) != (UART_LSR_THRE | UART_LSR_TEMT))
        ;
}

void kmain(void)
{
    uint8_t r[24];

    for (unsigned i = 0; i < 3; i++) {
        static const uint8_t sv[3] = { 0x55, 0xAA, 0x00 };
        outb(COM1 + UART_SCR, sv[i]);
        printf("scr <- %02x: %02x\n", sv[i], inb(COM1 + UART_SCR));
    }
    wait_tx_idle();
    printf("lsr idle: %02x\n", inb(COM1 + UART_LSR));
    printf("lcr: %02x\n", inb(COM1 + UART_LCR));

    /* Divisor latch round trip, then back to 115200 baud, 8N1. */
    wait_tx_idle();
    uint8_t lcr = inb(COM1 + UART_LCR);
    outb(COM1 + UART_LCR, lcr | UART_LCR_DLAB);
    outb(COM1 + UART_DLL, 0x0C);
    outb(COM1 + UART_DLM, 0x00);
    r[0] = inb(COM1 + UART_DLL);
    r[1] = inb(COM1 + UART_DLM);
    outb(COM1 + UART_DLL, 0x34);
    outb(COM1 + UART_DLM, 0x12);
    r[2] = inb(COM1 + UART_DLL);
    r[3] = inb(COM1 + UART_DLM);
    r[4] = inb(COM1 + UART_LCR);
    outb(COM1 + UART_DLL, 0x01);
    outb(COM1 + UART_DLM, 0x00);
    outb(COM1 + UART_LCR, lcr);
    printf("dlab: dll/dlm <- 0c/00: %02x/%02x, <- 34/12: %02x/%02x, lcr with dlab: %02x\n",
           r[0], r[1], r[2], r[3], r[4]);
    outb(COM1 + UART_LCR, 0x1B);
    r[0] = inb(COM1 + UART_LCR);
    outb(COM1 + UART_LCR, lcr);
    printf("lcr <- 1b: %02x\n", r[0]);

    /* IER and IIR. */
    wait_tx_idle();
    outb(COM1 + UART_IER, 0xFF);
    r[0] = inb(COM1 + UART_IER);
    outb(COM1 + UART_IER, 0x00);
    r[1] = inb(COM1 + UART_IER);
    r[2] = inb(COM1 + UART_IIR);
    outb(COM1 + UART_FCR, UART_FCR_ENABLE | UART_FCR_CLEAR);
    r[3] = inb(COM1 + UART_IIR);
    outb(COM1 + UART_FCR, 0);
    r[4] = inb(COM1 + UART_IIR);
    outb(COM1 + UART_IER, UART_IER_ETBEI);
    r[5] = inb(COM1 + UART_IIR);
    r[6] = inb(COM1 + UART_IIR);
    outb(COM1 + UART_IER, 0);
    r[7] = inb(COM1 + UART_IIR);
    printf("ier <- ff: %02x, <- 00: %02x\n", r[0], r[1]);
    printf("iir: fifo off %02x, fifo on %02x, fifo off again %02x\n", r[2], r[3], r[4]);
    printf("iir with ier.etbei and thr empty: %02x then %02x, after ier=0: %02x\n", r[5], r[6], r[7]);

    /* Loopback, as Linux's autoconfig probes it. */
    wait_tx_idle();
    uint8_t mcr = inb(COM1 + UART_MCR);
    outb(COM1 + UART_MCR, UART_MCR_LOOP | 0x0A);   /* OUT2 | RTS */
    r[0] = inb(COM1 + UART_MSR) & 0xF0;
    outb(COM1 + UART_MCR, UART_MCR_LOOP | 0x05);   /* OUT1 | DTR */
    r[1] = inb(COM1 + UART_MSR) & 0xF0;
    outb(COM1 + UART_MCR, UART_MCR_LOOP | 0x0F);
    r[2] = inb(COM1 + UART_MSR) & 0xF0;
    r[3] = inb(COM1 + UART_LSR) & UART_LSR_DR;
    outb(COM1 + UART_THR, 0x5C);
    for (unsigned i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & UART_LSR_DR); i++)
        ;
    r[4] = inb(COM1 + UART_LSR) & UART_LSR_DR;
    r[5] = inb(COM1 + UART_RBR);
    r[6] = inb(COM1 + UART_LSR) & UART_LSR_DR;
    r[7] = inb(COM1 + UART_MCR);
    outb(COM1 + UART_MCR, mcr);
    printf("loopback msr[7:4]: out2|rts %02x, out1|dtr %02x, all %02x\n", r[0], r[1], r[2]);
    printf("loopback: dr before %u, thr <- 5c: dr %u rbr %02x dr after read %u, mcr read %02x\n",
           r[3], r[4], r[5], r[6], r[7]);
    printf("mcr restored: %02x\n", inb(COM1 + UART_MCR));
}
