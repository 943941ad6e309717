/*
 * Port 0x80, the POST diagnostic port.  Firmware and Linux write progress
 * codes here, and Linux also uses the write as a ~1 us I/O delay
 * (native_io_delay), so it must be claimed and cheap.  Reads return all
 * ones, as on QEMU's PC (the reference machine) and most chipsets without a
 * POST card; the last code written is kept for the monitor's debugging.
 */
#include "popek/devices.h"

static uint32_t port80_io_read(void *opaque, uint16_t off, unsigned size)
{
    (void)opaque;
    (void)off;
    (void)size;
    return 0xff;
}

static void port80_io_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    struct port80 *p = opaque;

    (void)off;
    (void)size;
    p->last = (uint8_t)val;
}

static int port80_io_peek(void *opaque, uint16_t off)
{
    return (int)port80_io_read(opaque, off, 1);
}

const struct io_ops port80_io_ops = {
    .read = port80_io_read,
    .write = port80_io_write,
    .peek = port80_io_peek,
};
