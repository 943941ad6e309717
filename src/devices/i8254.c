/*
 * Intel 8254 programmable interval timer, and the PC's port B (0x61).
 *
 * Nothing here ticks.  Each channel remembers when its counting element was
 * loaded (start_ns) and how many input clocks it had counted before that
 * (base_ticks, nonzero only after a gate pause in modes 0 and 4); the count
 * and OUT at any instant are functions of the clocks elapsed since, computed
 * from the injected virtual clock when the guest looks.  With
 *
 *     clocks(t) = base_ticks + floor((t - start_ns) * 1193182 / 1e9)
 *
 * evaluated afresh from the load each time, no rounding accumulates, and an
 * event N clocks after the load happens at exactly start_ns + ceil(N / 1.193182
 * MHz) in nanoseconds.  The counting element is taken to load at the instant
 * the count is written, not at the next CLK edge as on silicon: that removes
 * up to one clock of latency and the extra load cycle, so a mode 0 count of N
 * raises OUT exactly N/1193182 s after the write.  That is what Linux's
 * pit_calibrate_tsc() measures the TSC against (channel 2, mode 0, polling
 * OUT2 in port B bit 5) and what quick_pit_calibrate() reads the MSB of.
 *
 * Per mode, with N the initial count and e the clocks counted (0 = 65536,
 * or 10000 in BCD):
 *   0  OUT low until e = N, then high; the count keeps wrapping down.
 *   1  one-shot started by a gate rising edge: OUT low for N clocks.
 *   2  rate generator: OUT low during the last clock of every N.
 *   3  square wave: high for ceil(N/2) clocks, low for floor(N/2).
 *   4  software strobe: OUT low for the one clock at e = N.
 *   5  as 4, started by a gate rising edge.
 * In modes 2 and 3 a count written while the channel runs takes effect when
 * the current period ends (the datasheet has mode 3 switch at the end of the
 * current half-period; ending the whole period keeps the waveform simple and
 * Linux always writes the control word first).  Counts of 1, illegal in
 * modes 2 and 3, give a constant OUT (low in mode 2, high in mode 3).
 *
 * Gates: channels 0 and 1 are tied high; channel 2's gate is port B bit 0.
 *
 * Channel 0's OUT drives IRQ 0 on the edge-triggered PIC.  The run loop calls
 * i8254_update() when the time from i8254_next_event_ns() comes, and every
 * port access does the same first, so the PIC sees each rising edge no later
 * than the next look at the timer.  If several edges went by unobserved (a
 * periodic timer while the monitor was busy) one edge is delivered.
 */
#include "popek/devices.h"

#define I8254_PORT_COUNTER0 0x40 /* counters 0-2 at 0x40-0x42, control word at 0x43 */
#define I8254_NPORTS        4
#define I8254_CONTROL       3    /* offset of the control word register */
#define I8254_PORT_B        0x61

/* Control word. */
#define I8254_CW_BCD        0x01
#define I8254_CW_MODE_SHIFT 1
#define I8254_CW_MODE_MASK  0x07
#define I8254_CW_RW_SHIFT   4
#define I8254_CW_RW_MASK    0x03
#define I8254_CW_SC_SHIFT   6
#define I8254_SC_READBACK   3

/* RW field: counter latch command, or which bytes of the count move. */
enum { I8254_RW_LATCH = 0, I8254_RW_LSB = 1, I8254_RW_MSB = 2, I8254_RW_WORD = 3 };

/* Read-back command (SC = 3). */
#define I8254_RB_CNT0      0x02 /* CNT1, CNT2 follow */
#define I8254_RB_NSTATUS   0x10 /* 0 = latch status */
#define I8254_RB_NCOUNT    0x20 /* 0 = latch count */

/* Status byte: OUT and NULL COUNT above the control word's low six bits. */
#define I8254_STATUS_OUT   0x80
#define I8254_STATUS_NULL  0x40

/* Port B. */
#define PORTB_GATE2        0x01 /* timer 2 gate */
#define PORTB_WRITABLE     0x0F /* with the parity and IOCHK check disables */
#define PORTB_REFRESH      0x10 /* refresh request toggle */
#define PORTB_OUT2         0x20

/* A PC's BIOS programs channel 1 with 18 for DRAM refresh, and port B bit 4
 * toggles with every refresh request: every 15.085 us. */
#define I8254_REFRESH_CLOCKS 18

#define NSEC_PER_SEC 1000000000u
#define I8254_NONE   UINT64_MAX

static uint64_t i8254_ticks(uint64_t ns)
{
    return (uint64_t)((unsigned __int128)ns * I8254_HZ / NSEC_PER_SEC);
}

/* The first nanosecond by which `ticks` input clocks have elapsed. */
static uint64_t i8254_ns(uint64_t ticks)
{
    return (uint64_t)(((unsigned __int128)ticks * NSEC_PER_SEC + I8254_HZ - 1) / I8254_HZ);
}

/* Modes 6 and 7 are 2 and 3 with a don't-care bit. */
static unsigned i8254_mode(const struct i8254_channel *c)
{
    return c->mode >= 6 ? c->mode - 4u : c->mode;
}

static uint32_t i8254_modulus(const struct i8254_channel *c)
{
    return c->bcd ? 10000 : 65536;
}

static uint64_t i8254_elapsed(const struct i8254_channel *c, uint64_t now)
{
    if (!c->running || now <= c->start_ns)
        return c->base_ticks;
    return c->base_ticks + i8254_ticks(now - c->start_ns);
}

static void i8254_start(struct i8254_channel *c, uint32_t n, uint64_t now)
{
    c->n = n;
    c->start_ns = now;
    c->base_ticks = 0;
    c->armed = true;
    c->null_count = false;
    c->reload_pending = false;
}

/* A deferred mode 2/3 reload whose time has come. */
static void i8254_settle(struct i8254_channel *c, uint64_t now)
{
    if (c->reload_pending && now >= c->reload_ns)
        i8254_start(c, c->cr, c->reload_ns);
}

static bool i8254_out(const struct i8254_channel *c, uint64_t now)
{
    uint64_t e = i8254_elapsed(c, now);
    uint32_t n = c->n;

    switch (i8254_mode(c)) {
    case 0:
        return c->armed && e >= n;
    case 1:
        return !c->armed || e >= n;
    case 2:
        return !c->armed || !c->gate || e % n != n - 1;
    case 3:
        return !c->armed || !c->gate || e % n < (n + 1) / 2;
    default: /* 4, 5 */
        return !c->armed || e != n;
    }
}

static uint16_t i8254_to_bcd(uint32_t v)
{
    return (uint16_t)((v / 1000 % 10) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | v % 10);
}

/* BCD digits above 9 are taken at face value rather than refused. */
static uint32_t i8254_from_bcd(uint16_t v)
{
    return (v >> 12) * 1000u + (v >> 8 & 0xF) * 100u + (v >> 4 & 0xF) * 10u + (v & 0xF);
}

/* The counting element as the output latch would capture it. */
static uint16_t i8254_count(const struct i8254_channel *c, uint64_t now)
{
    uint64_t e = i8254_elapsed(c, now);
    uint32_t n = c->n, mod = i8254_modulus(c), v;

    switch (i8254_mode(c)) {
    case 2:
        v = n - (uint32_t)(e % n);
        break;
    case 3: {
        /* Decrements by two: from N (even) or N-1 (odd) in each half. */
        uint32_t phase = (uint32_t)(e % n), high = (n + 1) / 2;
        v = (n & ~1u) - 2 * (phase < high ? phase : phase - high);
        break;
    }
    default: /* 0, 1, 4, 5: past terminal count the counter wraps and goes on */
        v = (uint32_t)((n + mod - e % mod) % mod);
        break;
    }
    v %= mod;
    return c->bcd ? i8254_to_bcd(v) : (uint16_t)v;
}

/* The first clock count > e at which OUT rises, or I8254_NONE. */
static uint64_t i8254_next_rise_ticks(unsigned mode, uint32_t n, uint64_t e)
{
    switch (mode) {
    case 0:
    case 1:
        return e < n ? n : I8254_NONE;
    case 2:
    case 3:
        return n >= 2 ? (e / n + 1) * n : I8254_NONE;
    default: /* 4, 5 */
        return e <= n ? (uint64_t)n + 1 : I8254_NONE;
    }
}

/* Absolute time of the first rising edge of OUT after now. */
static uint64_t i8254_next_rise_ns(const struct i8254_channel *c, uint64_t now)
{
    unsigned mode = i8254_mode(c);
    uint64_t t;

    if (c->reload_pending) {
        /* The period ends with OUT low (mode 2 always, mode 3 unless N is
         * 1) and the new count starts high (unless it is 1 in mode 2). */
        bool rises = mode == 2 ? c->cr >= 2 : c->n >= 2;
        if (rises)
            return c->reload_ns;
        t = i8254_next_rise_ticks(mode, c->cr, 0);
        return t == I8254_NONE ? I8254_NONE : c->reload_ns + i8254_ns(t);
    }
    if (!c->running)
        return I8254_NONE;
    t = i8254_next_rise_ticks(mode, c->n, i8254_elapsed(c, now));
    return t == I8254_NONE ? I8254_NONE : c->start_ns + i8254_ns(t - c->base_ticks);
}

/* Bring the channels to `now` and IRQ 0 in line with channel 0's OUT. */
static void i8254_sync(struct i8254 *p, uint64_t now)
{
    struct i8254_channel *c0 = &p->ch[0];
    int level;

    for (unsigned i = 0; i < 3; i++)
        i8254_settle(&p->ch[i], now);
    level = i8254_out(c0, now);
    if (now >= p->irq_next_ns) {
        /* A rising edge happened since the last look; OUT may have fallen
         * again (mode 2 is low for one clock per period). */
        if (p->irq_level)
            irq_set(&p->irq0, 0);
        irq_set(&p->irq0, 1);
        p->irq_level = 1;
    }
    if (level != p->irq_level) {
        p->irq_level = level;
        irq_set(&p->irq0, level);
    }
    p->irq_next_ns = i8254_next_rise_ns(c0, now);
}

void i8254_update(struct i8254 *p)
{
    i8254_sync(p, clock_now(&p->clock));
}

uint64_t i8254_next_event_ns(const struct i8254 *p)
{
    return p->irq_next_ns;
}

/* ---- counters ----------------------------------------------------------- */

static void i8254_pause(struct i8254_channel *c, uint64_t now)
{
    c->base_ticks = i8254_elapsed(c, now);
    c->running = false;
}

static void i8254_resume(struct i8254_channel *c, uint64_t now)
{
    c->start_ns = now;
    c->running = true;
}

/* The initial count is complete in CR. */
static void i8254_load(struct i8254_channel *c, uint16_t raw, uint64_t now)
{
    uint32_t v = c->bcd ? i8254_from_bcd(raw) : raw;

    c->cr = v ? v : i8254_modulus(c);
    c->has_count = true;
    c->null_count = true;
    switch (i8254_mode(c)) {
    case 0:
    case 4:
        /* Restarts at once, even mid-count (Linux's one-shot clockevent
         * rewrites the count of a mode 4 channel 0 for every event). */
        i8254_start(c, c->cr, now);
        c->running = c->gate;
        break;
    case 2:
    case 3:
        if (c->running) {
            if (!c->reload_pending) {
                uint64_t e = i8254_elapsed(c, now);
                c->reload_ns = c->start_ns + i8254_ns((e / c->n + 1) * c->n - c->base_ticks);
                c->reload_pending = true;
            }
        } else {
            i8254_start(c, c->cr, now);
            c->running = c->gate;
        }
        break;
    default: /* 1, 5: the count waits in CR for a gate trigger */
        break;
    }
}

static void i8254_write_counter(struct i8254_channel *c, uint8_t val, uint64_t now)
{
    switch (c->rw) {
    case I8254_RW_LSB:
        i8254_load(c, val, now);
        break;
    case I8254_RW_MSB:
        i8254_load(c, (uint16_t)(val << 8), now);
        break;
    default: /* I8254_RW_WORD */
        if (!c->write_msb_next) {
            c->write_lsb = val;
            c->write_msb_next = true;
            /* Mode 0: writing the first byte stops the count. */
            if (i8254_mode(c) == 0 && c->running)
                i8254_pause(c, now);
        } else {
            c->write_msb_next = false;
            i8254_load(c, (uint16_t)(c->write_lsb | val << 8), now);
        }
        break;
    }
}

static uint8_t i8254_read_counter(struct i8254_channel *c, uint64_t now)
{
    uint16_t v;

    if (c->status_latched) {
        c->status_latched = false;
        return c->status;
    }
    switch (c->latch_state) {
    case I8254_RW_LSB:
        c->latch_state = 0;
        return c->latch & 0xFF;
    case I8254_RW_MSB:
        c->latch_state = 0;
        return c->latch >> 8;
    case I8254_RW_WORD:
        c->latch_state = I8254_RW_MSB;
        return c->latch & 0xFF;
    default:
        break;
    }
    v = i8254_count(c, now);
    switch (c->rw) {
    case I8254_RW_LSB:
        return v & 0xFF;
    case I8254_RW_MSB:
        return v >> 8;
    default: /* I8254_RW_WORD: unlatched, each byte is read live */
        c->read_msb_next = !c->read_msb_next;
        return c->read_msb_next ? v & 0xFF : v >> 8;
    }
}

static void i8254_latch_count(struct i8254_channel *c, uint64_t now)
{
    /* A second latch before the first is read is ignored. */
    if (c->latch_state)
        return;
    c->latch = i8254_count(c, now);
    c->latch_state = c->rw;
}

static void i8254_latch_status(struct i8254_channel *c, uint64_t now)
{
    if (c->status_latched)
        return;
    c->status = (uint8_t)((i8254_out(c, now) ? I8254_STATUS_OUT : 0) |
                          (c->null_count ? I8254_STATUS_NULL : 0) |
                          c->rw << I8254_CW_RW_SHIFT | c->mode << I8254_CW_MODE_SHIFT |
                          (c->bcd ? I8254_CW_BCD : 0));
    c->status_latched = true;
}

static void i8254_write_control(struct i8254 *p, uint8_t val, uint64_t now)
{
    unsigned sc = val >> I8254_CW_SC_SHIFT;
    unsigned rw = (val >> I8254_CW_RW_SHIFT) & I8254_CW_RW_MASK;
    struct i8254_channel *c;

    if (sc == I8254_SC_READBACK) {
        for (unsigned i = 0; i < 3; i++) {
            if (!(val & (I8254_RB_CNT0 << i)))
                continue;
            if (!(val & I8254_RB_NCOUNT))
                i8254_latch_count(&p->ch[i], now);
            if (!(val & I8254_RB_NSTATUS))
                i8254_latch_status(&p->ch[i], now);
        }
        return;
    }
    c = &p->ch[sc];
    if (rw == I8254_RW_LATCH) {
        i8254_latch_count(c, now);
        return;
    }
    /* A control word resets the channel's logic: OUT takes the mode's
     * initial level and nothing counts until a count is written. */
    c->mode = (val >> I8254_CW_MODE_SHIFT) & I8254_CW_MODE_MASK;
    c->rw = (uint8_t)rw;
    c->bcd = val & I8254_CW_BCD;
    c->has_count = false;
    c->armed = false;
    c->running = false;
    c->reload_pending = false;
    c->null_count = true;
    c->base_ticks = 0;
    c->write_msb_next = false;
    c->read_msb_next = false;
}

/* Only channel 2's gate is wired to anything. */
static void i8254_set_gate(struct i8254_channel *c, bool gate, uint64_t now)
{
    if (gate == c->gate)
        return;
    c->gate = gate;
    switch (i8254_mode(c)) {
    case 0:
    case 4:
        /* The gate suspends counting and resumes where it stopped. */
        if (!c->armed)
            break;
        if (gate)
            i8254_resume(c, now);
        else
            i8254_pause(c, now);
        break;
    case 1:
    case 5:
        /* A rising edge (re)triggers from CR; low does not stop counting. */
        if (gate && c->has_count) {
            i8254_start(c, c->cr, now);
            c->running = true;
        }
        break;
    default: /* 2, 3: low forces OUT high and stops; high reloads from CR */
        if (!c->has_count)
            break;
        if (gate) {
            i8254_start(c, c->cr, now);
            c->running = true;
        } else {
            i8254_pause(c, now);
            c->reload_pending = false;
        }
        break;
    }
}

/* ---- port handlers ------------------------------------------------------ */

static uint32_t i8254_io_read(void *opaque, uint16_t off, unsigned size)
{
    struct i8254 *p = opaque;
    uint64_t now = clock_now(&p->clock);
    uint32_t val = 0;

    i8254_sync(p, now);
    for (unsigned i = 0; i < size; i++) {
        unsigned reg = off + i;
        /* The control word register is write-only: the bus floats. */
        uint8_t byte = reg < I8254_CONTROL ? i8254_read_counter(&p->ch[reg], now) : 0xFF;
        val |= (uint32_t)byte << (8 * i);
    }
    return val;
}

static void i8254_io_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    struct i8254 *p = opaque;
    uint64_t now = clock_now(&p->clock);

    i8254_sync(p, now);
    for (unsigned i = 0; i < size && off + i < I8254_NPORTS; i++) {
        uint8_t byte = (uint8_t)(val >> (8 * i));
        if (off + i == I8254_CONTROL)
            i8254_write_control(p, byte, now);
        else
            i8254_write_counter(&p->ch[off + i], byte, now);
    }
    i8254_sync(p, now);
}

static uint32_t i8254_port_b_read(void *opaque, uint16_t off, unsigned size)
{
    struct i8254 *p = opaque;
    uint64_t now = clock_now(&p->clock);
    bool refresh = (i8254_ticks(now) / I8254_REFRESH_CLOCKS) & 1;

    (void)off;
    (void)size;
    i8254_sync(p, now);
    return (p->port_b & PORTB_WRITABLE) | (refresh ? PORTB_REFRESH : 0) |
           (i8254_out(&p->ch[2], now) ? PORTB_OUT2 : 0);
}

static void i8254_port_b_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    struct i8254 *p = opaque;
    uint64_t now = clock_now(&p->clock);

    (void)off;
    (void)size;
    i8254_sync(p, now);
    /* Bit 1 (speaker data enable) gates OUT2 to the speaker, which is not
     * modelled; the bits above 3 are status and ignore writes. */
    p->port_b = val & PORTB_WRITABLE;
    i8254_set_gate(&p->ch[2], val & PORTB_GATE2, now);
}

static const struct io_ops i8254_ops = { .read = i8254_io_read, .write = i8254_io_write };
static const struct io_ops i8254_port_b_ops = { .read = i8254_port_b_read, .write = i8254_port_b_write };

int i8254_register(struct i8254 *p, struct iobus *bus)
{
    int err = iobus_register(bus, I8254_PORT_COUNTER0, I8254_NPORTS, &i8254_ops, p);
    return err ? err : iobus_register(bus, I8254_PORT_B, 1, &i8254_port_b_ops, p);
}

void i8254_init(struct i8254 *p, struct clock clock, struct irq_line irq0)
{
    uint64_t now = clock_now(&clock);

    *p = (struct i8254){ .clock = clock, .irq0 = irq0 };
    for (unsigned i = 0; i < 3; i++) {
        struct i8254_channel *c = &p->ch[i];
        c->mode = 3;
        c->rw = I8254_RW_WORD;
        c->gate = i != 2;
        c->cr = 65536;
        c->has_count = true;
        i8254_start(c, c->cr, now);
        c->running = c->gate;
    }
    /* The PIC's input starts low, and so does our record of it: the first
     * update raises IRQ 0 to OUT's level like any other rising edge. */
    p->irq_next_ns = i8254_next_rise_ns(&p->ch[0], now);
}
