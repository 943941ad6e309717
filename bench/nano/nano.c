/*
 * Nanobenchmarks after Adams and Agesen, "A Comparison of Software and
 * Hardware Techniques for x86 Virtualization" (ASPLOS 2006, section 6.2):
 * single guest operations that are cheap on hardware but that a virtual
 * machine monitor has to intercept, each timed with RDTSC over many
 * iterations.  A multiboot kernel on the tests/guest runtime (GDT, IDT, TSS,
 * serial output, user_run() for ring 3); the loops and handlers are in nano.S.
 *
 *   syscall        INT 0x80 from ring 3 to a DPL-3 trap gate, IRET back
 *   in             IN from port 0x80 (VMware's "in" read a port too)
 *   in_device      IN from the UART's line status register (a read with a
 *                  side effect, which the device model must see)
 *   cr3write       MOV to CR3 of its current value, paging on
 *   callret        CALL of an empty function and its RET
 *   pgfault        touch a not-present page; the guest #PF handler maps it and
 *                  the loop unmaps it again (clear P, INVLPG)
 *   divzero        DIV by zero; the guest #DE handler skips the instruction
 *   ptemod         a store to a PTE of a live page table (the paper's ptemod)
 *   ptemod_invlpg  the same store followed by INVLPG of the page
 *
 * Output: one line "name cycles_per_op" per benchmark, cycles with one
 * decimal, the minimum over REPEATS runs of the loop (the first run also
 * warms up whatever the platform caches, translations included).
 * bench/run-nano.sh runs this under Popek and QEMU and prints a table.
 */
#include "nano.h"

#define REPEATS 5

uint64_t nano_in(uint32_t n);
uint64_t nano_in_device(uint32_t n);
uint64_t nano_cr3write(uint32_t n);
uint64_t nano_callret(uint32_t n);
uint64_t nano_pgfault(uint32_t n);
uint64_t nano_divzero(uint32_t n);
uint64_t nano_ptemod(uint32_t n);
uint64_t nano_ptemod_invlpg(uint32_t n);
uint32_t nano_syscall_user(uint32_t n);
extern uint64_t nano_user_cycles;
extern char nano_sys_entry[], nano_de_entry[], nano_pf_entry[];

static uint64_t nano_syscall(uint32_t n)
{
    user_call(nano_syscall_user, n);
    return nano_user_cycles;
}

/* Iteration counts keep each run near 0.1 s under QEMU TCG on the project
 * machines, long enough to dwarf the RDTSC overhead everywhere. */
static const struct {
    const char *name;
    uint64_t (*run)(uint32_t n);
    uint32_t iterations;
} benches[] = {
    { "syscall", nano_syscall, 100000 },
    { "in", nano_in, 200000 },
    { "in_device", nano_in_device, 200000 },
    { "cr3write", nano_cr3write, 100000 },
    { "callret", nano_callret, 10000000 },
    { "pgfault", nano_pgfault, 20000 },
    { "divzero", nano_divzero, 100000 },
    { "ptemod", nano_ptemod, 1000000 },
    { "ptemod_invlpg", nano_ptemod_invlpg, 200000 },
};

/* n / d for a quotient that fits 32 bits (no libgcc for 64-bit division). */
static uint32_t div_u64(uint64_t n, uint32_t d)
{
    uint32_t hi = (uint32_t)(n >> 32) % d, q;
    __asm__("divl %3" : "=a"(q), "=d"(hi) : "a"((uint32_t)n), "r"(d), "1"(hi));
    return q;
}

static void paging_init(void)
{
    volatile uint32_t *pd = (volatile uint32_t *)NANO_PD;
    volatile uint32_t *pt = (volatile uint32_t *)NANO_PT_TEST;

    paging_map_low(pd, (volatile uint32_t *)NANO_PT_LOW, NANO_PG_URW);
    memset((void *)NANO_PT_TEST, 0, 4096);
    pd[1] = NANO_PT_TEST | NANO_PG_URW;
    pt[(NANO_VA_PGFAULT >> 12) & 0x3FF] = NANO_FRAMES | PTE_RW | PTE_US;   /* not present */
    pt[(NANO_VA_PTEMOD >> 12) & 0x3FF] = (NANO_FRAMES + 0x1000) | NANO_PG_URW;
    pt[(NANO_VA_INVLPG >> 12) & 0x3FF] = (NANO_FRAMES + 0x2000) | NANO_PG_URW;
    cr3_write(NANO_PD);
    cr0_write(cr0_read() | CR0_PG);
}

void kmain(void)
{
    paging_init();
    user_init();
    idt_set_gate(NANO_VEC_SYSCALL, SEL_CODE32, (uint32_t)nano_sys_entry,
                 DESC_P | DESC_DPL(3) | SYS_TRAP_GATE32);
    idt_set_gate(VEC_DE, SEL_CODE32, (uint32_t)nano_de_entry, DESC_P | SYS_INT_GATE32);
    idt_set_gate(VEC_PF, SEL_CODE32, (uint32_t)nano_pf_entry, DESC_P | SYS_INT_GATE32);

    printf("nano: cycles per operation, minimum of %u runs\n", REPEATS);
    for (unsigned i = 0; i < sizeof benches / sizeof benches[0]; i++) {
        uint64_t best = ~0ull;
        for (unsigned r = 0; r < REPEATS; r++) {
            uint64_t c = benches[i].run(benches[i].iterations);
            if (c < best)
                best = c;
        }
        uint32_t tenths = div_u64(best * 10 + benches[i].iterations / 2, benches[i].iterations);
        printf("%s %u.%u\n", benches[i].name, tenths / 10, tenths % 10);
    }
}
