/*
 * Intel 8042 keyboard controller, with nothing plugged into either port.
 *
 * Two one-port ranges: 0x60 the data port, 0x64 the status (read) / command
 * (write) port.  Ports 0x61-0x63 in between belong to other devices on a PC
 * (0x61 is the PIT's port B), so i8042_register() claims just the two.
 *
 * What it is for:
 *  - Linux's i8042 driver probes the controller (flush, self-test 0xAA,
 *    read/write the command byte, disable/enable the ports, AUX loopback
 *    0xD3) and must get answers rather than time out, then talks to the
 *    keyboard and mouse.  With no devices attached, every byte sent to one is
 *    answered as a real controller does when the device never clocks back: a
 *    0xFE with the status TIMEOUT bit set, which atkbd/psmouse take as a NAK
 *    and give up on at once instead of waiting out their timeouts.
 *  - Rebooting: command 0xFE pulses output port bit 0, the CPU reset line
 *    (Linux's reboot=kbd, and the first thing most kernels try).
 *
 * The controller has a one-byte output buffer; each command produces at most
 * one byte, so nothing is queued.  The interrupt outputs follow the output
 * buffer: IRQ 1 while it holds keyboard data and the command byte enables
 * keyboard interrupts, IRQ 12 likewise for AUX data.  They are levels here;
 * the 8042 pulses them, which an edge-triggered PIC sees the same way.
 */
#include "popek/devices.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT  0x64

/* Status register (port 0x64 read). */
#define I8042_STR_OBF     0x01 /* output buffer full */
#define I8042_STR_IBF     0x02 /* input buffer full: never, we consume at once */
#define I8042_STR_SYSFLAG 0x04 /* system flag, set by self-test or the CCB */
#define I8042_STR_CMDDAT  0x08 /* last write went to the command port */
#define I8042_STR_KEYLOCK 0x10 /* 1 = keyboard not inhibited by the key lock */
#define I8042_STR_AUXDATA 0x20 /* output buffer holds AUX data */
#define I8042_STR_TIMEOUT 0x40
#define I8042_STR_PARITY  0x80

/* Controller command byte. */
#define I8042_CTR_KBDINT  0x01
#define I8042_CTR_AUXINT  0x02
#define I8042_CTR_SYSFLAG 0x04
#define I8042_CTR_IGNKEYLOCK 0x08
#define I8042_CTR_KBDDIS  0x10
#define I8042_CTR_AUXDIS  0x20
#define I8042_CTR_XLATE   0x40

/* Output port (commands 0xD0/0xD1). */
#define I8042_OUT_RESET   0x01 /* active low: 0 holds the CPU in reset */
#define I8042_OUT_A20     0x02

/* Controller commands. */
#define I8042_CMD_READ_RAM   0x20 /* 0x20..0x3F: byte 0 is the command byte */
#define I8042_CMD_WRITE_RAM  0x60 /* 0x60..0x7F, followed by a data byte */
#define I8042_CMD_AUX_DISABLE 0xA7
#define I8042_CMD_AUX_ENABLE 0xA8
#define I8042_CMD_AUX_TEST   0xA9
#define I8042_CMD_CTL_TEST   0xAA
#define I8042_CMD_KBD_TEST   0xAB
#define I8042_CMD_KBD_DISABLE 0xAD
#define I8042_CMD_KBD_ENABLE 0xAE
#define I8042_CMD_READ_OUTPORT  0xD0
#define I8042_CMD_WRITE_OUTPORT 0xD1
#define I8042_CMD_KBD_LOOP   0xD2 /* next data byte comes back as keyboard data */
#define I8042_CMD_AUX_LOOP   0xD3 /* next data byte comes back as AUX data */
#define I8042_CMD_AUX_SEND   0xD4 /* next data byte goes to the AUX device */
#define I8042_CMD_PULSE      0xF0 /* 0xF0..0xFF: pulse output port bits 0..3 whose mask bit is 0 */

#define I8042_RET_CTL_TEST   0x55
#define I8042_RET_PORT_OK    0x00 /* 0xA9/0xAB interface test passed */
#define I8042_RET_NO_DEVICE  0xFE

/* The state a PC BIOS leaves: self-test passed, keyboard enabled with
 * scancode translation and its interrupt on, AUX port off until the OS
 * probes it. */
#define I8042_CTR_BOOT (I8042_CTR_KBDINT | I8042_CTR_SYSFLAG | I8042_CTR_AUXDIS | I8042_CTR_XLATE)

static void i8042_update_irq(struct i8042 *k)
{
    bool full = k->status & I8042_STR_OBF;
    bool aux = k->status & I8042_STR_AUXDATA;
    int kbd_level = full && !aux && (k->ccb & I8042_CTR_KBDINT);
    int aux_level = full && aux && (k->ccb & I8042_CTR_AUXINT);

    if (kbd_level != k->kbd_level) {
        k->kbd_level = kbd_level;
        irq_set(&k->kbd_irq, kbd_level);
    }
    if (aux_level != k->aux_level) {
        k->aux_level = aux_level;
        irq_set(&k->aux_irq, aux_level);
    }
}

static void i8042_output(struct i8042 *k, uint8_t byte, bool aux, bool timeout)
{
    k->obuf = byte;
    k->status &= ~(I8042_STR_AUXDATA | I8042_STR_TIMEOUT);
    k->status |= I8042_STR_OBF | (aux ? I8042_STR_AUXDATA : 0) |
                 (timeout ? I8042_STR_TIMEOUT : 0);
}

static void i8042_write_ccb(struct i8042 *k, uint8_t ccb)
{
    k->ccb = ccb;
    k->status = (k->status & ~I8042_STR_SYSFLAG) | (ccb & I8042_CTR_SYSFLAG ? I8042_STR_SYSFLAG : 0);
}

static void i8042_write_outport(struct i8042 *k, uint8_t val)
{
    k->outport = val;
    if (!(val & I8042_OUT_RESET))
        k->ctl->reset_requested = true;
}

static void i8042_command(struct i8042 *k, uint8_t cmd)
{
    k->pending_cmd = 0;
    if (cmd >= I8042_CMD_PULSE) {
        /* A 0 in the low nibble pulses that output port line low; only
         * bit 0, the reset line, is connected to anything. */
        if (!(cmd & I8042_OUT_RESET))
            k->ctl->reset_requested = true;
        return;
    }
    if (cmd >= I8042_CMD_READ_RAM && cmd < I8042_CMD_READ_RAM + 0x20) {
        /* Only byte 0 (the command byte) of the internal RAM means anything. */
        i8042_output(k, cmd == I8042_CMD_READ_RAM ? k->ccb : 0, false, false);
        return;
    }
    if (cmd >= I8042_CMD_WRITE_RAM && cmd < I8042_CMD_WRITE_RAM + 0x20) {
        k->pending_cmd = cmd;
        return;
    }
    switch (cmd) {
    case I8042_CMD_AUX_DISABLE:
        k->ccb |= I8042_CTR_AUXDIS;
        break;
    case I8042_CMD_AUX_ENABLE:
        k->ccb &= ~I8042_CTR_AUXDIS;
        break;
    case I8042_CMD_AUX_TEST:
    case I8042_CMD_KBD_TEST:
        i8042_output(k, I8042_RET_PORT_OK, false, false);
        break;
    case I8042_CMD_CTL_TEST:
        k->status |= I8042_STR_SYSFLAG;
        i8042_output(k, I8042_RET_CTL_TEST, false, false);
        break;
    case I8042_CMD_KBD_DISABLE:
        k->ccb |= I8042_CTR_KBDDIS;
        break;
    case I8042_CMD_KBD_ENABLE:
        k->ccb &= ~I8042_CTR_KBDDIS;
        break;
    case I8042_CMD_READ_OUTPORT:
        i8042_output(k, k->outport, false, false);
        break;
    case I8042_CMD_WRITE_OUTPORT:
    case I8042_CMD_KBD_LOOP:
    case I8042_CMD_AUX_LOOP:
    case I8042_CMD_AUX_SEND:
        k->pending_cmd = cmd;
        break;
    default: /* unknown or vendor-specific: no effect */
        break;
    }
}

static void i8042_data(struct i8042 *k, uint8_t val)
{
    uint8_t cmd = k->pending_cmd;

    k->pending_cmd = 0;
    if (cmd >= I8042_CMD_WRITE_RAM && cmd < I8042_CMD_WRITE_RAM + 0x20) {
        if (cmd == I8042_CMD_WRITE_RAM)
            i8042_write_ccb(k, val);
        return;
    }
    switch (cmd) {
    case I8042_CMD_WRITE_OUTPORT:
        i8042_write_outport(k, val);
        break;
    case I8042_CMD_KBD_LOOP:
        i8042_output(k, val, false, false);
        break;
    case I8042_CMD_AUX_LOOP:
        i8042_output(k, val, true, false);
        break;
    case I8042_CMD_AUX_SEND:
        i8042_output(k, I8042_RET_NO_DEVICE, true, true);
        break;
    default: /* no command pending: the byte is for the (absent) keyboard */
        i8042_output(k, I8042_RET_NO_DEVICE, false, true);
        break;
    }
}

static uint32_t i8042_read(struct i8042 *k, uint16_t port)
{
    uint8_t val;

    switch (port) {
    case I8042_DATA_PORT:
        /* An empty buffer reads back the last byte, which still sits in the
         * latch. */
        val = k->obuf;
        k->status &= ~(I8042_STR_OBF | I8042_STR_AUXDATA | I8042_STR_TIMEOUT);
        i8042_update_irq(k);
        return val;
    case I8042_CMD_PORT:
        return k->status;
    default:
        return 0xFF;
    }
}

static void i8042_write(struct i8042 *k, uint16_t port, uint32_t val)
{
    switch (port) {
    case I8042_DATA_PORT:
        k->status &= ~I8042_STR_CMDDAT;
        i8042_data(k, (uint8_t)val);
        break;
    case I8042_CMD_PORT:
        k->status |= I8042_STR_CMDDAT;
        i8042_command(k, (uint8_t)val);
        break;
    default:
        return;
    }
    i8042_update_irq(k);
}

static uint32_t i8042_data_read(void *opaque, uint16_t off, unsigned size)
{
    (void)off;
    (void)size;
    return i8042_read(opaque, I8042_DATA_PORT);
}

static void i8042_data_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    (void)off;
    (void)size;
    i8042_write(opaque, I8042_DATA_PORT, val);
}

static uint32_t i8042_cmd_read(void *opaque, uint16_t off, unsigned size)
{
    (void)off;
    (void)size;
    return i8042_read(opaque, I8042_CMD_PORT);
}

static void i8042_cmd_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    (void)off;
    (void)size;
    i8042_write(opaque, I8042_CMD_PORT, val);
}

static const struct io_ops i8042_data_ops = { .read = i8042_data_read, .write = i8042_data_write };
static const struct io_ops i8042_cmd_ops = { .read = i8042_cmd_read, .write = i8042_cmd_write };

int i8042_register(struct i8042 *k, struct iobus *bus)
{
    int err = iobus_register(bus, I8042_DATA_PORT, 1, &i8042_data_ops, k);
    return err ? err : iobus_register(bus, I8042_CMD_PORT, 1, &i8042_cmd_ops, k);
}

void i8042_init(struct i8042 *k, struct platform_ctl *ctl)
{
    *k = (struct i8042){
        .ctl = ctl,
        .status = I8042_STR_SYSFLAG | I8042_STR_KEYLOCK,
        .ccb = I8042_CTR_BOOT,
        .outport = I8042_OUT_RESET | I8042_OUT_A20,
    };
}
