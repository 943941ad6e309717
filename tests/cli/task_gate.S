/*
 * A guest that does something Popek does not support: a far JMP through a
 * task gate in the GDT, i.e. a hardware task switch (Intel SDM vol. 3A, 8.3).
 * No kernel Linux boots uses one, so Popek stops with status 3 and names the
 * instruction, its address and its bytes.  The kernel is nevertheless a
 * correct one: on a real CPU (or qemu-system-i386) the switch lands in
 * task_b, which exits through isa-debug-exit with code 0 (status 1); if the
 * JMP falls through, code 0x10 (status 33) says so.
 *
 * The far JMP sits at a fixed address, JMP_ADDR, so the test can match the
 * exact "at 0008:00100100: ea ..." of Popek's message.
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0

#define LOAD_ADDR 0x00100000
#define JMP_ADDR 0x00100100

/* Selectors of the GDT below. */
#define SEL_CODE 0x08
#define SEL_DATA 0x10
#define SEL_TSS_A 0x18 /* the running task, loaded by LTR */
#define SEL_TSS_B 0x20 /* the task the gate switches to */
#define SEL_GATE 0x28

/* 32-bit TSSs at fixed addresses above the image so that the descriptors
 * below are assembly-time constants. */
#define TSS_A 0x00200000
#define TSS_B 0x00200100
#define TSS_LIMIT 0x67 /* 104 bytes, no I/O bitmap */
#define TSS_EIP 32
#define TSS_EFLAGS 36
#define TSS_ESP 56
#define TSS_ES 72
#define TSS_CS 76
#define TSS_SS 80
#define TSS_DS 84
#define TSS_IOMAP 102
#define STACK_TOP 0x00280000

/* Available 32-bit TSS descriptor (type 9, present, DPL 0) at `base`. */
#define TSS_DESC(base) \
    .long (((base) & 0xffff) << 16) | TSS_LIMIT; \
    .long ((base) & 0xff000000) | 0x8900 | (((base) >> 16) & 0xff)

#define DEBUG_EXIT_PORT 0xF4

    .text
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .globl _start
_start:
    cli
    lgdt gdt_desc
    ljmp $SEL_CODE, $1f
1:  movw $SEL_DATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl $STACK_TOP, %esp

    /* Task B starts at task_b with flat segments; both TSSs are otherwise zero
     * (guest RAM starts zeroed, as on QEMU). */
    movl $task_b, TSS_B + TSS_EIP
    movl $0x2, TSS_B + TSS_EFLAGS
    movl $STACK_TOP - 0x1000, TSS_B + TSS_ESP
    movl $SEL_CODE, TSS_B + TSS_CS
    movl $SEL_DATA, TSS_B + TSS_DS
    movl $SEL_DATA, TSS_B + TSS_ES
    movl $SEL_DATA, TSS_B + TSS_SS
    movw $TSS_LIMIT + 1, TSS_A + TSS_IOMAP
    movw $TSS_LIMIT + 1, TSS_B + TSS_IOMAP
    movw $SEL_TSS_A, %ax
    ltr %ax
    jmp do_switch

    .org JMP_ADDR - LOAD_ADDR
do_switch:
    ljmp $SEL_GATE, $0
    movl $0x10, %eax
    jmp exit

task_b:
    xorl %eax, %eax
exit:
    movw $DEBUG_EXIT_PORT, %dx
    outl %eax, %dx
2:  hlt
    jmp 2b

    .data
    .balign 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff /* SEL_CODE: flat 32-bit code, DPL 0 */
    .quad 0x00cf92000000ffff /* SEL_DATA: flat 32-bit data, DPL 0 */
    TSS_DESC(TSS_A)
    TSS_DESC(TSS_B)
    /* Task gate (type 5, present, DPL 0) naming TSS B; offset unused. */
    .long SEL_TSS_B << 16
    .long 0x8500
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt

    .section .note.GNU-stack, "", @progbits
