/*
 * Stack segment limit checks (SDM vol. 3A, 5.3; vol. 2 MOV/POP: "#SS(0) If a
 * memory operand effective address is outside the SS segment limit"): an
 * SS-relative access (EBP-based, ESP-based, explicit SS override, POP) whose
 * bytes are not all within the limit raises #SS(0), the instruction does not
 * complete.  Expand-down stacks are valid above the limit.  Exceptions are
 * delivered on the same stack, so every faulting access is placed where the
 * 12-byte frame below ESP still fits within the limit.
 *
 * qemu-mismatch: QEMU's TCG does not check segment limits on data accesses,
 * so this golden file is the SDM's answer.
 */
#include "lib/guest.h"

#define SEL_STK_UP   0x18   /* base 0, limit 0x25f G=1 -> 0x0025ffff, B=1 */
#define SEL_STK_DOWN 0x20   /* base 0, expand-down, limit 0x24f G=1 -> valid from 0x00250000 */
#define STACK2_TOP   0x00258000

uint32_t saved_esp;   /* flat; the asm restores the C stack from it */

#define SS_ACCESS(fn, sel, setup, insn)                                                   \
    static TEST_FN void fn(const char *name)                                              \
    {                                                                                     \
        extern char fn##_at[], fn##_resume[];                                             \
        trap_expect(fn##_resume);                                                         \
        __asm__ volatile("movl %%esp, saved_esp\n\t"                                      \
                         "movw %w0, %%ss\n\t"                                             \
                         "movl %1, %%esp\n\t" setup "\n"                                  \
                         #fn "_at: " insn "\n"                                            \
                         #fn "_resume:\n\t"                                               \
                         "movw %w2, %%ss\n\t"                                             \
                         "movl saved_esp, %%esp"                                          \
                         : : "r"(sel), "i"(STACK2_TOP), "r"(SEL_DATA32)                   \
                         : "eax", "ebp", "memory");                                       \
        trap_print(name, fn##_at);                                                        \
    }

SS_ACCESS(up_ok, SEL_STK_UP, "movl $0x25fffc, %%ebp", "movl (%%ebp), %%eax")
SS_ACCESS(up_cross, SEL_STK_UP, "movl $0x25fffd, %%ebp", "movl (%%ebp), %%eax")
SS_ACCESS(up_beyond, SEL_STK_UP, "movl $0x260000, %%ebp", "movl (%%ebp), %%eax")
SS_ACCESS(up_override, SEL_STK_UP, "movl $0x260000, %%eax", "movl %%ss:(%%eax), %%eax")
SS_ACCESS(up_esp_disp, SEL_STK_UP, "", "movl 0x8000(%%esp), %%eax")
SS_ACCESS(up_pop, SEL_STK_UP, "movl $0x25fffe, %%esp", "popl %%eax")
SS_ACCESS(down_ok, SEL_STK_DOWN, "movl $0x250000, %%ebp", "movl (%%ebp), %%eax")
SS_ACCESS(down_below, SEL_STK_DOWN, "movl $0x24fffc, %%ebp", "movl (%%ebp), %%eax")

void kmain(void)
{
    gdt_set(SEL_STK_UP >> 3, 0, 0x0025F, ACC_DATA32, DESC_G | DESC_DB);
    gdt_set(SEL_STK_DOWN >> 3, 0, 0x0024F, ACC_DATA32 | DESC_TYPE_EXPDOWN, DESC_G | DESC_DB);

    up_ok("expand-up limit 25ffff: read32 (ebp=25fffc)");
    up_cross("expand-up limit 25ffff: read32 (ebp=25fffd)");
    up_beyond("expand-up limit 25ffff: read32 (ebp=260000)");
    up_override("expand-up limit 25ffff: read32 ss:(eax=260000)");
    up_esp_disp("expand-up limit 25ffff: read32 8000(esp=258000)");
    up_pop("expand-up limit 25ffff: pop with esp=25fffe");
    down_ok("expand-down limit 24ffff: read32 (ebp=250000)");
    down_below("expand-down limit 24ffff: read32 (ebp=24fffc)");
}
