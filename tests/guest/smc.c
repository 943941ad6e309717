/*
 * Self-modifying code.  x86 keeps instruction fetch coherent with stores to
 * code, including stores to instructions already prefetched or in the same
 * block (SDM vol. 3A, 11.6: since the P6 family a write to code is detected
 * and the prefetched instructions are invalidated), so:
 *   patching the immediate of an instruction that already ran changes what
 *   the next run returns;
 *   a loop that rewrites the very next instruction on every iteration sees
 *   each rewrite;
 *   patching a jump displacement redirects it;
 *   REP MOVSB overwriting the instructions right after itself runs the new
 *   ones;
 *   code copied to a fresh buffer runs, and overwriting that buffer with
 *   different code runs the new code.
 * The code lives in .text, which is writable here (paging is off).
 */
#include "lib/guest.h"

extern char smc_imm_value[], smc_jmp_disp[];
uint32_t smc_imm(void);
uint32_t smc_next(uint32_t n);
uint32_t smc_jmp(void);
uint32_t smc_rep(void);

typedef uint32_t (*fn0)(void);
typedef uint32_t (*fn1)(uint32_t);

void kmain(void)
{
    printf("imm: first run %08x\n", smc_imm());
    *(volatile uint32_t *)smc_imm_value = 0x22222222;
    printf("imm: after patch %08x\n", smc_imm());
    for (uint32_t i = 0; i < 3; i++) {
        *(volatile uint32_t *)smc_imm_value = 0xA0000000 + i;
        printf("imm: loop patch %u -> %08x\n", i, smc_imm());
    }

    printf("next insn rewritten each iteration, n=1: %08x\n", smc_next(1));
    printf("next insn rewritten each iteration, n=10: %08x\n", smc_next(10));
    printf("next insn rewritten each iteration, n=7: %08x\n", smc_next(7));

    printf("jmp: before patch %u\n", smc_jmp());
    *(volatile uint8_t *)smc_jmp_disp = 6;    /* skip "mov $1, %eax; ret" */
    printf("jmp: after patch %u\n", smc_jmp());
    *(volatile uint8_t *)smc_jmp_disp = 0;
    printf("jmp: patched back %u\n", smc_jmp());

    printf("rep movsb over following code: %08x\n", smc_rep());
    printf("rep movsb again (code now new): %08x\n", smc_rep());

    /* Copy code to a buffer and call it; then rewrite the buffer. */
    volatile uint8_t *buf = (volatile uint8_t *)(SCRATCH_ADDR + 0x1000);
    static const uint8_t code_a[] = { 0xb8, 0x78, 0x56, 0x34, 0x12, 0xc3 };     /* mov $0x12345678,%eax; ret */
    static const uint8_t code_b[] = { 0x8b, 0x44, 0x24, 0x04, 0x01, 0xc0, 0xc3 }; /* mov 4(%esp),%eax; add %eax,%eax; ret */
    for (unsigned i = 0; i < sizeof code_a; i++)
        buf[i] = code_a[i];
    printf("copied code: %08x\n", ((fn0)(uintptr_t)buf)());
    buf[1] = 0x21;
    printf("copied code, imm byte patched: %08x\n", ((fn0)(uintptr_t)buf)());
    for (unsigned i = 0; i < sizeof code_b; i++)
        buf[i] = code_b[i];
    printf("buffer overwritten with new code, f(21): %u\n", ((fn1)(uintptr_t)buf)(21));

    /* The same bytes at a second address run independently. */
    volatile uint8_t *buf2 = buf + 0x800;
    for (unsigned i = 0; i < sizeof code_a; i++)
        buf2[i] = code_a[i];
    printf("second copy: %08x, first still: %u\n", ((fn0)(uintptr_t)buf2)(), ((fn1)(uintptr_t)buf)(5));
}
