/*
 * Address spaces and CR3 (SDM vol. 3A, 4.3, 4.10.4.1).  Two page directories
 * share the page table that identity-maps 0-4 MiB (so the kernel runs in
 * both) and map linear 0x40000000 through their own page tables to different
 * frames.  Printed:
 *   - CR3 reads back what was written, PWT and PCD included (4.3);
 *   - switching CR3 switches the translation, and writes stay in their frame;
 *   - MOV to CR3 invalidates every non-global translation, so a PTE of A
 *     changed while B was current is seen after switching back, as is one
 *     changed while A is current and CR3 is written with the same value; a
 *     PTE made not present faults; a MOV to CR3 alone sets no A bit;
 *   - global pages (CR4.PGE=1, PTE.G=1): whether one survives a MOV to CR3 is
 *     up to the TLB and is not printed; INVLPG removes a global translation
 *     and changing CR4.PGE removes them all (4.10.4.1), which is printed.
 */
#include "lib/guest.h"

#define PD_A     ((volatile uint32_t *)(SCRATCH_ADDR + 0x0000))
#define PD_B     ((volatile uint32_t *)(SCRATCH_ADDR + 0x1000))
#define PT_LOW   ((volatile uint32_t *)(SCRATCH_ADDR + 0x2000))
#define PT_A     ((volatile uint32_t *)(SCRATCH_ADDR + 0x3000))
#define PT_B     ((volatile uint32_t *)(SCRATCH_ADDR + 0x4000))
#define FRAME(n) (SCRATCH_ADDR + 0x10000 + (n) * 0x1000)
#define VA(n)    (0x40000000 + (n) * 0x1000)

#define PG_URW (PTE_P | PTE_RW | PTE_US)

static volatile uint32_t *word(uint32_t linear) { return (volatile uint32_t *)linear; }
static volatile uint32_t sink;

static uint32_t frame_at(uint32_t linear)
{
    uint32_t v = *word(linear);
    return v >> 16 == 0xF00D ? v & 0xFF : 0xFFFFFFFF;
}

static void use(volatile uint32_t *pd) { cr3_write((uint32_t)pd); }

void kmain(void)
{
    uint32_t a, b, c, d, eax, ebx, ecx, edx;

    paging_map_low(PD_A, PT_LOW, PG_URW);
    paging_map_low(PD_B, PT_LOW, PG_URW);
    memset((void *)PT_A, 0, 2 * 4096);
    PD_A[VA(0) >> 22] = (uint32_t)PT_A | PG_URW;
    PD_B[VA(0) >> 22] = (uint32_t)PT_B | PG_URW;
    PT_A[0] = FRAME(0) | PG_URW;
    PT_B[0] = FRAME(1) | PG_URW;
    PT_A[1] = FRAME(2) | PG_URW;
    PT_B[1] = FRAME(2) | PG_URW;
    PT_A[2] = FRAME(5) | PG_URW | PTE_G;
    PT_B[2] = FRAME(6) | PG_URW;
    for (uint32_t n = 0; n < 8; n++)
        for (uint32_t i = 0; i < 1024; i++)
            word(FRAME(n))[i] = 0xF00D0000 | n;

    use(PD_A);
    cr0_write(cr0_read() | CR0_PG);
    printf("cr3 <- %08x: reads %08x\n", (uint32_t)PD_A, cr3_read());
    cr3_write((uint32_t)PD_A | PTE_PWT | PTE_PCD);
    printf("cr3 <- %08x: reads %08x\n", (uint32_t)PD_A | PTE_PWT | PTE_PCD, cr3_read());
    use(PD_A);

    a = frame_at(VA(0));
    use(PD_B);
    b = frame_at(VA(0));
    use(PD_A);
    c = frame_at(VA(0));
    use(PD_B);
    d = frame_at(VA(0));
    printf("%08x under a, b, a, b: frames %u %u %u %u\n", VA(0), a, b, c, d);

    *word(VA(0) + 4) = 0xBBBB0004;
    use(PD_A);
    printf("write under b, read under a: %08x, frame 1 holds %08x\n", *word(VA(0) + 4),
           *word(FRAME(1) + 4));
    *word(VA(1)) = 0x12345678;
    use(PD_B);
    printf("frame 2 mapped in both: b reads a's write=%u\n", *word(VA(1)) == 0x12345678);
    use(PD_A);

    /* Change a PTE of A while B is current; MOV to CR3 flushes it. */
    sink = frame_at(VA(0));
    use(PD_B);
    PT_A[0] = FRAME(4) | PG_URW;
    use(PD_A);
    printf("pte of a changed while b was current, back to a: frame %u\n", frame_at(VA(0)));

    PT_A[0] = FRAME(3) | PG_URW;
    use(PD_A);
    printf("pte changed, same cr3 written again: frame %u\n", frame_at(VA(0)));

    use(PD_B);
    PT_A[0] = FRAME(3) | PTE_RW | PTE_US;
    use(PD_A);
    uint32_t v = probe_load(VA(0));
    trap_print("pte of a made not present while b was current, back to a", probe_load_at);
    printf("load gave %08x\n", v);
    PT_A[0] = FRAME(3) | PG_URW;
    use(PD_A);
    sink = frame_at(VA(0));
    use(PD_B);
    PT_A[0] &= ~(uint32_t)PTE_A;
    PD_A[VA(0) >> 22] &= ~(uint32_t)PTE_A;
    use(PD_A);
    printf("a bits cleared while b was current, back to a: pde.a=%u pte.a=%u",
           (PD_A[VA(0) >> 22] >> 5) & 1, (PT_A[0] >> 5) & 1);
    a = frame_at(VA(0));
    printf("; after a read: frame %u pde.a=%u pte.a=%u\n", a, (PD_A[VA(0) >> 22] >> 5) & 1,
           (PT_A[0] >> 5) & 1);

    cpuid(1, 0, &eax, &ebx, &ecx, &edx);
    printf("cpuid 1: edx.pge=%u\n", (edx >> 13) & 1);
    cr4_write(cr4_read() | CR4_PGE);
    printf("cr4.pge=%u\n", (cr4_read() & CR4_PGE) ? 1 : 0);
    a = frame_at(VA(2));
    use(PD_B);
    sink = frame_at(VA(2));   /* a's global translation may still be used: not printed */
    invlpg(VA(2));
    b = frame_at(VA(2));
    use(PD_A);
    c = frame_at(VA(2));
    printf("global page of a: under a frame %u; b after invlpg frame %u; back to a frame %u\n", a, b,
           c);

    PT_A[2] = FRAME(7) | PG_URW | PTE_G;
    use(PD_A);
    sink = frame_at(VA(2));   /* may be the old global translation: not printed */
    cr4_write(cr4_read() & ~CR4_PGE);
    cr4_write(cr4_read() | CR4_PGE);
    printf("global pte changed, cr4.pge 1->0->1: frame %u\n", frame_at(VA(2)));
}
