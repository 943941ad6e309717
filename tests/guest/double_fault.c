/*
 * Double faults (SDM vol. 3A, 6.15 "Interrupt 8", table 6-5): a contributory
 * exception (#DE, #TS, #NP, #SS, #GP) raised while delivering another
 * contributory exception becomes #DF with error code 0.  A benign first
 * exception (#UD, #BP, ...) is followed by normal delivery of the second one.
 * The saved CS:EIP of a #DF is undefined, so only vector and error code are
 * printed; the handler resumes at a recovery label.
 */
#include "lib/guest.h"

#define SEL_DATA_B   0x18
#define SEL_CODE_NP  0x20
#define SEL_DATA_NP  0x28

/* Run a faulting instruction with IDT[vec] broken as the caller set it up. */
#define FAULT_FN(fn, insn, ...)                                                  \
    static TEST_FN void fn(const char *name)                                     \
    {                                                                            \
        extern char fn##_at[], fn##_resume[];                                    \
        trap_expect(fn##_resume);                                                \
        __asm__ volatile(#fn "_at: " insn "\n" #fn "_resume:" : : __VA_ARGS__);  \
        if (trap_last.count && trap_last.vector == VEC_DF)                      \
            printf("%s: #DF err=%04x\n", name, trap_last.error);               \
        else                                                                     \
            trap_print(name, fn##_at);                                           \
    }

FAULT_FN(gp_ds, "movw %w0, %%ds", "r"(0x00F8) : "memory")
FAULT_FN(np_ds, "movw %w0, %%ds", "r"(SEL_DATA_NP) : "memory")
FAULT_FN(ss_ss, "movw %w0, %%ss", "r"(SEL_DATA_NP) : "memory")
FAULT_FN(de_div, "divl %0", "r"(0), "a"(1), "d"(0) : "memory")
FAULT_FN(ud_ud2, "ud2", "r"(0) : "memory")

void kmain(void)
{
    gdt_set(SEL_DATA_B >> 3, 0, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    gdt_set(SEL_CODE_NP >> 3, 0, 0xFFFFF, ACC_CODE32 & ~DESC_P, DESC_G | DESC_DB);
    gdt_set(SEL_DATA_NP >> 3, 0, 0xFFFFF, ACC_DATA32 & ~DESC_P, DESC_G | DESC_DB);

    gp_ds("#GP, idt[13] ok");
    idt_set_gate(VEC_GP, SEL_CODE32, isr_stub(VEC_GP), SYS_INT_GATE32);
    gp_ds("#GP, idt[13] not present");
    idt_set_gate(VEC_GP, SEL_CODE_NP, isr_stub(VEC_GP), DESC_P | SYS_INT_GATE32);
    gp_ds("#GP, idt[13] -> not-present code segment");
    idt_set_gate(VEC_GP, SEL_DATA_B, isr_stub(VEC_GP), DESC_P | SYS_INT_GATE32);
    gp_ds("#GP, idt[13] -> data segment");
    idt_reset_gate(VEC_GP);

    de_div("#DE, idt[0] ok");
    idt_set_gate(VEC_DE, SEL_CODE32, isr_stub(VEC_DE), SYS_INT_GATE32);
    de_div("#DE, idt[0] not present");
    idt_set_gate(VEC_DE, SEL_CODE32, isr_stub(VEC_DE), DESC_P | 0x0D);
    de_div("#DE, idt[0] reserved type");
    idt_reset_gate(VEC_DE);

    np_ds("#NP, idt[11] ok");
    idt_set_gate(VEC_NP, SEL_CODE32, isr_stub(VEC_NP), SYS_INT_GATE32);
    np_ds("#NP, idt[11] not present");
    idt_reset_gate(VEC_NP);

    ss_ss("#SS, idt[12] ok");
    idt_set_gate(VEC_SS, SEL_CODE32, isr_stub(VEC_SS), SYS_INT_GATE32);
    ss_ss("#SS, idt[12] not present");
    idt_reset_gate(VEC_SS);

    /* Benign first exception: the second one is delivered normally.  Its
     * error code carries EXT=1, which ext_bit.c checks; here only the
     * vector is printed. */
    idt_set_gate(VEC_UD, SEL_CODE32, isr_stub(VEC_UD), SYS_INT_GATE32);
    {
        extern char ud_np_at[], ud_np_resume[];
        trap_expect(ud_np_resume);
        __asm__ volatile("ud_np_at: ud2\nud_np_resume:" : : : "memory");
        printf("#UD, idt[6] not present: %s eip=fault+%d\n", vector_name(trap_last.vector),
               (int)(trap_last.eip - (uint32_t)ud_np_at));
    }
    idt_reset_gate(VEC_UD);

    /* #DF, like every exception, can be followed by more work. */
    ud_ud2("#UD after all that");
}
