/*
 * The EXT bit (bit 0) of error codes raised while delivering an event (SDM
 * vol. 3A, 6.13): set when the event being delivered is external to the
 * program (an interrupt or an earlier exception such as #UD), clear for
 * software interrupts (INT n, INT3, INTO).  The IDT bit (bit 1) is set when
 * the error code names an IDT entry.  So a #UD whose gate is not present gives
 * #NP(6*8+2+1 = 0033) while INT3 gives #NP(3*8+2 = 001a).
 *
 * qemu-mismatch: QEMU 7.2 never sets EXT (do_interrupt_protected raises
 * vector*8+2 and selector & 0xfffc unconditionally), so this golden file is
 * the SDM's answer.
 */
#include "lib/guest.h"

#define SEL_DATA_B 0x18

static TEST_FN void ud(const char *name)
{
    extern char ud_at[], ud_resume[];
    trap_expect(ud_resume);
    __asm__ volatile("ud_at: ud2\nud_resume:" : : : "memory");
    trap_print(name, ud_at);
}

static TEST_FN void int3(const char *name)
{
    extern char bp_at[], bp_resume[];
    trap_expect(bp_resume);
    __asm__ volatile("bp_at: int3\nbp_resume:" : : : "memory");
    trap_print(name, bp_at);
}

static TEST_FN void into(const char *name)
{
    extern char of_at[], of_resume[];
    trap_expect(of_resume);
    __asm__ volatile("pushl $0x802\n\tpopfl\nof_at: into\nof_resume:\n\tpushl $2\n\tpopfl"
                     : : : "memory", "cc");
    trap_print(name, of_at);
}

void kmain(void)
{
    gdt_set(SEL_DATA_B >> 3, 0, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);

    idt_set_gate(VEC_UD, SEL_CODE32, isr_stub(VEC_UD), SYS_INT_GATE32);
    ud("#UD, idt[6] not present");
    idt_set_gate(VEC_UD, SEL_CODE32, isr_stub(VEC_UD), DESC_P | 0x08);
    ud("#UD, idt[6] reserved type");
    idt_set_gate(VEC_UD, SEL_DATA_B, isr_stub(VEC_UD), DESC_P | SYS_INT_GATE32);
    ud("#UD, idt[6] -> data segment 0018");
    idt_reset_gate(VEC_UD);

    idt_set_gate(VEC_BP, SEL_CODE32, isr_stub(VEC_BP), SYS_INT_GATE32);
    int3("int3, idt[3] not present");
    idt_set_gate(VEC_BP, SEL_DATA_B, isr_stub(VEC_BP), DESC_P | SYS_INT_GATE32);
    int3("int3, idt[3] -> data segment 0018");
    idt_reset_gate(VEC_BP);

    idt_set_gate(VEC_OF, SEL_CODE32, isr_stub(VEC_OF), SYS_INT_GATE32);
    into("into, idt[4] not present");
    idt_reset_gate(VEC_OF);
}
