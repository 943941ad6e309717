/*
 * Reloading data segment registers from one instruction again and again
 * (SDM vol. 3A 3.4.3, vol. 2 MOV and POP): every load reads the descriptor
 * the GDT holds at that moment, so a changed entry, a cleared present or
 * accessed bit or a new GDTR takes effect at the next load through the same
 * instruction, however often it ran before.  (Popek caches such loads at
 * the instruction; this is what its cache must never get wrong.)
 *
 * Four load sites, each its own function: MOV ES, r16; POP FS; MOV DS, m16;
 * MOV GS, r16.  Each loads the selector passed, reads the dword at offset 0
 * through it and puts back the flat data segment.  Every case runs each site
 * three times; then the entry is rewritten between loads, cycling through two
 * and three bases (Linux's TLS entries alternate between tasks like that).
 * Two VERW sites (register, and memory through CS as Linux has it) run the
 * same way: ZF must follow the entry, and VERW must leave the other flags.
 */
#include "lib/guest.h"

#define SEL_WIN 0x18            /* data, base SCRATCH_ADDR + 0x100 * k */

uint32_t es_read(uint32_t sel);
uint32_t fs_read(uint32_t sel);
uint32_t ds_read(uint32_t sel);
uint32_t gs_read(uint32_t sel);
uint32_t verw_reg(uint32_t sel);
uint32_t verw_mem(uint32_t sel);
extern char es_site[], es_resume[], fs_site[], fs_resume[], ds_site[], ds_resume[];
extern char gs_site[], gs_resume[];

__asm__(".text\n"
        "es_read:\n"
        "  movl 4(%esp), %eax\n"
        "es_site:\n"
        "  movw %ax, %es\n"
        "  movl %es:0, %eax\n"
        "es_resume:\n"
        "  movl $0x10, %edx\n"
        "  movw %dx, %es\n"
        "  ret\n"
        "fs_read:\n"
        "  movl %esp, %ecx\n"
        "  pushl 4(%esp)\n"
        "fs_site:\n"
        "  popl %fs\n"
        "  movl %fs:0, %eax\n"
        "fs_resume:\n"
        "  movl %ecx, %esp\n"
        "  movl $0x10, %edx\n"
        "  movw %dx, %fs\n"
        "  ret\n"
        "ds_read:\n"
        "  leal 4(%esp), %edx\n"
        "ds_site:\n"
        "  movw (%edx), %ds\n"
        "  movl 0, %eax\n"
        "ds_resume:\n"
        "  movl $0x10, %edx\n"
        "  movw %dx, %ds\n"
        "  ret\n"
        "gs_read:\n"
        "  movl 4(%esp), %eax\n"
        "gs_site:\n"
        "  movw %ax, %gs\n"
        "  movl %gs:0, %eax\n"
        "gs_resume:\n"
        "  movl $0x10, %edx\n"
        "  movw %dx, %gs\n"
        "  ret\n"
        /* OF, SF, AF and CF set, ZF and PF clear, then VERW; returns those flags. */
        "verw_reg:\n"
        "  movl 4(%esp), %edx\n"
        "  movl $0x7fffffff, %eax\n"
        "  addl $0x7fffffff, %eax\n"
        "  stc\n"
        "  verw %dx\n"
        "  pushfl\n"
        "  popl %eax\n"
        "  andl $0x8d5, %eax\n"
        "  ret\n"
        "verw_mem:\n"
        "  movl 4(%esp), %edx\n"
        "  movw %dx, verw_sel\n"
        "  movl $0x7fffffff, %eax\n"
        "  addl $0x7fffffff, %eax\n"
        "  stc\n"
        "  verw %cs:verw_sel\n"
        "  pushfl\n"
        "  popl %eax\n"
        "  andl $0x8d5, %eax\n"
        "  ret\n"
        ".data\n"
        "verw_sel: .word 0\n"
        ".text\n");

/* VERW of `sel` three times through each site: ZF, and whether the other
 * arithmetic flags came through unchanged. */
static void verws(const char *what, uint32_t sel)
{
    for (unsigned s = 0; s < 2; s++)
        for (unsigned i = 0; i < 3; i++) {
            uint32_t f = (s ? verw_mem : verw_reg)(sel);
            printf("%s: verw %s %04x -> zf=%u others kept=%u\n", what, s ? "cs:m16" : "r16", sel,
                   (f >> 6) & 1, (f & ~0x40u) == 0x891);
        }
}

static volatile uint32_t *const flat = (volatile uint32_t *)SCRATCH_ADDR;

static const struct {
    const char *name;
    uint32_t (*fn)(uint32_t);
    const char *site, *resume;
} sites[] = {
    { "mov es", es_read, es_site, es_resume },
    { "pop fs", fs_read, fs_site, fs_resume },
    { "mov ds", ds_read, ds_site, ds_resume },
    { "mov gs", gs_read, gs_site, gs_resume },
};
#define NSITES (sizeof(sites) / sizeof(sites[0]))

/* Three loads of `sel` through every site: the values read, or the fault. */
static void loads(const char *what, uint32_t sel)
{
    for (unsigned s = 0; s < NSITES; s++) {
        for (unsigned i = 0; i < 3; i++) {
            trap_expect(sites[s].resume);
            uint32_t v = sites[s].fn(sel);
            printf("%s: %s %04x", what, sites[s].name, sel);
            if (trap_last.count) {
                trap_print("", sites[s].site);
            } else {
                trap_disarm();
                printf(" -> %08x\n", v);
            }
        }
    }
}

static uint64_t gdt_copy[GDT_ENTRIES] __attribute__((aligned(8)));

static void lgdt(const void *base)
{
    struct __attribute__((packed)) { uint16_t limit; uint32_t base; } d = {
        GDT_ENTRIES * 8 - 1, (uint32_t)base,
    };
    __asm__ volatile("lgdt %0" : : "m"(d) : "memory");
}

void kmain(void)
{
    for (unsigned i = 0; i < 256; i++)
        flat[i] = 0xDA7A0000 + i;
    gdt_set(SEL_WIN >> 3, SCRATCH_ADDR, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    loads("base +0", SEL_WIN);

    gdt_set(SEL_WIN >> 3, SCRATCH_ADDR + 0x100, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    loads("entry rewritten, base +100", SEL_WIN);

    gdt_set(SEL_WIN >> 3, SCRATCH_ADDR + 0x100, 0xFFFFF, ACC_DATA32 & ~DESC_P, DESC_G | DESC_DB);
    loads("present bit clear", SEL_WIN);

    gdt_set(SEL_WIN >> 3, SCRATCH_ADDR + 0x100, 0xFFFFF, ACC_DATA32 & ~DESC_TYPE_A,
            DESC_G | DESC_DB);
    loads("accessed bit clear", SEL_WIN);
    printf("accessed bit after the loads: %u\n",
           (unsigned)(gdt_get_raw(SEL_WIN >> 3) >> 40) & DESC_TYPE_A);

    loads("rpl 3 > dpl 0", SEL_WIN | 3);
    loads("back to base +100", SEL_WIN);

    /* A second GDT whose entry differs: LGDT alone changes what the next
     * load finds. */
    for (unsigned i = 0; i < GDT_ENTRIES; i++)
        gdt_copy[i] = gdt_get_raw(i);
    lgdt(gdt_copy);
    gdt_copy[SEL_WIN >> 3] = gdt_get_raw(SEL_WIN >> 3) + 0x0000000000800000ull; /* base +0x80 */
    loads("lgdt to a copy, base +180", SEL_WIN);
    lgdt((const void *)GDT_ADDR);
    loads("lgdt back, base +100", SEL_WIN);

    /* The entry rewritten before every load, cycling through 2 and 3 bases. */
    for (unsigned n = 2; n <= 3; n++)
        for (unsigned s = 0; s < NSITES; s++) {
            unsigned bad = 0;
            for (unsigned i = 0; i < 12; i++) {
                uint32_t k = i % n;
                gdt_set(SEL_WIN >> 3, SCRATCH_ADDR + 0x40 * k, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
                if (sites[s].fn(SEL_WIN) != flat[0x10 * k])
                    bad++;
            }
            printf("%s: entry cycling through %u bases, 12 loads: %u wrong\n", sites[s].name, n, bad);
        }

    verws("writable data", SEL_WIN);
    gdt_set(SEL_WIN >> 3, SCRATCH_ADDR, 0xFFFFF, ACC_DATA32 & ~DESC_TYPE_WRITE, DESC_G | DESC_DB);
    verws("entry made read-only", SEL_WIN);
    gdt_set(SEL_WIN >> 3, SCRATCH_ADDR, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    verws("writable again", SEL_WIN);
    verws("rpl 3 > dpl 0", SEL_WIN | 3);
    verws("null selector", 0);
    verws("beyond the gdt limit", (GDT_ENTRIES + 1) * 8);
    for (unsigned i = 0; i < GDT_ENTRIES; i++)
        gdt_copy[i] = gdt_get_raw(i);
    gdt_copy[SEL_WIN >> 3] &= ~((uint64_t)DESC_TYPE_WRITE << 40);
    lgdt(gdt_copy);
    verws("lgdt to a copy where it is read-only", SEL_WIN);
    lgdt((const void *)GDT_ADDR);
    verws("lgdt back", SEL_WIN);
}
