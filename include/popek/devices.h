/*
 * Platform devices and the buses that connect them to the vCPU.
 *
 * Each device lives in its own file under src/devices/ with its own state
 * struct.  Devices register port ranges on an I/O bus through an ops table and
 * an opaque pointer; they never call one another.  Interrupt outputs are
 * `struct irq_line` objects; requests that concern the whole machine (exit,
 * reset) go through `struct platform_ctl`, which the run loop polls after every
 * I/O callout.  Time is injected: devices that need it read a virtual clock
 * passed to them, so unit tests step time deterministically.
 */
#ifndef POPEK_DEVICES_H
#define POPEK_DEVICES_H

#include <stdbool.h>
#include <stdint.h>

/* ---- I/O port bus ------------------------------------------------------ */

struct io_ops {
    /* off is relative to the registered base; size is 1, 2 or 4. */
    uint32_t (*read)(void *opaque, uint16_t off, unsigned size);
    void (*write)(void *opaque, uint16_t off, unsigned size, uint32_t val);
};

#define IOBUS_MAX_RANGES 64

struct io_range {
    uint16_t base, len;
    const struct io_ops *ops;
    void *opaque;
};

struct iobus {
    struct io_range ranges[IOBUS_MAX_RANGES];
    unsigned nranges;
};

/* Returns 0, -EINVAL for an empty range or one past port 0xFFFF, -EEXIST on
 * overlap, -ENOSPC when full. */
int iobus_register(struct iobus *bus, uint16_t base, uint16_t len,
                   const struct io_ops *ops, void *opaque);
/* A 2- or 4-byte access goes whole to the range holding its first port.
 * Unclaimed ports read as all ones and ignore writes, as on a PC. */
uint32_t iobus_read(struct iobus *bus, uint16_t port, unsigned size);
void iobus_write(struct iobus *bus, uint16_t port, unsigned size, uint32_t val);

/* ---- interrupt lines --------------------------------------------------- */

struct irq_line {
    void (*set)(void *opaque, unsigned line, int level);
    void *opaque;
    unsigned line;
};

static inline void irq_set(const struct irq_line *l, int level)
{
    if (l && l->set)
        l->set(l->opaque, l->line, level);
}

/* ---- machine-wide requests ----------------------------------------------- */

/* Written by devices, read and cleared by the run loop after each I/O exit. */
struct platform_ctl {
    bool exit_requested;   /* isa-debug-exit */
    int exit_status;
    bool reset_requested;  /* i8042 0xFE, port 0xCF9, triple fault */
};

/* ---- character backend (the UART's terminal) ------------------------------ */

struct chardev {
    void (*write)(void *opaque, uint8_t byte);
    /* Returns the next received byte, or -1 if none is waiting. */
    int (*read)(void *opaque);
    void *opaque;
};

/* ---- 16550A UART ---------------------------------------------------------- */

#define UART_FIFO_SIZE 16

struct uart16550 {
    uint8_t rbr_fifo[UART_FIFO_SIZE]; /* receive FIFO; holds one byte in 16450 (FIFO-off) mode */
    unsigned rx_head, rx_count;
    uint8_t rbr;                       /* last byte popped: what RBR reads when empty */
    uint8_t ier;                       /* low 4 bits only, as on the 16550A */
    uint8_t fcr;                       /* persistent FCR bits: FIFO enable, DMA mode, RX trigger */
    uint8_t lcr, mcr;
    uint8_t lsr;                       /* sticky error bits (OE); DR, THRE, TEMT are derived */
    uint8_t msr;                       /* modem status lines (high nibble) and deltas (low) */
    uint8_t scr;
    uint16_t divisor;                  /* DLL/DLM, visible when LCR.DLAB */
    bool thr_ipending;                 /* THRE interrupt pending until IIR read or THR write */
    int irq_level;                     /* last level driven on irq */
    struct irq_line irq;
    struct chardev *chr;               /* may be NULL: output dropped, no input */
};

void uart16550_init(struct uart16550 *u, struct chardev *chr, struct irq_line irq);
/* Pull waiting bytes from the backend into the receive FIFO, as many as fit. */
void uart16550_poll_rx(struct uart16550 *u);
extern const struct io_ops uart16550_io_ops;   /* registered at 0x3F8, len 8 */

/* ---- small devices --------------------------------------------------------- */

/* QEMU's isa-debug-exit: a write of v requests exit with status (v << 1) | 1. */
struct debug_exit {
    struct platform_ctl *ctl;
};
void debug_exit_init(struct debug_exit *d, struct platform_ctl *ctl);
extern const struct io_ops debug_exit_io_ops;  /* registered at 0xF4, len 4 */

/* Port 0x80 POST code: writes are remembered, reads return all ones (as QEMU). */
struct port80 {
    uint8_t last;
};
extern const struct io_ops port80_io_ops;      /* registered at 0x80, len 1 */

/* Intel 8042 keyboard controller with no keyboard or mouse attached, enough for
 * Linux's probe and reboot: command 0xFE pulses the reset line; 0xAA self-test
 * answers 0x55; bytes sent to the absent devices are answered with a timeout.
 * kbd_irq (IRQ 1) and aux_irq (IRQ 12) are unconnected after i8042_init; the
 * machine sets them if it wires the controller's interrupts. */
struct i8042 {
    struct platform_ctl *ctl;
    struct irq_line kbd_irq, aux_irq;
    uint8_t status;        /* port 0x64 read */
    uint8_t obuf;          /* output buffer (port 0x60 read), valid while status.OBF */
    uint8_t ccb;           /* controller command byte */
    uint8_t outport;       /* output port (commands 0xD0/0xD1): reset line, A20 gate */
    uint8_t pending_cmd;   /* command waiting for its data byte, 0 if none */
    int kbd_level, aux_level; /* last levels driven on the irq lines */
};
void i8042_init(struct i8042 *k, struct platform_ctl *ctl);
/* Claims ports 0x60 and 0x64 (not 0x61-0x63: port B belongs to the PIT). */
int i8042_register(struct i8042 *k, struct iobus *bus);

/* PCI reset control register at 0xCF9: writing bit 2 with bit 1 set resets. */
struct resetcf9 {
    struct platform_ctl *ctl;
    uint8_t reg;
};
void resetcf9_init(struct resetcf9 *r, struct platform_ctl *ctl);
extern const struct io_ops resetcf9_io_ops;    /* registered at 0xCF9, len 1 */

#endif
