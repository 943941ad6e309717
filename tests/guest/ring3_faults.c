/*
 * What ring 3 may not do, and what it may (SDM vol. 3A 2.8 and 5.9; vol. 1
 * 3.4.3.3, 19.5; vol. 2 per instruction).  Every instruction runs at CPL 3
 * through user_run(), a fault resuming after it.
 *   - Privileged instructions raise #GP(0): HLT, MOV to/from CR0/CR3/DR7,
 *     LGDT, LIDT, LLDT, LTR, LMSW, CLTS, INVLPG, INVD, WBINVD, RDMSR, WRMSR,
 *     RDPMC (CR4.PCE=0), RDTSC only with CR4.TSD=1.  SGDT, SIDT, SLDT, STR and
 *     SMSW are allowed (no UMIP) and return what ring 0 sees.
 *   - CLI and STI fault with CPL > IOPL (CR4.PVI=0) and work with IOPL 3.
 *     POPF never faults: with CPL > IOPL it leaves IF alone, at CPL > 0 it
 *     leaves IOPL alone, other flags (CF, AC) change; PUSHF shows the real IF.
 *   - IN/OUT/INS/OUTS with CPL > IOPL consult the TSS I/O bitmap: a port whose
 *     bit is 0 is allowed, and every byte of a wider access must be allowed
 *     (the bitmap ends with an all-ones byte, so 0x400 is denied); with IOPL 3
 *     the bitmap is not consulted.
 *   - #PF from ring 3 sets U/S in the error code: a supervisor page (0005,
 *     0007), a write to a read-only user page (0007).
 */
#include "lib/guest.h"

#define PD       ((volatile uint32_t *)(SCRATCH_ADDR + 0x0000))
#define PT_LOW   ((volatile uint32_t *)(SCRATCH_ADDR + 0x1000))
#define PT_TEST  ((volatile uint32_t *)(SCRATCH_ADDR + 0x2000))
#define FRAME(n) (SCRATCH_ADDR + 0x10000 + (n) * 0x1000)
#define VA_SUP   0x00400000   /* supervisor page */
#define VA_RO    0x00401000   /* read-only user page */
#define UART_SCR 0x3FF

#define PG_URW (PTE_P | PTE_RW | PTE_US)
#define IOPL3  EFLAGS_IOPL

/* Operands the ring-3 code uses; global so inline asm can name them. */
struct dtr u_dtr;
uint32_t u_val, u_flags[4];

/* A ring-3 function NAME running SETUP, then INSN between the labels NAME_at
 * and NAME_resume, then AFTER (skipped when INSN faults), for one
 * trap_expect()/trap_print() round. */
#define USER_INSN(name, setup, insn, after)                                     \
    static TEST_FN uint32_t name(uint32_t arg)                                  \
    {                                                                           \
        __asm__ volatile(setup "\n" #name "_at: " insn "\n\t" after "\n" #name "_resume:" \
                         : : : "eax", "ecx", "edx", "edi", "esi", "memory", "cc"); \
        return arg;                                                             \
    }

#define USER_TEST(name, text, eflags)                                           \
    do {                                                                        \
        extern char name##_at[], name##_resume[];                               \
        trap_expect(name##_resume);                                             \
        user_run(name, 0, (eflags), SEL_USER_DATA32);                           \
        trap_print(text, name##_at);                                            \
    } while (0)

USER_INSN(u_hlt, "", "hlt", "")
USER_INSN(u_cli, "", "cli", "")
USER_INSN(u_sti, "", "sti", "")
USER_INSN(u_from_cr0, "", "movl %%cr0, %%eax", "")
USER_INSN(u_to_cr3, "xorl %%eax, %%eax", "movl %%eax, %%cr3", "")
USER_INSN(u_from_dr7, "", "movl %%dr7, %%eax", "")
USER_INSN(u_lgdt, "", "lgdt u_dtr", "")
USER_INSN(u_lidt, "", "lidt u_dtr", "")
USER_INSN(u_lldt, "xorl %%eax, %%eax", "lldt %%ax", "")
USER_INSN(u_ltr, "movl $0x80, %%eax", "ltr %%ax", "")
USER_INSN(u_lmsw, "movl $0x11, %%eax", "lmsw %%ax", "")
USER_INSN(u_clts, "", "clts", "")
USER_INSN(u_invlpg, "", "invlpg u_val", "")
USER_INSN(u_invd, "", "invd", "")
USER_INSN(u_wbinvd, "", "wbinvd", "")
USER_INSN(u_rdmsr, "movl $0x174, %%ecx", "rdmsr", "")
USER_INSN(u_wrmsr, "movl $0x174, %%ecx\n\txorl %%eax, %%eax\n\txorl %%edx, %%edx", "wrmsr", "")
USER_INSN(u_rdpmc, "xorl %%ecx, %%ecx", "rdpmc", "")
USER_INSN(u_rdtsc, "", "rdtsc", "")
USER_INSN(u_sgdt, "", "sgdt u_dtr", "")
USER_INSN(u_sidt, "", "sidt u_dtr", "")
USER_INSN(u_str, "", "str %%eax", "movl %%eax, u_val")
USER_INSN(u_sldt, "", "sldt %%eax", "movl %%eax, u_val")
USER_INSN(u_smsw, "", "smsw %%eax", "movl %%eax, u_val")
USER_INSN(u_in_allowed, "movw $0x3ff, %%dx", "inb %%dx, %%al", "movl %%eax, u_val")
USER_INSN(u_out_allowed, "movw $0x3ff, %%dx\n\tmovb $0x5c, %%al", "outb %%al, %%dx", "")
USER_INSN(u_in_80, "", "inb $0x80, %%al", "")
USER_INSN(u_out_80, "", "outb %%al, $0x80", "")
USER_INSN(u_in_3fe, "movw $0x3fe, %%dx", "inb %%dx, %%al", "")
USER_INSN(u_inw_3fe, "movw $0x3fe, %%dx", "inw %%dx, %%ax", "")
USER_INSN(u_inw_3ff, "movw $0x3ff, %%dx", "inw %%dx, %%ax", "")
USER_INSN(u_outsb_allowed, "movw $0x3ff, %%dx\n\tmovl $u_val, %%esi", "outsb", "")
USER_INSN(u_insb_80, "movw $0x80, %%dx\n\tmovl $u_val, %%edi", "insb", "")
USER_INSN(u_read_sup, "", "movl 0x00400010, %%eax", "")
USER_INSN(u_write_sup, "", "movl %%eax, 0x00400014", "")
USER_INSN(u_read_ro, "", "movl 0x00401018, %%eax", "movl %%eax, u_val")
USER_INSN(u_write_ro, "", "movl %%eax, 0x0040101c", "")

/* POPF at CPL 3: u_flags[0] = EFLAGS before, [1] after POPF of `arg`. */
static TEST_FN uint32_t user_popf(uint32_t arg)
{
    __asm__ volatile("pushfl\n\tpopl u_flags\n\t"
                     "pushl %0\n\tpopfl\n\t"
                     "pushfl\n\tpopl u_flags+4"
                     : : "r"(arg) : "memory", "cc");
    return 0;
}

/* CLI then STI: u_flags[0] after CLI, [1] after STI. */
static TEST_FN uint32_t user_cli_sti(uint32_t arg)
{
    __asm__ volatile("cli\n\tpushfl\n\tpopl u_flags\n\t"
                     "sti\n\tpushfl\n\tpopl u_flags+4\n\tcli"
                     : : : "memory");
    return arg;
}

#define FLAG(v, f) (((v) & (f)) ? 1u : 0u)

static void print_flags(const char *name, uint32_t v)
{
    printf("%s: if=%u iopl=%u cf=%u ac=%u\n", name, FLAG(v, EFLAGS_IF), (v >> 12) & 3,
           FLAG(v, EFLAGS_CF), FLAG(v, EFLAGS_AC));
}

static void privileged(void)
{
    USER_TEST(u_hlt, "hlt", EFLAGS_FIXED);
    USER_TEST(u_from_cr0, "mov from cr0", EFLAGS_FIXED);
    USER_TEST(u_to_cr3, "mov to cr3", EFLAGS_FIXED);
    USER_TEST(u_from_dr7, "mov from dr7", EFLAGS_FIXED);
    USER_TEST(u_lgdt, "lgdt", EFLAGS_FIXED);
    USER_TEST(u_lidt, "lidt", EFLAGS_FIXED);
    USER_TEST(u_lldt, "lldt", EFLAGS_FIXED);
    USER_TEST(u_ltr, "ltr", EFLAGS_FIXED);
    USER_TEST(u_lmsw, "lmsw", EFLAGS_FIXED);
    USER_TEST(u_clts, "clts", EFLAGS_FIXED);
    USER_TEST(u_invlpg, "invlpg", EFLAGS_FIXED);
    USER_TEST(u_invd, "invd", EFLAGS_FIXED);
    USER_TEST(u_wbinvd, "wbinvd", EFLAGS_FIXED);
    USER_TEST(u_rdmsr, "rdmsr", EFLAGS_FIXED);
    USER_TEST(u_wrmsr, "wrmsr", EFLAGS_FIXED);
    USER_TEST(u_rdpmc, "rdpmc, cr4.pce=0", EFLAGS_FIXED);
    USER_TEST(u_rdtsc, "rdtsc, cr4.tsd=0", EFLAGS_FIXED);
    cr4_write(cr4_read() | CR4_TSD);
    USER_TEST(u_rdtsc, "rdtsc, cr4.tsd=1", EFLAGS_FIXED);
    cr4_write(cr4_read() & ~CR4_TSD);
}

static void store_state(void)
{
    struct dtr k;
    uint32_t msw;

    USER_TEST(u_sgdt, "sgdt", EFLAGS_FIXED);
    __asm__ volatile("sgdt %0" : "=m"(k));
    printf("sgdt: base=%08x limit=%04x, as at cpl 0: %u\n", u_dtr.base, u_dtr.limit,
           u_dtr.base == k.base && u_dtr.limit == k.limit);
    USER_TEST(u_sidt, "sidt", EFLAGS_FIXED);
    __asm__ volatile("sidt %0" : "=m"(k));
    printf("sidt: base=%08x limit=%04x, as at cpl 0: %u\n", u_dtr.base, u_dtr.limit,
           u_dtr.base == k.base && u_dtr.limit == k.limit);
    USER_TEST(u_str, "str", EFLAGS_FIXED);
    printf("str: %04x\n", u_val & 0xFFFF);
    USER_TEST(u_sldt, "sldt", EFLAGS_FIXED);
    printf("sldt: %04x\n", u_val & 0xFFFF);
    USER_TEST(u_smsw, "smsw", EFLAGS_FIXED);
    __asm__ volatile("smsw %0" : "=r"(msw));
    printf("smsw: as at cpl 0: %u\n", (u_val & 0xFFFF) == (msw & 0xFFFF));
}

static void flags(void)
{
    USER_TEST(u_cli, "cli, iopl 0", EFLAGS_FIXED | EFLAGS_IF);
    USER_TEST(u_sti, "sti, iopl 0", EFLAGS_FIXED);

    user_run(user_popf, EFLAGS_FIXED | IOPL3 | EFLAGS_AC | EFLAGS_CF, EFLAGS_FIXED | EFLAGS_IF,
             SEL_USER_DATA32);
    print_flags("iopl 0, if=1, pushf", u_flags[0]);
    print_flags("  popf if=0 iopl=3 ac=1 cf=1, pushf", u_flags[1]);
    user_run(user_popf, EFLAGS_FIXED | EFLAGS_IF, EFLAGS_FIXED, SEL_USER_DATA32);
    print_flags("iopl 0, if=0, pushf", u_flags[0]);
    print_flags("  popf if=1, pushf", u_flags[1]);

    trap_expect(NULL);
    user_run(user_cli_sti, 0, EFLAGS_FIXED | IOPL3 | EFLAGS_IF, SEL_USER_DATA32);
    trap_print("iopl 3: cli, sti", 0);
    print_flags("  after cli, pushf", u_flags[0]);
    print_flags("  after sti, pushf", u_flags[1]);
    user_run(user_popf, EFLAGS_FIXED, EFLAGS_FIXED | IOPL3 | EFLAGS_IF, SEL_USER_DATA32);
    print_flags("iopl 3, if=1: popf if=0 iopl=0, pushf", u_flags[1]);
}

static void io(void)
{
    tss_io_permit(UART_SCR, 1);
    outb(UART_SCR, 0x11);
    USER_TEST(u_in_allowed, "iopl 0, bitmap allows 3ff: inb 3ff", EFLAGS_FIXED);
    printf("  read %02x\n", u_val & 0xFF);
    USER_TEST(u_out_allowed, "iopl 0, bitmap allows 3ff: outb 3ff", EFLAGS_FIXED);
    printf("  scratch register now %02x\n", inb(UART_SCR));
    u_val = 0x77;
    USER_TEST(u_outsb_allowed, "iopl 0, bitmap allows 3ff: outsb 3ff", EFLAGS_FIXED);
    printf("  scratch register now %02x\n", inb(UART_SCR));
    USER_TEST(u_in_80, "iopl 0, bitmap denies 80: inb 80", EFLAGS_FIXED);
    USER_TEST(u_out_80, "iopl 0, bitmap denies 80: outb 80", EFLAGS_FIXED);
    USER_TEST(u_insb_80, "iopl 0, bitmap denies 80: insb 80", EFLAGS_FIXED);
    USER_TEST(u_in_3fe, "iopl 0, bitmap denies 3fe: inb 3fe", EFLAGS_FIXED);
    USER_TEST(u_inw_3fe, "iopl 0, 3fe denied, 3ff allowed: inw 3fe", EFLAGS_FIXED);
    USER_TEST(u_inw_3ff, "iopl 0, 3ff allowed, 400 past the bitmap: inw 3ff", EFLAGS_FIXED);
    USER_TEST(u_in_80, "iopl 3: inb 80", EFLAGS_FIXED | IOPL3);
    outb(UART_SCR, 0x22);
    USER_TEST(u_in_allowed, "iopl 3: inb 3ff", EFLAGS_FIXED | IOPL3);
    printf("  read %02x\n", u_val & 0xFF);
}

static void page_faults(void)
{
    paging_map_low(PD, PT_LOW, PG_URW);
    memset((void *)PT_TEST, 0, 4096);
    PD[1] = (uint32_t)PT_TEST | PG_URW;
    PT_TEST[0] = FRAME(0) | PTE_P | PTE_RW;
    PT_TEST[1] = FRAME(1) | PTE_P | PTE_US;
    *(volatile uint32_t *)(FRAME(1) + 0x18) = 0x0BADF00D;
    cr3_write((uint32_t)PD);
    cr0_write(cr0_read() | CR0_PG);

    USER_TEST(u_read_sup, "read of a supervisor page", EFLAGS_FIXED);
    USER_TEST(u_write_sup, "write to a supervisor page", EFLAGS_FIXED);
    USER_TEST(u_read_ro, "read of a read-only user page", EFLAGS_FIXED);
    printf("  read %08x\n", u_val);
    USER_TEST(u_write_ro, "write to a read-only user page", EFLAGS_FIXED);
}

void kmain(void)
{
    /* POPF sets EFLAGS.AC at CPL 3 below: keep alignment checking off. */
    cr0_write(cr0_read() & ~CR0_AM);
    user_init();
    privileged();
    store_state();
    flags();
    io();
    page_faults();
}
