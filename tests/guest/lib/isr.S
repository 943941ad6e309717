/*
 * Interrupt entry stubs for all 256 vectors and the common save/restore path.
 *
 * Stub n lives at isr_stubs + n*ISR_STUB_SIZE, so C computes gate offsets
 * without a table.  Vectors for which the CPU pushes an error code (8, 10-14,
 * 17, 21, 29, 30) push only the vector; the others push a dummy 0 first, so
 * every frame has the same struct trap_frame layout.  Software INT n to one of
 * the error-code vectors would misalign the frame: tests do not do that.
 *
 * isr_common loads the runtime's flat data selector before calling C because
 * the interrupted code may have had any segment in DS/ES (that is what the
 * segment tests are about).  SS is left alone: tests never take a trap while
 * running on a stack segment whose base is not 0.  The handler may rewrite the
 * saved EIP/CS/EFLAGS; IRET then resumes wherever it says.
 */
#include "guest.h"

    .text
    .balign ISR_STUB_SIZE
    .globl isr_stubs
isr_stubs:
    .set vec, 0
    .rept IDT_ENTRIES
    .balign ISR_STUB_SIZE
    .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    pushl $vec
    .else
    pushl $0
    pushl $vec
    .endif
    jmp isr_common
    .set vec, vec + 1
    .endr

isr_common:
    pushal
    pushl %ds
    pushl %es
    pushl %fs
    pushl %gs
    movl $SEL_DATA32, %eax
    movl %eax, %ds
    movl %eax, %es
    cld
    pushl %esp
    call trap_dispatch
    addl $4, %esp
    popl %gs
    popl %fs
    popl %es
    popl %ds
    popal
    addl $8, %esp
    iret

    .section .note.GNU-stack, "", @progbits
