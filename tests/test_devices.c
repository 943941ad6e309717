/*
 * The I/O bus and the small platform devices, played through the bus at
 * their PC port addresses.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "popek/devices.h"

/* ---- I/O bus ------------------------------------------------------------- */

struct probe {
    uint16_t off;
    unsigned size;
    uint32_t val;
    unsigned reads, writes;
};

static uint32_t probe_read(void *opaque, uint16_t off, unsigned size)
{
    struct probe *p = opaque;
    p->off = off;
    p->size = size;
    p->reads++;
    return 0xA5A5A5A5u;
}

static void probe_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    struct probe *p = opaque;
    p->off = off;
    p->size = size;
    p->val = val;
    p->writes++;
}

static const struct io_ops probe_ops = { .read = probe_read, .write = probe_write };

static struct iobus bus;
static struct platform_ctl ctl;

static void setup(void)
{
    memset(&bus, 0, sizeof bus);
    memset(&ctl, 0, sizeof ctl);
}

TestSuite(iobus, .init = setup);

Test(iobus, register_rejects_overlap)
{
    struct probe p = { 0 };
    cr_assert_eq(iobus_register(&bus, 0x3F8, 8, &probe_ops, &p), 0);
    cr_assert_eq(iobus_register(&bus, 0x3FF, 1, &probe_ops, &p), -EEXIST);
    cr_assert_eq(iobus_register(&bus, 0x3F7, 2, &probe_ops, &p), -EEXIST);
    cr_assert_eq(iobus_register(&bus, 0x3F0, 32, &probe_ops, &p), -EEXIST, "covers it");
    cr_assert_eq(iobus_register(&bus, 0x3FA, 1, &probe_ops, &p), -EEXIST, "inside it");
    cr_assert_eq(iobus_register(&bus, 0x3F0, 8, &probe_ops, &p), 0, "adjacent below");
    cr_assert_eq(iobus_register(&bus, 0x400, 1, &probe_ops, &p), 0, "adjacent above");
}

Test(iobus, register_rejects_bad_ranges)
{
    struct probe p = { 0 };
    cr_assert_eq(iobus_register(&bus, 0x100, 0, &probe_ops, &p), -EINVAL);
    cr_assert_eq(iobus_register(&bus, 0xFFFF, 2, &probe_ops, &p), -EINVAL);
    cr_assert_eq(iobus_register(&bus, 0xFFFF, 1, &probe_ops, &p), 0);
    iobus_read(&bus, 0xFFFF, 1);
    cr_assert_eq(p.reads, 1);
}

Test(iobus, register_full)
{
    struct probe p = { 0 };
    for (unsigned i = 0; i < IOBUS_MAX_RANGES; i++)
        cr_assert_eq(iobus_register(&bus, (uint16_t)(0x1000 + 2 * i), 2, &probe_ops, &p), 0);
    cr_assert_eq(iobus_register(&bus, 0x100, 1, &probe_ops, &p), -ENOSPC);
    cr_assert_eq(iobus_register(&bus, 0x1000, 1, &probe_ops, &p), -EEXIST);
}

Test(iobus, unclaimed_ports_float_high)
{
    cr_assert_eq(iobus_read(&bus, 0x1234, 1), 0xFFu);
    cr_assert_eq(iobus_read(&bus, 0x1234, 2), 0xFFFFu);
    cr_assert_eq(iobus_read(&bus, 0x1234, 4), 0xFFFFFFFFu);
    iobus_write(&bus, 0x1234, 4, 0);
}

Test(iobus, access_routed_by_first_port)
{
    struct probe a = { 0 }, b = { 0 };
    cr_assert_eq(iobus_register(&bus, 0x100, 4, &probe_ops, &a), 0);
    cr_assert_eq(iobus_register(&bus, 0x104, 4, &probe_ops, &b), 0);

    cr_assert_eq(iobus_read(&bus, 0x102, 4), 0xA5A5A5A5u);
    cr_assert_eq(a.off, 2);
    cr_assert_eq(a.size, 4);
    cr_assert_eq(b.reads, 0, "a straddling access stays with its first port's range");

    cr_assert_eq(iobus_read(&bus, 0x105, 1), 0xA5u, "result cut to the access size");
    cr_assert_eq(b.off, 1);
    cr_assert_eq(iobus_read(&bus, 0x106, 2), 0xA5A5u);
    cr_assert_eq(b.size, 2);

    iobus_write(&bus, 0x107, 1, 0x12345678u);
    cr_assert_eq(b.off, 3);
    cr_assert_eq(b.size, 1);
    cr_assert_eq(b.val, 0x78u, "value cut to the access size");
    iobus_write(&bus, 0x100, 2, 0xCAFEBABEu);
    cr_assert_eq(a.val, 0xBABEu);
    iobus_write(&bus, 0x100, 4, 0xCAFEBABEu);
    cr_assert_eq(a.val, 0xCAFEBABEu);
}

static uint16_t fast[IOBUS_PORTS];

static int probe_peek(void *opaque, uint16_t off)
{
    struct probe *p = opaque;
    return off == 0 ? (int)(p->val & 0xFF) : -1;
}

static const struct io_ops peek_ops = { .read = probe_read, .write = probe_write, .peek = probe_peek };

Test(iobus, fast_table_follows_the_devices)
{
    struct probe a = { 0 }, b = { .val = 0x42 };
    cr_assert_eq(iobus_register(&bus, 0x100, 2, &probe_ops, &a), 0);
    iobus_set_fast(&bus, fast);
    cr_assert_eq(fast[0x10], IOBUS_FAST_VALID | 0xFF, "unclaimed: floats high");
    cr_assert_eq(fast[0xFFFF], IOBUS_FAST_VALID | 0xFF);
    cr_assert_eq(fast[0x100], 0, "no peek: every read calls out");
    cr_assert_eq(fast[0x101], 0);

    cr_assert_eq(iobus_register(&bus, 0x200, 2, &peek_ops, &b), 0, "registered after the table");
    cr_assert_eq(fast[0x200], IOBUS_FAST_VALID | 0x42);
    cr_assert_eq(fast[0x201], 0, "the device said -1");
    iobus_write(&bus, 0x201, 1, 0x17);
    cr_assert_eq(fast[0x200], IOBUS_FAST_VALID | 0x17, "refreshed after a write to the device");
    b.val = 0x99; /* as a read with a side effect might */
    iobus_read(&bus, 0x201, 1);
    cr_assert_eq(fast[0x200], IOBUS_FAST_VALID | 0x99, "refreshed after a read too");
    cr_assert_eq(fast[0x80], IOBUS_FAST_VALID | 0xFF);
    struct port80 p80 = { 0 };
    cr_assert_eq(iobus_register(&bus, 0x80, 1, &port80_io_ops, &p80), 0);
    iobus_write(&bus, 0x80, 1, 0x12);
    cr_assert_eq(fast[0x80], IOBUS_FAST_VALID | 0xFF, "port 0x80 reads all ones");
}

/* ---- isa-debug-exit -------------------------------------------------------- */

TestSuite(debug_exit, .init = setup);

Test(debug_exit, status_is_v_shifted_or_one)
{
    struct debug_exit d;
    debug_exit_init(&d, &ctl);
    cr_assert_eq(iobus_register(&bus, 0xF4, 4, &debug_exit_io_ops, &d), 0);

    cr_assert_not(ctl.exit_requested);
    iobus_write(&bus, 0xF4, 1, 0);
    cr_assert(ctl.exit_requested);
    cr_assert_eq(ctl.exit_status, 1);

    ctl.exit_requested = false;
    iobus_write(&bus, 0xF4, 4, 0x10);
    cr_assert(ctl.exit_requested);
    cr_assert_eq(ctl.exit_status, 0x21);

    iobus_write(&bus, 0xF4, 2, 0x1234);
    cr_assert_eq(ctl.exit_status, 0x2469);
}

/* ---- port 0x80 ----------------------------------------------------------- */

TestSuite(port80, .init = setup);

Test(port80, writes_are_kept_reads_are_all_ones)
{
    struct port80 p = { 0 };
    cr_assert_eq(iobus_register(&bus, 0x80, 1, &port80_io_ops, &p), 0);
    cr_assert_eq(iobus_read(&bus, 0x80, 1), 0xFF);
    iobus_write(&bus, 0x80, 1, 0x42);
    cr_assert_eq(iobus_read(&bus, 0x80, 1), 0xFF, "QEMU's port 0x80 reads as all ones");
    cr_assert_eq(p.last, 0x42);
    iobus_write(&bus, 0x80, 1, 0xAB);
    cr_assert_eq(p.last, 0xAB);
    cr_assert_eq(iobus_read(&bus, 0x81, 1), 0xFF, "0x81 is not ours");
}

/* ---- i8042 ----------------------------------------------------------------- */

#define KBD_DATA 0x60
#define KBD_STATUS 0x64

struct fake_irq {
    int level;
    unsigned changes;
};

static void fake_irq_set(void *opaque, unsigned line, int level)
{
    struct fake_irq *f = opaque;
    (void)line;
    f->level = level;
    f->changes++;
}

static struct i8042 kbc;

static void kbc_setup(void)
{
    setup();
    i8042_init(&kbc, &ctl);
    cr_assert_eq(i8042_register(&kbc, &bus), 0);
}

static uint8_t kbc_status(void)
{
    return (uint8_t)iobus_read(&bus, KBD_STATUS, 1);
}

static void kbc_cmd(uint8_t cmd)
{
    iobus_write(&bus, KBD_STATUS, 1, cmd);
}

static uint8_t kbc_read(void)
{
    cr_assert(kbc_status() & 0x01, "output buffer full");
    return (uint8_t)iobus_read(&bus, KBD_DATA, 1);
}

TestSuite(i8042, .init = kbc_setup);

Test(i8042, boot_state)
{
    uint8_t st = kbc_status();
    cr_assert_eq(st & 0x03, 0, "OBF and IBF clear");
    cr_assert(st & 0x04, "system flag: BIOS self-test passed");
    kbc_cmd(0x20);
    cr_assert_eq(kbc_read(), 0x65);
    cr_assert_eq(kbc_status() & 0x01, 0, "reading data empties the buffer");
}

Test(i8042, self_test_answers_0x55)
{
    kbc_cmd(0xAA);
    cr_assert(kbc_status() & 0x08, "last write was a command");
    cr_assert_eq(kbc_read(), 0x55);
    kbc_cmd(0xAB);
    cr_assert_eq(kbc_read(), 0x00, "keyboard interface test passes");
    kbc_cmd(0xA9);
    cr_assert_eq(kbc_read(), 0x00, "AUX interface test passes");
}

Test(i8042, command_byte_and_port_enables)
{
    kbc_cmd(0x60);
    iobus_write(&bus, KBD_DATA, 1, 0x00);
    cr_assert_eq(kbc_status() & 0x0D, 0, "no output, SYS from CCB, data write");
    kbc_cmd(0x20);
    cr_assert_eq(kbc_read(), 0x00);

    kbc_cmd(0xAD);
    kbc_cmd(0xA7);
    kbc_cmd(0x20);
    cr_assert_eq(kbc_read(), 0x30, "KBDDIS | AUXDIS");
    kbc_cmd(0xAE);
    kbc_cmd(0x20);
    cr_assert_eq(kbc_read(), 0x20);
    kbc_cmd(0xA8);
    kbc_cmd(0x20);
    cr_assert_eq(kbc_read(), 0x00);

    kbc_cmd(0x60);
    iobus_write(&bus, KBD_DATA, 1, 0x04);
    cr_assert(kbc_status() & 0x04, "SYS flag follows the CCB");
}

Test(i8042, loopback_and_absent_devices)
{
    kbc_cmd(0xD3);
    iobus_write(&bus, KBD_DATA, 1, 0x5A);
    cr_assert_eq(kbc_status() & 0x61, 0x21, "AUX data, no timeout");
    cr_assert_eq(kbc_read(), 0x5A);

    kbc_cmd(0xD2);
    iobus_write(&bus, KBD_DATA, 1, 0x77);
    cr_assert_eq(kbc_status() & 0x61, 0x01);
    cr_assert_eq(kbc_read(), 0x77);

    iobus_write(&bus, KBD_DATA, 1, 0xF2);   /* atkbd GET ID */
    cr_assert_eq(kbc_status() & 0x61, 0x41, "keyboard byte times out");
    cr_assert_eq(kbc_read(), 0xFE);
    cr_assert_eq(kbc_status() & 0x41, 0x00);

    kbc_cmd(0xD4);
    iobus_write(&bus, KBD_DATA, 1, 0xF2);   /* psmouse GET ID */
    cr_assert_eq(kbc_status() & 0x61, 0x61, "AUX byte times out");
    cr_assert_eq(kbc_read(), 0xFE);
}

Test(i8042, other_offsets_ignored)
{
    cr_assert_eq(iobus_read(&bus, 0x61, 1), 0xFF);
    cr_assert_eq(iobus_read(&bus, 0x63, 1), 0xFF);
    iobus_write(&bus, 0x62, 1, 0xFE);
    cr_assert_not(ctl.reset_requested);
    cr_assert_eq(kbc_status() & 0x01, 0);
}

Test(i8042, pulse_reset_line)
{
    kbc_cmd(0xFF);
    cr_assert_not(ctl.reset_requested, "0xFF pulses nothing");
    kbc_cmd(0xFE);
    cr_assert(ctl.reset_requested);
}

Test(i8042, output_port_reset)
{
    kbc_cmd(0xD0);
    cr_assert_eq(kbc_read() & 0x03, 0x03, "reset line high, A20 on");
    kbc_cmd(0xD1);
    iobus_write(&bus, KBD_DATA, 1, 0xDD);
    cr_assert_not(ctl.reset_requested, "A20 off, reset line high");
    kbc_cmd(0xD0);
    cr_assert_eq(kbc_read(), 0xDD);
    kbc_cmd(0xD1);
    iobus_write(&bus, KBD_DATA, 1, 0xDE);
    cr_assert(ctl.reset_requested);
}

Test(i8042, interrupts_follow_output_buffer)
{
    struct fake_irq k = { 0 }, m = { 0 };
    kbc.kbd_irq = (struct irq_line){ .set = fake_irq_set, .opaque = &k, .line = 1 };
    kbc.aux_irq = (struct irq_line){ .set = fake_irq_set, .opaque = &m, .line = 12 };

    kbc_cmd(0xAA);
    cr_assert_eq(k.level, 1, "CCB.KBDINT set at boot");
    kbc_read();
    cr_assert_eq(k.level, 0);
    cr_assert_eq(k.changes, 2);

    kbc_cmd(0xD3);
    iobus_write(&bus, KBD_DATA, 1, 0xA5);
    cr_assert_eq(m.changes, 0, "AUX interrupt disabled in the CCB");
    kbc_read();

    kbc_cmd(0x60);
    iobus_write(&bus, KBD_DATA, 1, 0x02);
    kbc_cmd(0xD3);
    iobus_write(&bus, KBD_DATA, 1, 0xA5);
    cr_assert_eq(m.level, 1);
    cr_assert_eq(k.changes, 2);
    kbc_read();
    cr_assert_eq(m.level, 0);
}

/* ---- 0xCF9 reset control ----------------------------------------------------- */

TestSuite(resetcf9, .init = setup);

Test(resetcf9, linux_pci_reboot_sequence)
{
    struct resetcf9 r;
    resetcf9_init(&r, &ctl);
    cr_assert_eq(iobus_register(&bus, 0xCF9, 1, &resetcf9_io_ops, &r), 0);

    cr_assert_eq(iobus_read(&bus, 0xCF9, 1), 0x00);
    iobus_write(&bus, 0xCF9, 1, 0x02);
    cr_assert_not(ctl.reset_requested, "SYS_RST alone only selects the reset type");
    cr_assert_eq(iobus_read(&bus, 0xCF9, 1), 0x02);
    iobus_write(&bus, 0xCF9, 1, 0x06);
    cr_assert(ctl.reset_requested);
    cr_assert_eq(iobus_read(&bus, 0xCF9, 1), 0x02, "RST_CPU reads back 0");
}

Test(resetcf9, soft_reset_ignored_full_reset_kept)
{
    struct resetcf9 r;
    resetcf9_init(&r, &ctl);
    cr_assert_eq(iobus_register(&bus, 0xCF9, 1, &resetcf9_io_ops, &r), 0);

    iobus_write(&bus, 0xCF9, 1, 0x04);
    cr_assert_not(ctl.reset_requested);
    iobus_write(&bus, 0xCF9, 1, 0x0E);
    cr_assert(ctl.reset_requested);
    cr_assert_eq(iobus_read(&bus, 0xCF9, 1), 0x0A);
}
