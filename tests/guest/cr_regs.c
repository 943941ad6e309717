/*
 * MOV to/from CR0, CR2, CR3, CR4, CLTS, LMSW, SMSW and the x87 #NM rules, at
 * CPL 0 with paging off.  Only bits this kernel sets are printed (CD, NW and
 * ET are left as the loader set them).
 *   CR0: MP, EM, TS, NE, WP, AM, CD read back as written (the invalid
 *        combinations that raise #GP(0) are in cr0_invalid.c).
 *   LMSW loads only PE/MP/EM/TS and cannot clear PE; CLTS clears TS.
 *   SMSW r32: low 16 bits are CR0[15:0] (the high half is undefined).
 *   CR2 and CR3 hold any value with paging off.
 *   CR4: each bit Linux uses round-trips when CPUID reports its feature, and
 *        is #GP(0) when it does not (the line printed is the same either
 *        way, so it does not depend on the CPU model).  Reserved bits and
 *        VMXE are in cr4_invalid.c.
 *   CR1, CR5-CR7 do not exist: #UD.
 *   #NM: x87 instruction with CR0.EM=1 or CR0.TS=1; WAIT with TS=1 and MP=1.
 */
#include "lib/guest.h"

static uint32_t read_cr0(void) { uint32_t v; __asm__ volatile("movl %%cr0, %0" : "=r"(v)); return v; }
static void write_cr0(uint32_t v) { __asm__ volatile("movl %0, %%cr0" : : "r"(v) : "memory"); }
static uint32_t read_cr4(void) { uint32_t v; __asm__ volatile("movl %%cr4, %0" : "=r"(v)); return v; }

static TEST_FN int try_write_cr4(uint32_t v)
{
    extern char wcr4_at[], wcr4_resume[];
    trap_expect(wcr4_resume);
    __asm__ volatile("wcr4_at: movl %0, %%cr4\nwcr4_resume:" : : "r"(v) : "memory");
    int faulted = trap_last.count && trap_last.vector == VEC_GP && trap_last.error == 0 &&
                  trap_last.eip == (uint32_t)wcr4_at;
    trap_disarm();
    return faulted ? 1 : trap_last.count ? -1 : 0;
}

static void cr0_bit(const char *name, uint32_t bit)
{
    uint32_t orig = read_cr0();
    write_cr0(orig | bit);
    uint32_t set = read_cr0() & bit;
    write_cr0(orig & ~bit);
    uint32_t clr = read_cr0() & bit;
    write_cr0(orig);
    printf("cr0.%s: set=%u clear=%u\n", name, set ? 1 : 0, clr ? 1 : 0);
}

static void cr4_bit(const char *name, uint32_t bit, int supported)
{
    uint32_t orig = read_cr4();
    int r = try_write_cr4(orig | bit);
    int ok;
    if (supported)
        ok = r == 0 && (read_cr4() & bit);
    else
        ok = r == 1 && read_cr4() == orig;
    try_write_cr4(orig);
    printf("cr4.%s: %s\n", name, ok ? "round trip ok (or #GP(0) when cpuid says absent)" : "WRONG");
}

static TEST_FN void nm_case(const char *name, uint32_t cr0_bits, int use_wait)
{
    extern char nm1_at[], nm1_resume[], nm2_at[], nm2_resume[];
    uint32_t orig = read_cr0();
    write_cr0((orig & ~(CR0_MP | CR0_EM | CR0_TS)) | cr0_bits);
    if (use_wait) {
        trap_expect(nm1_resume);
        __asm__ volatile("nm1_at: fwait\nnm1_resume:" : : : "memory");
        write_cr0(orig);
        trap_print(name, nm1_at);
    } else {
        trap_expect(nm2_resume);
        __asm__ volatile("nm2_at: fnop\nnm2_resume:" : : : "memory");
        write_cr0(orig);
        trap_print(name, nm2_at);
    }
}

#define UD_CR(fn, bytes)                                                      \
    static TEST_FN void fn(const char *name)                                  \
    {                                                                         \
        extern char fn##_at[], fn##_resume[];                                 \
        trap_expect(fn##_resume);                                             \
        __asm__ volatile(#fn "_at: .byte " bytes "\n" #fn "_resume:"          \
                         : : : "eax", "memory");                              \
        trap_print(name, fn##_at);                                            \
    }
UD_CR(rd_cr1, "0x0f, 0x20, 0xc8")
UD_CR(wr_cr1, "0x0f, 0x22, 0xc8")
UD_CR(rd_cr5, "0x0f, 0x20, 0xe8")
UD_CR(rd_cr7, "0x0f, 0x20, 0xf8")

void kmain(void)
{
    uint32_t a, b, c, d, v;

    cpuid(1, 0, &a, &b, &c, &d);
    v = read_cr0();
    printf("cr0: pe=%u pg=%u\n", v & CR0_PE, (v & CR0_PG) ? 1 : 0);
    __asm__ volatile("fninit");
    cr0_bit("mp", CR0_MP);
    cr0_bit("em", CR0_EM);
    cr0_bit("ts", CR0_TS);
    cr0_bit("ne", CR0_NE);
    cr0_bit("wp", CR0_WP);
    cr0_bit("am", CR0_AM);
    cr0_bit("cd", CR0_CD);

    uint32_t orig = read_cr0();

    /* CLTS, LMSW, SMSW. */
    write_cr0(orig | CR0_TS);
    __asm__ volatile("clts");
    printf("clts: ts=%u\n", (read_cr0() & CR0_TS) ? 1 : 0);
    write_cr0(orig | CR0_NE);
    __asm__ volatile("lmsw %w0" : : "r"(CR0_MP | CR0_EM | CR0_TS));
    printf("lmsw 000e: cr0 & 2f = %02x\n", read_cr0() & 0x2F);
    v = 0xDEADBEEF;
    __asm__ volatile("smsw %0" : "+r"(v));
    printf("smsw r32: low16 & 2f = %04x\n", v & 0x2F);
    v = 0xFFFFFFFF;
    __asm__ volatile("smsw %0" : "+m"(v));
    printf("smsw m16: high16=%04x low16 & 2f = %04x\n", v >> 16, v & 0x2F);
    __asm__ volatile("lmsw %w0" : : "r"(0));
    printf("lmsw 0000: cr0 & 2f = %02x\n", read_cr0() & 0x2F);
    write_cr0(orig);

    nm_case("fnop, em=1", CR0_EM, 0);
    nm_case("fnop, ts=1", CR0_TS, 0);
    nm_case("fnop, mp=1 ts=1", CR0_MP | CR0_TS, 0);
    nm_case("fwait, ts=1 mp=0", CR0_TS, 1);
    nm_case("fwait, ts=1 mp=1", CR0_TS | CR0_MP, 1);
    nm_case("fwait, em=1 mp=0", CR0_EM, 1);
    nm_case("fnop, all clear", 0, 0);

    uint32_t vals[] = { 0x12345678, 0xFFFFFFFF, 0 };
    for (unsigned i = 0; i < 3; i++) {
        __asm__ volatile("movl %1, %%cr2\n\tmovl %%cr2, %0" : "=r"(v) : "r"(vals[i]));
        printf("cr2 <- %08x: %08x\n", vals[i], v);
    }
    uint32_t cr3s[] = { 0x00345000, 0x00345018, 0xFFFFF000, 0 };
    for (unsigned i = 0; i < 4; i++) {
        __asm__ volatile("movl %1, %%cr3\n\tmovl %%cr3, %0" : "=r"(v) : "r"(cr3s[i]));
        printf("cr3 <- %08x: %08x\n", cr3s[i], v);
    }

    uint32_t cr4_orig = read_cr4();
    cr4_bit("tsd", CR4_TSD, d & (1u << 4));
    cr4_bit("de", CR4_DE, d & (1u << 2));
    cr4_bit("pse", CR4_PSE, d & (1u << 3));
    cr4_bit("pae", CR4_PAE, d & (1u << 6));
    cr4_bit("mce", 1u << 6, d & (1u << 7));
    cr4_bit("pge", CR4_PGE, d & (1u << 13));
    cr4_bit("pce", 1u << 8, 1);
    cr4_bit("osfxsr", CR4_OSFXSR, d & (1u << 24));
    cr4_bit("osxmmexcpt", 1u << 10, d & (1u << 25));
    printf("cr4 restored: %u\n", read_cr4() == cr4_orig);

    rd_cr1("mov cr1 -> eax");
    wr_cr1("mov eax -> cr1");
    rd_cr5("mov cr5 -> eax");
    rd_cr7("mov cr7 -> eax");
}
