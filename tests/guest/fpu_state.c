/*
 * The guest's x87 and SSE registers survive everything that takes the
 * monitor out of translated code: port I/O, CPUID, RDMSR, MOV to CR0, a
 * divide-by-zero and an invalid opcode delivered through the IDT (host
 * signals), an INT n, and HLT until a PIT interrupt.  The registers are
 * loaded with distinct values, kept live across a round of all of these,
 * and compared afterwards: XMM0-7, MXCSR (round toward zero, exceptions
 * masked), the x87 control word and a two-value x87 stack.  The kernel is
 * built with -mgeneral-regs-only, so none of its own code touches them.
 */
#include "lib/guest.h"

#define CR4_OSXMMEXCPT (1u << 10)
#define MXCSR_TEST     0x7f80u  /* all exceptions masked, RC = toward zero */
#define FCW_TEST       0x0e7fu  /* all exceptions masked, 64-bit precision, RC = toward zero */
#define ROUNDS         20

#define PIT_CH0   0x40
#define PIT_MODE  0x43
#define PIC1_CMD  0x20
#define PIC1_DATA 0x21

static uint8_t xmm_in[8][16] __attribute__((aligned(16)));
static uint8_t xmm_out[8][16] __attribute__((aligned(16)));
static volatile unsigned ticks;

static void timer(struct trap_frame *f)
{
    (void)f;
    ticks++;
    outb(PIC1_CMD, 0x20);
}

static void swint(struct trap_frame *f) { (void)f; }

/* One of every kind of monitor exit; the x87/SSE registers stay live. */
static void exits(void)
{
    extern char fs_de_resume[], fs_ud_resume[];
    uint32_t a, b, c, d;
    inb(0x80);
    outb(0x80, 0x55);
    inb(0x3fd);
    cpuid(0, 0, &a, &b, &c, &d);
    msr_read(0x10);
    cr0_write(cr0_read());
    a = 1, d = 0, c = 0;
    trap_expect(fs_de_resume);
    __asm__ volatile("divl %2\nfs_de_resume:" : "+a"(a), "+d"(d) : "r"(c) : "memory");
    trap_expect(fs_ud_resume);
    __asm__ volatile("ud2\nfs_ud_resume:" ::: "memory");
    __asm__ volatile("int $0x31" ::: "memory");
    unsigned t = ticks;
    while (ticks == t)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
}

void kmain(void)
{
    cr0_write((cr0_read() & ~CR0_EM) | CR0_MP);
    cr4_write(cr4_read() | CR4_OSFXSR | CR4_OSXMMEXCPT);
    for (unsigned i = 0; i < 8; i++)
        for (unsigned j = 0; j < 16; j++)
            xmm_in[i][j] = (uint8_t)(0x11 * (i + 1) + 3 * j);

    trap_set_handler(0x20, timer);
    trap_set_handler(0x31, swint);
    outb(PIT_MODE, 0x34);               /* channel 0, lo/hi, mode 2 */
    outb(PIT_CH0, 0x9b);                /* 1193182 / 0x2e9b ~ 100 Hz */
    outb(PIT_CH0, 0x2e);
    outb(PIC1_DATA, 0xfe);              /* IRQ 0 only */

    static const uint32_t one = 1, three = 3;
    uint32_t mxcsr_in = MXCSR_TEST, mxcsr_out, x87_ok = 1;
    uint16_t fcw_in = FCW_TEST, fcw_out;
    uint32_t q1 = 0, q2 = 0;
    __asm__ volatile("fninit\n\tfldcw %0\n\tldmxcsr %1" : : "m"(fcw_in), "m"(mxcsr_in));
    __asm__ volatile("movaps 0x00(%0), %%xmm0\n\tmovaps 0x10(%0), %%xmm1\n\t"
                     "movaps 0x20(%0), %%xmm2\n\tmovaps 0x30(%0), %%xmm3\n\t"
                     "movaps 0x40(%0), %%xmm4\n\tmovaps 0x50(%0), %%xmm5\n\t"
                     "movaps 0x60(%0), %%xmm6\n\tmovaps 0x70(%0), %%xmm7"
                     : : "r"(xmm_in) : "memory");
    /* st1 = 1, st0 = 1/3 computed under the test control word */
    __asm__ volatile("fildl %0\n\tfildl %0\n\tfidivl %1" : : "m"(one), "m"(three));
    for (unsigned r = 0; r < ROUNDS; r++)
        exits();
    /* 1/3 * 3 truncated is just below 1 with RC = toward zero: the rounding
     * mode survived too.  Then store the values the x87 holds. */
    __asm__ volatile("fimull %2\n\tfcomip %%st(1), %%st\n\tfstp %%st(0)\n\t"
                     "setb %b0\n\tsete %b1"
                     : "=q"(q1), "=q"(q2) : "m"(three) : "cc");
    __asm__ volatile("fnstcw %0\n\tstmxcsr %1" : "=m"(fcw_out), "=m"(mxcsr_out));
    __asm__ volatile("movaps %%xmm0, 0x00(%0)\n\tmovaps %%xmm1, 0x10(%0)\n\t"
                     "movaps %%xmm2, 0x20(%0)\n\tmovaps %%xmm3, 0x30(%0)\n\t"
                     "movaps %%xmm4, 0x40(%0)\n\tmovaps %%xmm5, 0x50(%0)\n\t"
                     "movaps %%xmm6, 0x60(%0)\n\tmovaps %%xmm7, 0x70(%0)"
                     : : "r"(xmm_out) : "memory");
    outb(PIC1_DATA, 0xff);
    x87_ok = (q1 & 0xff) == 1 && (q2 & 0xff) == 0;
    printf("rounds of exits: %u\n", ROUNDS);
    for (unsigned i = 0; i < 8; i++)
        printf("xmm%u preserved: %u\n", i, memcmp(xmm_in[i], xmm_out[i], 16) == 0);
    printf("mxcsr %04x\n", mxcsr_out & 0xffff);
    printf("x87 control word %04x\n", fcw_out);
    printf("x87 stack and rounding preserved: %u\n", x87_ok);
}
