/*
 * Code that smc.c modifies while it runs.  All of it is plain cdecl: EAX is
 * the result, nothing else is preserved beyond what cdecl requires.
 */
#include "lib/guest.h"

    .text

    /* smc_imm: returns the immediate of its first instruction. */
    .globl smc_imm, smc_imm_value
smc_imm:
    .byte 0xb8                 /* mov $imm32, %eax */
smc_imm_value:
    .long 0x11111111
    ret

    /* smc_next(n): a loop over ECX = n..1 that, each iteration, rewrites the
     * opcode of the instruction right after the store, in the same basic
     * block: "inc %eax" when ECX is odd, "inc %edx" when it is even.  Returns
     * EAX << 16 | EDX, i.e. (n+1)/2 << 16 | n/2 when every store is seen. */
    .globl smc_next
smc_next:
    pushl %ebx
    movl 8(%esp), %ecx
    xorl %eax, %eax
    xorl %edx, %edx
1:  movl %ecx, %ebx
    andl $1, %ebx
    movb opcodes(%ebx), %bl
    movb %bl, 2f
2:  nop
    loop 1b
    shll $16, %eax
    orl %edx, %eax
    popl %ebx
    ret

    /* smc_jmp: returns 1, or 2 once the jump displacement has been patched. */
    .globl smc_jmp, smc_jmp_disp
smc_jmp:
    .byte 0xeb                 /* jmp rel8 */
smc_jmp_disp:
    .byte 0
    movl $1, %eax
    ret
    movl $2, %eax
    ret

    /* smc_rep(): copies 5 bytes ("mov $0x33333333, %eax") over the code right
     * after its own REP MOVSB, within the same block, and runs them. */
    .globl smc_rep
smc_rep:
    pushl %esi
    pushl %edi
    movl $rep_new, %esi
    movl $3f, %edi
    movl $5, %ecx
    rep movsb
3:  movl $0x22222222, %eax
    popl %edi
    popl %esi
    ret
rep_new:
    movl $0x33333333, %eax

    .section .rodata
    /* Indexed by ECX & 1: 1 -> inc %eax (40), 0 -> inc %edx (42). */
opcodes:
    .byte 0x42, 0x40

    .section .note.GNU-stack, "", @progbits
