/*
 * QEMU's isa-debug-exit device: test kernels end a run by writing their
 * result to port 0xF4.  A write of v asks the machine to exit with status
 * (v << 1) | 1, exactly as QEMU computes it, so the same guest and the same
 * test harness work under both; the low bit keeps a guest's 0 distinct from a
 * clean exit of the monitor.  Any write in the range counts, whatever its
 * width, as with QEMU's iosize=4 configuration.
 */
#include "popek/devices.h"

/* QEMU's device reads as 0. */
static uint32_t debug_exit_io_read(void *opaque, uint16_t off, unsigned size)
{
    (void)opaque;
    (void)off;
    (void)size;
    return 0;
}

static void debug_exit_io_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    struct debug_exit *d = opaque;

    (void)off;
    (void)size;
    d->ctl->exit_requested = true;
    d->ctl->exit_status = (int)((val << 1) | 1);
}

const struct io_ops debug_exit_io_ops = {
    .read = debug_exit_io_read,
    .write = debug_exit_io_write,
};

void debug_exit_init(struct debug_exit *d, struct platform_ctl *ctl)
{
    d->ctl = ctl;
}
