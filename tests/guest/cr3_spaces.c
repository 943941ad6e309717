/*
 * Many address spaces in turn (SDM vol. 3A, 4.10.4.1: MOV to CR3 invalidates
 * every non-global translation).  Sixteen page directories share the page
 * table that identity-maps 0-4 MiB and map linear 0x40000000 through page
 * tables of their own, so a kernel that keeps the translations of recently
 * used spaces across CR3 writes (Popek parks them under protection keys, for
 * fewer spaces than this) is checked for what a CPU must never show:
 *   - each space reads and writes its own frame at the same linear address,
 *     round after round, whatever the order of the switches;
 *   - a space that has no mapping where another one had one faults there;
 *   - a PTE made read-only, supervisor-only or pointing elsewhere while its
 *     space was not loaded takes effect when the space is loaded again.
 */
#include "lib/guest.h"

#define NSPACES  16
#define PD(n)    ((volatile uint32_t *)(SCRATCH_ADDR + (n) * 0x1000))
#define PT_LOW   ((volatile uint32_t *)(SCRATCH_ADDR + 0x10000))
#define PT(n)    ((volatile uint32_t *)(SCRATCH_ADDR + 0x11000 + (n) * 0x1000))
#define FRAME(n) (SCRATCH_ADDR + 0x30000 + (n) * 0x1000)
#define VA(n)    (0x40000000 + (n) * 0x1000)

#define PG_URW (PTE_P | PTE_RW | PTE_US)

static volatile uint32_t *word(uint32_t linear) { return (volatile uint32_t *)linear; }

static void use(unsigned n) { cr3_write((uint32_t)PD(n)); }

/* A store that resumes after itself on a fault. */
static void probe_store(uint32_t linear, uint32_t v)
{
    extern char pstore_resume[];
    trap_expect(pstore_resume);
    __asm__ volatile("pstore_at: movl %1, (%0)\npstore_resume:" : : "r"(linear), "r"(v) : "memory");
}

/* Ring 3: a load from `arg`, 0xDEADDEAD if it faulted. */
static TEST_FN uint32_t user_load(uint32_t arg)
{
    uint32_t v = 0xDEADDEAD;
    __asm__ volatile("uload_at: movl (%1), %0\nuload_resume:" : "+r"(v) : "r"(arg) : "memory");
    return v;
}

void kmain(void)
{
    extern char pstore_at[], uload_at[], uload_resume[];

    for (unsigned n = 0; n < NSPACES; n++) {
        paging_map_low(PD(n), PT_LOW, PG_URW);
        memset((void *)PT(n), 0, 4096);
        PD(n)[VA(0) >> 22] = (uint32_t)PT(n) | PG_URW;
        PT(n)[0] = FRAME(n) | PG_URW;
        for (uint32_t i = 0; i < 1024; i++)
            word(FRAME(n))[i] = 0xF00D0000 | n;
    }
    user_init();
    use(0);
    cr0_write(cr0_read() | CR0_PG | CR0_WP); /* WP: a read-only PTE binds ring 0 too */

    /* Forward, backward and strided orders, reading and writing. */
    unsigned bad = 0, switches = 0;
    for (unsigned round = 0; round < 6; round++) {
        for (unsigned k = 0; k < NSPACES; k++) {
            unsigned n = round % 3 == 0 ? k : round % 3 == 1 ? NSPACES - 1 - k : (k * 5) % NSPACES;
            use(n);
            switches++;
            if (*word(VA(0)) != (0xF00D0000 | n))
                bad++;
            if (round && *word(VA(0) + 4) != ((round - 1) << 8 | n))
                bad++;
            *word(VA(0) + 4) = round << 8 | n;
        }
    }
    unsigned frames_ok = 0;
    for (unsigned n = 0; n < NSPACES; n++)
        frames_ok += *word(FRAME(n) + 4) == (5u << 8 | n);
    printf("%u switches over %u spaces: %u wrong reads, %u frames hold their last write\n",
           switches, NSPACES, bad, frames_ok);

    /* Space 1 maps VA(1); space 2 does not. */
    PT(1)[1] = FRAME(NSPACES) | PG_URW;
    word(FRAME(NSPACES))[0] = 0x5EC2E700;
    use(1);
    printf("space 1 reads %08x at %08x\n", *word(VA(1)), VA(1));
    use(2);
    uint32_t v = probe_load(VA(1));
    trap_print("space 2, no mapping there", probe_load_at);
    printf("load gave %08x\n", v);
    use(1);
    printf("space 1 again: %08x\n", *word(VA(1)));

    /* Space 3's page made read-only while space 4 is loaded. */
    use(3);
    *word(VA(0) + 8) = 0x33333333;
    use(4);
    PT(3)[0] &= ~(uint32_t)PTE_RW;
    use(3);
    probe_store(VA(0) + 8, 0x44444444);
    trap_print("space 3, pte made read-only while away, store", pstore_at);
    printf("frame 3 holds %08x\n", *word(FRAME(3) + 8));

    /* Space 5's page made supervisor-only while space 6 is loaded. */
    use(5);
    printf("ring 3 in space 5 reads %08x\n", user_call(user_load, VA(0)));
    use(6);
    PT(5)[0] &= ~(uint32_t)PTE_US;
    use(5);
    trap_expect(uload_resume);
    v = user_call(user_load, VA(0));
    trap_print("space 5, pte made supervisor while away, ring 3 load", uload_at);
    printf("load gave %08x\n", v);

    /* Space 7's page pointed at space 8's frame while space 9 is loaded. */
    use(7);
    printf("space 7 reads frame %u\n", *word(VA(0)) & 0xFF);
    use(9);
    PT(7)[0] = FRAME(8) | PG_URW;
    use(7);
    printf("space 7, pte changed while away: frame %u\n", *word(VA(0)) & 0xFF);
}
