/*
 * PIT channel 2 and port 0x61 the way Linux calibrates the TSC without
 * another clock (arch/x86/kernel/tsc.c, pit_calibrate_tsc and
 * quick_pit_calibrate): gate 2 high and the speaker off through port 0x61,
 * channel 2 in mode 0 (interrupt on terminal count), then poll port 0x61 bit 5
 * (OUT2) until the count expires.  Per the 8254 data sheet: OUT goes low when
 * the mode is written and stays low while counting down; a latched count
 * (counter latch command) and the plain LSB/MSB reads Linux uses both
 * decrease; read-back status shows OUT, RW=3, mode 0, binary (null count
 * clears one clock after the count is written); OUT rises at terminal count
 * and stays high until the mode and a new count are written.  Only these facts
 * are printed, never counts or times.  Not tested because QEMU 7.2 does not
 * model them: GATE=0 stopping a mode-0 count, and OUT dropping as soon as the
 * control word (or the first byte of a new count) is written while OUT is
 * high.
 */
#include "lib/guest.h"

#define PIT_CH2  0x42
#define PIT_MODE 0x43
#define PIT_SEL_CH2     0x80
#define PIT_RW_LOHI     0x30
#define PIT_MODE0       0x00
#define PIT_LATCH_CH2   0x80            /* SC=2, RW=00 */
#define PIT_READBACK_STATUS_CH2 0xE8    /* read-back, /COUNT=1, /STATUS=0, CNT2 */
#define PORT61 0x61
#define PORT61_GATE2   0x01
#define PORT61_SPEAKER 0x02
#define PORT61_OUT2    0x20

#define READS 8

static uint16_t latched(void)
{
    outb(PIT_MODE, PIT_LATCH_CH2);
    uint8_t lo = inb(PIT_CH2);
    return (uint16_t)(lo | inb(PIT_CH2) << 8);
}

static uint8_t out2(void) { return (inb(PORT61) & PORT61_OUT2) ? 1 : 0; }

void kmain(void)
{
    uint16_t c[READS];
    uint8_t msb[READS];
    uint8_t saved = inb(PORT61);

    outb(PORT61, (saved & ~PORT61_SPEAKER) | PORT61_GATE2);
    printf("port 61 <- gate2 on, speaker off: bits 1:0 = %u\n", inb(PORT61) & 3);

    outb(PIT_MODE, PIT_SEL_CH2 | PIT_RW_LOHI | PIT_MODE0);
    uint8_t out_after_mode = out2();
    outb(PIT_CH2, 0xFF);
    outb(PIT_CH2, 0xFF);
    for (unsigned i = 0; i < READS; i++)
        c[i] = latched();
    for (unsigned i = 0; i < READS; i++) {
        inb(PIT_CH2);
        msb[i] = inb(PIT_CH2);
    }
    outb(PIT_MODE, PIT_READBACK_STATUS_CH2);
    uint8_t status_counting = inb(PIT_CH2);
    uint8_t out_counting = out2();

    unsigned nonincreasing = 1, msb_nonincreasing = 1;
    for (unsigned i = 1; i < READS; i++) {
        nonincreasing &= c[i] <= c[i - 1];
        msb_nonincreasing &= msb[i] <= msb[i - 1];
    }
    printf("mode 0 written: out2=%u\n", out_after_mode);
    printf("count ffff: %u latched reads non-increasing=%u decreased=%u\n", READS, nonincreasing,
           c[READS - 1] < c[0]);
    printf("  %u lsb/msb reads: msb non-increasing=%u\n", READS, msb_nonincreasing);
    printf("  read-back status %02x, out2=%u (still counting)\n", status_counting, out_counting);

    unsigned long polls = 0;
    while (!out2() && polls < 1000000000ul)
        polls++;
    uint8_t rose = out2();
    outb(PIT_MODE, PIT_READBACK_STATUS_CH2);
    uint8_t status_expired = inb(PIT_CH2);
    printf("polling port 61 bit 5: out2 rose=%u, read-back status %02x\n", rose, status_expired);
    printf("out2 still high=%u\n", out2());

    outb(PIT_MODE, PIT_SEL_CH2 | PIT_RW_LOHI | PIT_MODE0);
    outb(PIT_CH2, 0xFF);
    outb(PIT_CH2, 0xFF);
    printf("mode 0 and count ffff written again: out2=%u\n", out2());

    outb(PORT61, saved);
}
