/*
 * The MC146818 RTC and CMOS RAM behind ports 0x70/0x71 (Motorola MC146818A
 * data sheet; the PC CMOS map).  Printed, never the time itself:
 *   - register A: divider 010 (32.768 kHz time base) and rate 0110 (1024 Hz),
 *     what PC firmware programs; bit 7 (UIP) is masked out;
 *   - register B: 24-hour mode and BCD, the PC default; SET and the
 *     interrupt enables are clear;
 *   - register C: with no interrupt enabled IRQF (bit 7) is 0, bits 3:0 are 0;
 *   - register D: VRT (bit 7) set, bits 6:0 zero;
 *   - the time read the way Linux's mc146818_get_time does it (wait while UIP
 *     is set, read, repeat until two reads agree) is stable and every field
 *     is valid in the format register B selects;
 *   - the seconds register advances, and UIP (set for 244 us before each
 *     update) is seen at least once within twenty updates: a host that is
 *     busy can deschedule the emulator across the whole window (under a
 *     loaded CI machine about half the windows were missed), so the loop
 *     stops at the first update after UIP and only a miss costs time;
 *   - a byte of CMOS RAM that no one uses (0x70) stores what is written;
 *   - the extended-memory size at 0x30/0x31 is nonzero.
 */
#include "lib/guest.h"

#define CMOS_INDEX 0x70
#define CMOS_DATA  0x71
#define RTC_SECONDS 0x00
#define RTC_MINUTES 0x02
#define RTC_HOURS   0x04
#define RTC_DAY     0x07
#define RTC_MONTH   0x08
#define RTC_YEAR    0x09
#define RTC_REG_A   0x0A
#define RTC_REG_B   0x0B
#define RTC_REG_C   0x0C
#define RTC_REG_D   0x0D
#define RTC_A_UIP   0x80
#define RTC_B_SET   0x80
#define RTC_B_DM_BINARY 0x04
#define RTC_B_24H   0x02
#define RTC_C_IRQF  0x80
#define RTC_D_VRT   0x80
#define CMOS_EXTMEM_LO 0x30
#define CMOS_EXTMEM_HI 0x31
#define CMOS_UNUSED 0x70

static uint8_t cmos_read(uint8_t index)
{
    outb(CMOS_INDEX, index);
    return inb(CMOS_DATA);
}

static void cmos_write(uint8_t index, uint8_t v)
{
    outb(CMOS_INDEX, index);
    outb(CMOS_DATA, v);
}

struct rtc_time {
    uint8_t sec, min, hour, day, mon, year;
};

static void rtc_read_raw(struct rtc_time *t)
{
    t->sec = cmos_read(RTC_SECONDS);
    t->min = cmos_read(RTC_MINUTES);
    t->hour = cmos_read(RTC_HOURS);
    t->day = cmos_read(RTC_DAY);
    t->mon = cmos_read(RTC_MONTH);
    t->year = cmos_read(RTC_YEAR);
}

/* Like mc146818_get_time: retry until a read not overlapping an update
 * gives the same values twice. */
static unsigned rtc_read_stable(struct rtc_time *t)
{
    struct rtc_time again;
    for (unsigned tries = 1; tries <= 1000; tries++) {
        while (cmos_read(RTC_REG_A) & RTC_A_UIP)
            ;
        rtc_read_raw(t);
        rtc_read_raw(&again);
        if (memcmp(t, &again, sizeof again) == 0)
            return tries;
    }
    return 0;
}

/* Decodes `v` per register B; returns 0xFF if it is not a valid encoding. */
static unsigned field(uint8_t v, int binary)
{
    if (binary)
        return v;
    if ((v & 0x0F) > 9 || (v >> 4) > 9)
        return 0xFF;
    return (v >> 4) * 10 + (v & 0x0F);
}

void kmain(void)
{
    uint8_t a = cmos_read(RTC_REG_A), b = cmos_read(RTC_REG_B);
    uint8_t c = cmos_read(RTC_REG_C), d = cmos_read(RTC_REG_D);
    int binary = (b & RTC_B_DM_BINARY) != 0;

    printf("reg a & 7f: %02x (divider %u, rate %u)\n", a & 0x7F, (a >> 4) & 7, a & 0x0F);
    printf("reg b: %02x (set=%u 24h=%u binary=%u)\n", b, (b & RTC_B_SET) ? 1 : 0,
           (b & RTC_B_24H) ? 1 : 0, binary);
    printf("reg c: irqf=%u bits 3:0=%x\n", (c & RTC_C_IRQF) ? 1 : 0, c & 0x0F);
    printf("reg d: %02x\n", d);

    struct rtc_time t;
    unsigned ok = rtc_read_stable(&t) != 0;
    unsigned sec = field(t.sec, binary), min = field(t.min, binary);
    unsigned hour = field(t.hour, binary), day = field(t.day, binary);
    unsigned mon = field(t.mon, binary), year = field(t.year, binary);
    printf("stable read after uip-retry loop: %u\n", ok);
    printf("valid: seconds=%u minutes=%u hours=%u day=%u month=%u year=%u\n", sec < 60, min < 60,
           hour < 24, day >= 1 && day <= 31, mon >= 1 && mon <= 12, year < 100);

    /* Poll until an update follows a UIP, or twenty updates pass without one. */
    unsigned changes = 0, uip_seen = 0;
    uint8_t last = cmos_read(RTC_SECONDS);
    for (unsigned long polls = 0; changes < 20 && polls < 400000000ul; polls++) {
        if (cmos_read(RTC_REG_A) & RTC_A_UIP) {
            uip_seen = 1;
            continue;
        }
        uint8_t s = cmos_read(RTC_SECONDS);
        if (s != last) {
            changes++;
            last = s;
            if (uip_seen)
                break;
        }
    }
    printf("seconds register advanced: %u, uip seen: %u\n", changes > 0, uip_seen);

    uint8_t saved = cmos_read(CMOS_UNUSED);
    cmos_write(CMOS_UNUSED, 0x5A);
    uint8_t r1 = cmos_read(CMOS_UNUSED);
    cmos_write(CMOS_UNUSED, 0xA5);
    uint8_t r2 = cmos_read(CMOS_UNUSED);
    cmos_write(CMOS_UNUSED, saved);
    printf("cmos %02x <- 5a: %02x, <- a5: %02x, restored=%u\n", CMOS_UNUSED, r1, r2,
           cmos_read(CMOS_UNUSED) == saved);

    printf("extended memory (30h/31h) nonzero: %u\n",
           (cmos_read(CMOS_EXTMEM_LO) | cmos_read(CMOS_EXTMEM_HI) << 8) != 0);
}
