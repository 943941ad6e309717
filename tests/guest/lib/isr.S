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
 * saved EIP/CS/EFLAGS; IRET then resumes wherever it says.  A trap from ring 3
 * arrives on TSS.ESP0 with the user SS:ESP above the frame; the same IRET goes
 * back to ring 3.
 *
 * user_run() enters ring 3 by IRET and comes back through the DPL-3 interrupt
 * gate VEC_USER_RETURN, whose handler discards the ring-3 frame and returns
 * from user_run() on the ring-0 stack it saved.  TSS.ESP0 points just below
 * that saved frame, so traps taken in ring 3 cannot overwrite it.
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

/* uint32_t user_run(user_fn fn, uint32_t arg, uint32_t eflags, uint32_t data_sel) */
#define TSS_ESP0 (TSS_ADDR + 4)
    .globl user_run
user_run:
    pushfl
    pushl %ebp
    pushl %ebx
    pushl %esi
    pushl %edi
    movl %esp, user_saved_esp
    movl %esp, TSS_ESP0
    movl 24(%esp), %eax             /* fn */
    movl 28(%esp), %ecx             /* arg */
    movl 32(%esp), %edx             /* eflags */
    movl 36(%esp), %ebx             /* data_sel */
    movl $USER_STACK_TOP - 8, %esi  /* user stack: fn, arg */
    movl %eax, (%esi)
    movl %ecx, 4(%esi)
    pushl $SEL_USER_DATA32
    pushl %esi
    pushl %edx
    pushl $SEL_USER_CODE32
    pushl $user_trampoline
    movl %ebx, %ds
    movl %ebx, %es
    movl %ebx, %fs
    movl %ebx, %gs
    iret

/* Ring 3; touches only the stack, so it works with nulled data segments. */
user_trampoline:
    popl %eax
    call *%eax
    int $VEC_USER_RETURN

    .globl user_return
user_return:
    movl $SEL_DATA32, %ecx
    movl %ecx, %ds
    movl %ecx, %es
    movl %ecx, %fs
    movl %ecx, %gs
    movl user_saved_esp, %esp
    popl %edi
    popl %esi
    popl %ebx
    popl %ebp
    popfl
    ret

    .bss
    .balign 4
user_saved_esp:
    .long 0

    .section .note.GNU-stack, "", @progbits
