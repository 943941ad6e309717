/*
 * TLB invalidation (SDM vol. 3A, 4.10.4), printing only what the SDM
 * guarantees:
 *   - after a PTE is pointed at another frame, INVLPG of the page (also through
 *     a segment with a non-zero base: the operand is a logical address) or a
 *     MOV to CR3 makes the new frame visible; what a read sees before that
 *     depends on the TLB and is not printed (the read is still done);
 *   - after a PDE is pointed at another page table, INVLPG of one address in
 *     it suffices, because INVLPG also empties the paging-structure caches
 *     (4.10.4.1);
 *   - a PTE or PDE changed from not present to present needs no invalidation:
 *     entries with P=0 are never cached (4.10.4.3), also right after a #PF;
 *   - R/W 0 -> 1 without INVLPG may cost one spurious #PF, which itself
 *     invalidates the entry, so the retried write succeeds (4.10.4.1, 4.10.4.3);
 *     R/W 1 -> 0 followed by INVLPG makes a supervisor write fault (CR0.WP=1);
 *   - a page made not present and INVLPGed faults; made present again on
 *     the same frame (read-only, D clear) it reads that frame, a write
 *     faults, and once writable (INVLPG) the write lands and sets D (Popek
 *     keeps such a page's frame mapped but inaccessible, mmu.h);
 *   - INVLPG of an address without a translation does not fault.
 */
#include "lib/guest.h"

#define PD       ((volatile uint32_t *)(SCRATCH_ADDR + 0x0000))
#define PT_LOW   ((volatile uint32_t *)(SCRATCH_ADDR + 0x1000))
#define PT_TEST  ((volatile uint32_t *)(SCRATCH_ADDR + 0x2000)) /* PD[1]: 0x00400000- */
#define PT_X     ((volatile uint32_t *)(SCRATCH_ADDR + 0x3000)) /* PD[3]: 0x00c00000-, first */
#define PT_Y     ((volatile uint32_t *)(SCRATCH_ADDR + 0x4000)) /* PD[3] afterwards */
#define PT_Z     ((volatile uint32_t *)(SCRATCH_ADDR + 0x5000)) /* PD[4]: 0x01000000-, late */
#define FRAME(n) (SCRATCH_ADDR + 0x10000 + (n) * 0x1000)
#define VA(n)    (0x00400000 + (n) * 0x1000)
#define VA_PDE3  0x00C00000
#define VA_PDE4  0x01000000
#define SEL_WIN  0x18          /* data segment based at VA(0) - 0x1000 */

#define PG_URW (PTE_P | PTE_RW | PTE_US)

static volatile uint32_t *word(uint32_t linear) { return (volatile uint32_t *)linear; }
static volatile uint32_t sink;

/* #PF: count and retry the instruction, or, when the PTE is still not
 * present, resume at pf_resume. */
static volatile uint32_t pf_count, pf_cr2, pf_error;
static void *volatile pf_resume;

static void count_fault(struct trap_frame *f)
{
    pf_count++;
    pf_cr2 = cr2_read();
    pf_error = f->error;
    if (pf_count > 4) {
        printf("UNEXPECTED repeated #PF cr2=%08x err=%04x\n", pf_cr2, pf_error);
        exit_qemu(0x7F);
    }
    if (pf_resume) {
        f->eip = (uint32_t)pf_resume;
        pf_resume = NULL;
    }
}

static uint32_t frame_tag(uint32_t v) { return v >> 16 == 0xF00D ? v & 0xFF : 0xFFFFFFFF; }

static TEST_FN void remap(void)
{
    /* INVLPG */
    sink = *word(VA(0));
    PT_TEST[0] = FRAME(1) | PG_URW;
    sink = *word(VA(0));   /* may still see frame 0: not printed */
    invlpg(VA(0));
    printf("pte -> frame 1, invlpg: reads frame %u\n", frame_tag(*word(VA(0))));

    /* INVLPG through a segment whose base is not 0 */
    sink = *word(VA(1));
    PT_TEST[1] = FRAME(2) | PG_URW;
    sink = *word(VA(1));
    __asm__ volatile("movw %w0, %%fs\n\tinvlpg %%fs:(%1)\n\tmovw %w2, %%fs"
                     : : "r"(SEL_WIN), "r"(0x2000), "r"(SEL_DATA32) : "memory");
    printf("pte -> frame 2, invlpg fs:2000 (fs base %08x): reads frame %u\n", VA(0) - 0x1000,
           frame_tag(*word(VA(1))));

    /* MOV to CR3 with the same value */
    sink = *word(VA(2));
    PT_TEST[2] = FRAME(3) | PG_URW;
    sink = *word(VA(2));
    cr3_write(cr3_read());
    printf("pte -> frame 3, mov cr3 (same value): reads frame %u\n", frame_tag(*word(VA(2))));

    /* A new page table under a PDE: INVLPG of one address in it. */
    sink = *word(VA_PDE3 + 0x1000);
    PD[3] = (uint32_t)PT_Y | PG_URW;
    sink = *word(VA_PDE3 + 0x1000);
    invlpg(VA_PDE3 + 0x1000);
    printf("pde -> other page table, invlpg: reads frame %u\n", frame_tag(*word(VA_PDE3 + 0x1000)));
}

static TEST_FN void not_present_to_present(void)
{
    extern char np_resume[], np2_resume[];
    uint32_t v = 0;

    pf_count = 0;
    pf_resume = np_resume;
    __asm__ volatile("movl (%1), %0\nnp_resume:" : "+r"(v) : "r"(VA(3)) : "memory");
    printf("read of not-present pte: faults=%u cr2=%08x err=%04x\n", pf_count, pf_cr2, pf_error);
    PT_TEST[3] = FRAME(4) | PG_URW;
    pf_count = 0;
    v = *word(VA(3));
    printf("pte made present, no invalidation: faults=%u reads frame %u\n", pf_count, frame_tag(v));

    pf_count = 0;
    pf_resume = np2_resume;
    __asm__ volatile("movl (%1), %0\nnp2_resume:" : "+r"(v) : "r"(VA_PDE4 + 0x5000) : "memory");
    printf("read under not-present pde: faults=%u cr2=%08x err=%04x\n", pf_count, pf_cr2, pf_error);
    PD[4] = (uint32_t)PT_Z | PG_URW;
    pf_count = 0;
    v = *word(VA_PDE4 + 0x5000);
    printf("pde made present, no invalidation: faults=%u reads frame %u\n", pf_count, frame_tag(v));
}

static TEST_FN void rw_changes(void)
{
    extern char ro_resume[];

    /* read-only -> writable: at most one spurious fault without INVLPG */
    sink = *word(VA(4));
    PT_TEST[4] = FRAME(6) | PG_URW;
    pf_count = 0;
    *word(VA(4) + 4) = 0x11112222;
    printf("r/w 0->1 without invlpg: write landed=%u faults<=1: %u\n",
           *word(FRAME(6) + 4) == 0x11112222, pf_count <= 1);
    sink = *word(VA(5));
    PT_TEST[5] = FRAME(7) | PG_URW;
    invlpg(VA(5));
    pf_count = 0;
    *word(VA(5) + 4) = 0x33334444;
    printf("r/w 0->1 with invlpg: write landed=%u faults=%u\n", *word(FRAME(7) + 4) == 0x33334444,
           pf_count);

    /* writable -> read-only */
    *word(VA(6)) = 1;
    PT_TEST[6] = FRAME(8) | PTE_P | PTE_US;
    invlpg(VA(6));
    pf_count = 0;
    pf_resume = ro_resume;
    __asm__ volatile("movl $0x55555555, (%0)\nro_resume:" : : "r"(VA(6) + 8) : "memory");
    printf("r/w 1->0, invlpg, write: faults=%u cr2=%08x err=%04x frame unchanged=%u\n", pf_count,
           pf_cr2, pf_error, *word(FRAME(8) + 8) != 0x55555555);
}

static TEST_FN void same_frame_again(void)
{
    extern char sf_resume[], sf2_resume[];
    uint32_t v = 0;

    sink = *word(VA(7));
    PT_TEST[7] &= ~PTE_P;
    invlpg(VA(7));
    pf_count = 0;
    pf_resume = sf_resume;
    __asm__ volatile("movl (%1), %0\nsf_resume:" : "+r"(v) : "r"(VA(7)) : "memory");
    printf("present -> not present, invlpg, read: faults=%u err=%04x\n", pf_count, pf_error);
    PT_TEST[7] = FRAME(5) | PTE_P | PTE_US | PTE_A;
    pf_count = 0;
    v = *word(VA(7));
    printf("same frame again, read-only: faults=%u reads frame %u dirty=%u\n", pf_count,
           frame_tag(v), (PT_TEST[7] & PTE_D) != 0);
    pf_resume = sf2_resume;
    __asm__ volatile("movl $0x66666666, (%0)\nsf2_resume:" : : "r"(VA(7) + 8) : "memory");
    printf("write: faults=%u err=%04x\n", pf_count, pf_error);
    PT_TEST[7] |= PTE_RW;
    invlpg(VA(7));
    pf_count = 0;
    *word(VA(7) + 12) = 0x77777777;
    printf("made writable, invlpg, write: faults=%u landed=%u dirty=%u\n", pf_count,
           *word(FRAME(5) + 12) == 0x77777777, (PT_TEST[7] & PTE_D) != 0);
}

void kmain(void)
{
    paging_map_low(PD, PT_LOW, PG_URW);
    memset((void *)PT_TEST, 0, 4 * 4096);
    PD[1] = (uint32_t)PT_TEST | PG_URW;
    PD[3] = (uint32_t)PT_X | PG_URW;
    for (uint32_t n = 0; n < 3; n++)
        PT_TEST[n] = FRAME(n) | PG_URW;
    PT_TEST[4] = FRAME(6) | PTE_P | PTE_US;   /* read-only at first */
    PT_TEST[5] = FRAME(7) | PTE_P | PTE_US;
    PT_TEST[6] = FRAME(8) | PG_URW;
    PT_TEST[7] = FRAME(5) | PG_URW;
    PT_X[1] = FRAME(9) | PG_URW;
    PT_Y[1] = FRAME(10) | PG_URW;
    PT_Z[5] = FRAME(11) | PG_URW;
    for (uint32_t n = 0; n < 12; n++)
        for (uint32_t i = 0; i < 1024; i++)
            word(FRAME(n))[i] = 0xF00D0000 | n;
    gdt_set(SEL_WIN >> 3, VA(0) - 0x1000, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    trap_set_handler(VEC_PF, count_fault);
    cr3_write((uint32_t)PD);
    cr0_write(cr0_read() | CR0_PG | CR0_WP);

    remap();
    not_present_to_present();
    rw_changes();
    same_frame_again();

    pf_count = 0;
    invlpg(0x7FFFF000);               /* PDE not present */
    invlpg(VA(9));                    /* PTE not present */
    invlpg(0xFFFFFFFF);
    printf("invlpg of addresses without a translation: page faults=%u\n", pf_count);
}
