/*
 * Port 0x80, the POST diagnostic port.  Firmware and Linux write progress
 * codes here, and Linux also uses the write as a ~1 us I/O delay
 * (native_io_delay), so it must be claimed and cheap.  The last code written
 * reads back, as on boards with a POST card latch, which makes it visible to
 * tests and to the monitor's debugging output.
 */
#include "popek/devices.h"

static uint32_t port80_io_read(void *opaque, uint16_t off, unsigned size)
{
    const struct port80 *p = opaque;

    (void)off;
    (void)size;
    return p->last;
}

static void port80_io_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    struct port80 *p = opaque;

    (void)off;
    (void)size;
    p->last = (uint8_t)val;
}

const struct io_ops port80_io_ops = {
    .read = port80_io_read,
    .write = port80_io_write,
};
