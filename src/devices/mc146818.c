/*
 * Motorola MC146818 real-time clock and its 128 bytes of CMOS RAM, at the PC's
 * ports 0x70 (index) and 0x71 (data).
 *
 * The clock is the divider chain's phase plus a count of seconds.  Seconds end
 * at epoch_ns + k s of the injected virtual clock, and while the clock runs
 * the guest's time is base_s + k: the time registers (seconds to year, and
 * the century byte) are computed from that whenever they are read, in the
 * format register B asks for.  When the guest stops the clock (SET, or the
 * divider held in reset through register A) the current time is written into
 * cmos[] and the registers become plain storage the guest rewrites; when it
 * restarts, the registers are read back into base_s.  A write to a time
 * register while the clock runs takes effect the same way without disturbing
 * the divider's phase, as on the chip, where the next update simply
 * increments what was written.  The weekday is always derived from the date.
 *
 * Nothing here ticks either.  Interrupt flags are brought up to date lazily
 * (mc146818_sync) by comparing how many seconds and periodic-interrupt
 * periods the divider has completed with the counts at the last look:
 *   UF  each second's update, unless SET inhibits updates;
 *   AF  an update whose time of day matches the three alarm registers (a
 *       value with both top bits set matches anything);
 *   PF  the periodic rate of register A's RS bits, phase-locked to the
 *       divider, 2 Hz to 8192 Hz.
 * IRQF, and with it the IRQ 8 output, is high while an enabled flag is set;
 * reading register C clears them all, which is the only way the line drops
 * (Linux's rtc_cmos and the old rtc driver read C in every handler).  UIP
 * reads 1 during the last 244 us before each update, the window in which the
 * datasheet lets the registers change under the reader; Linux's
 * mc146818_get_time() waits it out.
 *
 * Leaving divider reset starts the first update half a second later, as the
 * datasheet says and as Linux's mc146818_set_time() exercises (it holds the
 * divider in reset while it writes the time).  Daylight saving (DSE) and the
 * square-wave output (SQWE) are kept in register B but have no effect.
 */
#include "popek/devices.h"

#define RTC_PORT_INDEX 0x70 /* data at 0x71 */
#define RTC_INDEX_MASK 0x7F /* bit 7 masks NMI on a PC */

/* Time registers. */
#define RTC_SECONDS       0x00
#define RTC_SECONDS_ALARM 0x01
#define RTC_MINUTES       0x02
#define RTC_MINUTES_ALARM 0x03
#define RTC_HOURS         0x04
#define RTC_HOURS_ALARM   0x05
#define RTC_DAY_OF_WEEK   0x06
#define RTC_DAY_OF_MONTH  0x07
#define RTC_MONTH         0x08
#define RTC_YEAR          0x09

#define RTC_REG_A 0x0A
#define RTC_UIP            0x80
#define RTC_DIV_RESET      0x60 /* DV2..DV1 both set: divider chain held in reset */
#define RTC_REF_CLCK_32KHZ 0x20
#define RTC_RATE_SELECT    0x0F

#define RTC_REG_B 0x0B
#define RTC_SET     0x80
#define RTC_PIE     0x40
#define RTC_AIE     0x20
#define RTC_UIE     0x10
#define RTC_DM_BINARY 0x04
#define RTC_24H     0x02

#define RTC_REG_C 0x0C
#define RTC_IRQF    0x80
#define RTC_PF      0x40
#define RTC_AF      0x20
#define RTC_UF      0x10
#define RTC_FLAGS   (RTC_PF | RTC_AF | RTC_UF) /* same bit positions as PIE, AIE, UIE */

#define RTC_REG_D 0x0D
#define RTC_VRT     0x80 /* valid RAM and time: the battery is good */

#define RTC_HOURS_PM   0x80 /* 12-hour mode */
#define RTC_ALARM_ANY  0xC0 /* both top bits set: don't care */

/* PC CMOS layout (IBM AT, with the usual extensions). */
#define CMOS_FLOPPY_TYPES   0x10
#define CMOS_EQUIPMENT      0x14
#define CMOS_BASE_MEM_LO    0x15 /* KiB below 1 MiB */
#define CMOS_BASE_MEM_HI    0x16
#define CMOS_EXT_MEM_LO     0x17 /* KiB above 1 MiB */
#define CMOS_EXT_MEM_HI     0x18
#define CMOS_CHECKSUM_HI    0x2E /* sum of 0x10..0x2D */
#define CMOS_CHECKSUM_LO    0x2F
#define CMOS_EXT_MEM2_LO    0x30 /* the same, as POST found it */
#define CMOS_EXT_MEM2_HI    0x31
#define CMOS_CENTURY        0x32
#define CMOS_HIGH_MEM_LO    0x34 /* 64 KiB units above 16 MiB */
#define CMOS_HIGH_MEM_HI    0x35

/* Equipment byte: math coprocessor present; no floppy; bits 5-4 = 00,
 * an EGA/VGA display. */
#define CMOS_EQUIPMENT_FPU  0x02

#define NSEC_PER_SEC 1000000000
#define RTC_HZ       32768 /* the time-base crystal */
/* UIP rises this long before each update (datasheet: 244 us at 32.768 kHz). */
#define RTC_UIP_NS   244000
#define SECS_PER_DAY 86400

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Days since 1970-01-01 of a proleptic Gregorian date; the year runs from
 * March so the leap day comes last. */
static int64_t rtc_days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy, doe;

    /* Months out of range (a guest may write anything) carry into the year. */
    y += floor_div(m - 1, 12);
    m -= 12 * floor_div(m - 1, 12);
    y -= m <= 2;
    era = floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

struct rtc_time {
    int64_t year;
    unsigned month, day, hour, min, sec, wday; /* wday 1 = Sunday, as the register */
};

static struct rtc_time rtc_civil_from_seconds(int64_t t)
{
    int64_t days = floor_div(t, SECS_PER_DAY), tod = t - days * SECS_PER_DAY;
    int64_t z = days + 719468, era = floor_div(z, 146097), doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    struct rtc_time tm;

    tm.day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    tm.month = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    tm.year = yoe + era * 400 + (tm.month <= 2);
    tm.hour = (unsigned)(tod / 3600);
    tm.min = (unsigned)(tod / 60 % 60);
    tm.sec = (unsigned)(tod % 60);
    tm.wday = (unsigned)((days % 7 + 7 + 4) % 7) + 1; /* 1970-01-01 was a Thursday */
    return tm;
}

/* ---- register formats ------------------------------------------------------ */

static bool rtc_binary(const struct mc146818 *r)
{
    return r->cmos[RTC_REG_B] & RTC_DM_BINARY;
}

static uint8_t rtc_encode(const struct mc146818 *r, unsigned v)
{
    return rtc_binary(r) ? (uint8_t)v : (uint8_t)((v / 10 % 10) << 4 | v % 10);
}

/* BCD digits above 9 are taken at face value rather than refused. */
static unsigned rtc_decode(const struct mc146818 *r, uint8_t v)
{
    return rtc_binary(r) ? v : (v >> 4) * 10u + (v & 0xF);
}

static uint8_t rtc_encode_hour(const struct mc146818 *r, unsigned h)
{
    if (r->cmos[RTC_REG_B] & RTC_24H)
        return rtc_encode(r, h);
    return (uint8_t)(rtc_encode(r, h % 12 ? h % 12 : 12) | (h >= 12 ? RTC_HOURS_PM : 0));
}

static unsigned rtc_decode_hour(const struct mc146818 *r, uint8_t v)
{
    if (r->cmos[RTC_REG_B] & RTC_24H)
        return rtc_decode(r, v);
    return rtc_decode(r, v & (uint8_t)~RTC_HOURS_PM) % 12 + (v & RTC_HOURS_PM ? 12 : 0);
}

static bool rtc_is_time_reg(unsigned idx)
{
    switch (idx) {
    case RTC_SECONDS:
    case RTC_MINUTES:
    case RTC_HOURS:
    case RTC_DAY_OF_WEEK:
    case RTC_DAY_OF_MONTH:
    case RTC_MONTH:
    case RTC_YEAR:
    case CMOS_CENTURY:
        return true;
    default:
        return false;
    }
}

/* The time register idx showing time t. */
static uint8_t rtc_time_reg(const struct mc146818 *r, unsigned idx, int64_t t)
{
    struct rtc_time tm = rtc_civil_from_seconds(t);
    int64_t year = tm.year < 0 ? 0 : tm.year; /* the registers cannot show BC */

    switch (idx) {
    case RTC_SECONDS:
        return rtc_encode(r, tm.sec);
    case RTC_MINUTES:
        return rtc_encode(r, tm.min);
    case RTC_HOURS:
        return rtc_encode_hour(r, tm.hour);
    case RTC_DAY_OF_WEEK:
        return rtc_encode(r, tm.wday);
    case RTC_DAY_OF_MONTH:
        return rtc_encode(r, tm.day);
    case RTC_MONTH:
        return rtc_encode(r, tm.month);
    case RTC_YEAR:
        return rtc_encode(r, (unsigned)(year % 100));
    default: /* CMOS_CENTURY */
        return rtc_encode(r, (unsigned)(year / 100 % 100));
    }
}

static void rtc_store_time(struct mc146818 *r, int64_t t)
{
    static const uint8_t regs[] = {
        RTC_SECONDS, RTC_MINUTES, RTC_HOURS, RTC_DAY_OF_WEEK,
        RTC_DAY_OF_MONTH, RTC_MONTH, RTC_YEAR, CMOS_CENTURY,
    };
    for (unsigned i = 0; i < sizeof regs; i++)
        r->cmos[regs[i]] = rtc_time_reg(r, regs[i], t);
}

/* The time the registers in cmos[] spell, in seconds since 1970. */
static int64_t rtc_load_time(const struct mc146818 *r)
{
    int64_t year = rtc_decode(r, r->cmos[CMOS_CENTURY]) * 100 + rtc_decode(r, r->cmos[RTC_YEAR]);
    int64_t days = rtc_days_from_civil(year, rtc_decode(r, r->cmos[RTC_MONTH]),
                                       rtc_decode(r, r->cmos[RTC_DAY_OF_MONTH]));
    return days * SECS_PER_DAY + rtc_decode_hour(r, r->cmos[RTC_HOURS]) * 3600 +
           rtc_decode(r, r->cmos[RTC_MINUTES]) * 60 + rtc_decode(r, r->cmos[RTC_SECONDS]);
}

/* ---- the divider chain ------------------------------------------------------ */

static bool rtc_divider_running(const struct mc146818 *r)
{
    return (r->cmos[RTC_REG_A] & RTC_DIV_RESET) != RTC_DIV_RESET;
}

/* Whether seconds are being counted into base_s rather than held in cmos[]. */
static bool rtc_clock_running(const struct mc146818 *r)
{
    return rtc_divider_running(r) && !(r->cmos[RTC_REG_B] & RTC_SET);
}

static int64_t rtc_seconds_index(const struct mc146818 *r, int64_t now)
{
    return floor_div(now - r->epoch_ns, NSEC_PER_SEC);
}

/* Divider clocks per periodic interrupt, 0 if none: RS = 1 and 2 repeat
 * RS = 8 and 9, the rest run from 2 (8192 Hz) at RS = 3 to 16384 (2 Hz). */
static uint32_t rtc_period_clocks(const struct mc146818 *r)
{
    unsigned rs = r->cmos[RTC_REG_A] & RTC_RATE_SELECT;

    if (rs == 0)
        return 0;
    return 1u << ((rs <= 2 ? rs + 7 : rs) - 1);
}

static int64_t rtc_period_index(const struct mc146818 *r, int64_t now, uint32_t clocks)
{
    int64_t d = now - r->epoch_ns;

    if (d < 0)
        return 0;
    return (int64_t)((__int128)d * RTC_HZ / ((__int128)NSEC_PER_SEC * clocks));
}

static int64_t rtc_now(const struct mc146818 *r)
{
    return (int64_t)clock_now(&r->clock);
}

/* The first second >= from whose time of day the alarm registers match, or
 * INT64_MAX.  Every pattern of valid values matches within a day. */
static int64_t rtc_next_alarm(const struct mc146818 *r, int64_t from)
{
    uint8_t ah = r->cmos[RTC_HOURS_ALARM], am = r->cmos[RTC_MINUTES_ALARM];
    uint8_t as = r->cmos[RTC_SECONDS_ALARM];
    struct rtc_time now = rtc_civil_from_seconds(from);
    int64_t day = from - (int64_t)(now.hour * 3600 + now.min * 60 + now.sec);

    for (unsigned d = 0; d < 2; d++, day += SECS_PER_DAY) {
        /* On the first day, start the search at `from`'s own time of day. */
        for (unsigned h = d ? 0 : now.hour; h < 24; h++) {
            bool same_h = !d && h == now.hour;
            if ((ah & RTC_ALARM_ANY) != RTC_ALARM_ANY && ah != rtc_encode_hour(r, h))
                continue;
            for (unsigned m = same_h ? now.min : 0; m < 60; m++) {
                bool same_m = same_h && m == now.min;
                if ((am & RTC_ALARM_ANY) != RTC_ALARM_ANY && am != rtc_encode(r, m))
                    continue;
                for (unsigned s = same_m ? now.sec : 0; s < 60; s++) {
                    if ((as & RTC_ALARM_ANY) != RTC_ALARM_ANY && as != rtc_encode(r, s))
                        continue;
                    return day + h * 3600 + m * 60 + s;
                }
            }
        }
    }
    return INT64_MAX;
}

/* Set the flags for every update and periodic tick up to now. */
static void mc146818_sync(struct mc146818 *r, int64_t now)
{
    int64_t k, pi;
    uint32_t clocks;

    if (!rtc_divider_running(r))
        return;
    k = rtc_seconds_index(r, now);
    if (k > r->last_second) {
        if (!(r->cmos[RTC_REG_B] & RTC_SET)) {
            r->cmos[RTC_REG_C] |= RTC_UF;
            if (rtc_next_alarm(r, r->base_s + r->last_second + 1) <= r->base_s + k)
                r->cmos[RTC_REG_C] |= RTC_AF;
        }
        r->last_second = k;
    }
    clocks = rtc_period_clocks(r);
    if (clocks) {
        pi = rtc_period_index(r, now, clocks);
        if (pi > r->last_period) {
            r->cmos[RTC_REG_C] |= RTC_PF;
            r->last_period = pi;
        }
    }
}

static bool rtc_irqf(const struct mc146818 *r)
{
    return r->cmos[RTC_REG_C] & r->cmos[RTC_REG_B] & RTC_FLAGS;
}

static void mc146818_update_irq(struct mc146818 *r)
{
    int level = rtc_irqf(r);

    if (level != r->irq_level) {
        r->irq_level = level;
        irq_set(&r->irq, level);
    }
}

void mc146818_update(struct mc146818 *r)
{
    mc146818_sync(r, rtc_now(r));
    mc146818_update_irq(r);
}

uint64_t mc146818_next_event_ns(const struct mc146818 *r)
{
    uint8_t b = r->cmos[RTC_REG_B];
    int64_t next = INT64_MAX;
    uint32_t clocks = rtc_period_clocks(r);

    /* The line only drops when register C is read. */
    if (r->irq_level || !rtc_divider_running(r))
        return UINT64_MAX;
    if ((b & RTC_PIE) && clocks) {
        __int128 t = ((__int128)(r->last_period + 1) * clocks * NSEC_PER_SEC + RTC_HZ - 1) / RTC_HZ;
        next = r->epoch_ns + (int64_t)t;
    }
    if (rtc_clock_running(r)) {
        if ((b & RTC_UIE) && r->epoch_ns + (r->last_second + 1) * NSEC_PER_SEC < next)
            next = r->epoch_ns + (r->last_second + 1) * NSEC_PER_SEC;
        if (b & RTC_AIE) {
            int64_t s = rtc_next_alarm(r, r->base_s + r->last_second + 1);
            if (s != INT64_MAX && r->epoch_ns + (s - r->base_s) * NSEC_PER_SEC < next)
                next = r->epoch_ns + (s - r->base_s) * NSEC_PER_SEC;
        }
    }
    return next == INT64_MAX || next < 0 ? UINT64_MAX : (uint64_t)next;
}

/* ---- registers ---------------------------------------------------------------- */

/* Registers A and B together decide whether the clock runs. */
static void mc146818_set_control(struct mc146818 *r, uint8_t a, uint8_t b, int64_t now)
{
    bool was_running = rtc_clock_running(r), was_dividing = rtc_divider_running(r);
    uint32_t old_clocks = rtc_period_clocks(r);
    int64_t t = was_running ? r->base_s + rtc_seconds_index(r, now) : 0;
    uint32_t clocks;

    r->cmos[RTC_REG_A] = a;
    r->cmos[RTC_REG_B] = b;
    if (was_running && !rtc_clock_running(r))
        rtc_store_time(r, t);
    if (!was_dividing && rtc_divider_running(r)) {
        /* Out of reset, the first update comes half a second later. */
        r->epoch_ns = now - NSEC_PER_SEC / 2;
        r->last_second = rtc_seconds_index(r, now);
    }
    clocks = rtc_period_clocks(r);
    if (clocks && (clocks != old_clocks || !was_dividing))
        r->last_period = rtc_period_index(r, now, clocks);
    if (!was_running && rtc_clock_running(r))
        r->base_s = rtc_load_time(r) - rtc_seconds_index(r, now);
}

static uint8_t mc146818_read_reg(struct mc146818 *r, unsigned idx, int64_t now)
{
    uint8_t val;

    switch (idx) {
    case RTC_REG_A:
        val = r->cmos[RTC_REG_A];
        if (rtc_clock_running(r) &&
            now - r->epoch_ns - rtc_seconds_index(r, now) * NSEC_PER_SEC >= NSEC_PER_SEC - RTC_UIP_NS)
            val |= RTC_UIP;
        return val;
    case RTC_REG_C:
        val = r->cmos[RTC_REG_C] | (rtc_irqf(r) ? RTC_IRQF : 0);
        r->cmos[RTC_REG_C] = 0;
        return val;
    case RTC_REG_D:
        return RTC_VRT;
    default:
        if (rtc_is_time_reg(idx) && rtc_clock_running(r))
            return rtc_time_reg(r, idx, r->base_s + rtc_seconds_index(r, now));
        return r->cmos[idx];
    }
}

static void mc146818_write_reg(struct mc146818 *r, unsigned idx, uint8_t val, int64_t now)
{
    switch (idx) {
    case RTC_REG_A:
        mc146818_set_control(r, val & (uint8_t)~RTC_UIP, r->cmos[RTC_REG_B], now);
        break;
    case RTC_REG_B:
        /* Setting SET clears UIE (datasheet, register B). */
        if (val & RTC_SET)
            val &= (uint8_t)~RTC_UIE;
        mc146818_set_control(r, r->cmos[RTC_REG_A], val, now);
        break;
    case RTC_REG_C:
    case RTC_REG_D:
        break; /* read-only */
    default:
        if (rtc_is_time_reg(idx) && rtc_clock_running(r)) {
            int64_t k = rtc_seconds_index(r, now);
            rtc_store_time(r, r->base_s + k);
            r->cmos[idx] = val;
            r->base_s = rtc_load_time(r) - k;
        } else {
            r->cmos[idx] = val;
        }
        break;
    }
}

static uint32_t mc146818_io_read(void *opaque, uint16_t off, unsigned size)
{
    struct mc146818 *r = opaque;
    int64_t now = rtc_now(r);
    uint32_t val = 0;

    mc146818_sync(r, now);
    for (unsigned i = 0; i < size; i++) {
        /* The index register is write-only: the bus floats.  Bytes past
         * the data port too. */
        uint8_t byte = off + i == 1 ? mc146818_read_reg(r, r->index & RTC_INDEX_MASK, now) : 0xFF;
        val |= (uint32_t)byte << (8 * i);
    }
    mc146818_update_irq(r);
    return val;
}

static void mc146818_io_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    struct mc146818 *r = opaque;
    int64_t now = rtc_now(r);

    mc146818_sync(r, now);
    for (unsigned i = 0; i < size && off + i < 2; i++) {
        uint8_t byte = (uint8_t)(val >> (8 * i));
        if (off + i == 0)
            r->index = byte;
        else
            mc146818_write_reg(r, r->index & RTC_INDEX_MASK, byte, now);
    }
    mc146818_update_irq(r);
}

static const struct io_ops mc146818_ops = { .read = mc146818_io_read, .write = mc146818_io_write };

int mc146818_register(struct mc146818 *r, struct iobus *bus)
{
    return iobus_register(bus, RTC_PORT_INDEX, 2, &mc146818_ops, r);
}

static void cmos_put16(struct mc146818 *r, unsigned lo, uint64_t v)
{
    if (v > 0xFFFF)
        v = 0xFFFF;
    r->cmos[lo] = (uint8_t)v;
    r->cmos[lo + 1] = (uint8_t)(v >> 8);
}

void mc146818_init(struct mc146818 *r, struct clock clock, int64_t wall_seconds,
                   uint64_t ram_bytes, struct irq_line irq)
{
    const uint64_t kib = 1024, mib = 1024 * kib;
    unsigned sum = 0;

    *r = (struct mc146818){ .clock = clock, .irq = irq };
    r->cmos[RTC_REG_A] = RTC_REF_CLCK_32KHZ | 0x06; /* 1024 Hz periodic rate, as BIOSes leave it */
    r->cmos[RTC_REG_B] = RTC_24H;                   /* BCD, 24-hour, no interrupts */
    r->cmos[RTC_REG_D] = RTC_VRT;
    r->epoch_ns = rtc_now(r);
    r->base_s = wall_seconds;

    r->cmos[CMOS_FLOPPY_TYPES] = 0;
    r->cmos[CMOS_EQUIPMENT] = CMOS_EQUIPMENT_FPU;
    cmos_put16(r, CMOS_BASE_MEM_LO, (ram_bytes < 640 * kib ? ram_bytes : 640 * kib) / kib);
    cmos_put16(r, CMOS_EXT_MEM_LO, ram_bytes > mib ? (ram_bytes - mib) / kib : 0);
    cmos_put16(r, CMOS_EXT_MEM2_LO, ram_bytes > mib ? (ram_bytes - mib) / kib : 0);
    cmos_put16(r, CMOS_HIGH_MEM_LO, ram_bytes > 16 * mib ? (ram_bytes - 16 * mib) / (64 * kib) : 0);
    for (unsigned i = CMOS_FLOPPY_TYPES; i < CMOS_CHECKSUM_HI; i++)
        sum += r->cmos[i];
    r->cmos[CMOS_CHECKSUM_HI] = (uint8_t)(sum >> 8);
    r->cmos[CMOS_CHECKSUM_LO] = (uint8_t)sum;
}
