/*
 * Start-up for the native build of the CPU benchmark: a static 32-bit Linux program
 * without libc. It talks to the kernel through the i386 system call gate (int 0x80),
 * which every x86-64 kernel with IA-32 emulation provides.
 */

#define __NR_exit 1
#define __NR_write 4
#define STDOUT_FILENO 1

	.text
	.globl _start
_start:
	xorl %ebp, %ebp
	andl $-16, %esp
	call bench_main
	movl %eax, %ebx
	movl $__NR_exit, %eax
	int $0x80

/* void bench_write(const char *buf, uint32_t len): loops over short writes. */
	.globl bench_write
bench_write:
	pushl %ebx
	pushl %esi
	movl 12(%esp), %ecx
	movl 16(%esp), %esi
	jmp 2f
1:	movl $__NR_write, %eax
	movl $STDOUT_FILENO, %ebx
	movl %esi, %edx
	int $0x80
	testl %eax, %eax
	jle 3f          /* error: drop the rest, the harness sees a missing line */
	addl %eax, %ecx
	subl %eax, %esi
2:	testl %esi, %esi
	jnz 1b
3:	popl %esi
	popl %ebx
	ret

	.section .note.GNU-stack, "", @progbits
