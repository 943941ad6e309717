/*
 * The timed loops of the nanobenchmarks and the guest handlers they exercise.
 *
 * Each nano_NAME(uint32_t n) runs its operation n times between two
 * "lfence; rdtsc; lfence" and returns the elapsed TSC cycles (EDX:EAX,
 * cdecl uint64_t).  The loop counter lives in EBP and the start time on the
 * stack, so the operation may use every other register.  The loop overhead
 * (DEC/JNZ) is included: one cycle or less on current CPUs, below the noise
 * of everything but callret.
 *
 * The handlers are what a small guest kernel would do, no more: the system
 * call returns at once, #DE skips the 2-byte DIV, #PF sets P in the PTE of
 * CR2's page and restarts the instruction.  They do not go through the
 * runtime's C trap dispatcher, whose cost would swamp the native figures.
 */
#include "nano.h"

.macro BEGIN name
	.globl \name
\name:
	pushl %ebx
	pushl %esi
	pushl %edi
	pushl %ebp
	movl 20(%esp), %ebp
.endm

.macro START
	lfence
	rdtsc
	lfence
	pushl %edx
	pushl %eax
.endm

.macro END
	decl %ebp
	jnz 1b
	lfence
	rdtsc
	lfence
	subl (%esp), %eax
	sbbl 4(%esp), %edx
	addl $8, %esp
	popl %ebp
	popl %edi
	popl %esi
	popl %ebx
	ret
.endm

	.text

/* Port read: VMware's "in" used a port whose read has no side effect. */
BEGIN nano_in
START
1:	inb $0x80, %al
END

/* Port read with a side effect, which the monitor's device model must see:
 * the UART's line status register (a read clears its error bits). */
BEGIN nano_in_device
START
1:	movw $0x3fd, %dx		/* RDTSC in START took EDX */
	inb %dx, %al
END

/* MOV to CR3 of the value it already holds (paging on). */
BEGIN nano_cr3write
	movl %cr3, %ebx
START
1:	movl %ebx, %cr3
END

/* Call and return of an empty function: the cost of a translated RET. */
BEGIN nano_callret
START
1:	call nano_empty
END

nano_empty:
	ret

/* A not-present page is mapped by the #PF handler, then unmapped again. */
BEGIN nano_pgfault
	movl $NANO_VA_PGFAULT, %esi
	movl $NANO_PTE(NANO_VA_PGFAULT), %ebx
START
1:	movl (%esi), %eax
	andl $~PTE_P, (%ebx)
	invlpg (%esi)
END

/* Division by zero; the #DE handler skips the DIV. */
BEGIN nano_divzero
	xorl %ebx, %ebx
START
1:	movl $1, %eax
	xorl %edx, %edx
	divl %ebx
END

/* A store to a live page table: the PTE of a page the loop never touches
 * flips between two frames. */
BEGIN nano_ptemod
	movl $NANO_PTE(NANO_VA_PTEMOD), %ebx
	movl $(NANO_FRAMES + 0x1000) | NANO_PG_URW, %eax
START
1:	movl %eax, (%ebx)
	xorl $0x1000, %eax
END

/* The same followed by INVLPG of the page, as a kernel changing a mapping does. */
BEGIN nano_ptemod_invlpg
	movl $NANO_PTE(NANO_VA_INVLPG), %ebx
	movl $NANO_VA_INVLPG, %esi
	movl $(NANO_FRAMES + 0x2000) | NANO_PG_URW, %eax
START
1:	movl %eax, (%ebx)
	xorl $0x1000, %eax
	invlpg (%esi)
END

/* INT 0x80 from ring 3 to a handler that returns at once. */
BEGIN nano_syscall_loop
START
1:	int $NANO_VEC_SYSCALL
END

/* Ring-3 entry for user_call(): the cycles go to nano_user_cycles, because
 * user_run() returns only EAX. */
	.globl nano_syscall_user
nano_syscall_user:
	pushl 4(%esp)
	call nano_syscall_loop
	addl $4, %esp
	movl %eax, nano_user_cycles
	movl %edx, nano_user_cycles + 4
	ret

/* ---- handlers ---- */

	.globl nano_sys_entry
nano_sys_entry:
	iret

	.globl nano_de_entry
nano_de_entry:
	addl $2, (%esp)                 /* divl %ebx is F7 F3 */
	iret

	.globl nano_pf_entry
nano_pf_entry:
	pushl %eax
	movl %cr2, %eax
	shrl $12, %eax
	andl $0x3FF, %eax
	orl $PTE_P, NANO_PT_TEST(,%eax,4)
	popl %eax
	addl $4, %esp                   /* error code */
	iret

	.bss
	.balign 8
	.globl nano_user_cycles
nano_user_cycles:
	.quad 0

	.section .note.GNU-stack, "", @progbits
