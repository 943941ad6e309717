/*
 * The Reset Control register at port 0xCF9 (Intel PIIX/ICH "RST_CNT"), which
 * Linux uses for reboot=pci and as a fallback in its reboot sequence.
 *
 * Bit 1 (SYS_RST) selects a hard reset, bit 2 (RST_CPU) starts the reset on
 * its 0->1 transition, bit 3 (FULL_RST) asks for a power cycle.  Linux writes
 * 0x02 first and then 0x06 (or 0x0E), so the reset fires on the write that
 * sets RST_CPU while SYS_RST is set.  A soft reset (RST_CPU alone, an INIT of
 * the CPU) is not modelled and is ignored.  RST_CPU reads back as 0: by the
 * time anything could read it, the reset it started has happened.
 */
#include "popek/devices.h"

#define RST_CNT_SYS_RST  0x02
#define RST_CNT_RST_CPU  0x04
#define RST_CNT_FULL_RST 0x08

static uint32_t resetcf9_io_read(void *opaque, uint16_t off, unsigned size)
{
    const struct resetcf9 *r = opaque;

    (void)off;
    (void)size;
    return r->reg;
}

static void resetcf9_io_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    struct resetcf9 *r = opaque;

    (void)off;
    (void)size;
    if ((val & (RST_CNT_SYS_RST | RST_CNT_RST_CPU)) == (RST_CNT_SYS_RST | RST_CNT_RST_CPU))
        r->ctl->reset_requested = true;
    r->reg = val & (RST_CNT_SYS_RST | RST_CNT_FULL_RST);
}

const struct io_ops resetcf9_io_ops = {
    .read = resetcf9_io_read,
    .write = resetcf9_io_write,
};

void resetcf9_init(struct resetcf9 *r, struct platform_ctl *ctl)
{
    r->ctl = ctl;
    r->reg = 0;
}
