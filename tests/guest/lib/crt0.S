/*
 * Multiboot v1 header and entry point of every guest test kernel.
 *
 * The loader enters _start in flat 32-bit protected mode, paging off, with an
 * unknown stack and a GDT we must not rely on.  We take a fixed stack (its
 * addresses show up in some golden files), clear EFLAGS to a known value and
 * let rt_init() install our own descriptor tables before any test runs.
 */
#include "guest.h"

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000000  /* ELF image: no address fields, no boot info needed */

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .text
    .globl _start
_start:
    cli
    movl $STACK_TOP, %esp
    xorl %ebp, %ebp
    pushl $0x2
    popfl
    call rt_init
    call kmain
    pushl $0
    call exit_qemu
    /* exit_qemu does not return; if the exit device is missing, stop here. */
1:  cli
    hlt
    jmp 1b

    .section .note.GNU-stack, "", @progbits
