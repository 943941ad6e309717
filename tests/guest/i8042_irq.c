/*
 * The 8042 keyboard controller's interrupt outputs, as a PC wires them: IRQ 1
 * for keyboard data and IRQ 12 (slave PIC, IR4) for AUX data, each raised
 * while the output buffer holds such a byte and the command byte enables it
 * (bits 0 and 1), dropped when the byte is read.  Linux's i8042 driver relies
 * on this: it loops a byte back through the AUX port (command 0xD3) and waits
 * 250 ms for IRQ 12 before it decides the port works.
 *
 * The loopback commands 0xD2 (keyboard) and 0xD3 (AUX) put their data byte in
 * the output buffer as if the device had sent it, so no keyboard or mouse is
 * needed.  Checked:
 *   - keyboard loopback with KBDINT set: IRQ 1 (vector 0x21), status without
 *     the AUX bit, the byte back from port 0x60;
 *   - AUX loopback with AUXINT set: IRQ 12 (vector 0x2C), status with the AUX
 *     bit, the byte back;
 *   - both with their enable bits clear: no interrupt, the byte still there.
 */
#include "lib/guest.h"

#define KBD_DATA   0x60
#define KBD_STATUS 0x64
#define STR_OBF    0x01
#define STR_AUX    0x20
#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_SYSFLAG 0x04
#define CTR_XLATE  0x40

static volatile uint32_t irq1_count, irq12_count;

static void kbd_irq(struct trap_frame *f)
{
    (void)f;
    irq1_count++;
    outb(PIC1_CMD, PIC_OCW2_EOI);
}

static void aux_irq(struct trap_frame *f)
{
    (void)f;
    irq12_count++;
    outb(PIC2_CMD, PIC_OCW2_EOI);
    outb(PIC1_CMD, PIC_OCW2_EOI);
}

static void kbc_wait_input(void)
{
    for (unsigned i = 0; i < 100000 && (inb(KBD_STATUS) & 0x02); i++)
        ;
}

static void kbc_command(uint8_t cmd)
{
    kbc_wait_input();
    outb(KBD_STATUS, cmd);
}

static void kbc_write_data(uint8_t val)
{
    kbc_wait_input();
    outb(KBD_DATA, val);
}

static void kbc_flush(void)
{
    for (unsigned i = 0; i < 64 && (inb(KBD_STATUS) & STR_OBF); i++)
        inb(KBD_DATA);
}

static void set_ctr(uint8_t ctr)
{
    kbc_command(0x60);
    kbc_write_data(ctr);
}

/* Loop `val` back through the keyboard (0xD2) or AUX (0xD3) port with IF=1 for
 * a while, then report what came back and which interrupts were taken. */
static void loopback(const char *what, uint8_t cmd, uint8_t val)
{
    uint32_t k = irq1_count, a = irq12_count;
    kbc_command(cmd);
    kbc_write_data(val);
    uint8_t status = 0;
    for (unsigned i = 0; i < 100000 && !(status & STR_OBF); i++)
        status = inb(KBD_STATUS);
    __asm__ volatile("sti" : : : "memory");
    for (unsigned i = 0; i < 100000 && irq1_count == k && irq12_count == a; i++)
        __asm__ volatile("pause");
    __asm__ volatile("cli" : : : "memory");
    uint8_t data = inb(KBD_DATA);
    printf("%s: status obf=%u aux=%u data=%02x irq1=%u irq12=%u\n", what, status & STR_OBF,
           (status & STR_AUX) ? 1 : 0, data, irq1_count - k, irq12_count - a);
}

void kmain(void)
{
    trap_set_handler(VEC_IRQ0 + 1, kbd_irq);
    trap_set_handler(VEC_IRQ0 + 12, aux_irq);

    /* rt_init left the PICs at VEC_IRQ0 and VEC_IRQ0 + 8, all masked.
     * Both ports off while the buffer is emptied, then IRQ 1, 2 (cascade)
     * and 12 unmasked. */
    kbc_command(0xAD);
    kbc_command(0xA7);
    kbc_flush();
    set_ctr(CTR_SYSFLAG | CTR_XLATE);
    outb(PIC1_DATA, (uint8_t)~0x06);
    outb(PIC2_DATA, (uint8_t)~0x10);

    set_ctr(CTR_KBDINT | CTR_AUXINT | CTR_SYSFLAG | CTR_XLATE);
    loopback("kbd loopback, kbdint on", 0xD2, 0x5A);
    loopback("aux loopback, auxint on", 0xD3, 0xA5);

    set_ctr(CTR_SYSFLAG | CTR_XLATE);
    loopback("kbd loopback, kbdint off", 0xD2, 0x3C);
    loopback("aux loopback, auxint off", 0xD3, 0xC3);

    outb(PIC1_DATA, 0xFF);
    outb(PIC2_DATA, 0xFF);
}
