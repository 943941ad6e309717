/*
 * A guest with more translated code than the smallest translation cache
 * (-tb-size 1: 1 MiB, at most 16384 blocks) holds: BLOCKS distinct basic
 * blocks, each ending in a conditional branch, run PASSES times.  Under
 * -tb-size 1 the cache is flushed while chained blocks are still live and
 * every pass retranslates what the previous flush dropped; the checksum
 * printed on COM1 must not depend on that.
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0

#define BLOCKS 20000
#define PASSES 3
#define STACK_TOP 0x00280000

#define COM1_THR 0x3F8
#define COM1_LSR 0x3FD
#define UART_LSR_THRE 0x20
#define DEBUG_EXIT_PORT 0xF4

    .text
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .globl _start
_start:
    cli
    movl $STACK_TOP, %esp
    xorl %eax, %eax
    movl $PASSES, %edi
pass:
    .set k, 0
    .rept BLOCKS
    addl $(k * 0x9e3779b9) & 0xffffffff, %eax
    roll $5, %eax
    jnc 1f
1:
    .set k, k + 1
    .endr
    decl %edi
    jnz pass

    /* Print %eax as eight hex digits and a newline. */
    movl %eax, %ebx
    movl $8, %esi
digit:
    roll $4, %ebx
    movl %ebx, %eax
    andl $0xf, %eax
    movb hex(%eax), %al
    call putc
    decl %esi
    jnz digit
    movb $'\n', %al
    call putc

    xorl %eax, %eax
    movw $DEBUG_EXIT_PORT, %dx
    outl %eax, %dx
2:  hlt
    jmp 2b

/* Writes %al to COM1 once the transmitter is empty; clobbers %ecx, %edx. */
putc:
    movb %al, %cl
    movw $COM1_LSR, %dx
3:  inb %dx, %al
    testb $UART_LSR_THRE, %al
    jz 3b
    movb %cl, %al
    movw $COM1_THR, %dx
    outb %al, %dx
    ret

hex:
    .ascii "0123456789abcdef"

    .section .note.GNU-stack, "", @progbits
