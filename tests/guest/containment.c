/*
 * System-call style entries a guest kernel may execute, which Popek must keep
 * inside the guest (none of them may reach the host kernel):
 *   INT 0x80 through a guest IDT gate runs the guest handler, which can change
 *   the registers the caller sees.
 *   SYSENTER with IA32_SYSENTER_CS=0 is #GP(0), as is SYSEXIT (SDM vol. 2,
 *   SYSENTER/SYSEXIT; a non-zero RPL-only value is in msr_sdm.c).  With a valid SYSENTER_CS it loads CS=SYSENTER_CS,
 *   SS=SYSENTER_CS+8, ESP/EIP from the MSRs and clears IF (at CPL 0 as well).
 *   SYSCALL/SYSRET in 32-bit legacy mode: #UD on Intel, #UD on AMD with
 *   EFER.SCE=0; only "#UD or #GP" is printed, never which.
 */
#include "lib/guest.h"

#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176

static void wrmsr(uint32_t msr, uint32_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"(v), "d"(0));
}

static uint32_t seen_ebx;

static void int80_handler(struct trap_frame *f)
{
    seen_ebx = f->ebx;
    f->eax = f->ebx * 2 + 1;
}

/* State captured at the SYSENTER target. */
uint32_t se_cs, se_ss, se_esp, se_eflags, se_saved_esp;

static TEST_FN void sysenter_fault(const char *name)
{
    extern char se_at[], se_resume[];
    trap_expect(se_resume);
    __asm__ volatile("se_at: sysenter\nse_resume:" : : : "memory");
    trap_print(name, se_at);
}

static TEST_FN void sysexit_fault(const char *name)
{
    extern char sx_at[], sx_resume[];
    trap_expect(sx_resume);
    __asm__ volatile("sx_at: sysexit\nsx_resume:" : : "c"(0), "d"(0) : "memory");
    trap_print(name, sx_at);
}

static TEST_FN void sysenter_ok(void)
{
    wrmsr(MSR_IA32_SYSENTER_CS, SEL_CODE32);
    wrmsr(MSR_IA32_SYSENTER_ESP, SCRATCH_ADDR + 0x1000);
    __asm__ volatile("movl $se_target, %%eax\n\t"
                     "movl $0x176, %%ecx\n\t"
                     "xorl %%edx, %%edx\n\t"
                     "wrmsr\n\t"
                     "movl %%esp, se_saved_esp\n\t"
                     "pushl $0x202\n\tpopfl\n\t"
                     "sysenter\n"
                     "se_target:\n\t"
                     "movl %%esp, se_esp\n\t"
                     "movw %%cs, se_cs\n\t"
                     "movw %%ss, se_ss\n\t"
                     "pushfl\n\tpopl se_eflags\n\t"
                     "movl se_saved_esp, %%esp"
                     : : : "eax", "ecx", "edx", "memory", "cc");
    printf("sysenter (cs msr 0008): cs=%04x ss=%04x esp=%08x if=%u\n", se_cs & 0xFFFF,
           se_ss & 0xFFFF, se_esp, (se_eflags >> 9) & 1);
    wrmsr(MSR_IA32_SYSENTER_CS, 0);
}

static TEST_FN void syscall_fault(void)
{
    extern char sc_at[], sc_resume[];
    trap_expect(sc_resume);
    __asm__ volatile("sc_at: .byte 0x0f, 0x05\nsc_resume:" : : : "ecx", "memory");
    printf("syscall: raised #UD or #GP=%s eip=fault+%d\n",
           trap_last.count && (trap_last.vector == VEC_UD || trap_last.vector == VEC_GP) ? "yes" : "no",
           (int)(trap_last.eip - (uint32_t)sc_at));
    trap_disarm();
}

static TEST_FN void sysret_fault(void)
{
    extern char sr_at[], sr_resume[];
    trap_expect(sr_resume);
    __asm__ volatile("sr_at: .byte 0x0f, 0x07\nsr_resume:" : : : "ecx", "memory");
    printf("sysret: raised #UD or #GP=%s eip=fault+%d\n",
           trap_last.count && (trap_last.vector == VEC_UD || trap_last.vector == VEC_GP) ? "yes" : "no",
           (int)(trap_last.eip - (uint32_t)sr_at));
    trap_disarm();
}

void kmain(void)
{
    uint32_t a, b, c, d, r;

    trap_set_handler(0x80, int80_handler);
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(0), "b"(20) : "memory");
    printf("int 0x80: handler saw ebx=%u, caller got eax=%u\n", seen_ebx, r);
    trap_set_handler(0x80, NULL);

    cpuid(1, 0, &a, &b, &c, &d);
    printf("cpuid 1: edx.sep=%u\n", (d >> 11) & 1);
    wrmsr(MSR_IA32_SYSENTER_CS, 0);
    sysenter_fault("sysenter, sysenter_cs=0000");
    sysexit_fault("sysexit, sysenter_cs=0000");
    sysenter_ok();

    syscall_fault();
    sysret_fault();
}
