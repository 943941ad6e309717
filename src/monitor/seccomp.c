/*
 * Containment: a seccomp filter that traps (SIGSYS) any system call made from
 * compatibility mode (the i386 syscall ABI: INT 0x80, SYSENTER or SYSCALL
 * from 32-bit code) or from an instruction pointer inside the guest's 4 GiB.
 * Guest code never issues either: INT n, SYSENTER and SYSCALL are callouts.
 * The filter is the belt to that pair of braces.  libseccomp cannot match on
 * the instruction pointer, hence raw BPF.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>

#include "popek/vm.h"

int seccomp_install(void)
{
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        /* instruction_pointer is 64 bits: the high word is zero inside the guest's 4 GiB. */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fprog = { .len = sizeof(prog) / sizeof(prog[0]), .filter = prog };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) < 0)
        return -errno;
    return 0;
}
