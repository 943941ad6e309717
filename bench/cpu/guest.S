/*
 * Start-up for the guest build of the CPU benchmark: a multiboot v1 kernel.
 *
 * The loader (Popek, QEMU -kernel, GRUB) finds the header below in the first 8 KiB,
 * loads the ELF segments at 1 MiB (guest.ld) and enters _start in 32-bit protected
 * mode with flat segments, paging and interrupts off. We never reload a segment
 * register, so the loader's GDT is good enough; all we need is a stack and a clean
 * .bss. Output goes to COM1 by polling, and the machine stops through QEMU's
 * isa-debug-exit device at port 0xF4, which Popek also implements.
 */

#define MULTIBOOT_HEADER_MAGIC 0x1BADB002
#define MULTIBOOT_HEADER_FLAGS 0       /* ELF kernel: no a.out kludge, no info requested */

#define COM1_BASE 0x3F8
#define UART_THR 0                     /* transmitter holding register */
#define UART_LSR 5                     /* line status register */
#define UART_LSR_THRE 0x20             /* THR empty: may write the next byte */
/*
 * Upper bound on LSR polls per byte, so a UART model that never reports THRE makes
 * the output garbled rather than hanging the benchmark. A real 16550 at 115200 baud
 * needs about 90 µs per byte; this is far longer.
 */
#define UART_POLL_LIMIT 0x100000

#define DEBUG_EXIT_PORT 0xF4

#define STACK_SIZE 0x10000

	.section .multiboot, "a"
	.p2align 2
	.long MULTIBOOT_HEADER_MAGIC
	.long MULTIBOOT_HEADER_FLAGS
	.long -(MULTIBOOT_HEADER_MAGIC + MULTIBOOT_HEADER_FLAGS)

	.text
	.globl _start
_start:
	cld
	movl $stack_top, %esp
	/*
	 * Loaders zero .bss (the ELF p_memsz tail) per the multiboot spec, but the
	 * benchmark's checksums rely on it, so do not trust them.
	 */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	shrl $2, %ecx
	xorl %eax, %eax
	rep stosl
	call bench_main
	/* isa-debug-exit: QEMU exits with status (value << 1) | 1. */
	movw $DEBUG_EXIT_PORT, %dx
	outl %eax, %dx
	cli
1:	hlt
	jmp 1b

/* void bench_write(const char *buf, uint32_t len) */
	.globl bench_write
bench_write:
	pushl %esi
	pushl %ebx
	movl 12(%esp), %esi
	movl 16(%esp), %ecx
	jmp 4f
1:	movl $UART_POLL_LIMIT, %ebx
	movw $COM1_BASE + UART_LSR, %dx
2:	inb %dx, %al
	testb $UART_LSR_THRE, %al
	jnz 3f
	decl %ebx
	jnz 2b
3:	movw $COM1_BASE + UART_THR, %dx
	lodsb
	outb %al, %dx
	decl %ecx
4:	testl %ecx, %ecx
	jnz 1b
	popl %ebx
	popl %esi
	ret

	.bss
	.p2align 4
stack_bottom:
	.skip STACK_SIZE
stack_top:

	.section .note.GNU-stack, "", @progbits
