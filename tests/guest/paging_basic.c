/*
 * 32-bit paging with 4 KiB pages (SDM vol. 3A, 4.3 and 4.5-4.8).
 *
 * 0-4 MiB is identity-mapped (user-accessible, writable) through one page
 * table; the test pages live at 0x00400000 (second page table) and
 * 0x00800000 (a page table whose directory entry has U/S=0).  Checked:
 *   - the processor sets A in the PDE and PTE on the first access and D in the
 *     PTE on the first write, never D in a PDE that references a page table
 *     (bit 6 is ignored there, 4.8);
 *   - a not-present PTE faults with CR2 = the linear address, and after the
 *     #PF handler fills the PTE the faulting instruction restarts: for a read,
 *     a write and an instruction fetch (saved EIP = the target; I/D stays 0 in
 *     32-bit paging without SMEP, 4.7);
 *   - the error code's P, W/R and U/S bits for not-present and protection
 *     faults from ring 0 and ring 3 (4.7), with user access requiring U/S=1 in
 *     both the PDE and the PTE and writes R/W=1 in both (4.6.1);
 *   - supervisor accesses to user pages do not fault (no SMAP).
 * CR0.WP is left 0 here; paging_wp.c covers supervisor writes to read-only
 * pages.
 */
#include "lib/guest.h"

#define PD       ((volatile uint32_t *)(SCRATCH_ADDR + 0x0000))
#define PT_LOW   ((volatile uint32_t *)(SCRATCH_ADDR + 0x1000))
#define PT_TEST  ((volatile uint32_t *)(SCRATCH_ADDR + 0x2000)) /* 0x00400000-0x007fffff */
#define PT_SUP   ((volatile uint32_t *)(SCRATCH_ADDR + 0x3000)) /* 0x00800000-, PDE U/S=0 */
#define FRAME(n) (SCRATCH_ADDR + 0x10000 + (n) * 0x1000)
#define VA(n)    (0x00400000 + (n) * 0x1000)
#define VA_SUPDIR 0x00800000

#define PG_URW (PTE_P | PTE_RW | PTE_US)

static volatile uint32_t *word(uint32_t linear) { return (volatile uint32_t *)linear; }

/* #PF handler for demand paging: fill the PTE of the faulting page (VA(1) to
 * VA(3)) with its frame and let the instruction restart. */
static struct {
    uint32_t count, cr2, error, eip;
} demand;

static void demand_fault(struct trap_frame *f)
{
    uint32_t cr2 = cr2_read();
    uint32_t idx = (cr2 - VA(0)) >> 12;

    demand.count++;
    demand.cr2 = cr2;
    demand.error = f->error;
    demand.eip = f->eip;
    if (cr2 < VA(1) || cr2 >= VA(4) || PT_TEST[idx] != 0) {
        printf("UNEXPECTED #PF cr2=%08x err=%04x eip=%08x\n", cr2, f->error, f->eip);
        exit_qemu(0x7F);
    }
    PT_TEST[idx] = FRAME(idx) | PG_URW;
}

static TEST_FN void accessed_dirty(void)
{
    uint32_t v;

    printf("before any access: pte=%03x pde=%03x\n", PT_TEST[0] & 0xFFF, PD[1] & 0xFFF);
    v = *word(VA(0) + 0x40);
    printf("after read: pte=%03x pde=%03x value=%08x\n", PT_TEST[0] & 0xFFF, PD[1] & 0xFFF, v);
    *word(VA(0) + 0x44) = 0xD1D1D1D1;
    printf("after write: pte=%03x pde=%03x\n", PT_TEST[0] & 0xFFF, PD[1] & 0xFFF);
    printf("write reached frame %08x: %u\n", FRAME(0), *word(FRAME(0) + 0x44) == 0xD1D1D1D1);
}

static TEST_FN void demand_paging(void)
{
    extern char dr_at[], dw_at[];
    uint32_t v;

    trap_set_handler(VEC_PF, demand_fault);

    demand.count = 0;
    __asm__ volatile("dr_at: movl (%1), %0" : "=r"(v) : "r"(VA(1) + 0x10) : "memory");
    printf("demand read of %08x: faults=%u cr2=%08x err=%04x eip=insn+%d value=%08x pte=%03x\n",
           VA(1) + 0x10, demand.count, demand.cr2, demand.error,
           (int)(demand.eip - (uint32_t)dr_at), v, PT_TEST[1] & 0xFFF);
    demand.count = 0;
    v = *word(VA(1) + 0x14);
    printf("second read of that page: faults=%u value=%08x\n", demand.count, v);

    demand.count = 0;
    __asm__ volatile("dw_at: movl %0, (%1)" : : "r"(0x12345678), "r"(VA(2) + 0x20) : "memory");
    printf("demand write to %08x: faults=%u cr2=%08x err=%04x eip=insn+%d frame value=%08x "
           "pte=%03x\n", VA(2) + 0x20, demand.count, demand.cr2, demand.error,
           (int)(demand.eip - (uint32_t)dw_at), *word(FRAME(2) + 0x20), PT_TEST[2] & 0xFFF);

    demand.count = 0;
    v = ((uint32_t (*)(void))VA(3))();
    printf("demand fetch at %08x: faults=%u cr2=%08x err=%04x eip=%08x eax=%08x pte=%03x\n",
           VA(3), demand.count, demand.cr2, demand.error, demand.eip, v, PT_TEST[3] & 0xFFF);

    trap_set_handler(VEC_PF, NULL);
}

/* Ring-3 accesses; a fault resumes after the access, leaving the result at
 * its initial value. */
static TEST_FN uint32_t user_load(uint32_t addr)
{
    uint32_t v = 0xDEADDEAD;
    __asm__ volatile("uload_at: movl (%1), %0\nuload_resume:" : "+r"(v) : "r"(addr) : "memory");
    return v;
}

static TEST_FN uint32_t user_store(uint32_t addr)
{
    __asm__ volatile("ustore_at: movl $0x55AA55AA, (%0)\nustore_resume:" : : "r"(addr) : "memory");
    return 0;
}

static void user_read_test(const char *name, uint32_t addr)
{
    extern char uload_at[], uload_resume[];
    trap_expect(uload_resume);
    uint32_t v = user_call(user_load, addr);
    if (trap_last.count)
        trap_print(name, uload_at);
    else
        printf("%s: no exception value=%08x\n", name, v);
    trap_disarm();
}

static void user_write_test(const char *name, uint32_t addr)
{
    extern char ustore_at[], ustore_resume[];
    trap_expect(ustore_resume);
    user_call(user_store, addr);
    trap_print(name, ustore_at);
}

static TEST_FN void supervisor_faults(void)
{
    extern char sw_at[], sw_resume[], sr_at[], sr_resume[];
    uint32_t v = 0;

    trap_expect(sr_resume);
    __asm__ volatile("sr_at: movl (%1), %0\nsr_resume:" : "+r"(v) : "r"(VA(6) + 4) : "memory");
    trap_print("ring 0 read, not present", sr_at);
    trap_expect(sw_resume);
    __asm__ volatile("sw_at: movl %0, (%1)\nsw_resume:" : : "r"(1), "r"(VA(6) + 8) : "memory");
    trap_print("ring 0 write, not present", sw_at);

    trap_expect(NULL);
    (void)*word(VA(5));
    *word(VA(0) + 0x48) = 0x600D600D;
    trap_print("ring 0 read of user page, write of user page", 0);
}

void kmain(void)
{
    paging_map_low(PD, PT_LOW, PG_URW);
    memset((void *)PT_TEST, 0, 4096);
    memset((void *)PT_SUP, 0, 4096);
    PD[1] = (uint32_t)PT_TEST | PG_URW;
    PD[2] = (uint32_t)PT_SUP | PTE_P | PTE_RW;            /* U/S=0 in the PDE */
    PT_TEST[0] = FRAME(0) | PG_URW;
    PT_TEST[4] = FRAME(4) | PTE_P | PTE_RW;               /* supervisor page */
    PT_TEST[5] = FRAME(5) | PTE_P | PTE_US;               /* read-only user page */
    PT_SUP[0] = FRAME(7) | PG_URW;
    for (uint32_t n = 0; n < 8; n++)
        for (uint32_t i = 0; i < 1024; i++)
            word(FRAME(n))[i] = 0xC0FFEE00 + n;
    /* VA(3): mov $0x5a5a5a5a, %eax; ret */
    static const uint8_t code[] = { 0xB8, 0x5A, 0x5A, 0x5A, 0x5A, 0xC3 };
    memcpy((void *)FRAME(3), code, sizeof code);

    cr3_write((uint32_t)PD);
    cr0_write(cr0_read() | CR0_PG);
    printf("paging on: cr0.pg=%u cr3=%08x identity read ok=%u\n", cr0_read() >> 31, cr3_read(),
           *word(FRAME(0)) == 0xC0FFEE00);

    accessed_dirty();
    demand_paging();
    supervisor_faults();

    user_init();
    user_read_test("ring 3 read, user page", VA(0) + 0x40);
    user_read_test("ring 3 read, supervisor pte", VA(4) + 8);
    user_write_test("ring 3 write, supervisor pte", VA(4) + 12);
    user_read_test("ring 3 read, read-only user page", VA(5) + 16);
    user_write_test("ring 3 write, read-only user page", VA(5) + 20);
    user_read_test("ring 3 read, not present", VA(6) + 24);
    user_write_test("ring 3 write, not present", VA(6) + 28);
    user_read_test("ring 3 read, pde u/s=0 pte u/s=1", VA_SUPDIR + 32);
    user_write_test("ring 3 write, pde u/s=0 pte u/s=1", VA_SUPDIR + 36);
    printf("read-only and supervisor frames unchanged: %u\n",
           *word(FRAME(4) + 12) == 0xC0FFEE04 && *word(FRAME(5) + 20) == 0xC0FFEE05 &&
           *word(FRAME(7) + 36) == 0xC0FFEE07);
}
