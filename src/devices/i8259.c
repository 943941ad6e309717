/*
 * Intel 8259A programmable interrupt controllers: the PC/AT master/slave pair
 * and the PIIX/ICH edge/level control registers (ELCR) that go with them.
 *
 *            IRQ 0,1,3..7                 IRQ 8..15
 *                 |                           |
 *   CPU INTR <-- master (0x20/0x21) <--IR2-- slave (0xA0/0xA1)
 *
 * Each chip keeps the datasheet's three registers (IRR, ISR, IMR) and its
 * priority state.  An input configured edge-triggered latches a request in
 * IRR on its 0->1 transition and keeps it until the INTA cycle takes it, even
 * if the line drops meanwhile; a level-triggered input (ELCR bit, or ICW1.LTIM
 * for the whole chip) requests for exactly as long as its line is high, so its
 * IRR bit is read straight from the line.  The slave's INT output is the
 * master's IR2 input and goes through the same edge logic, which is why
 * i8259_update() recomputes it after every change.
 *
 * Priority is the 8259A's rotating scheme: `lowest` names the IR with the
 * lowest priority and the others follow it cyclically, so the fully nested
 * default is lowest = 7.  A request reaches INT when it is unmasked and
 * outranks the highest-priority IR in service; special mask mode hides the
 * in-service bits of masked IRs, special fully nested mode lets the slave
 * interrupt its own in-service cascade.
 *
 * Only the 8086 interrupt-acknowledge protocol exists here: the vector is
 * ICW2's base plus the IR, whatever ICW4.uPM says (an 8080 CALL sequence means
 * nothing to an x86 CPU).  The wiring is fixed, one slave on IR2, so ICW3 is
 * accepted and ignored; buffered mode and ADI are likewise irrelevant.
 *
 * A request that vanishes before INTA (a level input dropped, a mask set,
 * another chip's state changed) yields the chip's IR7 vector without setting
 * any ISR bit: the spurious interrupt Linux recognises by reading ISR back.
 * For a slave-side spurious IRQ the master has still set ISR2, as on the real
 * pair, and Linux EOIs both chips.
 */
#include "popek/devices.h"

/* Command/IRR/ISR port; the data (IMR) port follows it. */
#define PIC_MASTER_CMD 0x20
#define PIC_SLAVE_CMD  0xA0
/* ELCR1, the master's; ELCR2 (the slave's) follows it. */
#define PIC_ELCR1      0x4D0

/* ICW1 (command port, D4 = 1). */
#define PIC_ICW1_IC4   0x01 /* ICW4 follows */
#define PIC_ICW1_SNGL  0x02 /* single chip: no ICW3 */
#define PIC_ICW1_LTIM  0x08 /* level-triggered inputs */
#define PIC_ICW1_INIT  0x10

/* ICW4. */
#define PIC_ICW4_AEOI  0x02
#define PIC_ICW4_SFNM  0x10

/* OCW2 (command port, D4 = D3 = 0): R, SL, EOI and the level L2..L0. */
#define PIC_OCW2_CMD_MASK     0xE0
#define PIC_OCW2_LEVEL_MASK   0x07
#define PIC_OCW2_ROTATE_AEOI_CLEAR 0x00
#define PIC_OCW2_EOI          0x20 /* non-specific EOI */
#define PIC_OCW2_NOP          0x40
#define PIC_OCW2_SPECIFIC_EOI 0x60
#define PIC_OCW2_ROTATE_AEOI_SET 0x80
#define PIC_OCW2_ROTATE_EOI   0xA0 /* rotate on non-specific EOI */
#define PIC_OCW2_SET_PRIORITY 0xC0
#define PIC_OCW2_ROTATE_SPECIFIC_EOI 0xE0

/* OCW3 (command port, D4 = 0, D3 = 1). */
#define PIC_OCW3_RIS   0x01 /* read ISR (with RR) rather than IRR */
#define PIC_OCW3_RR    0x02
#define PIC_OCW3_P     0x04 /* poll */
#define PIC_OCW3_SEL   0x08
#define PIC_OCW3_SMM   0x20 /* special mask mode (with ESMM) */
#define PIC_OCW3_ESMM  0x40

/* Poll word: I = an interrupt was pending, W2..W0 its IR. */
#define PIC_POLL_INT   0x80

#define PIC_CASCADE_IR 2
#define PIC_SPURIOUS_IR 7

/* ELCR bits that are hard-wired to edge: IRQ 0, 1, 2 on the master (timer,
 * keyboard, cascade) and IRQ 8 and 13 on the slave (RTC, FPU error). */
#define PIC_ELCR1_MASK 0xF8
#define PIC_ELCR2_MASK 0xDE

enum { PIC_MASTER = 0, PIC_SLAVE = 1 };

static uint8_t pic_level_mask(const struct i8259 *c)
{
    return c->ltim ? 0xFF : c->elcr;
}

/* IRR as the chip sees it: edge latches, plus the lines of level-triggered IRs. */
static uint8_t pic_irr(const struct i8259 *c)
{
    uint8_t level = pic_level_mask(c);
    return (uint8_t)((c->irr & ~level) | (c->lines & level));
}

/* 0 is the highest priority, 7 the lowest. */
static unsigned pic_priority(const struct i8259 *c, unsigned ir)
{
    return (ir - c->lowest - 1) & 7;
}

/* The highest-priority IR set in bits, or -1. */
static int pic_highest(const struct i8259 *c, uint8_t bits)
{
    for (unsigned p = 0; p < 8; p++) {
        unsigned ir = (c->lowest + 1 + p) & 7;
        if (bits & (1u << ir))
            return (int)ir;
    }
    return -1;
}

/* The IR this chip would hand to an INTA now, or -1: its INT output. */
static int pic_pending(const struct i8259 *c, bool master)
{
    int req = pic_highest(c, pic_irr(c) & ~c->imr);
    uint8_t in_service = c->isr;
    int cur;

    if (req < 0)
        return -1;
    if (c->special_mask)
        in_service &= ~c->imr;
    cur = pic_highest(c, in_service);
    if (cur >= 0) {
        unsigned pc = pic_priority(c, (unsigned)cur), pr = pic_priority(c, (unsigned)req);
        /* In special fully nested mode the master lets a second slave
         * request through while the cascade IR is in service: the slave
         * has already decided it outranks what the slave is serving. */
        bool nested = master && c->sfnm && req == PIC_CASCADE_IR;
        if (pc < pr || (pc == pr && !nested))
            return -1;
    }
    return req;
}

static void pic_set_input(struct i8259 *c, unsigned ir, int level)
{
    uint8_t bit = (uint8_t)(1u << ir);

    if (level) {
        if (!(c->lines & bit) && !(pic_level_mask(c) & bit))
            c->irr |= bit;
        c->lines |= bit;
    } else {
        c->lines &= (uint8_t)~bit;
    }
}

/* An IR whose trigger mode just became level follows its line from now on;
 * an edge latched before would otherwise resurface if it went back to edge. */
static void pic_drop_level_latches(struct i8259 *c)
{
    c->irr &= (uint8_t)~pic_level_mask(c);
}

/* INTA (or poll) takes request ir. */
static void pic_intack(struct i8259 *c, unsigned ir)
{
    uint8_t bit = (uint8_t)(1u << ir);

    c->irr &= (uint8_t)~bit;
    if (!c->auto_eoi)
        c->isr |= bit;
    else if (c->rotate_on_aeoi)
        c->lowest = (uint8_t)ir;
}

static void i8259_update(struct i8259_pair *p)
{
    int level;

    pic_set_input(&p->chip[PIC_MASTER], PIC_CASCADE_IR, pic_pending(&p->chip[PIC_SLAVE], false) >= 0);
    level = pic_pending(&p->chip[PIC_MASTER], true) >= 0;
    if (level != p->intr_level) {
        p->intr_level = level;
        irq_set(&p->intr, level);
    }
}

bool i8259_has_interrupt(const struct i8259_pair *p)
{
    return pic_pending(&p->chip[PIC_MASTER], true) >= 0;
}

int i8259_acknowledge(struct i8259_pair *p)
{
    struct i8259 *m = &p->chip[PIC_MASTER], *s = &p->chip[PIC_SLAVE];
    int ir = pic_pending(m, true);
    int vector;

    if (ir < 0) {
        vector = m->vector_base | PIC_SPURIOUS_IR;
    } else if (ir == PIC_CASCADE_IR && !m->single) {
        int sir = pic_pending(s, false);
        pic_intack(m, (unsigned)ir);
        if (sir < 0) {
            vector = s->vector_base | PIC_SPURIOUS_IR;
        } else {
            pic_intack(s, (unsigned)sir);
            vector = s->vector_base | sir;
        }
        /* The cascade input is edge-triggered and INTA consumed its latch.
         * If the slave still asserts INT (auto-EOI, special mask mode), that
         * is a new request for the master: present it as a fresh edge rather
         * than leave it stranded behind a line that never dropped. */
        pic_set_input(m, PIC_CASCADE_IR, 0);
    } else {
        pic_intack(m, (unsigned)ir);
        vector = m->vector_base | ir;
    }
    i8259_update(p);
    return vector;
}

void i8259_set_irq(struct i8259_pair *p, unsigned irq, int level)
{
    if (irq >= 16 || irq == PIC_CASCADE_IR)
        return;
    pic_set_input(&p->chip[irq >> 3], irq & 7, level);
    i8259_update(p);
}

static void i8259_irq_line_set(void *opaque, unsigned line, int level)
{
    i8259_set_irq(opaque, line, level);
}

struct irq_line i8259_irq_line(struct i8259_pair *p, unsigned irq)
{
    return (struct irq_line){ .set = i8259_irq_line_set, .opaque = p, .line = irq };
}

/* ---- register interface ---------------------------------------------------- */

static void pic_write_icw1(struct i8259 *c, uint8_t val)
{
    /* The datasheet's list: edge sense reset (a line already high must drop
     * and rise again), IMR cleared, IR7 lowest, special mask off, IRR
     * selected for reading, ICW4 functions cleared unless IC4.  ISR is not
     * on that list, but clearing it, as QEMU and Bochs do, keeps a
     * re-initialisation from leaving a stale in-service bit that would
     * block every lower IRQ forever. */
    c->irr = 0;
    c->isr = 0;
    c->imr = 0;
    c->lowest = 7;
    c->special_mask = false;
    c->read_isr = false;
    c->poll = false;
    c->rotate_on_aeoi = false;
    c->ltim = val & PIC_ICW1_LTIM;
    c->single = val & PIC_ICW1_SNGL;
    c->icw4_needed = val & PIC_ICW1_IC4;
    if (!c->icw4_needed) {
        c->auto_eoi = false;
        c->sfnm = false;
    }
    c->init_step = 2;
}

static void pic_write_ocw2(struct i8259 *c, uint8_t val)
{
    unsigned level = val & PIC_OCW2_LEVEL_MASK;
    int ir;

    switch (val & PIC_OCW2_CMD_MASK) {
    case PIC_OCW2_EOI:
    case PIC_OCW2_ROTATE_EOI:
        /* In special mask mode a masked IR's in-service bit is invisible
         * to a non-specific EOI (datasheet note to OCW2). */
        ir = pic_highest(c, c->special_mask ? c->isr & ~c->imr : c->isr);
        if (ir < 0)
            break;
        c->isr &= (uint8_t)~(1u << ir);
        if ((val & PIC_OCW2_CMD_MASK) == PIC_OCW2_ROTATE_EOI)
            c->lowest = (uint8_t)ir;
        break;
    case PIC_OCW2_SPECIFIC_EOI:
        c->isr &= (uint8_t)~(1u << level);
        break;
    case PIC_OCW2_ROTATE_SPECIFIC_EOI:
        c->isr &= (uint8_t)~(1u << level);
        c->lowest = (uint8_t)level;
        break;
    case PIC_OCW2_SET_PRIORITY:
        c->lowest = (uint8_t)level;
        break;
    case PIC_OCW2_ROTATE_AEOI_SET:
        c->rotate_on_aeoi = true;
        break;
    case PIC_OCW2_ROTATE_AEOI_CLEAR:
        c->rotate_on_aeoi = false;
        break;
    default: /* PIC_OCW2_NOP */
        break;
    }
}

static void pic_write_ocw3(struct i8259 *c, uint8_t val)
{
    if (val & PIC_OCW3_ESMM)
        c->special_mask = val & PIC_OCW3_SMM;
    if (val & PIC_OCW3_P)
        c->poll = true;
    if (val & PIC_OCW3_RR)
        c->read_isr = val & PIC_OCW3_RIS;
}

static void pic_write(struct i8259 *c, unsigned port, uint8_t val)
{
    if (port == 0) {
        if (val & PIC_ICW1_INIT)
            pic_write_icw1(c, val);
        else if (val & PIC_OCW3_SEL)
            pic_write_ocw3(c, val);
        else
            pic_write_ocw2(c, val);
        return;
    }
    switch (c->init_step) {
    case 2:
        c->vector_base = val & 0xF8;
        c->init_step = !c->single ? 3 : c->icw4_needed ? 4 : 0;
        break;
    case 3: /* ICW3: the wiring is fixed, nothing to configure */
        c->init_step = c->icw4_needed ? 4 : 0;
        break;
    case 4:
        c->auto_eoi = val & PIC_ICW4_AEOI;
        c->sfnm = val & PIC_ICW4_SFNM;
        c->init_step = 0;
        break;
    default:
        c->imr = val;
        break;
    }
}

/* A poll is an INTA by software: the read returns the request it took. */
static uint8_t pic_poll(struct i8259 *c, bool master)
{
    int ir = pic_pending(c, master);

    c->poll = false;
    if (ir < 0)
        return 0;
    pic_intack(c, (unsigned)ir);
    return (uint8_t)(PIC_POLL_INT | ir);
}

static uint8_t pic_read(struct i8259 *c, unsigned port, bool master)
{
    if (c->poll)
        return pic_poll(c, master);
    if (port == 1)
        return c->imr;
    return c->read_isr ? c->isr : pic_irr(c);
}

/* Each chip has two ports and 8 data lines: a wide access is a run of byte
 * accesses, and bytes past the second port float high. */
static uint32_t i8259_chip_read(struct i8259_pair *p, unsigned chip, uint16_t off, unsigned size)
{
    uint32_t val = 0;

    for (unsigned i = 0; i < size; i++) {
        unsigned port = off + i;
        uint8_t byte = port < 2 ? pic_read(&p->chip[chip], port, chip == PIC_MASTER) : 0xFF;
        val |= (uint32_t)byte << (8 * i);
    }
    i8259_update(p);
    return val;
}

static void i8259_chip_write(struct i8259_pair *p, unsigned chip, uint16_t off, unsigned size,
                             uint32_t val)
{
    for (unsigned i = 0; i < size && off + i < 2; i++)
        pic_write(&p->chip[chip], off + i, (uint8_t)(val >> (8 * i)));
    i8259_update(p);
}

static uint32_t i8259_master_read(void *opaque, uint16_t off, unsigned size)
{
    return i8259_chip_read(opaque, PIC_MASTER, off, size);
}

static void i8259_master_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    i8259_chip_write(opaque, PIC_MASTER, off, size, val);
}

static uint32_t i8259_slave_read(void *opaque, uint16_t off, unsigned size)
{
    return i8259_chip_read(opaque, PIC_SLAVE, off, size);
}

static void i8259_slave_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    i8259_chip_write(opaque, PIC_SLAVE, off, size, val);
}

/* ELCR1 (0x4D0) is the master's, ELCR2 (0x4D1) the slave's. */
static uint32_t i8259_elcr_read(void *opaque, uint16_t off, unsigned size)
{
    struct i8259_pair *p = opaque;
    uint32_t val = 0;

    for (unsigned i = 0; i < size; i++) {
        unsigned reg = off + i;
        uint8_t byte = reg < 2 ? p->chip[reg].elcr : 0xFF;
        val |= (uint32_t)byte << (8 * i);
    }
    return val;
}

static void i8259_elcr_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    struct i8259_pair *p = opaque;

    for (unsigned i = 0; i < size && off + i < 2; i++) {
        struct i8259 *c = &p->chip[off + i];
        c->elcr = (uint8_t)(val >> (8 * i)) & c->elcr_mask;
        pic_drop_level_latches(c);
    }
    i8259_update(p);
}

/* The mask register (the data port outside a poll; Linux reads it on every
 * interrupt it acknowledges) and the ELCRs change only when written; the
 * command port reads IRR or ISR, which interrupts move. */
static int i8259_chip_peek(const struct i8259 *c, uint16_t off)
{
    return off == 1 && !c->poll ? c->imr : -1;
}

static int i8259_master_peek(void *opaque, uint16_t off)
{
    return i8259_chip_peek(&((struct i8259_pair *)opaque)->chip[PIC_MASTER], off);
}

static int i8259_slave_peek(void *opaque, uint16_t off)
{
    return i8259_chip_peek(&((struct i8259_pair *)opaque)->chip[PIC_SLAVE], off);
}

static int i8259_elcr_peek(void *opaque, uint16_t off)
{
    return (int)i8259_elcr_read(opaque, off, 1);
}

static const struct io_ops i8259_master_ops = {
    .read = i8259_master_read, .write = i8259_master_write, .peek = i8259_master_peek,
};
static const struct io_ops i8259_slave_ops = {
    .read = i8259_slave_read, .write = i8259_slave_write, .peek = i8259_slave_peek,
};
static const struct io_ops i8259_elcr_ops = {
    .read = i8259_elcr_read, .write = i8259_elcr_write, .peek = i8259_elcr_peek,
};

int i8259_register(struct i8259_pair *p, struct iobus *bus)
{
    int err = iobus_register(bus, PIC_MASTER_CMD, 2, &i8259_master_ops, p);
    if (!err)
        err = iobus_register(bus, PIC_SLAVE_CMD, 2, &i8259_slave_ops, p);
    if (!err)
        err = iobus_register(bus, PIC_ELCR1, 2, &i8259_elcr_ops, p);
    return err;
}

void i8259_init(struct i8259_pair *p, struct irq_line intr)
{
    *p = (struct i8259_pair){ .intr = intr };
    p->chip[PIC_MASTER] = (struct i8259){
        .imr = (uint8_t)~(1u << PIC_CASCADE_IR),
        .elcr_mask = PIC_ELCR1_MASK,
        .vector_base = 0x08,
        .lowest = 7,
        .icw4_needed = true,
    };
    p->chip[PIC_SLAVE] = (struct i8259){
        .imr = 0xFF,
        .elcr_mask = PIC_ELCR2_MASK,
        .vector_base = 0x70,
        .lowest = 7,
        .icw4_needed = true,
    };
}
