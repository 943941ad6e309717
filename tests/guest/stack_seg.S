/*
 * Stack-segment tests for stack_seg.c, in assembly because C must not run
 * while SS has a non-zero base (C takes addresses of locals as flat DS
 * pointers).  Each routine switches SS:ESP, does its work, stores results in
 * flat variables and switches back.
 */
#include "lib/guest.h"

#define SEL_STK32 0x18   /* base SCRATCH_ADDR, 4 GiB, B=1 */
#define SEL_STK16 0x20   /* base SCRATCH_ADDR, limit 0xFFFF, B=0 */

    .data
saved_esp:   .long 0
    .globl st_res
st_res:      .fill 16, 4, 0

    .text
    /* 32-bit SS with base: push, call, EBP-relative and explicit overrides,
     * and an INT whose frame goes to SS:ESP. */
    .globl stack_seg_based
stack_seg_based:
    pushal
    movl %esp, saved_esp
    movl $SEL_STK32, %eax
    movl %eax, %ss
    movl $0x1000, %esp
    pushl $0x11223344              /* linear SCRATCH+0xffc */
    call 1f                         /* pushes a flat EIP at SCRATCH+0xff8 */
1:  popl %eax
    subl $1b, %eax
    movl %eax, st_res + 0           /* 0: popped EIP - label */
    movl %esp, st_res + 4           /* 1: ESP after push+call+pop */
    movl $0x10ff0, %ebp
    movl $0xaabbccdd, (%ebp)        /* default SS: SCRATCH+0x10ff0 */
    movl $0x55667788, %ds:4(%ebp)   /* DS override: flat 0x10ff4 */
    movl %ss:(%ebp), %eax
    movl %eax, st_res + 8           /* 2: read back through SS */
    movl (%esp), %eax
    movl %eax, st_res + 12          /* 3: (%esp) is SS-relative too */
    int $0x43
int_ret:
    movl %esp, st_res + 16          /* 4: ESP after INT/IRET */
    popl %eax
    movl $SEL_DATA32, %eax
    movl %eax, %ss
    movl saved_esp, %esp
    popal
    ret

    /* INT 0x43 handler, entered on the based stack. */
    .globl stack_seg_int_handler
stack_seg_int_handler:
    movl %esp, st_res + 20          /* 5: ESP in the handler */
    movl (%esp), %eax
    subl $int_ret, %eax
    movl %eax, st_res + 24          /* 6: saved EIP - label */
    movl 4(%esp), %eax
    movl %eax, st_res + 28          /* 7: saved CS (low 16 bits valid) */
    iret

    /* 16-bit SS: pushes and pops use SP and keep ESP[31:16]. */
    .globl stack_seg_16
stack_seg_16:
    pushal
    movl %esp, saved_esp
    movl $SEL_STK16, %eax
    movl %eax, %ss
    movl $0x12340010, %esp
    pushl $0xcafebabe               /* SP 0x000c: linear SCRATCH+0x000c */
    movl %esp, st_res + 32          /* 8: ESP after push */
    popl %eax
    movl %esp, st_res + 36          /* 9: ESP after pop */
    movl $0xabcd0000, %esp
    pushl $0xfeedf00d               /* SP wraps to 0xfffc */
    movl %esp, st_res + 40          /* 10: ESP after wrapping push */
    popl %eax
    movl %esp, st_res + 44          /* 11: ESP after pop (wraps back to 0) */
    movl $SEL_DATA32, %eax
    movl %eax, %ss
    movl saved_esp, %esp
    popal
    ret

    .section .note.GNU-stack, "", @progbits
