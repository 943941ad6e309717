/*
 * IN/OUT/INS/OUTS at CPL 0 (IOPL 0 does not matter at CPL 0).  Round trips go
 * through the UART scratch register (COM1+7 = 0x3FF), which stores any byte.
 * Port 0x80 (POST codes) accepts writes and reads back 0xFF on the reference
 * machine.  String forms: INSB stores to ES:EDI, OUTSB reads DS:ESI (or a
 * segment override), both step by 1 in the direction DF says, REP counts ECX
 * down to 0 (SDM vol. 2, INS/OUTS/REP).
 */
#include "lib/guest.h"

#define UART_SCR 0x3FF
#define POST_PORT 0x80
#define SEL_BASED_DATA 0x18   /* data segment with base SCRATCH_ADDR */

void kmain(void)
{
    static const uint8_t vals[] = { 0x00, 0x5A, 0xA5, 0xFF, 0x01 };
    uint32_t esi, edi, ecx;
    uint8_t v;

    gdt_set(SEL_BASED_DATA >> 3, SCRATCH_ADDR, 0xFFFF, ACC_DATA32, DESC_DB);

    for (unsigned i = 0; i < sizeof vals; i++) {
        outb(UART_SCR, vals[i]);
        printf("outb 3ff <- %02x, inb: %02x\n", vals[i], inb(UART_SCR));
    }
    /* Immediate-port forms. */
    __asm__ volatile("movb $0x77, %%al\n\toutb %%al, $0x80\n\tinb $0x80, %%al" : "=a"(v));
    printf("outb $80 <- 77, inb $80: %02x\n", v);
    outb(POST_PORT, 0x42);
    printf("outb (dx=80) <- 42, inb (dx=80): %02x\n", inb(POST_PORT));
    __asm__ volatile("movb $0x3c, %%al\n\tmovw $0x3ff, %%dx\n\toutb %%al, %%dx\n\t"
                     "movl $0xdeadbe00, %%eax\n\tinb %%dx, %%al" : "=a"(v) : : "edx");
    printf("outb (dx) <- 3c, inb (dx): %02x\n", v);
    uint32_t full;
    __asm__ volatile("movl $0xdeadbe00, %%eax\n\tinb $0x80, %%al" : "=a"(full));
    printf("inb preserves eax[31:8]: %08x\n", full);

    /* REP OUTSB: the scratch register ends up holding the last byte. */
    static const uint8_t src[4] = { 0x11, 0x22, 0x33, 0x44 };
    __asm__ volatile("rep outsb" : "=S"(esi), "=c"(ecx) : "0"(src), "1"(4), "d"(UART_SCR) : "memory");
    printf("rep outsb x4: scr=%02x esi+=%u ecx=%u\n", inb(UART_SCR), esi - (uint32_t)src, ecx);

    /* REP INSB: every byte reads the same scratch value. */
    uint8_t dst[6];
    memset(dst, 0xEE, sizeof dst);
    __asm__ volatile("rep insb" : "=D"(edi), "=c"(ecx) : "0"(dst + 1), "1"(4), "d"(UART_SCR) : "memory");
    printf("rep insb x4: buf=%02x %02x %02x %02x %02x %02x edi+=%u ecx=%u\n", dst[0], dst[1],
           dst[2], dst[3], dst[4], dst[5], edi - (uint32_t)(dst + 1), ecx);

    /* DF=1: descending addresses. */
    outb(UART_SCR, 0x99);
    memset(dst, 0xEE, sizeof dst);
    __asm__ volatile("std\n\trep insb\n\tcld" : "=D"(edi), "=c"(ecx) : "0"(dst + 4), "1"(3), "d"(UART_SCR) : "memory");
    printf("std rep insb x3 from buf+4: buf=%02x %02x %02x %02x %02x %02x edi-=%u\n", dst[0],
           dst[1], dst[2], dst[3], dst[4], dst[5], (uint32_t)(dst + 4) - edi);
    __asm__ volatile("std\n\toutsb\n\tcld" : "=S"(esi) : "0"(src + 2), "d"(UART_SCR) : "memory");
    printf("std outsb: scr=%02x esi-=%u\n", inb(UART_SCR), (uint32_t)(src + 2) - esi);

    /* REP with ECX=0 does nothing. */
    outb(UART_SCR, 0x10);
    __asm__ volatile("rep outsb" : "=S"(esi), "=c"(ecx) : "0"(src), "1"(0), "d"(UART_SCR) : "memory");
    printf("rep outsb ecx=0: scr=%02x esi+=%u\n", inb(UART_SCR), esi - (uint32_t)src);

    /* INSB honours the ES base; OUTSB honours a segment override. */
    volatile uint8_t *win = (volatile uint8_t *)SCRATCH_ADDR;
    win[0x20] = 0xEE;
    outb(UART_SCR, 0x6B);
    __asm__ volatile("movw %w2, %%es\n\tinsb\n\tmovw %w3, %%es"
                     : "=D"(edi) : "0"(0x20), "r"(SEL_BASED_DATA), "r"(SEL_DATA32), "d"(UART_SCR)
                     : "memory");
    printf("insb with es base %08x, edi=20: linear %08x = %02x, edi=%08x\n", SCRATCH_ADDR,
           SCRATCH_ADDR + 0x20, win[0x20], edi);
    win[0x30] = 0xC3;
    __asm__ volatile("movw %w2, %%fs\n\toutsb %%fs:(%%esi), (%%dx)\n\tmovw %w3, %%fs"
                     : "=S"(esi) : "0"(0x30), "r"(SEL_BASED_DATA), "r"(SEL_DATA32), "d"(UART_SCR)
                     : "memory");
    printf("outsb fs:(esi=30) with fs base %08x: scr=%02x esi=%08x\n", SCRATCH_ADDR,
           inb(UART_SCR), esi);
}
