/*
 * The I/O port bus: a flat table of claimed port ranges.
 *
 * IN/OUT callouts land here with a port and an access size.  The access goes
 * whole to the range that holds its first port, with the offset taken from
 * that range's base; a device that cares about wide accesses straddling its
 * end handles that itself.  Ports nobody claims behave like an empty ISA bus:
 * reads float high (all ones at the access size) and writes vanish.
 *
 * A PC has a dozen or so claimed ranges and every access here already paid for
 * a callout out of the translation cache, so a linear scan is cheaper than any
 * index would be to maintain.
 *
 * Reads without side effects need no callout: the fast-read table (devices.h)
 * holds their values for translated code, kept current here because those
 * values change only through accesses to their own device.
 */
#include <errno.h>
#include <stddef.h>

#include "popek/devices.h"

static uint32_t iobus_size_mask(unsigned size)
{
    return size >= 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
}

static uint16_t fast_entry(const struct io_range *r, uint16_t port)
{
    int v = r->ops->peek ? r->ops->peek(r->opaque, port - r->base) : -1;
    return v < 0 ? 0 : (uint16_t)(IOBUS_FAST_VALID | (uint8_t)v);
}

static void fast_refresh(struct iobus *bus, const struct io_range *r)
{
    if (bus->fast)
        for (uint32_t i = 0; i < r->len; i++)
            bus->fast[r->base + i] = fast_entry(r, (uint16_t)(r->base + i));
}

void iobus_set_fast(struct iobus *bus, uint16_t *table)
{
    bus->fast = table;
    for (uint32_t p = 0; p < IOBUS_PORTS; p++)
        table[p] = IOBUS_FAST_VALID | 0xFF; /* unclaimed: floats high */
    for (unsigned i = 0; i < bus->nranges; i++)
        fast_refresh(bus, &bus->ranges[i]);
}

static const struct io_range *iobus_find(const struct iobus *bus, uint16_t port)
{
    for (unsigned i = 0; i < bus->nranges; i++) {
        const struct io_range *r = &bus->ranges[i];
        if (port >= r->base && port - r->base < r->len)
            return r;
    }
    return NULL;
}

int iobus_register(struct iobus *bus, uint16_t base, uint16_t len,
                   const struct io_ops *ops, void *opaque)
{
    if (len == 0 || (uint32_t)base + len > 0x10000u)
        return -EINVAL;
    for (unsigned i = 0; i < bus->nranges; i++) {
        const struct io_range *r = &bus->ranges[i];
        if (base < r->base + r->len && r->base < base + len)
            return -EEXIST;
    }
    if (bus->nranges == IOBUS_MAX_RANGES)
        return -ENOSPC;
    bus->ranges[bus->nranges++] = (struct io_range){
        .base = base, .len = len, .ops = ops, .opaque = opaque,
    };
    fast_refresh(bus, &bus->ranges[bus->nranges - 1]);
    return 0;
}

uint32_t iobus_read(struct iobus *bus, uint16_t port, unsigned size)
{
    const struct io_range *r = iobus_find(bus, port);
    uint32_t mask = iobus_size_mask(size);

    if (!r || !r->ops->read)
        return mask;
    uint32_t v = r->ops->read(r->opaque, port - r->base, size) & mask;
    if (r->ops->peek)
        fast_refresh(bus, r);
    return v;
}

void iobus_write(struct iobus *bus, uint16_t port, unsigned size, uint32_t val)
{
    const struct io_range *r = iobus_find(bus, port);

    if (r && r->ops->write) {
        r->ops->write(r->opaque, port - r->base, size, val & iobus_size_mask(size));
        if (r->ops->peek) /* else its entries stay 0 */
            fast_refresh(bus, r);
    }
}
