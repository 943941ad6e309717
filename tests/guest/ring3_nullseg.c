/*
 * Data segment registers nulled by IRET to ring 3 (SDM vol. 2, IRET
 * RETURN-TO-OUTER-PRIVILEGE-LEVEL: DS/ES/FS/GS holding a data segment whose
 * DPL is below the new CPL become null).  A memory access through a null DS,
 * ES, FS or GS raises #GP(0) (vol. 2, MOV/STOS "Protected Mode Exceptions");
 * SS still works and DS can be reloaded with the user selector.  Loading the
 * selectors themselves is checked in ring3_syscall.c.
 *
 * qemu-mismatch: QEMU's TCG does not check data-segment validity (nor
 * limits, see seg_limits.c) on memory accesses, so none of the accesses below
 * faults under QEMU 7.2.
 */
#include "lib/guest.h"

#define DATA (SCRATCH_ADDR + 0x100)

static TEST_FN uint32_t user_accesses(uint32_t addr)
{
    uint32_t v = 0;
    __asm__ volatile("ds_at: movl (%1), %0\nds_resume:\n\t"
                     "movl %1, %%edi\n"
                     "es_at: stosb\nes_resume:\n"
                     "fs_at: movl %%fs:(%1), %0\nfs_resume:\n"
                     "gs_at: movl %%gs:(%1), %0\ngs_resume:\n\t"
                     "movl %%ss:(%1), %0"
                     : "+a"(v) : "r"(addr) : "edi", "memory");
    return v;
}

static TEST_FN uint32_t user_reload_ds(uint32_t addr)
{
    uint32_t v;
    __asm__ volatile("movl %2, %%ecx\n\tmovl %%ecx, %%ds\n\tmovl (%1), %0"
                     : "=r"(v) : "r"(addr), "i"(SEL_USER_DATA32) : "ecx", "memory");
    return v;
}

/* One ring-3 run faults four times; each #GP resumes after its access. */
static const char *resume[4];
static uint32_t gp_err[4], gp_eip[4];
static unsigned step;

static void record_gp(struct trap_frame *f)
{
    if (step >= 4) {
        printf("UNEXPECTED #GP err=%04x eip=%08x\n", f->error, f->eip);
        exit_qemu(0x7F);
    }
    gp_err[step] = f->error;
    gp_eip[step] = f->eip;
    f->eip = (uint32_t)resume[step];
    step++;
}

void kmain(void)
{
    extern char ds_at[], ds_resume[], es_at[], es_resume[], fs_at[], fs_resume[];
    extern char gs_at[], gs_resume[];
    const char *name[4] = { "mov via ds", "stosb via es", "mov via fs", "mov via gs" };
    const char *at[4] = { ds_at, es_at, fs_at, gs_at };

    *(volatile uint32_t *)DATA = 0x5A5A0001;
    user_init();
    resume[0] = ds_resume;
    resume[1] = es_resume;
    resume[2] = fs_resume;
    resume[3] = gs_resume;
    trap_set_handler(VEC_GP, record_gp);
    uint32_t v = user_run(user_accesses, DATA, EFLAGS_FIXED, SEL_DATA32);
    trap_set_handler(VEC_GP, NULL);
    for (unsigned i = 0; i < 4; i++) {
        printf("ring 3, segments nulled by iret, %s: ", name[i]);
        if (i < step)
            printf("#GP err=%04x eip=insn+%d\n", gp_err[i], (int)(gp_eip[i] - (uint32_t)at[i]));
        else
            printf("no exception\n");
    }
    printf("ring 3, ss: read %08x\n", v);
    trap_expect(NULL);
    v = user_run(user_reload_ds, DATA, EFLAGS_FIXED, SEL_DATA32);
    trap_print("ring 3, ds reloaded with 007b, mov via ds", 0);
    printf("ring 3, ds reloaded: read %08x\n", v);
}
