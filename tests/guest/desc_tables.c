/*
 * SGDT/SIDT and LGDT/LIDT: the registers read back exactly as loaded, the
 * store is 6 bytes, and with a 16-bit operand size LGDT/LIDT take only 24 bits
 * of base (SDM vol. 2, LGDT/LIDT: "the high-order 8 bits are not used").
 */
#include "lib/guest.h"

static void print_dtr(const char *name, const uint8_t *m)
{
    uint16_t limit = (uint16_t)(m[0] | m[1] << 8);
    uint32_t base = m[2] | m[3] << 8 | m[4] << 16 | (uint32_t)m[5] << 24;
    printf("%s: base=%08x limit=%04x next=%02x\n", name, base, limit, m[6]);
}

void kmain(void)
{
    uint8_t m[8];

    memset(m, 0xAA, sizeof m);
    __asm__ volatile("sgdt %0" : "=m"(m));
    print_dtr("sgdt", m);
    memset(m, 0xAA, sizeof m);
    __asm__ volatile("sidt %0" : "=m"(m));
    print_dtr("sidt", m);

    /* Shrink and restore the GDT limit; loaded segments keep working. */
    struct dtr small = { 0x0017, GDT_ADDR };
    __asm__ volatile("lgdt %0" : : "m"(small));
    memset(m, 0xAA, sizeof m);
    __asm__ volatile("sgdt %0" : "=m"(m));
    print_dtr("lgdt 0017 sgdt", m);
    gdt_load(GDT_ENTRIES);

    /* Any base and limit are accepted; nothing is checked until an event. */
    struct dtr odd = { 0x0123, 0x00345678 };
    __asm__ volatile("lidt %0" : : "m"(odd));
    memset(m, 0xAA, sizeof m);
    __asm__ volatile("sidt %0" : "=m"(m));
    print_dtr("lidt 00345678/0123 sidt", m);

    /* 16-bit operand size: base bits 31:24 are ignored on load. */
    struct dtr hi = { IDT_ENTRIES * 8 - 1, 0xAB000000 | IDT_ADDR };
    __asm__ volatile("lidtw %0" : : "m"(hi));
    memset(m, 0xAA, sizeof m);
    __asm__ volatile("sidt %0" : "=m"(m));
    print_dtr("lidtw ab201000 sidt", m);

    struct dtr ghi = { GDT_ENTRIES * 8 - 1, 0xCD000000 | GDT_ADDR };
    __asm__ volatile("lgdtw %0" : : "m"(ghi));
    memset(m, 0xAA, sizeof m);
    __asm__ volatile("sgdt %0" : "=m"(m));
    print_dtr("lgdtw cd200000 sgdt", m);

    /* 16-bit SGDT/SIDT.  Whether the fourth base byte is stored as 0 or as
     * base[31:24] differs between SDM editions (and QEMU masks it), so only a
     * base below 16 MiB is stored, where both answers agree. */
    memset(m, 0xAA, sizeof m);
    __asm__ volatile("sgdtw %0" : "=m"(m));
    print_dtr("sgdtw", m);
    memset(m, 0xAA, sizeof m);
    __asm__ volatile("sidtw %0" : "=m"(m));
    print_dtr("sidtw", m);

    /* The IDT in use is the one just reloaded: an INT goes through it. */
    trap_expect(NULL);
    __asm__ volatile("int $0x40");
    printf("int 0x40 after lidtw: %s\n", trap_last.count == 1 ? "delivered" : "lost");
}
