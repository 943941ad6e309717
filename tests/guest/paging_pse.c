/*
 * 4 MiB pages (SDM vol. 3A, 4.3, table 4-4): with CR4.PSE=1 a PDE with PS=1
 * maps a 4 MiB page whose frame is PDE bits 31:22, the low 22 bits of the
 * linear address being the offset.  Checked:
 *   - A and D are set in such a PDE, as in a PTE (4.8);
 *   - a supervisor-only 4 MiB page at 0xC0000000 mapping physical 0, as
 *     Linux's PAGE_OFFSET does: data and code are reachable through it, the
 *     code seeing its high EIP, and ring 3 gets #PF err=0005;
 *   - INVLPG of any address in a 4 MiB page drops the whole page's translation;
 *   - with CR4.PSE=0 the PS bit is ignored and the PDE references a page
 *     table.  CR4.PSE changes are not among the TLB-invalidating events of
 *     4.10.4.1, so MOV to CR3 follows each change;
 *   - the kernel keeps running when its 4 KiB identity map is replaced by
 *     one 4 MiB page.
 * Reserved bits in a 4 MiB PDE are in paging_rsvd.c (QEMU gets the error
 * code wrong).
 */
#include "lib/guest.h"

#define PD       ((volatile uint32_t *)(SCRATCH_ADDR + 0x0000))
#define PT_LOW   ((volatile uint32_t *)(SCRATCH_ADDR + 0x1000))
#define PAGE_OFFSET 0xC0000000
#define VA_BIG   0x00800000   /* 4 MiB page -> physical 0x00400000, then 0x00800000 */
#define VA_PSBIT 0x01000000   /* PDE 0x00c00000|PS: 4 MiB page, or page table at 0x00c00000 */
#define MARKER   (SCRATCH_ADDR + 0x8000)

#define PG_URW (PTE_P | PTE_RW | PTE_US)

static volatile uint32_t *word(uint32_t linear) { return (volatile uint32_t *)linear; }

/* Returns its own EIP (position-independent, so it runs at any alias). */
__asm__(".text\n"
        "where_am_i:\n\t"
        "call 1f\n"
        "1:\tpopl %eax\n\t"
        "ret\n");
extern char where_am_i[];

static TEST_FN uint32_t user_load(uint32_t addr)
{
    uint32_t v = 0xDEADDEAD;
    __asm__ volatile("uload_at: movl (%1), %0\nuload_resume:" : "+r"(v) : "r"(addr) : "memory");
    return v;
}

void kmain(void)
{
    uint32_t eax, ebx, ecx, edx;
    extern char uload_at[], uload_resume[];

    /* Paging is still off: physical memory is written directly. */
    *word(0x00400000) = 0x40000000;
    *word(0x00412344) = 0x41234400;
    *word(0x00800000) = 0x80000000;
    *word(0x00C00000) = 0x00D00000 | PG_URW;   /* page table entry 0, or data */
    *word(0x00D00000) = 0xD00D0000;
    *word(MARKER) = 0x600DF00D;

    paging_map_low(PD, PT_LOW, PG_URW);
    PD[1] = 0x00400000 | PTE_PS | PG_URW;   /* identity, to look at physical 4-8 MiB */
    PD[VA_BIG >> 22] = 0x00400000 | PTE_PS | PG_URW;
    PD[VA_PSBIT >> 22] = 0x00C00000 | PTE_PS | PG_URW;
    PD[PAGE_OFFSET >> 22] = 0x00000000 | PTE_PS | PTE_P | PTE_RW;

    cpuid(1, 0, &eax, &ebx, &ecx, &edx);
    printf("cpuid 1: edx.pse=%u\n", (edx >> 3) & 1);
    cr4_write(cr4_read() | CR4_PSE);
    cr3_write((uint32_t)PD);
    cr0_write(cr0_read() | CR0_PG);
    printf("cr4.pse=%u cr0.pg=%u\n", (cr4_read() & CR4_PSE) ? 1 : 0, cr0_read() >> 31);

    printf("4 MiB pde before access: %03x\n", PD[VA_BIG >> 22] & 0xFFF);
    uint32_t v = *word(VA_BIG);
    printf("read %08x: %08x, pde %03x\n", VA_BIG, v, PD[VA_BIG >> 22] & 0xFFF);
    printf("read %08x: %08x\n", VA_BIG + 0x12344, *word(VA_BIG + 0x12344));
    *word(VA_BIG + 0x3FFFFC) = 0x7FFFFC00;
    printf("write %08x, pde %03x; identity-mapped physical 007ffffc holds %08x\n",
           VA_BIG + 0x3FFFFC, PD[VA_BIG >> 22] & 0xFFF, *word(0x007FFFFC));

    PD[VA_BIG >> 22] = 0x00800000 | PTE_PS | PG_URW;
    invlpg(VA_BIG + 0x2FF000);
    printf("pde -> physical 00800000, invlpg %08x: read %08x: %08x\n", VA_BIG + 0x2FF000, VA_BIG,
           *word(VA_BIG));

    printf("read %08x: %08x\n", PAGE_OFFSET + MARKER, *word(PAGE_OFFSET + MARKER));
    *word(PAGE_OFFSET + MARKER) = 0xC0DEC0DE;
    printf("write %08x, read %08x: %08x\n", PAGE_OFFSET + MARKER, MARKER, *word(MARKER));
    uint32_t eip = ((uint32_t (*)(void))(PAGE_OFFSET + (uint32_t)where_am_i))();
    printf("code called at its %08x alias sees eip = alias+%u\n", PAGE_OFFSET,
           eip - (PAGE_OFFSET + (uint32_t)where_am_i));
    user_init();
    trap_expect(uload_resume);
    user_call(user_load, PAGE_OFFSET + MARKER);
    trap_print("ring 3 read via supervisor 4 MiB page", uload_at);

    printf("pse=1, %08x (pde %08x): %08x\n", VA_PSBIT, PD[VA_PSBIT >> 22] & ~(PTE_A | PTE_D),
           *word(VA_PSBIT));
    cr4_write(cr4_read() & ~CR4_PSE);
    cr3_write((uint32_t)PD);
    printf("pse=0, %08x: %08x\n", VA_PSBIT, *word(VA_PSBIT));
    cr4_write(cr4_read() | CR4_PSE);
    cr3_write((uint32_t)PD);
    printf("pse=1 again, %08x: %08x\n", VA_PSBIT, *word(VA_PSBIT));

    PD[0] = 0x00000000 | PTE_PS | PG_URW;
    cr3_write((uint32_t)PD);
    *word(MARKER) = 1;
    printf("identity map now one 4 MiB page, after a write through it: pde 0 = %03x\n",
           PD[0] & 0xFFF);
}
