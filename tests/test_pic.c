/*
 * 8259A PIC pair: the initialisation, masking, acknowledge and EOI sequences
 * Linux's arch/x86/kernel/i8259.c plays, through the I/O bus, with the INTA
 * cycle driven by the test as the vCPU would drive it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "popek/devices.h"

enum { M_CMD = 0x20, M_IMR = 0x21, S_CMD = 0xA0, S_IMR = 0xA1, ELCR1 = 0x4D0, ELCR2 = 0x4D1 };

/* OCW3 read selects and poll, OCW2 EOIs. */
enum { READ_IRR = 0x0A, READ_ISR = 0x0B, POLL = 0x0C, EOI = 0x20, SPECIFIC_EOI = 0x60 };

struct fake_intr {
    int level;
    unsigned changes;
};

static struct fake_intr intr;
static struct iobus bus;
static struct i8259_pair pic;

static void fake_intr_set(void *opaque, unsigned line, int level)
{
    struct fake_intr *f = opaque;
    (void)line;
    if (level != f->level)
        f->changes++;
    f->level = level;
}

static void out(uint16_t port, uint8_t val)
{
    iobus_write(&bus, port, 1, val);
}

static uint8_t in(uint16_t port)
{
    return (uint8_t)iobus_read(&bus, port, 1);
}

static uint8_t read_isr(uint16_t cmd)
{
    out(cmd, READ_ISR);
    uint8_t v = in(cmd);
    out(cmd, READ_IRR);
    return v;
}

static uint8_t read_irr(uint16_t cmd)
{
    out(cmd, READ_IRR);
    return in(cmd);
}

/* init_8259A(auto_eoi) with ISA_IRQ_VECTOR(0) = 0x30. */
static void linux_init(bool auto_eoi)
{
    out(M_IMR, 0xFF);
    out(S_IMR, 0xFF);
    out(M_CMD, 0x11);                 /* ICW1: edge, cascade, ICW4 */
    out(M_IMR, 0x30);                 /* ICW2: vector base */
    out(M_IMR, 1u << 2);              /* ICW3: slave on IR2 */
    out(M_IMR, auto_eoi ? 0x03 : 0x01); /* ICW4: 8086, (auto-EOI) */
    out(S_CMD, 0x11);
    out(S_IMR, 0x38);
    out(S_IMR, 2);                    /* ICW3: slave ID */
    out(S_IMR, 0x01);
    out(M_IMR, 0xFB);                 /* cached masks: cascade open */
    out(S_IMR, 0xFF);
}

/* mask_and_ack_8259A() followed by the unmask after the handler. */
static void linux_eoi(unsigned irq)
{
    if (irq & 8) {
        out(S_CMD, (uint8_t)(SPECIFIC_EOI + (irq & 7)));
        out(M_CMD, SPECIFIC_EOI + 2);
    } else {
        out(M_CMD, (uint8_t)(SPECIFIC_EOI + irq));
    }
}

static void unmask(unsigned irq)
{
    if (irq & 8)
        out(S_IMR, in(S_IMR) & (uint8_t)~(1u << (irq & 7)));
    else
        out(M_IMR, in(M_IMR) & (uint8_t)~(1u << irq));
}

static void pulse(unsigned irq)
{
    i8259_set_irq(&pic, irq, 1);
    i8259_set_irq(&pic, irq, 0);
}

static void setup(void)
{
    memset(&intr, 0, sizeof intr);
    memset(&bus, 0, sizeof bus);
    i8259_init(&pic, (struct irq_line){ .set = fake_intr_set, .opaque = &intr });
    cr_assert_eq(i8259_register(&pic, &bus), 0);
}

TestSuite(pic, .init = setup);

Test(pic, registers_its_ports)
{
    struct i8259_pair other;
    cr_assert_eq(i8259_register(&other, &bus), -EEXIST);
}

/* The fast-read table (devices.h) holds the mask registers and the ELCRs,
 * never IRR/ISR or a pending poll. */
Test(pic, fast_reads_of_the_mask)
{
    static uint16_t fast[IOBUS_PORTS];
    iobus_set_fast(&bus, fast);
    cr_assert_eq(fast[M_IMR], IOBUS_FAST_VALID | 0xFB);
    cr_assert_eq(fast[S_IMR], IOBUS_FAST_VALID | 0xFF);
    cr_assert_eq(fast[M_CMD], 0);
    cr_assert_eq(fast[S_CMD], 0);
    cr_assert_eq(fast[ELCR1], IOBUS_FAST_VALID | 0);
    out(M_IMR, 0x5A);
    cr_assert_eq(fast[M_IMR], IOBUS_FAST_VALID | 0x5A);
    out(ELCR1, 0x20);
    cr_assert_eq(fast[ELCR1], IOBUS_FAST_VALID | 0x20);
    out(M_CMD, POLL);
    cr_assert_eq(fast[M_IMR], 0, "the next read is the poll");
    cr_assert_eq(fast[S_IMR], IOBUS_FAST_VALID | 0xFF, "the other chip's is not");
    in(M_IMR);
    cr_assert_eq(fast[M_IMR], IOBUS_FAST_VALID | 0x5A, "poll over");
}

Test(pic, bios_reset_state)
{
    cr_assert_eq(in(M_IMR), 0xFB);
    cr_assert_eq(in(S_IMR), 0xFF);
    cr_assert_eq(in(ELCR1), 0);
    out(M_IMR, 0xFA);
    pulse(0);
    cr_assert(i8259_has_interrupt(&pic));
    cr_assert_eq(i8259_acknowledge(&pic), 0x08, "BIOS vector base");
    out(M_CMD, EOI);
    out(S_IMR, 0xFE);
    pulse(8);
    cr_assert_eq(i8259_acknowledge(&pic), 0x70);
}

Test(pic, linux_probe_and_init)
{
    /* probe_8259A(): the mask written must read back. */
    out(S_IMR, 0xFF);
    out(M_IMR, 0xFB);
    cr_assert_eq(in(M_IMR), 0xFB);
    linux_init(false);
    cr_assert_eq(in(M_IMR), 0xFB);
    cr_assert_eq(in(S_IMR), 0xFF);
    cr_assert(!i8259_has_interrupt(&pic));
    cr_assert_eq(intr.level, 0);

    unmask(0);
    pulse(0);
    cr_assert(i8259_has_interrupt(&pic));
    cr_assert_eq(intr.level, 1, "INT pin raised");
    cr_assert_eq(read_irr(M_CMD), 0x01);
    cr_assert_eq(i8259_acknowledge(&pic), 0x30);
    cr_assert_eq(intr.level, 0);
    cr_assert_eq(read_irr(M_CMD), 0x00, "INTA moved the request to ISR");
    cr_assert_eq(read_isr(M_CMD), 0x01);
    linux_eoi(0);
    cr_assert_eq(read_isr(M_CMD), 0x00);
}

Test(pic, masked_request_waits_in_irr)
{
    linux_init(false);
    pulse(3);
    cr_assert(!i8259_has_interrupt(&pic));
    cr_assert_eq(read_irr(M_CMD), 0x08);
    unmask(3);
    cr_assert(i8259_has_interrupt(&pic));
    cr_assert_eq(i8259_acknowledge(&pic), 0x33);
    out(M_IMR, 0xFF);
    pulse(3);
    linux_eoi(3);
    cr_assert(!i8259_has_interrupt(&pic), "masked after EOI");
    out(M_IMR, 0xF3);
    cr_assert_eq(i8259_acknowledge(&pic), 0x33);
}

Test(pic, priority_and_nesting)
{
    linux_init(false);
    out(M_IMR, 0x00);
    pulse(5);
    pulse(3);
    cr_assert_eq(i8259_acknowledge(&pic), 0x33, "IR3 outranks IR5");
    cr_assert(!i8259_has_interrupt(&pic), "IR5 waits for IR3's EOI");
    pulse(4);
    cr_assert(!i8259_has_interrupt(&pic), "IR4 too");
    pulse(1);
    cr_assert(i8259_has_interrupt(&pic), "IR1 preempts IR3");
    cr_assert_eq(i8259_acknowledge(&pic), 0x31);
    cr_assert_eq(read_isr(M_CMD), 0x0A);
    out(M_CMD, EOI);  /* non-specific: the highest in service, IR1 */
    cr_assert_eq(read_isr(M_CMD), 0x08);
    out(M_CMD, EOI);
    cr_assert_eq(i8259_acknowledge(&pic), 0x34);
    out(M_CMD, EOI);
    cr_assert_eq(i8259_acknowledge(&pic), 0x35);
    out(M_CMD, EOI);
    cr_assert(!i8259_has_interrupt(&pic));
    cr_assert_eq(read_isr(M_CMD), 0);
}

Test(pic, cascade_through_the_slave)
{
    linux_init(false);
    unmask(12);
    i8259_set_irq(&pic, 12, 1);
    cr_assert(i8259_has_interrupt(&pic));
    cr_assert_eq(read_irr(S_CMD), 0x10);
    cr_assert_eq(read_irr(M_CMD), 0x04, "slave INT on master IR2");
    cr_assert_eq(i8259_acknowledge(&pic), 0x3C);
    cr_assert_eq(read_isr(S_CMD), 0x10);
    cr_assert_eq(read_isr(M_CMD), 0x04);
    i8259_set_irq(&pic, 12, 0);
    unmask(8);
    pulse(8);
    cr_assert(!i8259_has_interrupt(&pic), "IRQ 8 outranks IRQ 12 in the slave, but the "
              "master's IR2 is in service and nests nothing without SFNM");
    unmask(3);
    pulse(3);
    cr_assert(!i8259_has_interrupt(&pic), "IR3 ranks below the cascade IR2");
    linux_eoi(12);
    cr_assert_eq(read_isr(S_CMD), 0);
    cr_assert_eq(read_isr(M_CMD), 0);
    cr_assert_eq(i8259_acknowledge(&pic), 0x38, "IRQ 8 (via IR2) before IR3");
    linux_eoi(8);
    cr_assert_eq(i8259_acknowledge(&pic), 0x33);
}

Test(pic, spurious_irq7_when_level_request_vanishes)
{
    linux_init(false);
    out(ELCR1, 0x20);   /* IRQ 5 level-triggered */
    unmask(5);
    i8259_set_irq(&pic, 5, 1);
    cr_assert(i8259_has_interrupt(&pic));
    i8259_set_irq(&pic, 5, 0);
    cr_assert_eq(i8259_acknowledge(&pic), 0x37);
    /* i8259A_irq_real(7) is false: ISR bit 7 not set. */
    cr_assert_eq(read_isr(M_CMD), 0x00);
}

Test(pic, spurious_irq15_from_the_slave)
{
    linux_init(false);
    out(ELCR2, 0x04);   /* IRQ 10 level-triggered */
    unmask(10);
    i8259_set_irq(&pic, 10, 1);
    cr_assert(i8259_has_interrupt(&pic));
    i8259_set_irq(&pic, 10, 0);
    cr_assert(i8259_has_interrupt(&pic), "the master latched the cascade edge");
    cr_assert_eq(i8259_acknowledge(&pic), 0x3F);
    cr_assert_eq(read_isr(S_CMD), 0x00, "no slave ISR bit for the spurious IRQ 15");
    cr_assert_eq(read_isr(M_CMD), 0x04, "the master still took IR2");
    linux_eoi(15);
    cr_assert_eq(read_isr(M_CMD), 0x00);
}

Test(pic, spurious_when_nothing_pending)
{
    linux_init(false);
    cr_assert_eq(i8259_acknowledge(&pic), 0x37);
    cr_assert_eq(read_isr(M_CMD), 0);
}

Test(pic, edge_latches_level_follows)
{
    linux_init(false);
    out(M_IMR, 0x00);
    /* Edge: a pulse shorter than the INTA is still delivered, a line held
     * high interrupts once. */
    pulse(4);
    cr_assert_eq(i8259_acknowledge(&pic), 0x34);
    linux_eoi(4);
    i8259_set_irq(&pic, 4, 1);
    cr_assert_eq(i8259_acknowledge(&pic), 0x34);
    linux_eoi(4);
    cr_assert(!i8259_has_interrupt(&pic), "no new edge while the line stays high");
    i8259_set_irq(&pic, 4, 0);
    i8259_set_irq(&pic, 4, 1);
    cr_assert(i8259_has_interrupt(&pic));
    i8259_acknowledge(&pic);
    linux_eoi(4);
    i8259_set_irq(&pic, 4, 0);

    /* Level: requests for as long as the line is high. */
    out(ELCR1, 0x10);
    cr_assert_eq(in(ELCR1), 0x10);
    i8259_set_irq(&pic, 4, 1);
    cr_assert_eq(i8259_acknowledge(&pic), 0x34);
    cr_assert(!i8259_has_interrupt(&pic));
    linux_eoi(4);
    cr_assert(i8259_has_interrupt(&pic), "still high after EOI: again");
    cr_assert_eq(read_irr(M_CMD), 0x10, "IRR follows the line");
    i8259_set_irq(&pic, 4, 0);
    cr_assert(!i8259_has_interrupt(&pic));
    cr_assert_eq(read_irr(M_CMD), 0x00);
}

Test(pic, icw1_ltim_makes_all_inputs_level)
{
    out(M_CMD, 0x19);
    out(M_IMR, 0x30);
    out(M_IMR, 0x04);
    out(M_IMR, 0x01);
    out(M_IMR, 0x00);
    i8259_set_irq(&pic, 6, 1);
    i8259_set_irq(&pic, 6, 0);
    cr_assert(!i8259_has_interrupt(&pic));
}

Test(pic, icw1_resets_edge_sense)
{
    linux_init(false);
    i8259_set_irq(&pic, 3, 1);
    linux_init(false);
    unmask(3);
    cr_assert(!i8259_has_interrupt(&pic), "a line already high must rise again");
    i8259_set_irq(&pic, 3, 0);
    i8259_set_irq(&pic, 3, 1);
    cr_assert(i8259_has_interrupt(&pic));
}

Test(pic, poll_command)
{
    linux_init(false);
    out(M_IMR, 0x00);
    out(M_CMD, POLL);
    cr_assert_eq(in(M_CMD), 0x00, "nothing pending");
    pulse(6);
    out(M_CMD, POLL);
    cr_assert_eq(in(M_IMR), 0x86, "a poll read on either port");
    cr_assert_eq(read_isr(M_CMD), 0x40, "poll acknowledged IR6");
    cr_assert_eq(in(M_IMR), 0x00, "next read is the IMR again");
    out(M_CMD, EOI);
    /* Polling a slave request: the master reports the cascade, the
     * slave the IRQ. */
    unmask(11);
    pulse(11);
    out(M_CMD, POLL);
    cr_assert_eq(in(M_CMD), 0x82);
    out(S_CMD, POLL);
    cr_assert_eq(in(S_CMD), 0x83);
}

Test(pic, read_register_select_persists)
{
    linux_init(false);
    out(M_IMR, 0x00);
    pulse(3);
    pulse(5);
    i8259_acknowledge(&pic);
    out(M_CMD, READ_ISR);
    cr_assert_eq(in(M_CMD), 0x08);
    cr_assert_eq(in(M_CMD), 0x08);
    out(M_CMD, 0x08);   /* OCW3 without RR: selection unchanged */
    cr_assert_eq(in(M_CMD), 0x08);
    out(M_CMD, READ_IRR);
    cr_assert_eq(in(M_CMD), 0x20);
}

Test(pic, auto_eoi)
{
    linux_init(true);
    out(M_IMR, 0x00);
    pulse(3);
    pulse(4);
    cr_assert_eq(i8259_acknowledge(&pic), 0x33);
    cr_assert_eq(read_isr(M_CMD), 0x00, "no ISR bit in auto-EOI mode");
    cr_assert_eq(i8259_acknowledge(&pic), 0x34, "so IR4 follows at once");
}

Test(pic, auto_eoi_cascade_delivers_every_slave_request)
{
    linux_init(true);
    out(S_CMD, 0x11);
    out(S_IMR, 0x38);
    out(S_IMR, 2);
    out(S_IMR, 0x03);
    out(S_IMR, 0x00);
    pulse(9);
    pulse(11);
    cr_assert_eq(i8259_acknowledge(&pic), 0x39);
    cr_assert(i8259_has_interrupt(&pic));
    cr_assert_eq(i8259_acknowledge(&pic), 0x3B);
    cr_assert(!i8259_has_interrupt(&pic));
}

Test(pic, rotation_commands)
{
    linux_init(false);
    out(M_IMR, 0x00);
    pulse(3);
    cr_assert_eq(i8259_acknowledge(&pic), 0x33);
    out(M_CMD, 0xA0);   /* rotate on non-specific EOI: IR3 becomes lowest */
    pulse(3);
    pulse(5);
    cr_assert_eq(i8259_acknowledge(&pic), 0x35, "IR5 now outranks IR3");
    out(M_CMD, 0xE5);   /* rotate on specific EOI 5 */
    cr_assert_eq(i8259_acknowledge(&pic), 0x33);
    out(M_CMD, SPECIFIC_EOI + 3);
    out(M_CMD, 0xC7);   /* set priority: IR7 lowest, the default again */
    pulse(6);
    pulse(1);
    cr_assert_eq(i8259_acknowledge(&pic), 0x31);
}

Test(pic, special_mask_mode)
{
    linux_init(false);
    out(M_IMR, 0x00);
    pulse(3);
    cr_assert_eq(i8259_acknowledge(&pic), 0x33);
    pulse(5);
    cr_assert(!i8259_has_interrupt(&pic));
    out(M_IMR, 0x08);   /* mask the level in service */
    out(M_CMD, 0x68);   /* OCW3: set special mask mode */
    cr_assert(i8259_has_interrupt(&pic), "lower IR5 allowed in");
    cr_assert_eq(i8259_acknowledge(&pic), 0x35);
    out(M_CMD, EOI);    /* non-specific EOI skips masked IR3 */
    cr_assert_eq(read_isr(M_CMD), 0x08);
    out(M_CMD, 0x48);   /* reset special mask mode */
    out(M_CMD, SPECIFIC_EOI + 3);
    cr_assert_eq(read_isr(M_CMD), 0x00);
}

Test(pic, special_fully_nested_mode)
{
    linux_init(false);
    out(M_CMD, 0x11);
    out(M_IMR, 0x30);
    out(M_IMR, 0x04);
    out(M_IMR, 0x11);   /* ICW4: 8086, SFNM */
    out(M_IMR, 0xFB);
    out(S_IMR, 0x00);
    pulse(12);
    cr_assert_eq(i8259_acknowledge(&pic), 0x3C);
    pulse(9);
    cr_assert(i8259_has_interrupt(&pic), "higher slave IRQ nests in SFNM");
    cr_assert_eq(i8259_acknowledge(&pic), 0x39);
}

Test(pic, no_slave_nesting_without_sfnm)
{
    linux_init(false);
    out(S_IMR, 0x00);
    pulse(12);
    cr_assert_eq(i8259_acknowledge(&pic), 0x3C);
    pulse(9);
    cr_assert(!i8259_has_interrupt(&pic));
    linux_eoi(12);
    cr_assert_eq(i8259_acknowledge(&pic), 0x39);
}

Test(pic, elcr_hardwired_edge_bits)
{
    out(ELCR1, 0xFF);
    out(ELCR2, 0xFF);
    cr_assert_eq(in(ELCR1), 0xF8, "IRQ 0, 1, 2 always edge");
    cr_assert_eq(in(ELCR2), 0xDE, "IRQ 8, 13 always edge");
    iobus_write(&bus, ELCR1, 2, 0x0000);
    cr_assert_eq(iobus_read(&bus, ELCR1, 2), 0x0000);
}

Test(pic, irq_line_object)
{
    linux_init(false);
    struct irq_line l = i8259_irq_line(&pic, 14);
    unmask(14);
    irq_set(&l, 1);
    cr_assert_eq(i8259_acknowledge(&pic), 0x3E);
}

Test(pic, cascade_input_is_internal)
{
    linux_init(false);
    out(M_IMR, 0x00);
    pulse(2);
    i8259_set_irq(&pic, 16, 1);
    cr_assert(!i8259_has_interrupt(&pic));
}
