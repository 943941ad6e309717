/*
 * Invalid CR0 combinations (SDM vol. 2, MOV to CRn: "#GP(0) If an attempt is
 * made to write invalid bit combinations in CR0 (such as setting the PG flag
 * to 1 when the PE flag is set to 0, or setting the CD flag to 0 when the NW
 * flag is set to 1)"); CR0 keeps its old value.
 *
 * qemu-mismatch: QEMU 7.2 checks neither combination: it accepts NW=1 CD=0,
 * and PG=1 with PE=0 really turns paging on (with CR3=0) and the guest
 * triple-faults.  This golden file is the SDM's answer.
 */
#include "lib/guest.h"

static uint32_t read_cr0(void) { uint32_t v; __asm__ volatile("movl %%cr0, %0" : "=r"(v)); return v; }

static TEST_FN void try_write_cr0(const char *name, uint32_t v)
{
    extern char wcr0_at[], wcr0_resume[];
    uint32_t before = read_cr0();
    trap_expect(wcr0_resume);
    __asm__ volatile("wcr0_at: movl %0, %%cr0\nwcr0_resume:" : : "r"(v) : "memory");
    trap_print(name, wcr0_at);
    printf("%s: cr0 unchanged=%u\n", name, read_cr0() == before);
}

void kmain(void)
{
    uint32_t orig = read_cr0();
    try_write_cr0("cr0 nw=1 cd=0", (orig & ~CR0_CD) | CR0_NW);
    try_write_cr0("cr0 nw=1 cd=1", orig | CR0_CD | CR0_NW);
    __asm__ volatile("movl %0, %%cr0" : : "r"(orig) : "memory");
    try_write_cr0("cr0 pg=1 pe=0", (orig & ~CR0_PE) | CR0_PG);
}
