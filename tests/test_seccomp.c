/*
 * The containment filter (src/monitor/seccomp.c) really traps what it must:
 * a system call made from compatibility mode (the i386 ABI, whatever the
 * instruction) or from an instruction pointer below 4 GiB, where guest code
 * lives.  Ordinary 64-bit code of the monitor must keep working.
 *
 * Each escape attempt runs in a child process of the test (the filter cannot
 * be removed once installed, and the attempt ends the process): the child
 * copies a small piece of code into a page below 4 GiB, installs the filter
 * and jumps there, in 64-bit mode or through a far return to the host's
 * 32-bit code selector.  Whatever signal stops it, the handler reports the
 * signal and the siginfo fields through a pipe and exits; the parent asserts
 * on the report.  If the system call goes through, the code after it reports
 * that instead (a RET back to C, a UD2 in 32-bit code, or for SYSENTER a
 * SIGSEGV, see below), so "not trapped" fails with a clear message rather
 * than hanging.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <cpuid.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "popek/vm.h"

#define USER32_CS 0x23 /* Linux __USER32_CS: flat 32-bit code, DPL 3 */
#define PAGE_BYTES 4096
#define XSTR(x) #x
#define STR(x) XSTR(x)
/* getpid in the i386 numbering (arch/x86/entry/syscalls/syscall_32.tbl); the
 * 64-bit one is __NR_getpid. */
#define NR_GETPID_I386 20
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 /* si_code of a seccomp SIGSYS (asm-generic/siginfo.h); glibc 2.36 lacks it */
#endif

/*
 * The escape attempts, assembled here and copied into a low page at run time
 * (they are position independent).  The 32-bit ones take a stack pointer in
 * %ebx.  SYSENTER follows the vDSO's convention (__kernel_vsyscall): SYSENTER
 * does not save the user stack pointer, so the kernel takes it from %ebp and
 * reads the sixth argument from there before it looks at the system call.
 * With a bad %ebp the kernel returns -EFAULT without running anything and
 * seccomp never sees the call, which would prove nothing about the filter.
 */
__asm__(".pushsection .rodata.escapes, \"a\"\n"
        "escape_syscall64:\n"
        "  mov $" STR(__NR_getpid) ", %eax\n"
        "  syscall\n"
        "  ret\n"
        "escape_syscall64_end:\n"
        ".code32\n"
        "escape_int80:\n"
        "  mov %ebx, %esp\n"
        "  mov $" STR(NR_GETPID_I386) ", %eax\n"
        "  int $0x80\n"
        "  ud2\n"
        "escape_int80_end:\n"
        "escape_sysenter:\n"
        "  mov %ebx, %esp\n"
        "  mov %esp, %ebp\n"
        "  mov $" STR(NR_GETPID_I386) ", %eax\n"
        "escape_sysenter_insn:\n"
        "  sysenter\n"
        "  ud2\n"
        "escape_sysenter_end:\n"
        ".code64\n"
        ".popsection");

extern const char escape_syscall64[], escape_syscall64_end[];
extern const char escape_int80[], escape_int80_end[];
extern const char escape_sysenter[], escape_sysenter_insn[], escape_sysenter_end[];

struct escape {
    const char *code, *end;
    bool compat; /* enter through a far return to USER32_CS */
};

/* What stopped the child. */
struct report {
    int sig;           /* 0: the code returned, the system call went through */
    int code;          /* si_code */
    unsigned arch;     /* si_arch (SIGSYS) */
    int nr;            /* si_syscall (SIGSYS) */
    uintptr_t addr;    /* si_addr (SIGILL, SIGSEGV): offset into the page */
    uint64_t rip;      /* interrupted RIP, as an offset into the page */
};

/* Set up in the child before the filter goes in; read by its signal handler. */
static int report_fd = -1;
static uintptr_t escape_page;

static void __attribute__((noreturn)) send_report(const struct report *r)
{
    (void)!write(report_fd, r, sizeof(*r));
    _exit(0);
}

static void on_signal(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    struct report r = {
        .sig = sig,
        .code = si->si_code,
        .rip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP] - escape_page,
    };
    if (sig == SIGSYS) {
        r.arch = si->si_arch;
        r.nr = si->si_syscall;
    } else {
        r.addr = (uintptr_t)si->si_addr - escape_page;
    }
    send_report(&r);
}

static void __attribute__((noreturn)) escape_child(const struct escape *e)
{
    static char altstack[64 * 1024];
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK; /* RSP is not trusted after 32-bit code */
    static const int sigs[] = { SIGSYS, SIGILL, SIGSEGV, SIGBUS, SIGTRAP };
    if (sigaltstack(&ss, NULL) < 0)
        _exit(10);
    for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (sigaction(sigs[i], &sa, NULL) < 0)
            _exit(11);

    void *page = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE | PROT_EXEC,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (page == MAP_FAILED)
        _exit(12);
    escape_page = (uintptr_t)page;
    memcpy(page, e->code, (size_t)(e->end - e->code));
    uint32_t stack = (uint32_t)escape_page + PAGE_BYTES - 16;

    if (seccomp_install() != 0)
        _exit(13);
    if (e->compat) {
        /* No way back is needed: the attempt ends in on_signal. */
        __asm__ volatile("pushq %[cs]\n\t"
                         "pushq %[ip]\n\t"
                         "lretq"
                         :
                         : [cs] "i"(USER32_CS), [ip] "r"(escape_page), "b"(stack)
                         : "memory");
        __builtin_unreachable();
    }
    ((void (*)(void))page)();
    send_report(&(struct report){ .sig = 0 });
}

static struct report escape_run(const struct escape *e)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork failed");
    if (pid == 0) {
        close(fds[0]);
        report_fd = fds[1];
        escape_child(e);
    }
    close(fds[1]);
    struct report r;
    ssize_t n = read(fds[0], &r, sizeof(r));
    close(fds[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child did not report (wait status %#x: exit 10-13 = setup step failed)", status);
    cr_assert_eq(n, (ssize_t)sizeof(r), "short report from the child");
    return r;
}

static void assert_trapped(const struct report *r, unsigned arch, int nr, const char *what)
{
    cr_assert_neq(r->sig, 0, "%s: the system call was not trapped (it returned)", what);
    cr_assert_eq(r->sig, SIGSYS, "%s: expected SIGSYS, got signal %d (code %d) at page+%#lx",
                 what, r->sig, r->code, (unsigned long)r->rip);
    cr_assert_eq(r->code, SYS_SECCOMP, "%s: SIGSYS not from seccomp (code %d)", what, r->code);
    cr_assert_eq(r->arch, arch, "%s: si_arch %#x, expected %#x", what, r->arch, arch);
    cr_assert_eq(r->nr, nr, "%s: si_syscall %d, expected %d", what, r->nr, nr);
}

static bool cpu_is_amd(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d))
        return false;
    return (b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163) || /* AuthenticAMD */
           (b == 0x6f677948 && d == 0x6e65476e && c == 0x656e6975);   /* HygonGenuine */
}

Test(seccomp, monitor_syscalls_still_work, .timeout = 10)
{
    cr_assert_eq(seccomp_install(), 0);
    cr_assert_eq(prctl(PR_GET_SECCOMP, 0, 0, 0, 0), SECCOMP_MODE_FILTER,
                 "the filter is not installed");
    cr_assert((uintptr_t)&escape_run >> 32 != 0,
              "this test binary is not above 4 GiB (built without PIE?)");
    pid_t pid = getpid();
    cr_assert_gt(pid, 0);
    cr_assert_eq(syscall(SYS_getpid), pid);
}

Test(seccomp, syscall_below_4g_is_trapped, .timeout = 10)
{
    struct escape e = { escape_syscall64, escape_syscall64_end, false };
    struct report r = escape_run(&e);
    assert_trapped(&r, AUDIT_ARCH_X86_64, __NR_getpid, "64-bit SYSCALL from a low page");
}

Test(seccomp, int80_from_compat_mode_is_trapped, .timeout = 10)
{
    struct escape e = { escape_int80, escape_int80_end, true };
    struct report r = escape_run(&e);
    assert_trapped(&r, AUDIT_ARCH_I386, NR_GETPID_I386, "INT 0x80 from compatibility mode");
}

/*
 * SYSENTER in compatibility mode is an Intel feature: Linux points
 * IA32_SYSENTER_EIP at its compat entry and seccomp sees an i386 system call.
 * This is the escape only the filter's arch test stops: SYSENTER does not
 * save EIP, so by the time seccomp runs the kernel has set the return address
 * to the vDSO's int80 landing pad, which for a 64-bit process is above 4 GiB
 * and passes the instruction-pointer test.  (Were it let through, the return
 * to that address truncated to 32 bits would end in a SIGSEGV.)
 * AMD CPUs raise #UD for SYSENTER outside legacy mode (AMD APM vol. 3,
 * SYSENTER), so there the kernel is never entered and the process gets
 * SIGILL at the SYSENTER itself; no system call runs either way.
 */
Test(seccomp, sysenter_from_compat_mode_is_trapped, .timeout = 10)
{
    struct escape e = { escape_sysenter, escape_sysenter_end, true };
    struct report r = escape_run(&e);
    if (cpu_is_amd()) {
        uintptr_t insn = (uintptr_t)(escape_sysenter_insn - escape_sysenter);
        cr_assert_eq(r.sig, SIGILL, "SYSENTER on AMD: expected SIGILL, got signal %d", r.sig);
        cr_assert_eq(r.addr, insn, "SIGILL at page+%#lx, not at the SYSENTER (page+%#lx)",
                     (unsigned long)r.addr, (unsigned long)insn);
        return;
    }
    assert_trapped(&r, AUDIT_ARCH_I386, NR_GETPID_I386, "SYSENTER from compatibility mode");
}
