/*
 * Crossing between the 64-bit monitor and 32-bit translated code.
 *
 * popek_enter (host .text, 64-bit) loads the guest's shadow selectors, GPRs
 * and arithmetic flags and far-jumps through vcpu_block.entry_far into the
 * translation cache, which runs in compatibility mode (selector 0x23,
 * __USER32_CS).  Translated code comes back by storing an exit reason and
 * far-jumping through vcpu_block.exit_far to mon_stub_exit64, which runs in
 * 64-bit mode from the monitor region: it saves the guest state, restores the
 * host FS base (glibc keeps TLS there and the guest's FS selector replaced it)
 * and returns from popek_enter.
 *
 * Everything between mon_stubs_start and mon_stubs_end is copied into the
 * monitor region (MON_STUBS) because a compat-mode far jump can only name a
 * 32-bit offset.  That code addresses nothing but %gs-relative absolutes, so
 * it runs wherever it is copied.  %gs always holds the monitor selector, in
 * both modes, which is also how signal handlers find the vCPU.
 */
#include "popek/vcpu.h"

#define B(off) %gs:(MON_BLOCK + (off))
#define GPR(r) B(VB_GPR + 4 * (r))

#define USER_DS 0x2b

    .section .note.GNU-stack, "", @progbits

    .text
    .code64

/* int popek_enter(struct vcpu_block *blk); returns when translated code exits. */
    .globl popek_enter
    .type popek_enter, @function
popek_enter:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    movw (VB_MON_GS)(%rdi), %ax
    movw %ax, %gs
    movq %rsp, B(VB_HOST_RSP)
    /* The guest's SSE registers back (see mon_stub_exit_host). */
    movaps B(VB_XMM + 0x00), %xmm0
    movaps B(VB_XMM + 0x10), %xmm1
    movaps B(VB_XMM + 0x20), %xmm2
    movaps B(VB_XMM + 0x30), %xmm3
    movaps B(VB_XMM + 0x40), %xmm4
    movaps B(VB_XMM + 0x50), %xmm5
    movaps B(VB_XMM + 0x60), %xmm6
    movaps B(VB_XMM + 0x70), %xmm7
    ldmxcsr B(VB_MXCSR)
    rdfsbase %rax
    movq %rax, B(VB_HOST_FSBASE)
    /* WRPKRU only if the monitor's exit left another PKRU (a CPL or
     * address-space change): RDPKRU is cheap, WRPKRU is not. */
    xorl %ecx, %ecx
    rdpkru
    cmpl B(VB_PKRU), %eax
    je 1f
    movl B(VB_PKRU), %eax
    xorl %edx, %edx
    wrpkru
1:
    movl B(VB_EFLAGS), %eax
    andl $EFLAGS_ARITH, %eax
    orl $(EFLAGS_IF | EFLAGS_FIXED), %eax
    pushq %rax
    popfq
    movl $1, B(VB_IN_GUEST_FS)
    movw B(VB_HOST_SEL + 2 * SEG_DS), %ds
    movw B(VB_HOST_SEL + 2 * SEG_ES), %es
    movw B(VB_ENTRY_FS), %fs
    movw B(VB_HOST_SEL + 2 * SEG_SS), %ss
    movl GPR(R_ESP), %esp
    movl GPR(R_EAX), %eax
    movl GPR(R_ECX), %ecx
    movl GPR(R_EDX), %edx
    movl GPR(R_EBX), %ebx
    movl GPR(R_EBP), %ebp
    movl GPR(R_ESI), %esi
    movl GPR(R_EDI), %edi
    ljmpl *B(VB_ENTRY_FAR)
    .size popek_enter, . - popek_enter

/*
 * Signal trampoline: runs on the alternate signal stack with whatever FS the
 * interrupted code had.  Restore the host FS base before any C runs; before
 * returning to code that still runs on guest segments, reload the FS selector
 * it had (which reloads its base from the LDT: a segment-swap sequence may
 * have FS pointing at the guest's GS shadow), or the one the handler put in
 * vcpu_block.resume_fs instead.
 */
    .globl popek_signal_trampoline
    .type popek_signal_trampoline, @function
popek_signal_trampoline:
    push %rbx
    movl %fs, %ebx
    rdgsbase %rax
    movw %bx, (MON_BLOCK + VB_RESUME_FS)(%rax)
    movq (MON_BLOCK + VB_HOST_FSBASE)(%rax), %rcx
    wrfsbase %rcx
    call popek_signal
    rdgsbase %rax
    cmpl $0, (MON_BLOCK + VB_IN_GUEST_FS)(%rax)
    je 1f
    movw (MON_BLOCK + VB_RESUME_FS)(%rax), %fs
1:  pop %rbx
    ret
    .size popek_signal_trampoline, . - popek_signal_trampoline

/* ---- copied into the monitor region ------------------------------------------ */

    .section .rodata
    .globl mon_stubs_start, mon_stubs_end
    .globl mon_stub_exit_chain, mon_stub_exit_emulate, mon_stub_exit_ibl_miss, mon_stub_ibl_empty
    .globl mon_stub_exit64, mon_stub_exit_host
mon_stubs_start:

    .code32
mon_stub_exit_chain:
    movl $EXIT_CHAIN, B(VB_EXIT_REASON)
    ljmpl *B(VB_EXIT_FAR)
mon_stub_exit_emulate:
    movl $EXIT_EMULATE, B(VB_EXIT_REASON)
    ljmpl *B(VB_EXIT_FAR)
/* An empty IBL entry: the lookup "hit" it and jumped here with %ecx used. */
mon_stub_ibl_empty:
    movl B(VB_SCRATCH_ECX), %ecx
mon_stub_exit_ibl_miss:
    movl $EXIT_IBL_MISS, B(VB_EXIT_REASON)
    ljmpl *B(VB_EXIT_FAR)

    .code64
mon_stub_exit64:
    movl %esp, GPR(R_ESP)
    movq B(VB_HOST_RSP), %rsp
    pushfq
    movl %eax, GPR(R_EAX)
    movl %ecx, GPR(R_ECX)
    movl %edx, GPR(R_EDX)
    movl %ebx, GPR(R_EBX)
    movl %ebp, GPR(R_EBP)
    movl %esi, GPR(R_ESI)
    movl %edi, GPR(R_EDI)
    popq %rax
    movl %eax, B(VB_EFLAGS)
/* Signal handlers that take the guest back to the monitor land here with the
 * guest state already saved and %rsp = host_rsp. */
mon_stub_exit_host:
    /* Clear in_guest_fs first: from here on a signal handler must leave FS
     * alone (reloading the guest's selector after our wrfsbase would wipe
     * the host TLS base). */
    movl $0, B(VB_IN_GUEST_FS)
    /* The guest's SSE state out, a clean MXCSR for C (the guest may have
     * changed it; the monitor does SSE arithmetic).  Compatibility mode
     * reaches only XMM0-7, and the C code (glibc's SSE string functions)
     * does not preserve those between exits.  The x87 state is left as the
     * guest had it: no monitor code executes x87 instructions (no long
     * double anywhere).  Eight stores instead of FXSAVE/FXRSTOR of the whole
     * 512-byte image save ~100 cycles per exit. */
    stmxcsr B(VB_MXCSR)
    movaps %xmm0, B(VB_XMM + 0x00)
    movaps %xmm1, B(VB_XMM + 0x10)
    movaps %xmm2, B(VB_XMM + 0x20)
    movaps %xmm3, B(VB_XMM + 0x30)
    movaps %xmm4, B(VB_XMM + 0x40)
    movaps %xmm5, B(VB_XMM + 0x50)
    movaps %xmm6, B(VB_XMM + 0x60)
    movaps %xmm7, B(VB_XMM + 0x70)
    pushq $0x1f80
    ldmxcsr (%rsp)
    addq $8, %rsp
    xorl %eax, %eax
    movl %eax, %fs
    movq B(VB_HOST_FSBASE), %rax
    wrfsbase %rax
    /* 64-bit mode ignores DS and ES (popek_enter reloads them); SS must be
     * a selector the host kernel can return to user mode with. */
    movl $USER_DS, %eax
    movl %eax, %ss
    cld
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret
mon_stubs_end:
