/*
 * Code at the same linear addresses in two address spaces (SDM vol. 3A
 * 4.10.4.1: MOV to CR3 invalidates every non-global translation, including
 * those used for instruction fetch).  Two page directories share the
 * identity map of 0-4 MiB and map two non-global code pages at 0x40000000 and
 * 0x40001000 to frames of their own:
 *     page 0:  mov $N, %eax; jmp page 1      (N = 1 in A, 2 in B)
 *     page 1:  add $M, %eax; ret             (M = 10 in A, 20 in B)
 * and the kernel calls page 0 through a register, switching CR3 between the
 * calls, so every path into and between the pages is taken in both spaces
 * many times.  Printed: the sums per space; then the same after page 1 of B
 * is pointed at A's frame, and after it is pointed at a third frame while A
 * is current (seen at the next switch to B, with no INVLPG); and in A alone,
 * page 1 pointed at another frame and CR3 written with the value it holds
 * (a TLB flush: the jump from page 0 must reach the new frame).
 */
#include "lib/guest.h"

#define PD_A     ((volatile uint32_t *)(SCRATCH_ADDR + 0x0000))
#define PD_B     ((volatile uint32_t *)(SCRATCH_ADDR + 0x1000))
#define PT_LOW   ((volatile uint32_t *)(SCRATCH_ADDR + 0x2000))
#define PT_A     ((volatile uint32_t *)(SCRATCH_ADDR + 0x3000))
#define PT_B     ((volatile uint32_t *)(SCRATCH_ADDR + 0x4000))
#define FRAME(n) (SCRATCH_ADDR + 0x10000 + (n) * 0x1000)
#define CODE_VA  0x40000000u

#define PG_KRW (PTE_P | PTE_RW)

/* mov $n, %eax; jmp CODE_VA + 0x1000 */
static void write_page0(uint32_t frame, uint8_t n)
{
    uint8_t *p = (uint8_t *)frame;
    int32_t rel = (int32_t)(CODE_VA + 0x1000 - (CODE_VA + 10));
    p[0] = 0xB8;
    p[1] = n;
    p[2] = p[3] = p[4] = 0;
    p[5] = 0xE9;
    for (unsigned i = 0; i < 4; i++)
        p[6 + i] = (uint8_t)(rel >> (8 * i));
}

/* add $m, %eax; ret */
static void write_page1(uint32_t frame, uint8_t m)
{
    uint8_t *p = (uint8_t *)frame;
    p[0] = 0x83;
    p[1] = 0xC0;
    p[2] = m;
    p[3] = 0xC3;
}

static uint32_t call_code(void)
{
    uint32_t v;
    __asm__ volatile("call *%1" : "=a"(v) : "r"(CODE_VA) : "ecx", "edx", "memory");
    return v;
}

/* 50 rounds of A then B; prints the distinct results seen in each. */
static void rounds(const char *what)
{
    uint32_t first_a = 0, first_b = 0, same_a = 1, same_b = 1;
    for (unsigned i = 0; i < 50; i++) {
        cr3_write((uint32_t)PD_A);
        uint32_t a = call_code();
        cr3_write((uint32_t)PD_B);
        uint32_t b = call_code();
        if (i == 0) {
            first_a = a;
            first_b = b;
        }
        same_a &= a == first_a;
        same_b &= b == first_b;
    }
    cr3_write((uint32_t)PD_A);
    printf("%s: space A -> %u (every round: %u), space B -> %u (every round: %u)\n", what,
           first_a, same_a, first_b, same_b);
}

void kmain(void)
{
    paging_map_low(PD_A, PT_LOW, PG_KRW);
    paging_map_low(PD_B, PT_LOW, PG_KRW);
    memset((void *)PT_A, 0, 2 * 4096);
    PD_A[CODE_VA >> 22] = (uint32_t)PT_A | PG_KRW;
    PD_B[CODE_VA >> 22] = (uint32_t)PT_B | PG_KRW;
    write_page0(FRAME(0), 1);
    write_page1(FRAME(1), 10);
    write_page0(FRAME(2), 2);
    write_page1(FRAME(3), 20);
    write_page1(FRAME(4), 40);
    PT_A[0] = FRAME(0) | PG_KRW;
    PT_A[1] = FRAME(1) | PG_KRW;
    PT_B[0] = FRAME(2) | PG_KRW;
    PT_B[1] = FRAME(3) | PG_KRW;

    cr3_write((uint32_t)PD_A);
    cr0_write(cr0_read() | CR0_PG);
    rounds("own frames");

    PT_B[1] = FRAME(1) | PG_KRW; /* B's page 1 is now A's */
    rounds("page 1 of B shared with A");

    PT_B[1] = FRAME(4) | PG_KRW; /* changed while A is current */
    rounds("page 1 of B on a third frame");

    write_page1(FRAME(5), 50);
    uint32_t before = call_code();
    PT_A[1] = FRAME(5) | PG_KRW;
    cr3_write((uint32_t)PD_A);
    uint32_t after = call_code();
    printf("page 1 of A on another frame, same CR3 written again: %u then %u\n", before, after);

    cr0_write(cr0_read() & ~CR0_PG);
}
