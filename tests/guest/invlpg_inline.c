/*
 * INVLPG in the cases a translator may be tempted to skip (SDM vol. 3A,
 * 4.10.4.1; Popek runs INVLPG of a page it never mapped inline, as a no-op):
 *   - the flags are untouched, whether the page was used or not;
 *   - the operand is a logical address: through a DS whose base is not 0,
 *     INVLPG of an unused page's offset invalidates the used page at
 *     base + offset (the load of DS itself repeated, as an inline segment
 *     cache would hit);
 *   - a page only executed, never read, holds a translation INVLPG must drop
 *     when its PTE moves to other code;
 *   - any address in a 4 MiB page invalidates the whole of it.
 */
#include "lib/guest.h"

#define PD       ((volatile uint32_t *)(SCRATCH_ADDR + 0x0000))
#define PT_LOW   ((volatile uint32_t *)(SCRATCH_ADDR + 0x1000))
#define PT_TEST  ((volatile uint32_t *)(SCRATCH_ADDR + 0x2000)) /* PD[1]: 0x00400000- */
#define FRAME(n) (SCRATCH_ADDR + 0x10000 + (n) * 0x1000)
#define VA(n)    (0x00400000 + (n) * 0x1000)
#define SEL_BASED 0x18          /* flat data segment based at 0x1000 */
#define BIG(n)   (0x00800000 + (n) * 0x400000) /* 4 MiB pages, PD[2] and PD[3] */

#define PG_URW (PTE_P | PTE_RW | PTE_US)
#define ARITH  0x8D5u           /* OF SF ZF AF PF CF */

static volatile uint32_t *word(uint32_t linear) { return (volatile uint32_t *)linear; }
static volatile uint32_t sink;

static uint32_t frame_tag(uint32_t v) { return v >> 16 == 0xF00D ? v & 0xFF : 0xFFFFFFFF; }

/* INVLPG of `lin` between a POPF of `flags` and a PUSHF: the flags after. */
static TEST_FN uint32_t invlpg_flags(uint32_t lin, uint32_t flags)
{
    uint32_t out;
    __asm__ volatile("pushfl\n\tandl $~0x8d5, (%%esp)\n\torl %2, (%%esp)\n\tpopfl\n\t"
                     "invlpg (%1)\n\tpushfl\n\tpopl %0"
                     : "=r"(out) : "r"(lin), "r"(flags) : "memory", "cc");
    return out & ARITH;
}

/* INVLPG of offset `off` through DS = SEL_BASED. */
static TEST_FN void invlpg_based(uint32_t off)
{
    __asm__ volatile("movw %w0, %%ds\n\tinvlpg (%1)\n\tmovw %w2, %%ds"
                     : : "r"(SEL_BASED), "r"(off), "r"(SEL_DATA32) : "memory");
}

typedef uint32_t (*code_fn)(void);

void kmain(void)
{
    paging_map_low(PD, PT_LOW, PG_URW);
    memset((void *)PT_TEST, 0, 4096);
    PD[1] = (uint32_t)PT_TEST | PG_URW;
    for (uint32_t n = 0; n < 8; n++) {
        PT_TEST[n] = FRAME(n) | PG_URW;
        for (uint32_t i = 0; i < 1024; i++)
            word(FRAME(n))[i] = 0xF00D0000 | n;
    }
    gdt_set(SEL_BASED >> 3, 0x1000, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    cr3_write((uint32_t)PD);
    cr0_write(cr0_read() | CR0_PG);

    /* Flags: an unused page (VA(6)) and a used one (VA(7)). */
    sink = *word(VA(7));
    static const uint32_t patterns[] = { ARITH, 0, 0x801, 0x0C4 };
    for (unsigned i = 0; i < 4; i++)
        printf("flags %03x: invlpg of an unused page leaves %03x, of a used page %03x\n",
               patterns[i], invlpg_flags(VA(6), patterns[i]), invlpg_flags(VA(7), patterns[i]));

    /* DS based at 0x1000: offset VA(0) is linear VA(1); VA(0) is never used. */
    for (unsigned round = 0; round < 3; round++) {
        uint32_t from = 1 + (round & 1), to = 2 - (round & 1);
        PT_TEST[1] = FRAME(from) | PG_URW;
        invlpg(VA(1));
        sink = *word(VA(1));
        PT_TEST[1] = FRAME(to) | PG_URW;
        sink = *word(VA(1)); /* may still see the old frame: not printed */
        invlpg_based(VA(0));
        printf("round %u: pte of %08x -> frame %u, invlpg ds:%08x (base 1000): reads frame %u\n",
               round, VA(1), to, VA(0), frame_tag(*word(VA(1))));
    }

    /* Code run from VA(3), never read as data, then the PTE moved. */
    static const uint8_t one[] = { 0xb8, 0x11, 0x11, 0x11, 0x11, 0xc3 }; /* mov $..,%eax; ret */
    static const uint8_t two[] = { 0xb8, 0x22, 0x22, 0x22, 0x22, 0xc3 };
    memcpy((void *)FRAME(3), one, sizeof(one));
    memcpy((void *)FRAME(4), two, sizeof(two));
    code_fn fn = (code_fn)VA(3);
    uint32_t a = 0;
    for (unsigned i = 0; i < 3; i++)
        a = fn();
    PT_TEST[3] = FRAME(4) | PG_URW;
    invlpg(VA(3));
    uint32_t b = fn();
    printf("code at %08x: %08x; pte -> other code, invlpg: %08x\n", VA(3), a, b);

    /* 4 MiB pages: tag them through themselves. */
    cr4_write(cr4_read() | CR4_PSE);
    PD[2] = BIG(0) | PTE_PS | PG_URW;
    PD[3] = BIG(1) | PTE_PS | PG_URW;
    *word(BIG(0) + 0x5000) = 0xF00D00A0;
    *word(BIG(1) + 0x5000) = 0xF00D00B0;
    sink = *word(BIG(0) + 0x5000);
    PD[2] = BIG(1) | PTE_PS | PG_URW;
    sink = *word(BIG(0) + 0x5000); /* may still see the old page: not printed */
    invlpg(BIG(0) + 0x3FF000);     /* another 4 KiB of the same 4 MiB page */
    printf("4 MiB page moved, invlpg of its last 4 KiB: reads tag %02x\n",
           frame_tag(*word(BIG(0) + 0x5000)));
}
