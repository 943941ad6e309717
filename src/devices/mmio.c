/*
 * The MMIO bus: guest physical ranges that are not RAM.  They are never
 * mapped into the shadow, so every access faults and the monitor's
 * instruction emulator (emulate.c) turns it into calls here.  Accesses
 * that cross a range's end are split byte by byte, as on a real bus.
 */
#include <errno.h>
#include <stddef.h>

#include "popek/devices.h"

int mmio_register(struct mmio_bus *bus, uint32_t base, uint32_t len,
                  const struct mmio_ops *ops, void *opaque)
{
    if (!len || (uint64_t)base + len > (1ull << 32))
        return -EINVAL;
    for (unsigned i = 0; i < bus->nranges; i++) {
        const struct mmio_range *r = &bus->ranges[i];
        if (base < r->base + (uint64_t)r->len && r->base < base + (uint64_t)len)
            return -EEXIST;
    }
    if (bus->nranges == MMIO_MAX_RANGES)
        return -ENOSPC;
    bus->ranges[bus->nranges++] = (struct mmio_range){ base, len, ops, opaque };
    return 0;
}

static const struct mmio_range *find(const struct mmio_bus *bus, uint32_t gpa, unsigned size)
{
    for (unsigned i = 0; i < bus->nranges; i++) {
        const struct mmio_range *r = &bus->ranges[i];
        if (gpa >= r->base && (uint64_t)gpa + size <= (uint64_t)r->base + r->len)
            return r;
    }
    return NULL;
}

uint32_t mmio_read(struct mmio_bus *bus, uint32_t gpa, unsigned size)
{
    const struct mmio_range *r = find(bus, gpa, size);
    if (r)
        return r->ops->read(r->opaque, gpa - r->base, size);
    if (size > 1) {
        uint32_t v = 0;
        for (unsigned i = 0; i < size; i++)
            v |= mmio_read(bus, gpa + i, 1) << (8 * i);
        return v;
    }
    return 0xff;
}

void mmio_write(struct mmio_bus *bus, uint32_t gpa, unsigned size, uint32_t val)
{
    const struct mmio_range *r = find(bus, gpa, size);
    if (r) {
        r->ops->write(r->opaque, gpa - r->base, size, val);
        return;
    }
    if (size > 1)
        for (unsigned i = 0; i < size; i++)
            mmio_write(bus, gpa + i, 1, (val >> (8 * i)) & 0xff);
}
