/*
 * 8254 PIT and port B: port sequences played through the I/O bus against a
 * virtual clock the test sets by hand, and a fake IRQ 0 line that records
 * every level it is driven to.  Times are computed from the input clock the
 * way the device defines them: N clocks after a load is the first nanosecond
 * t with floor(t * 1193182 / 1e9) >= N.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "popek/devices.h"

enum { CH0 = 0x40, CH1 = 0x41, CH2 = 0x42, MODE = 0x43, PORTB = 0x61 };

struct fake_irq {
    int level;
    unsigned rises, changes;
};

static uint64_t now;
static struct fake_irq irq0;
static struct iobus bus;
static struct i8254 pit;

static uint64_t fake_now(void *opaque)
{
    (void)opaque;
    return now;
}

static void fake_irq_set(void *opaque, unsigned line, int level)
{
    struct fake_irq *f = opaque;
    cr_assert_eq(line, 0);
    if (level && !f->level)
        f->rises++;
    if (level != f->level)
        f->changes++;
    f->level = level;
}

/* Nanoseconds after a load by which k input clocks have elapsed. */
static uint64_t clk(uint64_t k)
{
    return (k * 1000000000u + I8254_HZ - 1) / I8254_HZ;
}

static void setup(void)
{
    now = 1000;
    memset(&irq0, 0, sizeof irq0);
    memset(&bus, 0, sizeof bus);
    i8254_init(&pit, (struct clock){ .now_ns = fake_now },
               (struct irq_line){ .set = fake_irq_set, .opaque = &irq0, .line = 0 });
    cr_assert_eq(i8254_register(&pit, &bus), 0);
}

static void out(uint16_t port, uint8_t val)
{
    iobus_write(&bus, port, 1, val);
}

static uint8_t in(uint16_t port)
{
    return (uint8_t)iobus_read(&bus, port, 1);
}

/* Control word: channel, RW, mode, BCD. */
static uint8_t cw(unsigned ch, unsigned rw, unsigned mode)
{
    return (uint8_t)(ch << 6 | rw << 4 | mode << 1);
}

static void load16(uint16_t port, uint16_t count)
{
    out(port, count & 0xFF);
    out(port, count >> 8);
}

/* Counter latch, then LSB and MSB. */
static uint16_t latched(unsigned ch)
{
    out(MODE, cw(ch, 0, 0));
    uint8_t lo = in((uint16_t)(CH0 + ch));
    return (uint16_t)(lo | in((uint16_t)(CH0 + ch)) << 8);
}

/* OUT through a read-back status latch. */
static int status_out(unsigned ch)
{
    out(MODE, (uint8_t)(0xC0 | 0x20 | (2u << ch))); /* latch status only */
    return in((uint16_t)(CH0 + ch)) >> 7;
}

TestSuite(pit, .init = setup);

Test(pit, registers_its_ports)
{
    struct i8254 other;
    cr_assert_eq(i8254_register(&other, &bus), -EEXIST);
    cr_assert_eq(in(MODE), 0xFF, "control word register is write-only");
}

Test(pit, mode0_out_rises_exactly_at_terminal_count)
{
    out(MODE, cw(0, 3, 0));
    cr_assert_eq(status_out(0), 0, "mode 0: OUT low after the control word");
    uint64_t t0 = now = 5000;
    load16(CH0, 1000);
    now = t0 + clk(300);
    cr_assert_eq(latched(0), 700);
    now = t0 + clk(1000) - 1;
    cr_assert_eq(status_out(0), 0);
    cr_assert_eq(latched(0), 1);
    now = t0 + clk(1000);
    cr_assert_eq(status_out(0), 1);
    cr_assert_eq(latched(0), 0);
    now = t0 + clk(1003);
    cr_assert_eq(latched(0), 0xFFFD, "the counter wraps and keeps counting");
    cr_assert_eq(status_out(0), 1, "OUT stays high");
}

Test(pit, mode0_irq0_edge_and_next_event)
{
    out(MODE, cw(0, 3, 0));
    uint64_t t0 = now = 20000;
    load16(CH0, 5000);
    unsigned rises = irq0.rises;
    cr_assert_eq(irq0.level, 0);
    cr_assert_eq(i8254_next_event_ns(&pit), t0 + clk(5000));
    now = t0 + clk(5000) - 1;
    i8254_update(&pit);
    cr_assert_eq(irq0.rises, rises);
    now = t0 + clk(5000);
    i8254_update(&pit);
    cr_assert_eq(irq0.rises, rises + 1);
    cr_assert_eq(irq0.level, 1);
    cr_assert_eq(i8254_next_event_ns(&pit), UINT64_MAX, "one-shot: nothing more");
}

Test(pit, mode2_rate_generator_waveform_and_counts)
{
    out(MODE, cw(0, 3, 2));
    cr_assert_eq(status_out(0), 1, "mode 2: OUT high after the control word");
    uint64_t t0 = now = 7777;
    load16(CH0, 100);
    struct { uint64_t e; uint16_t count; int out; } seq[] = {
        { 0, 100, 1 }, { 1, 99, 1 }, { 50, 50, 1 }, { 98, 2, 1 }, { 99, 1, 0 },
        { 100, 100, 1 }, { 101, 99, 1 }, { 199, 1, 0 }, { 200, 100, 1 },
    };
    for (unsigned i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        now = t0 + clk(seq[i].e);
        cr_assert_eq(latched(0), seq[i].count, "clock %lu", (unsigned long)seq[i].e);
        cr_assert_eq(status_out(0), seq[i].out, "clock %lu", (unsigned long)seq[i].e);
    }
}

Test(pit, mode3_square_wave_even_count)
{
    out(MODE, cw(0, 3, 3));
    uint64_t t0 = now = 3000;
    load16(CH0, 10);
    static const int outs[] = { 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1 };
    static const uint16_t counts[] = { 10, 8, 6, 4, 2, 10, 8, 6, 4, 2, 10, 8 };
    for (unsigned e = 0; e < 12; e++) {
        now = t0 + clk(e);
        cr_assert_eq(status_out(0), outs[e], "clock %u", e);
        cr_assert_eq(latched(0), counts[e], "clock %u", e);
    }
}

Test(pit, mode3_square_wave_odd_count)
{
    out(MODE, cw(0, 3, 3));
    uint64_t t0 = now = 3000;
    load16(CH0, 7);
    /* High for (N+1)/2 clocks, low for (N-1)/2. */
    static const int outs[] = { 1, 1, 1, 1, 0, 0, 0, 1 };
    static const uint16_t counts[] = { 6, 4, 2, 0, 6, 4, 2, 6 };
    for (unsigned e = 0; e < 8; e++) {
        now = t0 + clk(e);
        cr_assert_eq(status_out(0), outs[e], "clock %u", e);
        cr_assert_eq(latched(0), counts[e], "clock %u", e);
    }
}

Test(pit, mode3_irq_edges_every_period)
{
    out(MODE, cw(0, 3, 3));
    uint64_t t0 = now = 0;
    load16(CH0, 1193);
    i8254_update(&pit);
    unsigned rises = irq0.rises;
    for (uint64_t k = 1; k <= 5; k++) {
        cr_assert_eq(i8254_next_event_ns(&pit), t0 + clk(k * 1193));
        now = t0 + clk(k * 1193 - 300);  /* in the low half */
        i8254_update(&pit);
        cr_assert_eq(irq0.level, 0);
        now = t0 + clk(k * 1193);
        i8254_update(&pit);
        cr_assert_eq(irq0.rises, rises + k);
        cr_assert_eq(irq0.level, 1);
    }
}

Test(pit, mode4_strobe_and_linux_oneshot_rewrites)
{
    out(MODE, 0x38);  /* pit_set_oneshot(): channel 0, LSB/MSB, mode 4 */
    cr_assert_eq(status_out(0), 1);
    uint64_t t0 = now = 10000;
    load16(CH0, 200);  /* pit_next_event() */
    i8254_update(&pit);
    unsigned rises = irq0.rises;
    cr_assert_eq(i8254_next_event_ns(&pit), t0 + clk(201), "OUT rises after its one low clock");
    now = t0 + clk(199);
    cr_assert_eq(status_out(0), 1);
    now = t0 + clk(200);
    cr_assert_eq(status_out(0), 0);
    cr_assert_eq(irq0.level, 0);
    now = t0 + clk(201);
    cr_assert_eq(status_out(0), 1);
    cr_assert_eq(irq0.rises, rises + 1, "the port access delivered the edge");
    cr_assert_eq(i8254_next_event_ns(&pit), UINT64_MAX);

    /* A new count without a control word re-arms at once. */
    uint64_t t1 = now = t0 + clk(5000);
    load16(CH0, 50);
    cr_assert_eq(i8254_next_event_ns(&pit), t1 + clk(51));
    now = t1 + clk(20);
    load16(CH0, 50);  /* rewritten mid-count: restarts */
    cr_assert_eq(i8254_next_event_ns(&pit), now + clk(51));
}

Test(pit, mode2_count_written_mid_period_waits_for_period_end)
{
    out(MODE, cw(0, 3, 2));
    uint64_t t0 = now = 0;
    load16(CH0, 100);
    now = t0 + clk(30);
    load16(CH0, 40);
    now = t0 + clk(50);
    cr_assert_eq(latched(0), 50, "old count still running");
    out(MODE, 0xC0 | 0x20 | 0x02);
    cr_assert_eq(in(CH0) & 0x40, 0x40, "NULL COUNT: the new count waits in CR");
    cr_assert_eq(i8254_next_event_ns(&pit), t0 + clk(100));
    /* The new run starts at the end of the old period. */
    uint64_t t1 = t0 + clk(100);
    now = t1;
    cr_assert_eq(latched(0), 40, "new count loaded at the period's end");
    out(MODE, 0xC0 | 0x20 | 0x02);
    cr_assert_eq(in(CH0) & 0x40, 0);
    now = t1 + clk(39);
    cr_assert_eq(status_out(0), 0);
    now = t1 + clk(40);
    cr_assert_eq(status_out(0), 1);
    cr_assert_eq(i8254_next_event_ns(&pit), t1 + clk(80));
}

Test(pit, periodic_irq0_lost_ticks_deliver_one_edge)
{
    out(MODE, 0x34);  /* pit_set_periodic(): channel 0, LSB/MSB, mode 2 */
    uint64_t t0 = now = 123456;
    load16(CH0, 4773); /* PIT_LATCH for HZ=250 */
    i8254_update(&pit);
    unsigned rises = irq0.rises;
    cr_assert_eq(i8254_next_event_ns(&pit), t0 + clk(4773));
    now = t0 + clk(4773) - 1;
    i8254_update(&pit);
    cr_assert_eq(irq0.rises, rises);
    now = t0 + clk(4773);
    i8254_update(&pit);
    cr_assert_eq(irq0.rises, rises + 1);
    cr_assert_eq(i8254_next_event_ns(&pit), t0 + clk(2 * 4773));
    /* Five periods unobserved, landing inside a low clock: one edge. */
    now = t0 + clk(7 * 4773 - 1);
    i8254_update(&pit);
    cr_assert_eq(irq0.rises, rises + 2);
    cr_assert_eq(irq0.level, 0, "OUT is in its low clock");
    cr_assert_eq(i8254_next_event_ns(&pit), t0 + clk(7 * 4773));
    now = t0 + clk(7 * 4773);
    i8254_update(&pit);
    cr_assert_eq(irq0.rises, rises + 3);
}

Test(pit, shutdown_sequence_stops_irqs)
{
    out(MODE, 0x34);
    load16(CH0, 4773);
    /* clockevent_i8253_disable(): mode 0, count 0, mode 0 again. */
    out(MODE, 0x30);
    load16(CH0, 0);
    cr_assert_eq(i8254_next_event_ns(&pit), now + clk(65536), "count 0 is 65536");
    out(MODE, 0x30);
    cr_assert_eq(i8254_next_event_ns(&pit), UINT64_MAX);
    unsigned rises = irq0.rises;
    now += 1000000000;
    i8254_update(&pit);
    cr_assert_eq(irq0.rises, rises);
    cr_assert_eq(irq0.level, 0);
}

Test(pit, counter_latch_holds_value_until_read)
{
    out(MODE, cw(0, 3, 2));
    uint64_t t0 = now = 0;
    load16(CH0, 1000);
    now = t0 + clk(100);
    out(MODE, cw(0, 0, 0));
    now = t0 + clk(300);
    out(MODE, cw(0, 0, 0)); /* ignored: previous latch unread */
    cr_assert_eq(in(CH0), 900 & 0xFF);
    now = t0 + clk(400);
    cr_assert_eq(in(CH0), 900 >> 8);
    cr_assert_eq(latched(0), 600, "latch released after both bytes");
}

Test(pit, unlatched_word_reads_alternate_live_bytes)
{
    out(MODE, cw(2, 3, 0));
    out(PORTB, 0x01);
    uint64_t t0 = now = 0;
    load16(CH2, 0xFFFF);
    now = t0 + clk(0x10);
    cr_assert_eq(in(CH2), 0xEF, "LSB of 0xFFEF");
    now = t0 + clk(0x110);
    cr_assert_eq(in(CH2), 0xFE, "MSB of 0xFEEF, read live");
    cr_assert_eq(in(CH2), 0xEF, "back to LSB");
}

Test(pit, lsb_only_and_msb_only_access)
{
    out(MODE, cw(1, 1, 0));       /* LSB only */
    uint64_t t0 = now = 0;
    out(CH1, 0x80);
    now = t0 + clk(0x10);
    cr_assert_eq(in(CH1), 0x70);
    cr_assert_eq(in(CH1), 0x70, "every read is the LSB");
    out(MODE, cw(1, 2, 0));       /* MSB only */
    t0 = now;
    out(CH1, 0x02);               /* count 0x200 */
    now = t0 + clk(0x100);
    cr_assert_eq(in(CH1), 0x01);
    out(MODE, cw(1, 0, 0));
    cr_assert_eq(in(CH1), 0x01, "a latch is read with the same access mode");
    cr_assert_eq(latched(1) & 0xFF, 0x01, "one byte released the latch");
}

Test(pit, mode0_first_byte_stops_counting)
{
    out(MODE, cw(0, 3, 0));
    uint64_t t0 = now = 0;
    load16(CH0, 1000);
    now = t0 + clk(100);
    out(CH0, 0x34);
    now = t0 + clk(500);
    cr_assert_eq(latched(0), 900, "held while half-written");
    uint64_t t1 = now;
    out(CH0, 0x12);
    now = t1 + clk(1);
    cr_assert_eq(latched(0), 0x1233);
}

Test(pit, read_back_status_and_count)
{
    out(MODE, cw(0, 3, 2));
    uint8_t st = (uint8_t)(0xC0 | 0x02); /* count and status, channel 0 */
    out(MODE, st);
    cr_assert_eq(in(CH0), 0xC0 | 0x34, "OUT high, null count, RW=3, mode 2");
    cr_assert_eq(in(CH0), 0x00, "count LSB (nothing loaded: CE reads 65536)");
    cr_assert_eq(in(CH0), 0x00);
    uint64_t t0 = now;
    load16(CH0, 0x1234);
    now = t0 + clk(0x34);
    out(MODE, 0xC0 | 0x0E);     /* count and status, all three channels */
    cr_assert_eq(in(CH0), 0x80 | 0x34, "OUT high, count loaded");
    cr_assert_eq(in(CH0), 0x00);
    cr_assert_eq(in(CH0), 0x12);
    cr_assert_eq(in(CH1), 0x80 | 0x36, "channel 1 as reset: mode 3, RW=3");
    cr_assert_eq(in(CH2) & 0x3F, 0x36);
    out(MODE, 0xC0 | 0x10 | 0x02); /* count only */
    out(MODE, 0xC0 | 0x20 | 0x02); /* status only, latched after */
    cr_assert_eq(in(CH0) & 0x3F, 0x34, "status comes first");
    cr_assert_eq(in(CH0), 0x00);
    cr_assert_eq(in(CH0), 0x12);
}

Test(pit, bcd_counting)
{
    out(MODE, cw(0, 3, 0) | 1);
    uint64_t t0 = now = 0;
    load16(CH0, 0x1000);          /* 1000 decimal */
    now = t0 + clk(1);
    cr_assert_eq(latched(0), 0x0999);
    now = t0 + clk(1000);
    cr_assert_eq(latched(0), 0x0000);
    cr_assert_eq(status_out(0), 1);
    now = t0 + clk(1001);
    cr_assert_eq(latched(0), 0x9999, "wraps modulo 10000");
    out(MODE, cw(0, 3, 2) | 1);
    t0 = now;
    load16(CH0, 0);               /* 0 is 10000 in BCD */
    cr_assert_eq(i8254_next_event_ns(&pit), t0 + clk(10000));
}

Test(pit, port_b_gate_and_out2_as_pit_calibrate_tsc)
{
    /* arch/x86/kernel/tsc.c pit_calibrate_tsc(CAL_LATCH, CAL_MS, ...). */
    const uint16_t latch = 1193182 / (1000 / 10);
    now = 1234567;
    out(PORTB, (uint8_t)((in(PORTB) & ~0x02) | 0x01));
    cr_assert_eq(in(PORTB) & 0x03, 0x01);
    out(MODE, 0xB0);
    out(CH2, latch & 0xFF);
    uint64_t t0 = now;
    out(CH2, latch >> 8);
    cr_assert_eq(in(PORTB) & 0x20, 0);
    /* Poll in 1 us steps, as a guest loop would see the clock advance. */
    while (!(in(PORTB) & 0x20))
        now += 1000;
    uint64_t rise = t0 + clk(latch);
    cr_assert(now >= rise && now < rise + 1000);
    now = rise - 1;
    cr_assert_eq(in(PORTB) & 0x20, 0, "low 1 ns before count/1193182 s");
    now = rise;
    cr_assert_eq(in(PORTB) & 0x20, 0x20, "high exactly at count/1193182 s");
    cr_assert_eq(rise - t0, 9999313, "11931 clocks are 9999312.7 ns");
}

Test(pit, quick_pit_calibrate_msb_steps)
{
    /* quick_pit_calibrate(): channel 2 mode 0 from 0xFFFF, read LSB then
     * MSB without latching, expect the MSB to step every 256 clocks. */
    out(PORTB, (uint8_t)((in(PORTB) & ~0x02) | 0x01));
    out(MODE, 0xB0);
    out(CH2, 0xFF);
    uint64_t t0 = now;
    out(CH2, 0xFF);
    for (unsigned i = 0; i < 20; i++) {
        now = t0 + clk(256 * i + 1);
        in(CH2);
        cr_assert_eq(in(CH2), 0xFF - i, "step %u", i);
        now = t0 + clk(256 * i + 255);
        in(CH2);
        cr_assert_eq(in(CH2), 0xFF - i, "step %u end", i);
    }
}

Test(pit, gate_low_pauses_mode0_and_restarts_mode2)
{
    out(PORTB, 0x01);
    out(MODE, cw(2, 3, 0));
    uint64_t t0 = now = 0;
    load16(CH2, 1000);
    now = t0 + clk(100);
    out(PORTB, 0x00);
    now = t0 + clk(5000);
    cr_assert_eq(latched(2), 900, "mode 0 holds its count while the gate is low");
    uint64_t t1 = now;
    out(PORTB, 0x01);
    now = t1 + clk(900) - 1;
    cr_assert_eq(in(PORTB) & 0x20, 0);
    now = t1 + clk(900);
    cr_assert_eq(in(PORTB) & 0x20, 0x20);

    out(MODE, cw(2, 3, 2));
    t0 = now;
    load16(CH2, 10);
    now = t0 + clk(9);
    cr_assert_eq(in(PORTB) & 0x20, 0);
    out(PORTB, 0x00);
    cr_assert_eq(in(PORTB) & 0x20, 0x20, "gate low forces OUT high in mode 2");
    now += 12345;
    t1 = now;
    out(PORTB, 0x01);
    now = t1 + clk(4);
    cr_assert_eq(latched(2), 6, "gate rising edge reloads");
}

Test(pit, mode1_one_shot_triggered_by_gate)
{
    out(PORTB, 0x00);
    out(MODE, cw(2, 3, 1));
    load16(CH2, 50);
    now += clk(1000);
    cr_assert_eq(in(PORTB) & 0x20, 0x20, "untriggered: OUT high");
    uint64_t t0 = now;
    out(PORTB, 0x01);
    cr_assert_eq(in(PORTB) & 0x20, 0);
    now = t0 + clk(49);
    cr_assert_eq(in(PORTB) & 0x20, 0);
    now = t0 + clk(50);
    cr_assert_eq(in(PORTB) & 0x20, 0x20);
    /* Retrigger. */
    out(PORTB, 0x00);
    uint64_t t1 = now += 777;
    out(PORTB, 0x01);
    now = t1 + clk(10);
    cr_assert_eq(in(PORTB) & 0x20, 0);
    cr_assert_eq(latched(2), 40);
}

Test(pit, mode5_strobe_triggered_by_gate)
{
    out(PORTB, 0x00);
    out(MODE, cw(2, 3, 5));
    load16(CH2, 5);
    uint64_t t0 = now;
    out(PORTB, 0x01);
    static const int outs[] = { 1, 1, 1, 1, 1, 0, 1, 1 };
    for (unsigned e = 0; e < 8; e++) {
        now = t0 + clk(e);
        cr_assert_eq(!!(in(PORTB) & 0x20), outs[e], "clock %u", e);
    }
}

Test(pit, port_b_refresh_toggle_and_writable_bits)
{
    now = 0;
    uint8_t first = in(PORTB) & 0x10;
    now = clk(17);
    cr_assert_eq(in(PORTB) & 0x10, first);
    now = clk(18);
    cr_assert_neq(in(PORTB) & 0x10, first, "toggles every 18 clocks (15.085 us)");
    now = clk(36);
    cr_assert_eq(in(PORTB) & 0x10, first);
    out(PORTB, 0xFF);
    cr_assert_eq(in(PORTB) & 0xCF, 0x0F, "bits 0-3 writable, 6-7 read as 0");
}

Test(pit, reset_state_channel0_runs_at_18_2_hz)
{
    cr_assert_eq(i8254_next_event_ns(&pit), 1000 + clk(65536));
    cr_assert_eq(in(PORTB) & 0x21, 0x20, "gate 2 off, OUT2 high (mode 3)");
}
