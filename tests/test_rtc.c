/*
 * MC146818 RTC and CMOS: port sequences through the I/O bus with the date
 * pinned at init and the virtual clock stepped by hand.  The divider's
 * seconds end at T0 + k s, T0 being the clock at init.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "popek/devices.h"

enum { SEC = 0x00, SEC_ALARM = 0x01, MIN = 0x02, MIN_ALARM = 0x03, HOUR = 0x04,
       HOUR_ALARM = 0x05, WDAY = 0x06, MDAY = 0x07, MONTH = 0x08, YEAR = 0x09,
       REG_A = 0x0A, REG_B = 0x0B, REG_C = 0x0C, REG_D = 0x0D, CENTURY = 0x32 };

#define T0 5000000000ull
#define NS 1000000000ull
#define MIB (1024ull * 1024)
/* 2024-02-28 23:59:58 UTC, a Wednesday, two seconds before a leap day. */
#define PINNED 1709164798

struct fake_irq {
    int level;
    unsigned rises;
};

static uint64_t now;
static struct fake_irq irq8;
static struct iobus bus;
static struct mc146818 rtc;

static uint64_t fake_now(void *opaque)
{
    (void)opaque;
    return now;
}

static void fake_irq_set(void *opaque, unsigned line, int level)
{
    struct fake_irq *f = opaque;
    cr_assert_eq(line, 8);
    if (level && !f->level)
        f->rises++;
    f->level = level;
}

static void init_at(int64_t wall, uint64_t ram)
{
    now = T0;
    memset(&irq8, 0, sizeof irq8);
    memset(&bus, 0, sizeof bus);
    mc146818_init(&rtc, (struct clock){ .now_ns = fake_now }, wall, ram,
                  (struct irq_line){ .set = fake_irq_set, .opaque = &irq8, .line = 8 });
    cr_assert_eq(mc146818_register(&rtc, &bus), 0);
}

static void setup(void)
{
    init_at(PINNED, 128 * MIB);
}

static uint8_t rd(uint8_t reg)
{
    iobus_write(&bus, 0x70, 1, reg);
    return (uint8_t)iobus_read(&bus, 0x71, 1);
}

static void wr(uint8_t reg, uint8_t val)
{
    iobus_write(&bus, 0x70, 1, reg);
    iobus_write(&bus, 0x71, 1, val);
}

/* The time registers in order: sec, min, hour, wday, mday, month, year, century. */
static void expect_time(const uint8_t want[8])
{
    static const uint8_t regs[8] = { SEC, MIN, HOUR, WDAY, MDAY, MONTH, YEAR, CENTURY };
    for (unsigned i = 0; i < 8; i++)
        cr_assert_eq(rd(regs[i]), want[i], "register %#x: %#x, want %#x", regs[i], rd(regs[i]), want[i]);
}

TestSuite(rtc, .init = setup);

Test(rtc, registers_its_ports)
{
    struct mc146818 other;
    cr_assert_eq(mc146818_register(&other, &bus), -EEXIST);
}

Test(rtc, reset_state_and_bcd_time)
{
    cr_assert_eq(rd(REG_A), 0x26);
    cr_assert_eq(rd(REG_B), 0x02, "24-hour BCD, no interrupts");
    cr_assert_eq(rd(REG_C), 0x00);
    cr_assert_eq(rd(REG_D), 0x80, "VRT");
    expect_time((const uint8_t[]){ 0x58, 0x59, 0x23, 4, 0x28, 0x02, 0x24, 0x20 });
}

Test(rtc, binary_mode)
{
    wr(REG_B, 0x06);
    expect_time((const uint8_t[]){ 58, 59, 23, 4, 28, 2, 24, 20 });
}

Test(rtc, twelve_hour_mode)
{
    wr(REG_B, 0x00);
    cr_assert_eq(rd(HOUR), 0x91, "11 PM in BCD");
    wr(REG_B, 0x04);
    cr_assert_eq(rd(HOUR), 0x8B, "11 PM in binary");
    now += 2 * NS;
    cr_assert_eq(rd(HOUR), 12, "midnight is 12 AM");
    now += 12 * 3600 * NS;
    cr_assert_eq(rd(HOUR), 0x8C, "noon is 12 PM");
    now += 3600 * NS;
    cr_assert_eq(rd(HOUR), 0x81);
}

Test(rtc, rollover_across_midnight_and_leap_day)
{
    now = T0 + 2 * NS - 1;
    expect_time((const uint8_t[]){ 0x59, 0x59, 0x23, 4, 0x28, 0x02, 0x24, 0x20 });
    now = T0 + 2 * NS;
    expect_time((const uint8_t[]){ 0x00, 0x00, 0x00, 5, 0x29, 0x02, 0x24, 0x20 });
    now += 86400 * NS;
    expect_time((const uint8_t[]){ 0x00, 0x00, 0x00, 6, 0x01, 0x03, 0x24, 0x20 });
}

Test(rtc, rollover_into_a_new_century)
{
    init_at(4102444799, 64 * MIB); /* 2099-12-31 23:59:59 */
    expect_time((const uint8_t[]){ 0x59, 0x59, 0x23, 5, 0x31, 0x12, 0x99, 0x20 });
    now += NS;
    expect_time((const uint8_t[]){ 0x00, 0x00, 0x00, 6, 0x01, 0x01, 0x00, 0x21 });
}

Test(rtc, uip_window_before_each_update)
{
    now = T0 + NS - 244001;
    cr_assert_eq(rd(REG_A) & 0x80, 0);
    cr_assert_eq(rd(SEC), 0x58);
    now = T0 + NS - 244000;
    cr_assert_eq(rd(REG_A) & 0x80, 0x80, "UIP in the last 244 us");
    cr_assert_eq(rd(SEC), 0x58, "not updated yet");
    now = T0 + NS - 1;
    cr_assert_eq(rd(REG_A) & 0x80, 0x80);
    now = T0 + NS;
    cr_assert_eq(rd(REG_A) & 0x80, 0);
    cr_assert_eq(rd(SEC), 0x59);
    wr(REG_A, 0xA6);
    cr_assert_eq(rd(REG_A) & 0x7F, 0x26, "UIP is read-only");
}

Test(rtc, register_a_rate_bits_writable)
{
    wr(REG_A, 0x2F);
    cr_assert_eq(rd(REG_A), 0x2F);
    wr(REG_A, 0x23);
    cr_assert_eq(rd(REG_A), 0x23);
}

Test(rtc, register_c_flags_clear_on_read)
{
    now = T0 + 3 * NS / 2;
    cr_assert_eq(rd(REG_C) & 0x10, 0x10, "UF after an update");
    cr_assert_eq(rd(REG_C), 0x00, "cleared by the read");
    cr_assert_eq(irq8.rises, 0, "no UIE: no interrupt");
    wr(REG_D, 0x00);
    cr_assert_eq(rd(REG_D), 0x80, "D is read-only");
    wr(REG_C, 0xFF);
    cr_assert_eq(rd(REG_C), 0x00, "C is read-only");
}

Test(rtc, update_ended_interrupt)
{
    wr(REG_A, 0x20);    /* no periodic flag to muddy register C */
    rd(REG_C);
    wr(REG_B, 0x12);    /* UIE */
    cr_assert_eq(mc146818_next_event_ns(&rtc), T0 + NS);
    now = T0 + NS - 1;
    mc146818_update(&rtc);
    cr_assert_eq(irq8.level, 0);
    now = T0 + NS;
    mc146818_update(&rtc);
    cr_assert_eq(irq8.level, 1);
    cr_assert_eq(irq8.rises, 1);
    cr_assert_eq(mc146818_next_event_ns(&rtc), UINT64_MAX, "line stays up until C is read");
    cr_assert_eq(rd(REG_C), 0x90);
    cr_assert_eq(irq8.level, 0);
    cr_assert_eq(mc146818_next_event_ns(&rtc), T0 + 2 * NS);
}

Test(rtc, periodic_interrupt)
{
    wr(REG_A, 0x26);    /* 1024 Hz: 976562.5 ns */
    rd(REG_C);
    wr(REG_B, 0x42);    /* PIE */
    uint64_t p1 = T0 + 976563, p2 = T0 + 1953125;
    cr_assert_eq(mc146818_next_event_ns(&rtc), p1);
    now = p1 - 1;
    mc146818_update(&rtc);
    cr_assert_eq(irq8.level, 0);
    now = p1;
    mc146818_update(&rtc);
    cr_assert_eq(irq8.level, 1);
    now = p2;
    mc146818_update(&rtc);
    cr_assert_eq(irq8.rises, 1, "no new edge while IRQF is set");
    cr_assert_eq(rd(REG_C), 0xC0);
    cr_assert_eq(irq8.level, 0);
    cr_assert_eq(mc146818_next_event_ns(&rtc), T0 + 2929688);

    wr(REG_A, 0x2F);    /* 2 Hz */
    cr_assert_eq(mc146818_next_event_ns(&rtc), T0 + NS / 2);
    wr(REG_A, 0x20);    /* rate 0: no periodic interrupt */
    cr_assert_eq(mc146818_next_event_ns(&rtc), UINT64_MAX);
    wr(REG_A, 0x66);    /* divider in reset */
    wr(REG_A, 0x66);
    cr_assert_eq(mc146818_next_event_ns(&rtc), UINT64_MAX);
}

Test(rtc, enabling_an_interrupt_with_its_flag_set_raises_irq)
{
    now = T0 + NS;
    wr(REG_B, 0x12);
    cr_assert_eq(irq8.level, 1, "IRQF is combinational");
}

Test(rtc, alarm_interrupt)
{
    wr(REG_A, 0x20);
    rd(REG_C);
    wr(SEC_ALARM, 0x05);
    wr(MIN_ALARM, 0x00);
    wr(HOUR_ALARM, 0x00);
    wr(REG_B, 0x22);    /* AIE */
    /* 23:59:58 now; 00:00:05 is 7 s away. */
    cr_assert_eq(mc146818_next_event_ns(&rtc), T0 + 7 * NS);
    now = T0 + 7 * NS - 1;
    mc146818_update(&rtc);
    cr_assert_eq(irq8.level, 0);
    now = T0 + 7 * NS;
    mc146818_update(&rtc);
    cr_assert_eq(irq8.level, 1);
    cr_assert_eq(rd(REG_C), 0xB0, "IRQF, AF and UF");
    cr_assert_eq(mc146818_next_event_ns(&rtc), T0 + (7 + 86400) * NS, "tomorrow");
    /* Don't-care hours and minutes: every minute at :05. */
    wr(HOUR_ALARM, 0xC0);
    wr(MIN_ALARM, 0xFF);
    cr_assert_eq(mc146818_next_event_ns(&rtc), T0 + 67 * NS);
    /* An alarm passed while nobody looked still sets AF. */
    wr(REG_B, 0x02);
    now = T0 + 200 * NS;
    cr_assert_eq(rd(REG_C) & 0x20, 0x20);
}

Test(rtc, set_freezes_and_sets_the_clock)
{
    wr(REG_B, 0x82 | 0x10);
    cr_assert_eq(rd(REG_B), 0x82, "SET clears UIE");
    now += 5 * NS;
    cr_assert_eq(rd(SEC), 0x58, "no updates while SET");
    cr_assert_eq(rd(REG_A) & 0x80, 0);
    rd(REG_C);
    wr(SEC, 0x00);
    wr(MIN, 0x00);
    wr(HOUR, 0x12);
    wr(MDAY, 0x01);
    wr(MONTH, 0x01);
    wr(YEAR, 0x30);
    cr_assert_eq(rd(YEAR), 0x30);
    uint64_t t = now = T0 + 5 * NS + NS / 4;
    wr(REG_B, 0x02);
    expect_time((const uint8_t[]){ 0x00, 0x00, 0x12, 3, 0x01, 0x01, 0x30, 0x20 });
    cr_assert_eq(rd(REG_C) & 0x10, 0x00, "no update while SET was on");
    /* The divider kept its phase: the next update is at T0 + 6 s. */
    now = T0 + 6 * NS - 1;
    cr_assert_eq(rd(SEC), 0x00);
    now = T0 + 6 * NS;
    cr_assert_eq(rd(SEC), 0x01);
    cr_assert(now > t);
}

Test(rtc, linux_set_time_sequence)
{
    /* mc146818_set_time(): SET, divider reset, write, restore B then A. */
    uint8_t save_control = rd(REG_B), save_freq = rd(REG_A);
    wr(REG_B, save_control | 0x80);
    wr(REG_A, save_freq | 0x70);
    wr(YEAR, 0x30);
    wr(MONTH, 0x01);
    wr(MDAY, 0x01);
    wr(HOUR, 0x12);
    wr(MIN, 0x00);
    wr(SEC, 0x00);
    now += 3 * NS / 10;
    wr(REG_B, save_control);
    now += 3 * NS / 10;
    cr_assert_eq(rd(SEC), 0x00, "divider still in reset");
    uint64_t t = now;
    wr(REG_A, save_freq);
    expect_time((const uint8_t[]){ 0x00, 0x00, 0x12, 3, 0x01, 0x01, 0x30, 0x20 });
    now = t + NS / 2 - 1;
    cr_assert_eq(rd(SEC), 0x00);
    now = t + NS / 2;
    cr_assert_eq(rd(SEC), 0x01, "first update half a second after reset ends");
    now = t + NS / 2 + NS;
    cr_assert_eq(rd(SEC), 0x02);
}

Test(rtc, time_write_while_running_keeps_phase)
{
    now = T0 + NS / 2;
    wr(MIN, 0x30);
    expect_time((const uint8_t[]){ 0x58, 0x30, 0x23, 4, 0x28, 0x02, 0x24, 0x20 });
    now = T0 + 2 * NS;
    cr_assert_eq(rd(SEC), 0x00);
    cr_assert_eq(rd(MIN), 0x31);
}

Test(rtc, cmos_memory_size_bytes)
{
    cr_assert_eq(rd(0x15), 0x80);
    cr_assert_eq(rd(0x16), 0x02, "640 KiB base memory");
    cr_assert_eq(rd(0x17), 0xFF);
    cr_assert_eq(rd(0x18), 0xFF, "extended memory capped at 65535 KiB");
    cr_assert_eq(rd(0x30), 0xFF);
    cr_assert_eq(rd(0x31), 0xFF);
    cr_assert_eq(rd(0x34), 0x00);
    cr_assert_eq(rd(0x35), 0x07, "112 MiB above 16 MiB = 0x700 x 64 KiB");
    cr_assert_eq(rd(0x14), 0x02, "FPU, no floppy, VGA");
    unsigned sum = 0;
    for (uint8_t i = 0x10; i < 0x2E; i++)
        sum += rd(i);
    cr_assert_eq(rd(0x2E) << 8 | rd(0x2F), sum);

    init_at(PINNED, 8 * MIB);
    cr_assert_eq(rd(0x17) | rd(0x18) << 8, 7 * 1024);
    cr_assert_eq(rd(0x30) | rd(0x31) << 8, 7 * 1024);
    cr_assert_eq(rd(0x34) | rd(0x35) << 8, 0);
}

Test(rtc, cmos_ram_and_index_register)
{
    wr(0x40, 0xA5);
    wr(0x7F, 0x5A);
    cr_assert_eq(rd(0x40), 0xA5);
    cr_assert_eq(rd(0x7F), 0x5A);
    cr_assert_eq(rd(0x80 | 0x40), 0xA5, "bit 7 is the NMI mask, not address");
    cr_assert_eq(iobus_read(&bus, 0x70, 1), 0xFF, "index register is write-only");
    iobus_write(&bus, 0x70, 2, 0x3C40);   /* index and data in one word */
    cr_assert_eq(rd(0x40), 0x3C);
}
