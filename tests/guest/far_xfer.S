/*
 * Code for far_xfer.c.  blob_start..blob_end is copied to SCRATCH_ADDR and run
 * through a code segment whose base is SCRATCH_ADDR, so its EIP values are
 * the small fixed offsets set with .org below, whatever the link address.
 * Data accesses use the flat DS.  Routines that are entered by a far JMP or
 * IRET leave with "ljmp *(%esi)", ESI pointing at a flat m16:32 return pointer.
 */
#include "lib/guest.h"

    .section .rodata
    .globl blob_start, blob_end
blob_start:

    /* 0x100: far-called; EAX = its own EIP, EBX:ECX = the return CS:EIP. */
    .org blob_start + 0x100
    call 1f
1:  popl %eax
    movl (%esp), %ebx
    movl 4(%esp), %ecx
    lret

    /* 0x140: far-called with two dword parameters, returns with lret $8. */
    .org blob_start + 0x140
    movl 8(%esp), %eax
    movl 12(%esp), %ebx
    lret $8

    /* 0x180: far-jumped to; EAX = own EIP, EDX = CS. */
    .org blob_start + 0x180
    call 1f
1:  popl %eax
    movl %cs, %edx
    ljmp *(%esi)

    /* 0x1c0: near CALL/RET inside the segment; EAX = pushed return offset. */
    .org blob_start + 0x1c0
    call 2f
    lret
2:  movl (%esp), %eax
    ret

    /* 0x200: far call out to the flat segment and back; EBX:ECX from there. */
    .org blob_start + 0x200
    lcall *(%esi)
    lret

    /* 0x240: interrupt handler (IDT gate to this segment). */
    .org blob_start + 0x240
    call 1f
1:  popl %eax
    movl (%esp), %ebx
    movl 4(%esp), %ecx
    movl 8(%esp), %edx
    iret

    /* 0x280: IRET target; EAX = own EIP, EDX = CS, EDI = EFLAGS. */
    .org blob_start + 0x280
    call 1f
1:  popl %eax
    movl %cs, %edx
    pushfl
    popl %edi
    ljmp *(%esi)

    /* 0x2c0: software interrupt from inside the segment to a flat handler. */
    .org blob_start + 0x2c0
    int $0x42
    lret

    /* 0x300: an exception inside the segment; the test resumes at 0x302. */
    .org blob_start + 0x300
    ud2
    lret

    /* 0x340: target of IRETW / LRETW (16-bit frames). */
    .org blob_start + 0x340
    call 1f
1:  popl %eax
    movl %cs, %edx
    ljmp *(%esi)

    .org blob_start + 0x380
blob_end:

    .text
    /* Flat far-called routine: EBX:ECX = the return CS:EIP it was given. */
    .globl flat_callee
flat_callee:
    movl (%esp), %ebx
    movl 4(%esp), %ecx
    lret

    .section .note.GNU-stack, "", @progbits
