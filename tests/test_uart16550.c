/*
 * 16550A UART: register-level behaviour played through the device's port
 * handlers, against a fake terminal (records output, serves canned input) and
 * a fake interrupt line (records every level change it is told about).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "popek/devices.h"

enum { RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2,
       LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

struct fake_chr {
    uint8_t out[256];
    unsigned nout;
    const char *in;   /* bytes still to be served */
    size_t nin;
};

struct fake_irq {
    int level;
    unsigned changes; /* calls to set */
};

static struct fake_chr fc;
static struct fake_irq fi;
static struct chardev chr;
static struct uart16550 u;

static void fake_chr_write(void *opaque, uint8_t byte)
{
    struct fake_chr *f = opaque;
    if (f->nout < sizeof f->out)
        f->out[f->nout++] = byte;
}

static int fake_chr_read(void *opaque)
{
    struct fake_chr *f = opaque;
    if (!f->nin)
        return -1;
    f->nin--;
    return (uint8_t)*f->in++;
}

static void fake_irq_set(void *opaque, unsigned line, int level)
{
    struct fake_irq *f = opaque;
    cr_assert_eq(line, 4);
    f->level = level;
    f->changes++;
}

static void setup(void)
{
    memset(&fc, 0, sizeof fc);
    memset(&fi, 0, sizeof fi);
    chr = (struct chardev){ .write = fake_chr_write, .read = fake_chr_read, .opaque = &fc };
    uart16550_init(&u, &chr, (struct irq_line){ .set = fake_irq_set, .opaque = &fi, .line = 4 });
}

static void type(const char *s)
{
    fc.in = s;
    fc.nin = strlen(s);
}

static uint8_t rd(unsigned reg)
{
    return (uint8_t)uart16550_io_ops.read(&u, reg, 1);
}

static void wr(unsigned reg, uint8_t val)
{
    uart16550_io_ops.write(&u, reg, 1, val);
}

TestSuite(uart, .init = setup);

Test(uart, reset_state)
{
    cr_assert_eq(rd(IER), 0x00);
    cr_assert_eq(rd(IIR), 0x01);
    cr_assert_eq(rd(LCR), 0x00);
    cr_assert_eq(rd(MCR), 0x00);
    cr_assert_eq(rd(LSR), 0x60);
    cr_assert_eq(rd(MSR), 0xB0, "host line: CTS, DSR, DCD, no deltas");
    cr_assert_eq(fi.changes, 0);
}

Test(uart, thr_goes_to_backend_and_stays_empty)
{
    wr(THR, 'H');
    wr(THR, 'i');
    cr_assert_eq(fc.nout, 2);
    cr_assert_eq(memcmp(fc.out, "Hi", 2), 0);
    cr_assert_eq(rd(LSR) & 0x60, 0x60, "THRE and TEMT always set");
}

Test(uart, scratch_register)
{
    wr(SCR, 0x55);
    cr_assert_eq(rd(SCR), 0x55);
    wr(SCR, 0xAA);
    cr_assert_eq(rd(SCR), 0xAA);
}

Test(uart, ier_keeps_low_four_bits)
{
    wr(IER, 0xFF);
    cr_assert_eq(rd(IER), 0x0F);
    wr(IER, 0x00);
    cr_assert_eq(rd(IER), 0x00);
}

Test(uart, lcr_and_mcr_read_back)
{
    wr(LCR, 0x1B);
    cr_assert_eq(rd(LCR), 0x1B);
    wr(MCR, 0xFF);
    cr_assert_eq(rd(MCR), 0x1F, "MCR bits 5..7 are always 0 on the 16550A");
}

Test(uart, dlab_selects_divisor_latch)
{
    wr(IER, 0x05);
    wr(LCR, 0x83);
    cr_assert_eq(rd(DLL), 12, "BIOS-style 9600 baud at reset");
    cr_assert_eq(rd(DLM), 0);
    wr(DLL, 0x01);
    wr(DLM, 0x02);
    cr_assert_eq(rd(DLL), 0x01);
    cr_assert_eq(rd(DLM), 0x02);
    cr_assert_eq(fc.nout, 0, "DLL writes are not transmitted");
    cr_assert_eq(rd(LCR), 0x83);
    wr(LCR, 0x03);
    cr_assert_eq(rd(IER), 0x05, "IER untouched by DLM writes");
    wr(THR, 'x');
    cr_assert_eq(fc.nout, 1);
    wr(LCR, 0x80);
    cr_assert_eq(uart16550_io_ops.read(&u, DLL, 2), 0x0201, "16-bit read = DLL, DLM");
}

Test(uart, wide_accesses_are_byte_runs)
{
    wr(SCR, 0x5A);
    cr_assert_eq(uart16550_io_ops.read(&u, SCR, 2), 0xFF5A, "past the last register floats high");
    uart16550_io_ops.write(&u, LCR, 2, 0x0B03);
    cr_assert_eq(rd(LCR), 0x03);
    cr_assert_eq(rd(MCR), 0x0B);
}

Test(uart, lsr_and_rbr_poll_the_backend)
{
    type("ab");
    cr_assert_eq(rd(LSR) & 0x01, 0x01, "LSR read pulls input: DR");
    cr_assert_eq(rd(RBR), 'a');
    cr_assert_eq(rd(RBR), 'b');
    cr_assert_eq(rd(LSR), 0x60);
    cr_assert_eq(rd(RBR), 'b', "empty RBR reads the last byte");

    type("z");
    cr_assert_eq(rd(RBR), 'z', "RBR read pulls input too");
}

Test(uart, fifo_off_holds_one_byte_and_leaves_rest_in_backend)
{
    type("xyz");
    uart16550_poll_rx(&u);
    cr_assert_eq(fc.nin, 2, "16450 mode takes one byte");
    cr_assert_eq(rd(RBR), 'x');
    cr_assert_eq(rd(RBR), 'y');
    cr_assert_eq(rd(RBR), 'z');
    cr_assert_eq(rd(LSR) & 0x03, 0, "flow control: no data, no overrun");
}

Test(uart, fifo_enable_fill_and_clear)
{
    wr(FCR, 0x01);
    cr_assert_eq(rd(IIR), 0xC1);
    type("0123456789abcdefXY");
    uart16550_poll_rx(&u);
    cr_assert_eq(fc.nin, 2, "16 bytes fit, the rest waits");
    cr_assert_eq(rd(LSR) & 0x03, 0x01);
    for (const char *p = "0123"; *p; p++)
        cr_assert_eq(rd(RBR), *p);
    cr_assert_eq(fc.nin, 0, "RBR reads made room, the waiting bytes came in");

    wr(FCR, 0x03);
    cr_assert_eq(rd(IIR), 0xC1, "RCVR FIFO reset is self-clearing, FIFO stays on");
    cr_assert_eq(rd(LSR) & 0x01, 0, "FIFO emptied");
    type("W");
    cr_assert_eq(rd(RBR), 'W');

    type("q");
    uart16550_poll_rx(&u);
    wr(FCR, 0x00);
    cr_assert_eq(rd(IIR), 0x01, "FIFO bits clear with FCR0");
    cr_assert_eq(u.rx_count, 0, "turning the FIFO off empties it");
}

Test(uart, loopback_wires_thr_to_rbr_and_mcr_to_msr)
{
    type("k");
    wr(MCR, 0x10 | 0x0A);
    cr_assert_eq(rd(MSR) & 0xF0, 0x90, "RTS->CTS, OUT2->DCD: Linux's autoconfig check");
    wr(THR, 'Z');
    cr_assert_eq(fc.nout, 0, "nothing reaches the line");
    cr_assert_eq(rd(LSR) & 0x01, 0x01);
    cr_assert_eq(rd(RBR), 'Z');
    cr_assert_eq(rd(LSR) & 0x01, 0x00, "line input ignored in loopback");
    cr_assert_eq(fc.nin, 1);

    wr(MCR, 0x10 | 0x05);
    cr_assert_eq(rd(MSR) & 0xF0, 0x60, "DTR->DSR, OUT1->RI");
    wr(MCR, 0x00);
    cr_assert_eq(rd(MSR) & 0xF0, 0xB0, "back to the host line");
    cr_assert_eq(rd(RBR), 'k');
}

Test(uart, msr_deltas_clear_on_read)
{
    wr(MCR, 0x10);
    cr_assert_eq(rd(MSR), 0x0B, "CTS, DSR, DCD dropped: DCTS, DDSR, DDCD");
    cr_assert_eq(rd(MSR), 0x00);
    wr(MCR, 0x12);
    cr_assert_eq(rd(MSR), 0x11);
    wr(MCR, 0x14);
    cr_assert_eq(rd(MSR), 0x41, "RI rising edge is no TERI; CTS fell");
    wr(MCR, 0x10);
    cr_assert_eq(rd(MSR), 0x04, "RI trailing edge: TERI");
    cr_assert_eq(rd(MSR), 0x00);
}

Test(uart, fifo_overflow_sets_oe_and_keeps_contents)
{
    wr(FCR, 0x01);
    wr(MCR, 0x10);
    for (int i = 0; i < 17; i++)
        wr(THR, (uint8_t)('A' + i));
    cr_assert_eq(rd(LSR), 0x63, "DR | OE | THRE | TEMT");
    cr_assert_eq(rd(LSR), 0x61, "reading LSR clears OE");
    for (int i = 0; i < 16; i++)
        cr_assert_eq(rd(RBR), 'A' + i);
    cr_assert_eq(rd(LSR) & 0x01, 0, "the 17th byte was lost");
}

Test(uart, holding_register_overrun_overwrites)
{
    wr(MCR, 0x10);
    wr(THR, '1');
    wr(THR, '2');
    cr_assert_eq(rd(LSR), 0x63);
    cr_assert_eq(rd(RBR), '2');
    cr_assert_eq(rd(LSR), 0x60);
}

Test(uart, iir_priorities)
{
    wr(MCR, 0x10);
    rd(MSR);
    wr(MCR, 0x12);        /* CTS rises: modem status delta */
    wr(THR, '1');
    wr(THR, '2');         /* overrun: line status */
    wr(IER, 0x0F);        /* also raises THRE */
    cr_assert_eq(rd(IIR), 0x06, "line status first");
    cr_assert_eq(rd(IIR), 0x06, "IIR read does not clear line status");
    rd(LSR);
    cr_assert_eq(rd(IIR), 0x04, "then received data");
    rd(RBR);
    cr_assert_eq(rd(IIR), 0x02, "then THRE, cleared by this read");
    cr_assert_eq(rd(IIR), 0x00, "then modem status");
    rd(MSR);
    cr_assert_eq(rd(IIR), 0x01);
}

Test(uart, thre_interrupt_lifecycle)
{
    wr(IER, 0x02);
    cr_assert_eq(rd(IIR), 0x02, "enabling ETBEI with THR empty raises THRE");
    cr_assert_eq(rd(IIR), 0x01, "and the IIR read acknowledged it");
    wr(THR, 'a');
    cr_assert_eq(rd(IIR), 0x02, "THR emptied again after the write");
    rd(IIR);
    wr(IER, 0x02);
    cr_assert_eq(rd(IIR), 0x01, "rewriting the same IER does not re-raise");
    wr(IER, 0x00);
    wr(IER, 0x02);
    cr_assert_eq(rd(IIR), 0x02, "0->1 of ETBEI re-raises (Linux UART_BUG_THRE probe)");
}

Test(uart, thre_hidden_behind_higher_priority_is_not_acknowledged)
{
    type("r");
    uart16550_poll_rx(&u);
    wr(IER, 0x03);
    cr_assert_eq(rd(IIR), 0x04);
    rd(RBR);
    cr_assert_eq(rd(IIR), 0x02, "THRE survived the IIR read that reported data");
}

Test(uart, character_timeout_below_trigger)
{
    wr(FCR, 0x41);        /* trigger level 4 */
    wr(IER, 0x01);
    type("ab");
    uart16550_poll_rx(&u);
    cr_assert_eq(rd(IIR), 0xCC, "below trigger: timeout interrupt");
    type("cdef");
    uart16550_poll_rx(&u);
    cr_assert_eq(rd(IIR), 0xC4, "at trigger: data available");
    for (int i = 0; i < 6; i++)
        rd(RBR);
    cr_assert_eq(rd(IIR), 0xC1);
}

Test(uart, line_status_interrupt_clears_on_lsr_read)
{
    wr(MCR, 0x10);
    wr(IER, 0x04);
    wr(THR, '1');
    cr_assert_eq(rd(IIR), 0x01);
    wr(THR, '2');
    cr_assert_eq(rd(IIR), 0x06);
    rd(LSR);
    cr_assert_eq(rd(IIR), 0x01);
}

Test(uart, irq_follows_pending_gated_by_out2)
{
    wr(IER, 0x01);
    type("x");
    uart16550_poll_rx(&u);
    cr_assert_eq(fi.changes, 0, "OUT2 clear: nothing reaches the PIC");
    cr_assert_eq(rd(IIR), 0x04, "although the UART has it pending");

    wr(MCR, 0x08);
    cr_assert_eq(fi.level, 1);
    cr_assert_eq(fi.changes, 1);
    rd(LSR);
    rd(IIR);
    cr_assert_eq(fi.changes, 1, "irq_set only on change");
    rd(RBR);
    cr_assert_eq(fi.level, 0);
    cr_assert_eq(fi.changes, 2);

    type("y");
    uart16550_poll_rx(&u);
    cr_assert_eq(fi.level, 1, "polled input raises the line");
    wr(IER, 0x00);
    cr_assert_eq(fi.level, 0, "masking drops it");
    cr_assert_eq(fi.changes, 4);
}

Test(uart, loopback_keeps_interrupts_inside_the_chip)
{
    wr(MCR, 0x18);
    wr(IER, 0x01);
    wr(THR, 'L');
    cr_assert_eq(rd(IIR), 0x04);
    cr_assert_eq(fi.changes, 0);
    wr(MCR, 0x08);
    cr_assert_eq(fi.level, 1, "leaving loopback opens the OUT2 gate");
}

Test(uart, thre_irq_on_transmit)
{
    wr(MCR, 0x08);
    wr(IER, 0x02);
    cr_assert_eq(fi.level, 1);
    rd(IIR);
    cr_assert_eq(fi.level, 0);
    wr(THR, 'a');
    cr_assert_eq(fi.level, 1);
    cr_assert_eq(fi.changes, 3);
}

Test(uart, no_backend)
{
    uart16550_init(&u, NULL, (struct irq_line){ 0 });
    wr(THR, 'a');
    uart16550_poll_rx(&u);
    cr_assert_eq(rd(LSR), 0x60);
    wr(MCR, 0x08);
    wr(IER, 0x02);
    cr_assert_eq(rd(IIR), 0x02, "an unconnected irq line is fine");
}

/* The checks Linux's 8250 autoconfig() makes before calling the port a
 * 16550A, in its order. */
Test(uart, linux_autoconfig_sees_16550a)
{
    wr(IER, 0x00);
    cr_assert_eq(rd(IER) & 0x0F, 0x00);
    wr(IER, 0x0F);
    cr_assert_eq(rd(IER) & 0x0F, 0x0F);
    wr(IER, 0x00);

    wr(MCR, 0x10 | 0x0A);
    cr_assert_eq(rd(MSR) & 0xF0, 0x90);
    wr(MCR, 0x00);

    wr(LCR, 0xBF);
    wr(FCR, 0x00);          /* EFR on a 16650, FCR here */
    wr(LCR, 0x00);
    wr(FCR, 0x01);
    cr_assert_eq(rd(IIR) >> 6, 3, "FIFOs present: 16550A");

    wr(LCR, 0x80);
    cr_assert_neq(rd(IIR), 0, "no EFR behind DLAB (not an ST16C650V1)");
    wr(LCR, 0x00);
    wr(FCR, 0x21);
    cr_assert_eq(rd(IIR) >> 5, 6, "FCR bit 5 has no effect: not a 16750");
    wr(IER, 0x40);
    cr_assert_eq(rd(IER), 0x00, "no UUE bit: not an XScale UART");

    /* size_fifo(): loop 256 bytes back, count what the FIFO kept. */
    wr(FCR, 0x07);
    wr(MCR, 0x10);
    for (int i = 0; i < 256; i++)
        wr(THR, (uint8_t)i);
    int count = 0;
    while ((rd(LSR) & 0x01) && count < 2000) {
        rd(RBR);
        count++;
    }
    cr_assert_eq(count, 16);
    cr_assert_eq(fc.nout, 0);
}
