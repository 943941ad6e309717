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
    /* Optional: the byte a 1-byte read of `off` would return now, if that
     * read has no side effects and its value changes only through this
     * device's own port accesses; else -1. */
    int (*peek)(void *opaque, uint16_t off);
};

#define IOBUS_MAX_RANGES 64

struct io_range {
    uint16_t base, len;
    const struct io_ops *ops;
    void *opaque;
};

/*
 * The fast-read table: one entry per port, IOBUS_FAST_VALID | the byte a
 * 1-byte read returns, where that read has no side effects and nothing but
 * an access to the port's own device can change it (unclaimed ports, port
 * 0x80, the PIC's mask register), else 0.  Translated code reads a port
 * through it without leaving the translation cache; the bus refreshes a
 * device's entries after every access to that device.
 */
#define IOBUS_FAST_VALID 0x100u
#define IOBUS_PORTS 0x10000u

struct iobus {
    struct io_range ranges[IOBUS_MAX_RANGES];
    unsigned nranges;
    uint16_t *fast;     /* IOBUS_PORTS entries, or NULL */
};

/* Returns 0, -EINVAL for an empty range or one past port 0xFFFF, -EEXIST on
 * overlap, -ENOSPC when full. */
int iobus_register(struct iobus *bus, uint16_t base, uint16_t len,
                   const struct io_ops *ops, void *opaque);
/* A 2- or 4-byte access goes whole to the range holding its first port.
 * Unclaimed ports read as all ones and ignore writes, as on a PC. */
uint32_t iobus_read(struct iobus *bus, uint16_t port, unsigned size);
void iobus_write(struct iobus *bus, uint16_t port, unsigned size, uint32_t val);
/* Start keeping `table` (IOBUS_PORTS entries) as the fast-read table. */
void iobus_set_fast(struct iobus *bus, uint16_t *table);

/* ---- MMIO bus: guest physical ranges that are not RAM ------------------------- */

struct mmio_ops {
    /* off is relative to the registered base; size is 1, 2 or 4. */
    uint32_t (*read)(void *opaque, uint32_t off, unsigned size);
    void (*write)(void *opaque, uint32_t off, unsigned size, uint32_t val);
};

#define MMIO_MAX_RANGES 16

struct mmio_range {
    uint32_t base, len;
    const struct mmio_ops *ops;
    void *opaque;
};

struct mmio_bus {
    struct mmio_range ranges[MMIO_MAX_RANGES];
    unsigned nranges;
};

int mmio_register(struct mmio_bus *bus, uint32_t base, uint32_t len,
                  const struct mmio_ops *ops, void *opaque);
/* Unclaimed addresses read as all ones and ignore writes (a PCI master abort). */
uint32_t mmio_read(struct mmio_bus *bus, uint32_t gpa, unsigned size);
void mmio_write(struct mmio_bus *bus, uint32_t gpa, unsigned size, uint32_t val);

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
 * kbd_irq and aux_irq are unconnected after i8042_init; the machine wires
 * them to IRQ 1 and IRQ 12. */
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

/* PCI configuration mechanism #1 with an empty bus (0xCF8, 0xCFC-0xCFF). */
struct pci_host {
    uint32_t config_address;
};
int pci_host_register(struct pci_host *h, struct iobus *bus);

/* PCI reset control register at 0xCF9: writing bit 2 with bit 1 set resets. */
struct resetcf9 {
    struct platform_ctl *ctl;
    uint8_t reg;
};
void resetcf9_init(struct resetcf9 *r, struct platform_ctl *ctl);
extern const struct io_ops resetcf9_io_ops;    /* registered at 0xCF9, len 1 */

/* ---- virtual clock ----------------------------------------------------- */

/* The machine's virtual time in nanoseconds, never decreasing.  Devices that
 * keep time read it only through this, never the host's clocks, so unit tests
 * step it by hand. */
struct clock {
    uint64_t (*now_ns)(void *opaque);
    void *opaque;
};

static inline uint64_t clock_now(const struct clock *c)
{
    return c->now_ns(c->opaque);
}

/* ---- 8259A interrupt controller pair ----------------------------------- */

/* One 8259A.  Request bits are indexed by the chip's IR input (0..7). */
struct i8259 {
    uint8_t lines;         /* current levels on the IR inputs */
    uint8_t irr;           /* edge-triggered requests latched on a 0->1 input transition;
                              level-triggered IRs read their line instead */
    uint8_t isr, imr;
    uint8_t elcr;          /* ELCR: 1 = level-triggered IR (ICW1.LTIM forces all) */
    uint8_t elcr_mask;     /* IRs whose ELCR bit is writable */
    uint8_t vector_base;   /* ICW2, low three bits clear */
    uint8_t lowest;        /* IR with the lowest priority: 7 until a rotation moves it */
    uint8_t init_step;     /* ICW expected next on the data port (2..4), 0 when operational */
    bool icw4_needed, single, ltim;
    bool auto_eoi, rotate_on_aeoi, sfnm;
    bool special_mask;     /* OCW3 SMM: masked IRs' in-service bits do not block */
    bool read_isr;         /* OCW3 RR/RIS: command port reads ISR rather than IRR */
    bool poll;             /* OCW3 P: the next read is a poll */
};

/* Master (ports 0x20/0x21, vector IRQ 0-7) and slave (0xA0/0xA1, IRQ 8-15)
 * cascaded on master IR2, and the ELCR pair at 0x4D0/0x4D1. */
struct i8259_pair {
    struct i8259 chip[2];  /* [0] master, [1] slave */
    struct irq_line intr;  /* the master's INT pin to the CPU; may be unconnected */
    int intr_level;        /* last level driven on intr */
};

/* Leaves the pair as a PC BIOS does: vectors 0x08 and 0x70, 8086 mode, every
 * IRQ masked but the cascade, all edge-triggered. */
void i8259_init(struct i8259_pair *p, struct irq_line intr);
int i8259_register(struct i8259_pair *p, struct iobus *bus);
/* Drive ISA IRQ line irq (0..15; 2 is the internal cascade and is ignored). */
void i8259_set_irq(struct i8259_pair *p, unsigned irq, int level);
struct irq_line i8259_irq_line(struct i8259_pair *p, unsigned irq);
/* The INT output: an unmasked request outranks everything in service. */
bool i8259_has_interrupt(const struct i8259_pair *p);
/* The INTA cycle: returns the vector (spurious IR7 of the master or slave if
 * the request went away) and moves the request from IRR to ISR. */
int i8259_acknowledge(struct i8259_pair *p);

/* ---- 8254 interval timer and port B ------------------------------------ */

#define I8254_HZ 1193182u

struct i8254_channel {
    uint32_t cr;           /* count register: last initial count written, 1..65536 (10000 BCD) */
    uint32_t n;            /* initial count of the run in the counting element */
    uint8_t mode;          /* M2..M0 as written (6 and 7 act as 2 and 3) */
    uint8_t rw;            /* RW1..RW0: I8254_RW_LSB, _MSB or _WORD */
    bool bcd;
    bool gate;
    bool has_count;        /* a count was written since the last control word */
    bool armed;            /* the counting element holds a count: OUT has left its initial state */
    bool running;          /* the counting element is decrementing */
    bool null_count;       /* status NULL COUNT: CR written but not yet in the counting element */
    uint64_t start_ns;     /* when the current stretch of counting began */
    uint64_t base_ticks;   /* clocks counted before start_ns (modes 0 and 4 across gate pauses) */
    bool reload_pending;   /* modes 2/3: a count written mid-run takes over at the period's end */
    uint64_t reload_ns;
    bool write_msb_next, read_msb_next; /* byte pointers of two-byte accesses */
    uint8_t write_lsb;
    uint8_t latch_state;   /* bytes of latched count still to read, as an RW code; 0 if none */
    uint16_t latch;
    bool status_latched;
    uint8_t status;
};

struct i8254 {
    struct i8254_channel ch[3];
    struct clock clock;
    struct irq_line irq0;  /* channel 0 OUT */
    int irq_level;         /* last level driven on irq0 */
    uint64_t irq_next_ns;  /* next rising edge of channel 0 OUT after the last update */
    uint8_t port_b;        /* port 0x61 bits 0-3 as written */
};

/* Reset state as QEMU and PC BIOSes leave it: every channel in mode 3 with
 * count 65536, channels 0 and 1 running (18.2 Hz), channel 2 gated off. */
void i8254_init(struct i8254 *p, struct clock clock, struct irq_line irq0);
/* Claims 0x40-0x43 and port B at 0x61. */
int i8254_register(struct i8254 *p, struct iobus *bus);
/* Bring IRQ 0 up to date with the clock.  If several rising edges of OUT
 * passed since the last call, one edge is delivered: a periodic guest timer
 * loses the others, which Linux tolerates (it counts lost ticks). */
void i8254_update(struct i8254 *p);
/* Absolute virtual time of the next IRQ 0 rising edge not yet delivered
 * (possibly already past: call i8254_update), UINT64_MAX if none is coming. */
uint64_t i8254_next_event_ns(const struct i8254 *p);

/* ---- MC146818 real-time clock and CMOS RAM ----------------------------- */

#define MC146818_CMOS_SIZE 128

struct mc146818 {
    struct clock clock;
    struct irq_line irq;   /* IRQ 8 */
    int irq_level;
    uint8_t index;         /* port 0x70 as written: bit 7 NMI disable (kept, unused), 6-0 register */
    uint8_t cmos[MC146818_CMOS_SIZE]; /* time registers are authoritative here only while the
                                         clock is stopped (SET, or the divider in reset) */
    int64_t epoch_ns;      /* divider chain origin: seconds end at epoch_ns + k s */
    int64_t base_s;        /* guest time (seconds since 1970) at epoch_ns while the clock runs */
    int64_t last_second;   /* divider seconds at the last sync (UF and AF bookkeeping) */
    int64_t last_period;   /* periodic-interrupt periods at the last sync (PF bookkeeping) */
};

/* wall_seconds: the time the RTC shows now, in seconds since 1970 (UTC for a
 * Linux guest); it then advances with clock.  ram_bytes fills the standard
 * memory-size bytes. */
void mc146818_init(struct mc146818 *r, struct clock clock, int64_t wall_seconds,
                   uint64_t ram_bytes, struct irq_line irq);
int mc146818_register(struct mc146818 *r, struct iobus *bus);  /* 0x70-0x71 */
/* Bring the interrupt flags and IRQ 8 up to date with the clock. */
void mc146818_update(struct mc146818 *r);
/* Absolute virtual time at which IRQ 8 can next rise (past: call
 * mc146818_update), UINT64_MAX if it cannot without the guest's help. */
uint64_t mc146818_next_event_ns(const struct mc146818 *r);

#endif
