/*
 * Entering ring 3 and system calls back to ring 0 (SDM vol. 3A 5.8, 6.12;
 * vol. 2 IRET, INT n, SYSENTER, SYSEXIT).  user_run() (lib) builds a TSS with
 * SS0:ESP0 and IRETs to a DPL-3 code segment.  Checked:
 *   - at CPL 3 CS/SS/DS... hold the RPL-3 selectors IRET loaded; IRET to an
 *     outer level nulls DS/ES/FS/GS that hold DPL-0 data selectors (that an
 *     access through them then faults is in ring3_nullseg.c: QEMU misses it);
 *   - INT 0x80 through a DPL-3 trap gate: the handler runs at CPL 0 on
 *     SS0:ESP0 with a frame of EIP, CS, EFLAGS, ESP, SS (ESP0-20 up); it sees
 *     the caller's registers, a trap gate leaves IF as it was, an interrupt
 *     gate clears it, and IRET returns to ring 3 with the handler's EAX and the
 *     caller's ESP;
 *   - SYSENTER from ring 3 loads CS = IA32_SYSENTER_CS, SS = CS+8 and
 *     ESP/EIP from the MSRs and clears IF; SYSEXIT loads CS = CS+16|3,
 *     SS = CS+24|3, EIP = EDX, ESP = ECX; SYSENTER with IA32_SYSENTER_CS=0 and
 *     SYSEXIT at CPL 3 raise #GP(0);
 *   - INT n / INT3 / INTO from CPL 3 through a DPL-0 gate raise #GP with error
 *     code n*8+2 (IDT bit set, EXT clear) at the INT instruction.  (INT1 is
 *     exempt from that check; QEMU does not implement it, see debug_gd_int1.c.)
 */
#include "lib/guest.h"

#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define SYSENTER_STACK        (SCRATCH_ADDR + 0x2000)

/* Written from ring 3 and the handlers; global so inline asm can name them. */
uint32_t u_seg[6], u_esp0, u_esp1, u_eax, u_cs, u_ss;
uint32_t se_cs, se_ss, se_esp, se_eflags;

/* SYSENTER target: record the ring-0 state, return EAX+EBX+1 with SYSEXIT. */
__asm__(".text\n"
        "sysenter_entry:\n\t"
        "movl %cs, %esi\n\t"
        "movl %esi, se_cs\n\t"
        "movl %ss, %esi\n\t"
        "movl %esi, se_ss\n\t"
        "movl %esp, se_esp\n\t"
        "pushfl\n\t"
        "popl se_eflags\n\t"
        "leal 1(%eax,%ebx), %eax\n\t"
        "sysexit\n");
extern char sysenter_entry[];

static TEST_FN uint32_t user_segs(uint32_t arg)
{
    __asm__ volatile("movl %%cs, %%eax\n\tmovl %%eax, u_seg\n\t"
                     "movl %%ss, %%eax\n\tmovl %%eax, u_seg+4\n\t"
                     "movl %%ds, %%eax\n\tmovl %%eax, u_seg+8\n\t"
                     "movl %%es, %%eax\n\tmovl %%eax, u_seg+12\n\t"
                     "movl %%fs, %%eax\n\tmovl %%eax, u_seg+16\n\t"
                     "movl %%gs, %%eax\n\tmovl %%eax, u_seg+20"
                     : : : "eax", "memory");
    return arg;
}

/* With nulled data segments only SS works: results go in the return value. */
static TEST_FN uint32_t user_ds_es(uint32_t arg)
{
    uint32_t ds, es;
    (void)arg;
    __asm__ volatile("movl %%ds, %0\n\tmovl %%es, %1" : "=r"(ds), "=r"(es));
    return (ds & 0xFFFF) | (es << 16);
}

static TEST_FN uint32_t user_fs_gs(uint32_t arg)
{
    uint32_t fs, gs;
    (void)arg;
    __asm__ volatile("movl %%fs, %0\n\tmovl %%gs, %1" : "=r"(fs), "=r"(gs));
    return (fs & 0xFFFF) | (gs << 16);
}

/* ---- INT 0x80 ----------------------------------------------------------------- */

static struct {
    uint32_t eax, ebx, ecx, edx, esi, edi;
    uint32_t frame_cs, frame_ss, frame_esp, frame_eflags, frame_eip;
    uint32_t cs, ss, eflags, frame_addr;
} sc;

static void syscall_handler(struct trap_frame *f)
{
    uint32_t cs, ss;
    __asm__ volatile("movl %%cs, %0\n\tmovl %%ss, %1" : "=r"(cs), "=r"(ss));
    sc.cs = cs & 0xFFFF;
    sc.ss = ss & 0xFFFF;
    sc.eflags = read_eflags();
    sc.eax = f->eax;
    sc.ebx = f->ebx;
    sc.ecx = f->ecx;
    sc.edx = f->edx;
    sc.esi = f->esi;
    sc.edi = f->edi;
    sc.frame_eip = f->eip;
    sc.frame_cs = f->cs & 0xFFFF;
    sc.frame_eflags = f->eflags;
    sc.frame_esp = f->esp;
    sc.frame_ss = f->ss & 0xFFFF;
    sc.frame_addr = (uint32_t)&f->eip;
    f->eax = f->ebx + f->ecx;
}

static TEST_FN uint32_t user_int80(uint32_t arg)
{
    uint32_t a = arg;
    __asm__ volatile("movl %%esp, u_esp0\n\t"
                     "int80_at: int $0x80\n"
                     "int80_next:\n\t"
                     "movl %%esp, u_esp1\n\t"
                     "movl %%ds, %%ebx\n\t"
                     "movl %%ebx, u_seg+8"
                     : "+a"(a)
                     : "b"(0x11111111), "c"(0x22222222), "d"(0x33333333), "S"(0x44444444),
                       "D"(0x55555555)
                     : "memory");
    return a;
}

static void int80_test(const char *gate_name, uint32_t user_eflags)
{
    extern char int80_at[], int80_next[];
    struct tss32 *tss = (struct tss32 *)TSS_ADDR;

    memset(&sc, 0, sizeof sc);
    uint32_t r = user_run(user_int80, 4, user_eflags, SEL_USER_DATA32);
    printf("int 80 (%s, ring 3 if=%u): handler cs=%04x ss=%04x if=%u\n", gate_name,
           (user_eflags & EFLAGS_IF) ? 1 : 0, sc.cs, sc.ss, (sc.eflags & EFLAGS_IF) ? 1 : 0);
    printf("  frame: cs=%04x eip=insn+%d (length %d) ss=%04x esp=ring 3 esp:%u eflags.if=%u, "
           "eip at tss.esp0-20:%u\n", sc.frame_cs, (int)(sc.frame_eip - (uint32_t)int80_at),
           (int)(int80_next - int80_at), sc.frame_ss, sc.frame_esp == u_esp0,
           (sc.frame_eflags & EFLAGS_IF) ? 1 : 0, sc.frame_addr == tss->esp0 - 20);
    printf("  handler saw eax=%08x ebx=%08x ecx=%08x edx=%08x esi=%08x edi=%08x\n", sc.eax, sc.ebx,
           sc.ecx, sc.edx, sc.esi, sc.edi);
    printf("  back in ring 3: eax=%08x esp unchanged=%u ds=%04x\n", r, u_esp0 == u_esp1,
           u_seg[2] & 0xFFFF);
}

/* ---- SYSENTER / SYSEXIT ---------------------------------------------------------- */

static TEST_FN uint32_t user_sysenter(uint32_t arg)
{
    uint32_t a = 0x1000;
    __asm__ volatile("movl %%esp, u_esp0\n\t"
                     "movl %%esp, %%ecx\n\t"
                     "movl $sysexit_target, %%edx\n\t"
                     "sysenter_at: sysenter\n\t"
                     "ud2\n"
                     "sysexit_target:\n\t"
                     "movl %%esp, u_esp1\n\t"
                     "movl %%cs, %%ecx\n\t"
                     "movl %%ecx, u_cs\n\t"
                     "movl %%ss, %%ecx\n\t"
                     "movl %%ecx, u_ss\n"
                     "sysenter_resume:"
                     : "+a"(a) : "b"(arg) : "ecx", "edx", "esi", "memory", "cc");
    return a;
}

static TEST_FN uint32_t user_sysexit(uint32_t arg)
{
    __asm__ volatile("sysexit_at: sysexit\nsysexit_resume:" : : : "ecx", "edx", "memory");
    return arg;
}

static void sysenter_tests(void)
{
    extern char sysenter_at[], sysenter_resume[], sysexit_at[], sysexit_resume[];
    uint32_t eax, ebx, ecx, edx;

    cpuid(1, 0, &eax, &ebx, &ecx, &edx);
    printf("cpuid 1: edx.sep=%u\n", (edx >> 11) & 1);

    msr_write(MSR_IA32_SYSENTER_CS, 0);
    trap_expect(sysenter_resume);
    user_call(user_sysenter, 0);
    trap_print("sysenter from ring 3, sysenter_cs=0", sysenter_at);

    msr_write(MSR_IA32_SYSENTER_CS, SEL_SYS_CODE32);
    msr_write(MSR_IA32_SYSENTER_ESP, SYSENTER_STACK);
    msr_write(MSR_IA32_SYSENTER_EIP, (uint32_t)sysenter_entry);
    printf("sysenter msrs: cs=%08x esp=%08x eip=entry:%u\n",
           (uint32_t)msr_read(MSR_IA32_SYSENTER_CS), (uint32_t)msr_read(MSR_IA32_SYSENTER_ESP),
           (uint32_t)msr_read(MSR_IA32_SYSENTER_EIP) == (uint32_t)sysenter_entry);
    uint32_t r = user_run(user_sysenter, 0x234, EFLAGS_FIXED | EFLAGS_IF, SEL_USER_DATA32);
    printf("sysenter from ring 3 (if=1): handler cs=%04x ss=%04x esp=%08x if=%u\n", se_cs & 0xFFFF,
           se_ss & 0xFFFF, se_esp, (se_eflags & EFLAGS_IF) ? 1 : 0);
    printf("sysexit: cs=%04x ss=%04x esp=ecx:%u eax=%08x\n", u_cs & 0xFFFF, u_ss & 0xFFFF,
           u_esp0 == u_esp1, r);

    trap_expect(sysexit_resume);
    user_call(user_sysexit, 0);
    trap_print("sysexit at ring 3", sysexit_at);
}

/* ---- INT n through DPL-0 gates ----------------------------------------------------- */

static TEST_FN uint32_t user_soft_ints(uint32_t arg)
{
    __asm__ volatile("int40_at: int $0x40\nint40_resume:\n\t"
                     "int3_at: int3\nint3_resume:\n\t"
                     "pushl $0x802\n\tpopfl\n"
                     "into_at: into\ninto_resume:\n\t"
                     "pushl $0x002\n\tpopfl"
                     : : : "memory", "cc");
    return arg;
}

/* One ring-3 run raises all three; each trap is recorded and resumes at the
 * next step. */
#define SOFT_STEPS 3
static const char *soft_resume[SOFT_STEPS];
static unsigned soft_step;
static uint32_t soft_vec[SOFT_STEPS], soft_err[SOFT_STEPS], soft_eip[SOFT_STEPS], soft_cs[SOFT_STEPS];

static void soft_record(struct trap_frame *f)
{
    if (soft_step >= SOFT_STEPS) {
        printf("UNEXPECTED %s err=%04x eip=%08x\n", vector_name(f->vector), f->error, f->eip);
        exit_qemu(0x7F);
    }
    soft_vec[soft_step] = f->vector;
    soft_err[soft_step] = vector_has_error_code(f->vector) ? f->error : 0;
    soft_eip[soft_step] = f->eip;
    soft_cs[soft_step] = f->cs & 0xFFFF;
    f->eip = (uint32_t)soft_resume[soft_step];
    soft_step++;
}

static void soft_int_tests(void)
{
    extern char int40_at[], int40_resume[], int3_at[], int3_resume[], into_at[], into_resume[];
    const char *name[SOFT_STEPS] = { "int 40", "int3", "into (of=1)" };
    const char *at[SOFT_STEPS] = { int40_at, int3_at, into_at };

    soft_resume[0] = int40_resume;
    soft_resume[1] = int3_resume;
    soft_resume[2] = into_resume;
    trap_set_handler(VEC_GP, soft_record);
    user_call(user_soft_ints, 0);
    trap_set_handler(VEC_GP, NULL);
    for (unsigned i = 0; i < soft_step; i++) {
        printf("%s from ring 3 through a dpl-0 gate: %s", name[i], vector_name(soft_vec[i]));
        if (vector_has_error_code(soft_vec[i]))
            printf(" err=%04x", soft_err[i]);
        printf(" cs=%04x eip=insn+%d\n", soft_cs[i], (int)(soft_eip[i] - (uint32_t)at[i]));
    }
}

void kmain(void)
{
    user_init();

    user_call(user_segs, 0);
    printf("iret to ring 3: cs=%04x ss=%04x ds=%04x es=%04x fs=%04x gs=%04x\n", u_seg[0] & 0xFFFF,
           u_seg[1] & 0xFFFF, u_seg[2] & 0xFFFF, u_seg[3] & 0xFFFF, u_seg[4] & 0xFFFF,
           u_seg[5] & 0xFFFF);
    uint32_t dses = user_run(user_ds_es, 0, EFLAGS_FIXED, SEL_DATA32);
    uint32_t fsgs = user_run(user_fs_gs, 0, EFLAGS_FIXED, SEL_DATA32);
    printf("iret to ring 3 with dpl-0 data selectors: ds=%04x es=%04x fs=%04x gs=%04x\n",
           dses & 0xFFFF, dses >> 16, fsgs & 0xFFFF, fsgs >> 16);

    trap_set_handler(0x80, syscall_handler);
    idt_set_gate(0x80, SEL_CODE32, isr_stub(0x80), DESC_P | DESC_DPL(3) | SYS_TRAP_GATE32);
    int80_test("trap gate", EFLAGS_FIXED | EFLAGS_IF);
    idt_set_gate(0x80, SEL_CODE32, isr_stub(0x80), DESC_P | DESC_DPL(3) | SYS_INT_GATE32);
    int80_test("interrupt gate", EFLAGS_FIXED | EFLAGS_IF);

    sysenter_tests();
    soft_int_tests();
}
