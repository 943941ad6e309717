/*
 * CR0.WP (SDM vol. 3A, 4.6.1): with WP=0 supervisor-mode writes ignore R/W
 * and succeed on read-only pages, user and supervisor alike (setting D in the
 * PTE, 4.8); with WP=1 they fault with error code P|W (0003).  A page is
 * read-only if R/W is 0 in the PDE or in the PTE.  User-mode writes to a
 * read-only page fault whatever WP says (0007).  Reads never fault.
 */
#include "lib/guest.h"

#define PD       ((volatile uint32_t *)(SCRATCH_ADDR + 0x0000))
#define PT_LOW   ((volatile uint32_t *)(SCRATCH_ADDR + 0x1000))
#define PT_TEST  ((volatile uint32_t *)(SCRATCH_ADDR + 0x2000)) /* 0x00400000-0x007fffff */
#define PT_RODIR ((volatile uint32_t *)(SCRATCH_ADDR + 0x3000)) /* 0x00800000-, PDE R/W=0 */
#define FRAME(n) (SCRATCH_ADDR + 0x10000 + (n) * 0x1000)
#define VA_USER_RO 0x00400000   /* PTE P|U/S */
#define VA_SUP_RO  0x00401000   /* PTE P */
#define VA_RW      0x00402000   /* PTE P|R/W|U/S */
#define VA_RODIR   0x00800000   /* PDE P|U/S, PTE P|R/W|U/S */

#define PG_URW (PTE_P | PTE_RW | PTE_US)

static volatile uint32_t *word(uint32_t linear) { return (volatile uint32_t *)linear; }

static TEST_FN void kernel_write(const char *name, uint32_t addr, uint32_t frame)
{
    extern char kw_at[], kw_resume[];
    trap_expect(kw_resume);
    __asm__ volatile("kw_at: movl %0, (%1)\nkw_resume:" : : "r"(0xABCD0000 | (addr & 0xFFF)),
                     "r"(addr) : "memory");
    trap_print(name, kw_at);
    printf("%s: frame written=%u\n", name, *word(frame + (addr & 0xFFF)) == (0xABCD0000 | (addr & 0xFFF)));
}

static TEST_FN uint32_t user_store(uint32_t addr)
{
    __asm__ volatile("ustore_at: movl $0x55AA55AA, (%0)\nustore_resume:" : : "r"(addr) : "memory");
    return 0;
}

static void user_write(const char *name, uint32_t addr)
{
    extern char ustore_at[], ustore_resume[];
    trap_expect(ustore_resume);
    user_call(user_store, addr);
    trap_print(name, ustore_at);
}

void kmain(void)
{
    paging_map_low(PD, PT_LOW, PG_URW);
    memset((void *)PT_TEST, 0, 4096);
    memset((void *)PT_RODIR, 0, 4096);
    PD[1] = (uint32_t)PT_TEST | PG_URW;
    PD[2] = (uint32_t)PT_RODIR | PTE_P | PTE_US;
    PT_TEST[0] = FRAME(0) | PTE_P | PTE_US;
    PT_TEST[1] = FRAME(1) | PTE_P;
    PT_TEST[2] = FRAME(2) | PG_URW;
    PT_RODIR[0] = FRAME(3) | PG_URW;
    memset((void *)FRAME(0), 0, 4 * 4096);
    cr3_write((uint32_t)PD);
    cr0_write((cr0_read() | CR0_PG) & ~CR0_WP);
    user_init();

    printf("cr0.wp=%u\n", (cr0_read() & CR0_WP) ? 1 : 0);
    kernel_write("wp=0 ring 0 write, read-only user pte", VA_USER_RO + 0x10, FRAME(0));
    kernel_write("wp=0 ring 0 write, read-only supervisor pte", VA_SUP_RO + 0x10, FRAME(1));
    kernel_write("wp=0 ring 0 write, read-only pde", VA_RODIR + 0x10, FRAME(3));
    printf("wp=0 ptes after the writes: user %03x supervisor %03x, pde %03x pte %03x\n",
           PT_TEST[0] & 0xFFF, PT_TEST[1] & 0xFFF, PD[2] & 0xFFF, PT_RODIR[0] & 0xFFF);
    user_write("wp=0 ring 3 write, read-only user pte", VA_USER_RO + 0x14);
    user_write("wp=0 ring 3 write, read-only pde", VA_RODIR + 0x14);

    cr0_write(cr0_read() | CR0_WP);
    printf("cr0.wp=%u\n", (cr0_read() & CR0_WP) ? 1 : 0);
    kernel_write("wp=1 ring 0 write, read-only user pte", VA_USER_RO + 0x20, FRAME(0));
    kernel_write("wp=1 ring 0 write, read-only supervisor pte", VA_SUP_RO + 0x20, FRAME(1));
    kernel_write("wp=1 ring 0 write, read-only pde", VA_RODIR + 0x20, FRAME(3));
    kernel_write("wp=1 ring 0 write, writable page", VA_RW + 0x20, FRAME(2));
    trap_expect(NULL);
    int same = *word(VA_USER_RO + 0x10) == 0xABCD0010 && *word(VA_SUP_RO + 0x10) == 0xABCD0010 &&
               *word(VA_RODIR + 0x10) == 0xABCD0010;
    trap_print("wp=1 ring 0 reads of the read-only pages", 0);
    printf("wp=1 reads return what the wp=0 writes stored: %u\n", same);
    user_write("wp=1 ring 3 write, read-only user pte", VA_USER_RO + 0x24);

    cr0_write(cr0_read() & ~CR0_WP);
    printf("cr0.wp=%u\n", (cr0_read() & CR0_WP) ? 1 : 0);
    kernel_write("wp=0 again, ring 0 write, read-only user pte", VA_USER_RO + 0x30, FRAME(0));
}
