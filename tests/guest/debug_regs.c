/*
 * Debug registers and debug exceptions (SDM vol. 3B, 18.2-18.3).
 *   DR0-DR3 hold any linear address; DR6/DR7 reserved bits are not printed
 *   (DR6 B0-B3/BD/BS/BT and DR7 enables/RW/LEN/GD only).
 *   DR4/DR5 alias DR6/DR7 when CR4.DE=0 and are #UD when CR4.DE=1.
 *   Breakpoints and single-step are in debug_bp.c; general detect and INT1
 *   in debug_gd_int1.c (QEMU gets both wrong).
 */
#include "lib/guest.h"

#define DR6_SHOWN 0x0000E00F
#define DR7_SHOWN 0xFFFF23FF

static uint32_t rd_dr6(void) { uint32_t v; __asm__ volatile("movl %%dr6, %0" : "=r"(v)); return v; }
static uint32_t rd_dr7(void) { uint32_t v; __asm__ volatile("movl %%dr7, %0" : "=r"(v)); return v; }
static void wr_dr6(uint32_t v) { __asm__ volatile("movl %0, %%dr6" : : "r"(v)); }
static void wr_dr7(uint32_t v) { __asm__ volatile("movl %0, %%dr7" : : "r"(v)); }

static TEST_FN void dr4_ud(void)
{
    extern char dr4_at[], dr4_resume[];
    uint32_t cr4;
    __asm__ volatile("movl %%cr4, %0" : "=r"(cr4));
    __asm__ volatile("movl %0, %%cr4" : : "r"(cr4 | CR4_DE));
    trap_expect(dr4_resume);
    /* 0f 21 e0 = mov %dr4, %eax */
    __asm__ volatile("dr4_at: .byte 0x0f, 0x21, 0xe0\ndr4_resume:" : : : "eax", "memory");
    __asm__ volatile("movl %0, %%cr4" : : "r"(cr4));
    trap_print("mov dr4 with cr4.de=1", dr4_at);
}

void kmain(void)
{
    uint32_t v[4];

    static const uint32_t dr_vals[4] = { 0x00001000, 0x12345678, 0xFFFFFFFF, 0x00300000 };
    __asm__ volatile("movl %0, %%dr0" : : "r"(dr_vals[0]));
    __asm__ volatile("movl %0, %%dr1" : : "r"(dr_vals[1]));
    __asm__ volatile("movl %0, %%dr2" : : "r"(dr_vals[2]));
    __asm__ volatile("movl %0, %%dr3" : : "r"(dr_vals[3]));
    __asm__ volatile("movl %%dr0, %0" : "=r"(v[0]));
    __asm__ volatile("movl %%dr1, %0" : "=r"(v[1]));
    __asm__ volatile("movl %%dr2, %0" : "=r"(v[2]));
    __asm__ volatile("movl %%dr3, %0" : "=r"(v[3]));
    printf("dr0-3: %08x %08x %08x %08x\n", v[0], v[1], v[2], v[3]);
    wr_dr6(0);
    printf("dr6 <- 0: shown bits %08x\n", rd_dr6() & DR6_SHOWN);
    wr_dr7(0x000F0000);
    printf("dr7 <- 000f0000: shown bits %08x\n", rd_dr7() & DR7_SHOWN);
    uint32_t d4, d5;
    __asm__ volatile(".byte 0x0f, 0x21, 0xe0\n\t.byte 0x0f, 0x21, 0xea" : "=a"(d4), "=d"(d5));
    printf("cr4.de=0: dr4=dr6 %u, dr5=dr7 %u\n", (d4 & DR6_SHOWN) == (rd_dr6() & DR6_SHOWN),
           (d5 & DR7_SHOWN) == (rd_dr7() & DR7_SHOWN));
    wr_dr7(0);
    dr4_ud();


}
