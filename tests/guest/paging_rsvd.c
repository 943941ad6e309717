/*
 * Reserved bits in a 4 MiB PDE (SDM vol. 3A, 4.3 table 4-4 and 4.7).  Bits
 * 21:(M-19) of a PDE that maps a 4 MiB page are reserved, M being
 * min(MAXPHYADDR, 40), so bit 21 is reserved on every processor (PSE-36 puts
 * physical address bits in 20:13).  Using such a PDE faults with RSVD=1; the
 * SDM: "bit 3 of the error code can be set only if bit 0 is also set", so the
 * error code is P|RSVD (0009), plus W/R and U/S as usual.  Reserved bits are
 * not checked in a not-present entry (err=0000), nor do they exist when
 * CR4.PSE=0: the PS bit is then ignored and the same PDE references a page
 * table (bits 31:12).
 *
 * qemu-mismatch: QEMU 7.2's page walker (target/i386/tcg/sysemu/excp_helper.c,
 * do_fault_rsvd) sets the error code to PG_ERROR_RSVD_MASK alone, so QEMU
 * reports 0008/000a/000c for the three faults below.
 */
#include "lib/guest.h"

#define PD       ((volatile uint32_t *)(SCRATCH_ADDR + 0x0000))
#define PT_LOW   ((volatile uint32_t *)(SCRATCH_ADDR + 0x1000))
#define VA_RSVD  0x01400000
#define PDE_BIT21 0x00200000
/* With CR4.PSE=0 the PDE below references a page table at physical
 * 0x01600000 (its bits 31:12); entry 4 maps a frame holding a marker. */
#define PDE_VALUE (VA_RSVD | PDE_BIT21 | PTE_PS | PTE_P | PTE_RW | PTE_US)
#define ALT_PT    0x01600000
#define ALT_FRAME 0x01700000

static volatile uint32_t *word(uint32_t linear) { return (volatile uint32_t *)linear; }

static TEST_FN uint32_t user_load(uint32_t addr)
{
    uint32_t v = 0xDEADDEAD;
    __asm__ volatile("uload_at: movl (%1), %0\nuload_resume:" : "+r"(v) : "r"(addr) : "memory");
    return v;
}

static TEST_FN void faults(const char *what)
{
    extern char rr_at[], rr_resume[], rw_at[], rw_resume[], uload_at[], uload_resume[];
    uint32_t v = 0;

    trap_expect(rr_resume);
    __asm__ volatile("rr_at: movl (%1), %0\nrr_resume:" : "+r"(v) : "r"(VA_RSVD + 0x10) : "memory");
    trap_print(what, rr_at);
    trap_expect(rw_resume);
    __asm__ volatile("rw_at: movl %0, (%1)\nrw_resume:" : : "r"(v), "r"(VA_RSVD + 0x14) : "memory");
    trap_print("  write", rw_at);
    trap_expect(uload_resume);
    user_call(user_load, VA_RSVD + 0x18);
    trap_print("  ring 3 read", uload_at);
}

void kmain(void)
{
    *word(ALT_PT + 4 * 4) = ALT_FRAME | PTE_P | PTE_RW | PTE_US;
    *word(ALT_FRAME) = 0xA17F0000;

    paging_map_low(PD, PT_LOW, PTE_P | PTE_RW | PTE_US);
    PD[VA_RSVD >> 22] = PDE_VALUE;
    cr4_write(cr4_read() | CR4_PSE);
    cr3_write((uint32_t)PD);
    cr0_write(cr0_read() | CR0_PG);
    user_init();

    printf("pde %08x, cr4.pse=1:\n", PDE_VALUE);
    faults("  read");

    PD[VA_RSVD >> 22] = PDE_VALUE & ~PTE_P;
    invlpg(VA_RSVD);
    printf("pde %08x (not present), cr4.pse=1:\n", PDE_VALUE & ~PTE_P);
    faults("  read");

    PD[VA_RSVD >> 22] = PDE_VALUE;
    cr4_write(cr4_read() & ~CR4_PSE);
    cr3_write((uint32_t)PD);
    trap_expect(NULL);
    uint32_t v = *word(VA_RSVD + 0x4000);
    printf("pde %08x, cr4.pse=0: read %08x: %08x\n", PDE_VALUE, VA_RSVD + 0x4000, v);
    trap_print("  read", 0);
}
