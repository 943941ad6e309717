/*
 * National Semiconductor PC16550D / 16550A UART, as COM1 of a PC.
 *
 * The line is a host character device (stdio in practice) that is infinitely
 * fast: a byte written to THR goes to chr->write at once, so THR and the
 * transmitter shift register are always empty (LSR.THRE and LSR.TEMT read 1)
 * and there is no transmit FIFO to model.  With character times of zero, the
 * receive FIFO's character timeout (4 character times without activity) has
 * always expired, so bytes sitting below the trigger level raise the timeout
 * interrupt immediately; this is what lets a Linux guest, which sets the
 * trigger to 8, see a single typed key.
 *
 * Input is flow-controlled rather than lost: uart16550_poll_rx takes bytes
 * from the backend only while the receive FIFO (one byte deep with FIFOs off,
 * as on a 16450) has room, and leaves the rest waiting in the backend.  An
 * overrun (LSR.OE) therefore only happens in loopback mode, where the guest
 * itself feeds the receiver faster than it drains it.
 *
 * Loopback (MCR.LOOP) wires the chip to itself as the datasheet describes:
 * THR bytes go to the receiver instead of the line, the line's input is
 * ignored (typed bytes stay in the backend), and the modem status inputs
 * follow the MCR outputs (RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD).
 *
 * The interrupt output reaches the PIC only through the PC's OUT2 gate: the
 * INTR signal is driven onto the ISA IRQ line by a buffer enabled by the OUT2
 * pin.  In loopback the chip forces its modem outputs inactive, which closes
 * that gate too, so interrupts raised in loopback stay inside the chip.
 * uart16550_update_irq is the one place that recomputes the level; every
 * register access and every poll ends with it.
 */
#include "popek/devices.h"

/* Register offsets from the base port (DLAB selects DLL/DLM at 0 and 1). */
enum {
    UART_RBR = 0, /* read, DLAB=0 */
    UART_THR = 0, /* write, DLAB=0 */
    UART_DLL = 0, /* DLAB=1 */
    UART_IER = 1, /* DLAB=0 */
    UART_DLM = 1, /* DLAB=1 */
    UART_IIR = 2, /* read */
    UART_FCR = 2, /* write */
    UART_LCR = 3,
    UART_MCR = 4,
    UART_LSR = 5,
    UART_MSR = 6,
    UART_SCR = 7,
    UART_NREGS = 8,
};

#define UART_IER_ERBFI 0x01 /* received data available */
#define UART_IER_ETBEI 0x02 /* transmitter holding register empty */
#define UART_IER_ELSI  0x04 /* receiver line status */
#define UART_IER_EDSSI 0x08 /* modem status */
#define UART_IER_MASK  0x0F

#define UART_IIR_NO_INT 0x01
#define UART_IIR_MSI    0x00 /* modem status */
#define UART_IIR_THRI   0x02 /* THR empty */
#define UART_IIR_RDI    0x04 /* received data available */
#define UART_IIR_RLSI   0x06 /* receiver line status */
#define UART_IIR_CTI    0x0C /* character timeout */
#define UART_IIR_FIFOS  0xC0 /* both bits set when FCR0 is set */

#define UART_FCR_FE        0x01 /* FIFO enable */
#define UART_FCR_RFR       0x02 /* receiver FIFO reset, self-clearing */
#define UART_FCR_TFR       0x04 /* transmitter FIFO reset, self-clearing */
#define UART_FCR_DMS       0x08 /* DMA mode select */
#define UART_FCR_RT_MASK   0xC0 /* receiver trigger level */
#define UART_FCR_RT_SHIFT  6

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR  0x01
#define UART_MCR_RTS  0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_MCR_MASK 0x1F

#define UART_LSR_DR   0x01
#define UART_LSR_OE   0x02
#define UART_LSR_PE   0x04
#define UART_LSR_FE   0x08
#define UART_LSR_BI   0x10
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_LSR_ERRORS (UART_LSR_OE | UART_LSR_PE | UART_LSR_FE | UART_LSR_BI)

#define UART_MSR_DCTS   0x01
#define UART_MSR_DDSR   0x02
#define UART_MSR_TERI   0x04
#define UART_MSR_DDCD   0x08
#define UART_MSR_DELTAS 0x0F
#define UART_MSR_CTS    0x10
#define UART_MSR_DSR    0x20
#define UART_MSR_RI     0x40
#define UART_MSR_DCD    0x80

/* The host terminal is always there and ready: CTS, DSR and DCD asserted. */
#define UART_MSR_HOST_LINES (UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD)

/* Divisor for 9600 baud from the 1.8432 MHz clock, what a PC BIOS leaves in
 * COM1.  It must not be 0: Linux's probe_baud() divides by it when a console
 * is given without a speed. */
#define UART_DIVISOR_9600 12

static bool uart16550_fifo_enabled(const struct uart16550 *u)
{
    return u->fcr & UART_FCR_FE;
}

static unsigned uart16550_rx_capacity(const struct uart16550 *u)
{
    return uart16550_fifo_enabled(u) ? UART_FIFO_SIZE : 1;
}

static unsigned uart16550_rx_trigger(const struct uart16550 *u)
{
    static const unsigned levels[4] = { 1, 4, 8, 14 };
    return levels[(u->fcr & UART_FCR_RT_MASK) >> UART_FCR_RT_SHIFT];
}

/* The highest-priority pending interrupt, as the IIR identification bits. */
static uint8_t uart16550_pending(const struct uart16550 *u)
{
    if ((u->ier & UART_IER_ELSI) && (u->lsr & UART_LSR_ERRORS))
        return UART_IIR_RLSI;
    if ((u->ier & UART_IER_ERBFI) && u->rx_count) {
        if (uart16550_fifo_enabled(u) && u->rx_count < uart16550_rx_trigger(u))
            return UART_IIR_CTI;
        return UART_IIR_RDI;
    }
    if ((u->ier & UART_IER_ETBEI) && u->thr_ipending)
        return UART_IIR_THRI;
    if ((u->ier & UART_IER_EDSSI) && (u->msr & UART_MSR_DELTAS))
        return UART_IIR_MSI;
    return UART_IIR_NO_INT;
}

static void uart16550_update_irq(struct uart16550 *u)
{
    bool gate = (u->mcr & (UART_MCR_OUT2 | UART_MCR_LOOP)) == UART_MCR_OUT2;
    int level = gate && uart16550_pending(u) != UART_IIR_NO_INT;

    if (level != u->irq_level) {
        u->irq_level = level;
        irq_set(&u->irq, level);
    }
}

/* A character arrives from the shift register.  A full FIFO keeps its
 * contents and loses the new byte; the 16450's single holding register is
 * overwritten instead.  Either way the loss is an overrun. */
static void uart16550_rx_push(struct uart16550 *u, uint8_t byte)
{
    if (u->rx_count == uart16550_rx_capacity(u)) {
        u->lsr |= UART_LSR_OE;
        if (uart16550_fifo_enabled(u))
            return;
        u->rx_count = 0;
    }
    u->rbr_fifo[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = byte;
    u->rx_count++;
}

static void uart16550_rx_reset(struct uart16550 *u)
{
    u->rx_head = 0;
    u->rx_count = 0;
}

/* Modem status inputs: the MCR outputs in loopback, the host line otherwise. */
static uint8_t uart16550_modem_lines(const struct uart16550 *u)
{
    if (!(u->mcr & UART_MCR_LOOP))
        return UART_MSR_HOST_LINES;
    return (u->mcr & UART_MCR_RTS ? UART_MSR_CTS : 0) |
           (u->mcr & UART_MCR_DTR ? UART_MSR_DSR : 0) |
           (u->mcr & UART_MCR_OUT1 ? UART_MSR_RI : 0) |
           (u->mcr & UART_MCR_OUT2 ? UART_MSR_DCD : 0);
}

/* Latch new modem inputs, accumulating the deltas until MSR is read.  RI
 * only reports its trailing edge (TERI), as on the chip. */
static void uart16550_update_msr(struct uart16550 *u)
{
    uint8_t lines = uart16550_modem_lines(u);
    uint8_t changed = lines ^ u->msr;
    uint8_t deltas = 0;

    if (changed & UART_MSR_CTS)
        deltas |= UART_MSR_DCTS;
    if (changed & UART_MSR_DSR)
        deltas |= UART_MSR_DDSR;
    if ((changed & UART_MSR_RI) && !(lines & UART_MSR_RI))
        deltas |= UART_MSR_TERI;
    if (changed & UART_MSR_DCD)
        deltas |= UART_MSR_DDCD;
    u->msr = lines | (u->msr & UART_MSR_DELTAS) | deltas;
}

void uart16550_poll_rx(struct uart16550 *u)
{
    /* In loopback the receiver listens to THR, not to the line. */
    if (u->chr && u->chr->read && !(u->mcr & UART_MCR_LOOP)) {
        while (u->rx_count < uart16550_rx_capacity(u)) {
            int c = u->chr->read(u->chr->opaque);
            if (c < 0)
                break;
            uart16550_rx_push(u, (uint8_t)c);
        }
    }
    uart16550_update_irq(u);
}

static uint8_t uart16550_read_reg(struct uart16550 *u, unsigned reg)
{
    uint8_t val;

    switch (reg) {
    case UART_RBR:
        if (u->lcr & UART_LCR_DLAB)
            return u->divisor & 0xFF;
        uart16550_poll_rx(u);
        if (u->rx_count) {
            u->rbr = u->rbr_fifo[u->rx_head];
            u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
            u->rx_count--;
        }
        return u->rbr;
    case UART_IER:
        if (u->lcr & UART_LCR_DLAB)
            return u->divisor >> 8;
        return u->ier;
    case UART_IIR:
        val = uart16550_pending(u);
        /* Reading IIR is how a THRE interrupt is acknowledged, but only when
         * it is the one being reported. */
        if (val == UART_IIR_THRI)
            u->thr_ipending = false;
        return val | (uart16550_fifo_enabled(u) ? UART_IIR_FIFOS : 0);
    case UART_LCR:
        return u->lcr;
    case UART_MCR:
        return u->mcr;
    case UART_LSR:
        uart16550_poll_rx(u);
        val = u->lsr | UART_LSR_THRE | UART_LSR_TEMT | (u->rx_count ? UART_LSR_DR : 0);
        u->lsr &= ~UART_LSR_ERRORS;
        return val;
    case UART_MSR:
        val = u->msr;
        u->msr &= ~UART_MSR_DELTAS;
        return val;
    default: /* UART_SCR */
        return u->scr;
    }
}

static void uart16550_write_fcr(struct uart16550 *u, uint8_t val)
{
    /* Toggling FCR0 empties both FIFOs; the other bits only take when FCR0
     * is written as 1. */
    if ((val ^ u->fcr) & UART_FCR_FE)
        uart16550_rx_reset(u);
    if (!(val & UART_FCR_FE)) {
        u->fcr = 0;
        return;
    }
    if (val & UART_FCR_RFR)
        uart16550_rx_reset(u);
    u->fcr = val & (UART_FCR_FE | UART_FCR_DMS | UART_FCR_RT_MASK);
}

static void uart16550_write_reg(struct uart16550 *u, unsigned reg, uint8_t val)
{
    switch (reg) {
    case UART_THR:
        if (u->lcr & UART_LCR_DLAB) {
            u->divisor = (u->divisor & 0xFF00) | val;
            break;
        }
        if (u->mcr & UART_MCR_LOOP)
            uart16550_rx_push(u, val);
        else if (u->chr && u->chr->write)
            u->chr->write(u->chr->opaque, val);
        /* The byte has left already: THR is empty again, which raises a
         * fresh THRE interrupt (the write acknowledged the previous one). */
        u->thr_ipending = true;
        break;
    case UART_IER:
        if (u->lcr & UART_LCR_DLAB) {
            u->divisor = (u->divisor & 0x00FF) | (uint16_t)(val << 8);
            break;
        }
        /* Enabling ETBEI while THR is empty raises THRE at once; Linux's
         * serial8250_do_startup() checks for exactly this (UART_BUG_TXEN). */
        if ((val ^ u->ier) & UART_IER_ETBEI)
            u->thr_ipending = val & UART_IER_ETBEI;
        u->ier = val & UART_IER_MASK;
        break;
    case UART_FCR:
        uart16550_write_fcr(u, val);
        break;
    case UART_LCR:
        u->lcr = val;
        break;
    case UART_MCR:
        u->mcr = val & UART_MCR_MASK;
        uart16550_update_msr(u);
        break;
    case UART_SCR:
        u->scr = val;
        break;
    default: /* LSR and MSR are read-only (LSR writes are a factory test mode) */
        break;
    }
}

/* The 16550 sits on 8 data lines: a wide access is a run of byte accesses to
 * consecutive registers, and bytes past the last register float high. */
static uint32_t uart16550_io_read(void *opaque, uint16_t off, unsigned size)
{
    struct uart16550 *u = opaque;
    uint32_t val = 0;

    for (unsigned i = 0; i < size; i++) {
        unsigned reg = off + i;
        uint8_t byte = reg < UART_NREGS ? uart16550_read_reg(u, reg) : 0xFF;
        val |= (uint32_t)byte << (8 * i);
    }
    uart16550_update_irq(u);
    return val;
}

static void uart16550_io_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    struct uart16550 *u = opaque;

    for (unsigned i = 0; i < size && off + i < UART_NREGS; i++)
        uart16550_write_reg(u, off + i, (uint8_t)(val >> (8 * i)));
    uart16550_update_irq(u);
}

const struct io_ops uart16550_io_ops = {
    .read = uart16550_io_read,
    .write = uart16550_io_write,
};

void uart16550_init(struct uart16550 *u, struct chardev *chr, struct irq_line irq)
{
    *u = (struct uart16550){
        .divisor = UART_DIVISOR_9600,
        .msr = UART_MSR_HOST_LINES,
        .irq = irq,
        .chr = chr,
    };
}
