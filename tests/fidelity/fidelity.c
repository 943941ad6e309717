/*
 * fidelity: a static i386 Linux program that runs instructions whose results
 * a binary translator can get wrong, and prints what they did.
 *
 * Run natively, under qemu-i386, and inside a guest under Popek, it must print
 * the same bytes: the output holds nothing host-dependent (no CPUID, no
 * addresses, no timing), and only what the Intel SDM defines.  Flags an
 * instruction leaves undefined are masked per case and shown as '.', results
 * it leaves undefined are not printed, and the x87 transcendentals, whose last
 * bits differ between implementations, are printed rounded to single
 * precision.  Where QEMU's user mode differs from the hardware on a defined
 * result, the case is left out and named in tests/fidelity/README.md.
 *
 * Output: one line per group of cases, "NAME  N cases  DIGEST", the digest an
 * FNV-1a hash of the group's case lines; with -v every case line is printed
 * too, which is what tells where two runs part.  Exit status 0 unless a case
 * could not run.
 *
 * The instruction-level work is inline assembly, never C the compiler could
 * fold or rewrite: inputs go in registers or memory, EFLAGS is loaded with a
 * chosen value (POPF) right before the instruction and read (PUSHF) right
 * after, and MXCSR / the x87 control word are set in the same asm statement
 * as the operation they govern.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* EFLAGS */
#define CF 0x0001u
#define PF 0x0004u
#define AF 0x0010u
#define ZF 0x0040u
#define SF 0x0080u
#define DF 0x0400u
#define OF 0x0800u
#define ARITH (CF | PF | AF | ZF | SF | OF)

/* ---- output ------------------------------------------------------------------- */

static bool verbose;
/* -q: leave out what QEMU's TCG (7.2) is known to get wrong, so that a run
 * under qemu-i386 can be compared with a native one (README.md lists them). */
static bool qemu_gaps;
static char group_name[64];
static uint64_t group_hash;
static unsigned group_cases;

static void group_begin(const char *name)
{
    snprintf(group_name, sizeof(group_name), "%s", name);
    group_hash = 0xcbf29ce484222325ull;
    group_cases = 0;
    if (verbose)
        printf("[%s]\n", name);
}

static void group_end(void)
{
    printf("%-20s %6u cases  %016llx\n", group_name, group_cases,
           (unsigned long long)group_hash);
}

static void __attribute__((format(printf, 1, 2))) out(const char *fmt, ...)
{
    char line[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    for (const char *p = line; *p; p++)
        group_hash = (group_hash ^ (uint8_t)*p) * 0x100000001b3ull;
    group_hash = (group_hash ^ '\n') * 0x100000001b3ull;
    group_cases++;
    if (verbose)
        printf("  %s\n", line);
}

/* "OSZAPC" with '-' for a clear flag and '.' for one the SDM leaves undefined. */
static const char *fl(uint32_t f, uint32_t defined)
{
    static char s[4][8];
    static unsigned k;
    static const struct { uint32_t bit; char c; } bits[] = {
        {OF, 'O'}, {SF, 'S'}, {ZF, 'Z'}, {AF, 'A'}, {PF, 'P'}, {CF, 'C'},
    };
    char *p = s[k++ % 4];

    for (unsigned i = 0; i < N(bits); i++)
        p[i] = !(defined & bits[i].bit) ? '.' : (f & bits[i].bit) ? bits[i].c : '-';
    p[N(bits)] = '\0';
    return p;
}

/* The EFLAGS values every flag-reading case starts from. */
static const uint32_t flags_in[] = {0, ARITH};

static const uint32_t vals[] = {
    0, 1, 2, 0x0f, 0x10, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff,
    0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x12345678, 0xdeadbeef,
};

static uint32_t trunc_to(uint32_t v, unsigned width)
{
    return width == 32 ? v : v & ((1u << width) - 1);
}

/* ---- integer ALU ------------------------------------------------------------ */

typedef uint32_t (*alu2_fn)(uint32_t a, uint32_t b, uint32_t *flags);

#define ALU2(name, insn, T, m)                                                           \
    static uint32_t name(uint32_t a, uint32_t b, uint32_t *flags)                        \
    {                                                                                    \
        T x = (T)a, y = (T)b;                                                            \
        uint32_t f = *flags;                                                             \
        __asm__("push %[f]\n\tpopf\n\t" insn " %" m "[y], %" m "[x]\n\tpushf\n\tpop %[f]" \
                : [x] "+q"(x), [f] "+r"(f)                                               \
                : [y] "q"(y)                                                             \
                : "cc");                                                                 \
        *flags = f;                                                                      \
        return x;                                                                        \
    }
#define ALU2_ALL(op)                        \
    ALU2(op##8, #op "b", uint8_t, "b")      \
    ALU2(op##16, #op "w", uint16_t, "w")    \
    ALU2(op##32, #op "l", uint32_t, "k")
ALU2_ALL(add)
ALU2_ALL(adc)
ALU2_ALL(sub)
ALU2_ALL(sbb)
ALU2_ALL(and)
ALU2_ALL(or)
ALU2_ALL(xor)
ALU2_ALL(cmp)
ALU2_ALL(test)
ALU2(imul16, "imulw", uint16_t, "w")
ALU2(imul32, "imull", uint32_t, "k")

static const struct {
    const char *name;
    alu2_fn fn[3]; /* 8, 16, 32 bits; NULL where the form does not exist */
    uint32_t defined;
} alu2_ops[] = {
    {"add", {add8, add16, add32}, ARITH},
    {"adc", {adc8, adc16, adc32}, ARITH},
    {"sub", {sub8, sub16, sub32}, ARITH},
    {"sbb", {sbb8, sbb16, sbb32}, ARITH},
    {"cmp", {cmp8, cmp16, cmp32}, ARITH},
    {"and", {and8, and16, and32}, ARITH & ~AF},
    {"or", {or8, or16, or32}, ARITH & ~AF},
    {"xor", {xor8, xor16, xor32}, ARITH & ~AF},
    {"test", {test8, test16, test32}, ARITH & ~AF},
    {"imul2", {NULL, imul16, imul32}, CF | OF},
};

static void test_alu2(void)
{
    static const unsigned widths[] = {8, 16, 32};
    char name[32];

    for (unsigned o = 0; o < N(alu2_ops); o++) {
        for (unsigned w = 0; w < 3; w++) {
            if (!alu2_ops[o].fn[w])
                continue;
            snprintf(name, sizeof(name), "%s%u", alu2_ops[o].name, widths[w]);
            group_begin(name);
            for (unsigned i = 0; i < N(vals); i++)
                for (unsigned j = 0; j < N(vals); j++)
                    for (unsigned k = 0; k < N(flags_in); k++) {
                        uint32_t a = trunc_to(vals[i], widths[w]);
                        uint32_t b = trunc_to(vals[j], widths[w]);
                        uint32_t f = flags_in[k];
                        uint32_t r = alu2_ops[o].fn[w](a, b, &f);
                        out("%08x %08x %s -> %08x %s", a, b, fl(flags_in[k], ARITH), r,
                            fl(f, alu2_ops[o].defined));
                    }
            group_end();
        }
    }
}

#define ALU1(name, insn, T, m)                                                         \
    static uint32_t name(uint32_t a, uint32_t *flags)                                  \
    {                                                                                  \
        T x = (T)a;                                                                    \
        uint32_t f = *flags;                                                           \
        __asm__("push %[f]\n\tpopf\n\t" insn " %" m "[x]\n\tpushf\n\tpop %[f]"          \
                : [x] "+q"(x), [f] "+r"(f)                                             \
                :                                                                      \
                : "cc");                                                               \
        *flags = f;                                                                    \
        return x;                                                                      \
    }
#define ALU1_ALL(op)                     \
    ALU1(op##8, #op "b", uint8_t, "b")   \
    ALU1(op##16, #op "w", uint16_t, "w") \
    ALU1(op##32, #op "l", uint32_t, "k")
ALU1_ALL(inc)
ALU1_ALL(dec)
ALU1_ALL(neg)
ALU1_ALL(not)

static void test_alu1(void)
{
    static const struct {
        const char *name;
        uint32_t (*fn[3])(uint32_t, uint32_t *);
    } ops[] = {
        {"inc", {inc8, inc16, inc32}},
        {"dec", {dec8, dec16, dec32}},
        {"neg", {neg8, neg16, neg32}},
        {"not", {not8, not16, not32}},
    };
    static const unsigned widths[] = {8, 16, 32};
    char name[32];

    for (unsigned o = 0; o < N(ops); o++)
        for (unsigned w = 0; w < 3; w++) {
            snprintf(name, sizeof(name), "%s%u", ops[o].name, widths[w]);
            group_begin(name);
            for (unsigned i = 0; i < N(vals); i++)
                for (unsigned k = 0; k < N(flags_in); k++) {
                    uint32_t a = trunc_to(vals[i], widths[w]), f = flags_in[k];
                    uint32_t r = ops[o].fn[w](a, &f);
                    /* all defined: inc/dec keep CF, not keeps everything */
                    out("%08x %s -> %08x %s", a, fl(flags_in[k], ARITH), r, fl(f, ARITH));
                }
            group_end();
        }
}

/* ---- shifts and rotates ------------------------------------------------------ */

#define SHIFT(name, insn, T, m)                                                        \
    static uint32_t name(uint32_t a, uint32_t count, uint32_t *flags)                  \
    {                                                                                  \
        T x = (T)a;                                                                    \
        uint8_t c = (uint8_t)count;                                                    \
        uint32_t f = *flags;                                                           \
        __asm__("push %[f]\n\tpopf\n\t" insn " %%cl, %" m "[x]\n\tpushf\n\tpop %[f]"    \
                : [x] "+q"(x), [f] "+r"(f)                                             \
                : "c"(c)                                                               \
                : "cc");                                                               \
        *flags = f;                                                                    \
        return x;                                                                      \
    }
#define SHIFT_ALL(op)                     \
    SHIFT(op##8, #op "b", uint8_t, "b")   \
    SHIFT(op##16, #op "w", uint16_t, "w") \
    SHIFT(op##32, #op "l", uint32_t, "k")
SHIFT_ALL(shl)
SHIFT_ALL(shr)
SHIFT_ALL(sar)
SHIFT_ALL(rol)
SHIFT_ALL(ror)
SHIFT_ALL(rcl)
SHIFT_ALL(rcr)

enum shift_kind { SHIFT_PLAIN, SHIFT_ROTATE };

/* Which flags the SDM defines after a shift or rotate by `count` (CL). */
static uint32_t shift_defined(enum shift_kind kind, unsigned width, uint32_t count)
{
    unsigned mc = count & 31;

    if (mc == 0)
        return ARITH; /* flags unaffected */
    if (kind == SHIFT_ROTATE) /* SF ZF AF PF unaffected; OF only for 1 */
        return (ARITH & ~OF) | (mc == 1 ? OF : 0);
    /* CF is undefined for counts >= the operand size, OF unless the count is
     * 1, AF always. */
    return SF | ZF | PF | (mc < width ? CF : 0) | (mc == 1 ? OF : 0);
}

static void test_shifts(void)
{
    static const struct {
        const char *name;
        enum shift_kind kind;
        alu2_fn fn[3];
    } ops[] = {
        {"shl", SHIFT_PLAIN, {shl8, shl16, shl32}},
        {"shr", SHIFT_PLAIN, {shr8, shr16, shr32}},
        {"sar", SHIFT_PLAIN, {sar8, sar16, sar32}},
        {"rol", SHIFT_ROTATE, {rol8, rol16, rol32}},
        {"ror", SHIFT_ROTATE, {ror8, ror16, ror32}},
        {"rcl", SHIFT_ROTATE, {rcl8, rcl16, rcl32}},
        {"rcr", SHIFT_ROTATE, {rcr8, rcr16, rcr32}},
    };
    static const uint32_t counts[] = {0, 1, 2, 4, 7, 8, 9, 15, 16, 17, 18, 31, 32, 33, 255};
    static const uint32_t svals[] = {0, 1, 0x80, 0x81, 0x8000, 0x8001, 0x80000000,
                                     0xc0000001, 0x12345678, 0xfedcba98, 0xffffffff};
    static const unsigned widths[] = {8, 16, 32};
    char name[32];

    for (unsigned o = 0; o < N(ops); o++)
        for (unsigned w = 0; w < 3; w++) {
            snprintf(name, sizeof(name), "%s%u", ops[o].name, widths[w]);
            group_begin(name);
            for (unsigned i = 0; i < N(svals); i++)
                for (unsigned c = 0; c < N(counts); c++)
                    for (unsigned k = 0; k < N(flags_in); k++) {
                        uint32_t a = trunc_to(svals[i], widths[w]), f = flags_in[k];
                        uint32_t r = ops[o].fn[w](a, counts[c], &f);
                        out("%08x cl=%-3u %s -> %08x %s", a, counts[c],
                            fl(flags_in[k], ARITH), r,
                            fl(f, shift_defined(ops[o].kind, widths[w], counts[c])));
                    }
            group_end();
        }
}

/* The D1 (by 1: the assembler picks it for $1) and C1 (by imm8) encodings are
 * separate paths in a decoder. */
#define SHIFT_IMM(name, insn)                                                          \
    static uint32_t name(uint32_t a, uint32_t *flags)                                  \
    {                                                                                  \
        uint32_t f = *flags;                                                           \
        __asm__("push %[f]\n\tpopf\n\t" insn ", %[x]\n\tpushf\n\tpop %[f]"              \
                : [x] "+r"(a), [f] "+r"(f)                                             \
                :                                                                      \
                : "cc");                                                               \
        *flags = f;                                                                    \
        return a;                                                                      \
    }
SHIFT_IMM(shl_d1, "shll $1")
SHIFT_IMM(shl_i0, "shll $0")
SHIFT_IMM(shl_i5, "shll $5")
SHIFT_IMM(shl_i33, "shll $33")
SHIFT_IMM(sar_d1, "sarl $1")
SHIFT_IMM(sar_i31, "sarl $31")
SHIFT_IMM(ror_d1, "rorl $1")
SHIFT_IMM(rcr_i3, "rcrl $3")

static void test_shift_imm(void)
{
    static const struct {
        const char *name;
        uint32_t (*fn)(uint32_t, uint32_t *);
        enum shift_kind kind;
        unsigned count;
    } ops[] = {
        {"shl 1 (d1)", shl_d1, SHIFT_PLAIN, 1}, {"shl $0", shl_i0, SHIFT_PLAIN, 0},
        {"shl $5", shl_i5, SHIFT_PLAIN, 5},     {"shl $33", shl_i33, SHIFT_PLAIN, 33},
        {"sar 1 (d1)", sar_d1, SHIFT_PLAIN, 1}, {"sar $31", sar_i31, SHIFT_PLAIN, 31},
        {"ror 1 (d1)", ror_d1, SHIFT_ROTATE, 1}, {"rcr $3", rcr_i3, SHIFT_ROTATE, 3},
    };

    group_begin("shift-imm32");
    for (unsigned o = 0; o < N(ops); o++)
        for (unsigned i = 0; i < N(vals); i++)
            for (unsigned k = 0; k < N(flags_in); k++) {
                uint32_t f = flags_in[k], r = ops[o].fn(vals[i], &f);
                out("%s %08x %s -> %08x %s", ops[o].name, vals[i], fl(flags_in[k], ARITH), r,
                    fl(f, shift_defined(ops[o].kind, 32, ops[o].count)));
            }
    group_end();
}

#define SHXD(name, insn, T, m)                                                         \
    static uint32_t name(uint32_t a, uint32_t b, uint32_t count, uint32_t *flags)      \
    {                                                                                  \
        T x = (T)a, y = (T)b;                                                          \
        uint8_t c = (uint8_t)count;                                                    \
        uint32_t f = *flags;                                                           \
        __asm__("push %[f]\n\tpopf\n\t" insn " %%cl, %" m "[y], %" m                    \
                "[x]\n\tpushf\n\tpop %[f]"                                             \
                : [x] "+r"(x), [f] "+r"(f)                                             \
                : [y] "r"(y), "c"(c)                                                   \
                : "cc");                                                               \
        *flags = f;                                                                    \
        return x;                                                                      \
    }
SHXD(shld16, "shldw", uint16_t, "w")
SHXD(shld32, "shldl", uint32_t, "k")
SHXD(shrd16, "shrdw", uint16_t, "w")
SHXD(shrd32, "shrdl", uint32_t, "k")

static void test_shxd(void)
{
    static const struct {
        const char *name;
        uint32_t (*fn)(uint32_t, uint32_t, uint32_t, uint32_t *);
        unsigned width;
    } ops[] = {
        {"shld16", shld16, 16}, {"shld32", shld32, 32},
        {"shrd16", shrd16, 16}, {"shrd32", shrd32, 32},
    };
    static const uint32_t counts[] = {0, 1, 2, 8, 15, 16, 17, 31, 32, 33};
    static const uint32_t pairs[][2] = {
        {0x12345678, 0x9abcdef0}, {0x80000000, 0x00000001}, {0xffffffff, 0},
        {0, 0xffffffff},          {0x00008001, 0x80010000},
    };

    for (unsigned o = 0; o < N(ops); o++) {
        group_begin(ops[o].name);
        for (unsigned p = 0; p < N(pairs); p++)
            for (unsigned c = 0; c < N(counts); c++)
                for (unsigned k = 0; k < N(flags_in); k++) {
                    unsigned w = ops[o].width, mc = counts[c] & 31;
                    uint32_t a = trunc_to(pairs[p][0], w), b = trunc_to(pairs[p][1], w);
                    uint32_t f = flags_in[k], def;

                    if (mc > w)
                        continue; /* result and flags undefined */
                    uint32_t r = ops[o].fn(a, b, counts[c], &f);
                    def = mc == 0 ? ARITH : SF | ZF | PF | CF | (mc == 1 ? OF : 0);
                    out("%08x %08x cl=%-2u %s -> %08x %s", a, b, counts[c],
                        fl(flags_in[k], ARITH), r, fl(f, def));
                }
        group_end();
    }
}

/* ---- multiply and divide -------------------------------------------------------- */

static void test_mul(void)
{
    group_begin("mul-imul");
    for (unsigned i = 0; i < N(vals); i++)
        for (unsigned j = 0; j < N(vals); j++) {
            uint32_t a = vals[i], b = vals[j], lo, hi, f;
            uint16_t ax;
            uint8_t b8 = (uint8_t)b;

            ax = (uint8_t)a;
            __asm__("mulb %[b]\n\tpushf\n\tpop %[f]" : "+a"(ax), [f] "=r"(f) : [b] "q"(b8) : "cc");
            out("mul8 %02x %02x -> %04x %s", a & 0xff, b8, ax, fl(f, CF | OF));
            ax = (uint8_t)a;
            __asm__("imulb %[b]\n\tpushf\n\tpop %[f]" : "+a"(ax), [f] "=r"(f) : [b] "q"(b8) : "cc");
            out("imul8 %02x %02x -> %04x %s", a & 0xff, b8, ax, fl(f, CF | OF));

            uint16_t a16 = (uint16_t)a, d16, b16 = (uint16_t)b;
            __asm__("mulw %[b]\n\tpushf\n\tpop %[f]"
                    : "+a"(a16), "=d"(d16), [f] "=r"(f) : [b] "r"(b16) : "cc");
            out("mul16 %04x %04x -> %04x:%04x %s", a & 0xffff, b16, d16, a16, fl(f, CF | OF));
            a16 = (uint16_t)a;
            __asm__("imulw %[b]\n\tpushf\n\tpop %[f]"
                    : "+a"(a16), "=d"(d16), [f] "=r"(f) : [b] "r"(b16) : "cc");
            out("imul16 %04x %04x -> %04x:%04x %s", a & 0xffff, b16, d16, a16, fl(f, CF | OF));

            lo = a;
            __asm__("mull %[b]\n\tpushf\n\tpop %[f]"
                    : "+a"(lo), "=d"(hi), [f] "=r"(f) : [b] "r"(b) : "cc");
            out("mul32 %08x %08x -> %08x:%08x %s", a, b, hi, lo, fl(f, CF | OF));
            lo = a;
            __asm__("imull %[b]\n\tpushf\n\tpop %[f]"
                    : "+a"(lo), "=d"(hi), [f] "=r"(f) : [b] "r"(b) : "cc");
            out("imul32 %08x %08x -> %08x:%08x %s", a, b, hi, lo, fl(f, CF | OF));
        }
    for (unsigned i = 0; i < N(vals); i++) {
        uint32_t r, f;
        __asm__("imull $-3, %[a], %[r]\n\tpushf\n\tpop %[f]"
                : [r] "=r"(r), [f] "=r"(f) : [a] "r"(vals[i]) : "cc");
        out("imul3 %08x $-3 -> %08x %s", vals[i], r, fl(f, CF | OF));
        __asm__("imull $100000, %[a], %[r]\n\tpushf\n\tpop %[f]"
                : [r] "=r"(r), [f] "=r"(f) : [a] "r"(vals[i]) : "cc");
        out("imul3 %08x $100000 -> %08x %s", vals[i], r, fl(f, CF | OF));
        uint16_t r16;
        __asm__("imulw $-300, %w[a], %[r]\n\tpushf\n\tpop %[f]"
                : [r] "=r"(r16), [f] "=r"(f) : [a] "r"(vals[i]) : "cc");
        out("imul3w %04x $-300 -> %04x %s", vals[i] & 0xffff, r16, fl(f, CF | OF));
    }
    group_end();
}

/* Division leaves every flag undefined: only quotient and remainder print.
 * Divisions that fault (#DE) are in test_signals. */
static void test_div(void)
{
    group_begin("div-idiv");
    for (unsigned i = 0; i < N(vals); i++)
        for (unsigned j = 0; j < N(vals); j++)
            for (unsigned h = 0; h < N(vals); h += 5) {
                uint32_t lo = vals[i], hi = vals[h], d = vals[j];
                uint64_t n = ((uint64_t)hi << 32) | lo;

                if (d != 0 && hi < d) { /* the quotient fits 32 bits */
                    uint32_t q = lo, r = hi;
                    __asm__("divl %[d]" : "+a"(q), "+d"(r) : [d] "r"(d) : "cc");
                    out("div32 %08x:%08x / %08x -> %08x r %08x", hi, lo, d, q, r);
                }
                int64_t sn = (int64_t)n, sq;
                int32_t sd = (int32_t)d;
                if (sd != 0 && !(sd == -1 && sn == INT64_MIN)) {
                    sq = sn / sd;
                    if (sq >= INT32_MIN && sq <= INT32_MAX) {
                        uint32_t q = lo, r = hi;
                        __asm__("idivl %[d]" : "+a"(q), "+d"(r) : [d] "r"(d) : "cc");
                        out("idiv32 %08x:%08x / %08x -> %08x r %08x", hi, lo, d, q, r);
                    }
                }
                uint16_t n16 = (uint16_t)lo, d8 = (uint8_t)d;
                if (d8 != 0 && n16 / d8 <= 0xff) {
                    uint16_t ax = n16;
                    uint8_t dd = (uint8_t)d8;
                    __asm__("divb %[d]" : "+a"(ax) : [d] "q"(dd) : "cc");
                    out("div8 %04x / %02x -> %04x", n16, dd, ax);
                }
                int16_t sn16 = (int16_t)lo;
                int8_t sd8 = (int8_t)d;
                if (sd8 != 0 && sn16 / sd8 >= -128 && sn16 / sd8 <= 127) {
                    uint16_t ax = (uint16_t)sn16;
                    __asm__("idivb %[d]" : "+a"(ax) : [d] "q"(sd8) : "cc");
                    out("idiv8 %04x / %02x -> %04x", (uint16_t)sn16, (uint8_t)sd8, ax);
                }
                uint16_t d16 = (uint16_t)d, hi16 = (uint16_t)hi;
                if (d16 != 0 && hi16 < d16) {
                    uint16_t ax = (uint16_t)lo, dx = hi16;
                    __asm__("divw %[d]" : "+a"(ax), "+d"(dx) : [d] "r"(d16) : "cc");
                    out("div16 %04x:%04x / %04x -> %04x r %04x", hi16, (uint16_t)lo, d16, ax,
                        dx);
                }
            }
    group_end();
}

/* ---- bit tests and scans ---------------------------------------------------------- */

static void test_bits(void)
{
    static const int32_t offsets[] = {0, 5, 31, 32, 63, 100, 127, -1, -32, -33, -100};

    group_begin("bt-reg");
    for (unsigned i = 0; i < N(vals); i++)
        for (unsigned j = 0; j < N(offsets); j++)
            for (unsigned k = 0; k < N(flags_in); k++) {
                uint32_t a = vals[i], f, r;
                int32_t b = offsets[j];
                const uint32_t def = CF | ZF; /* ZF unaffected; OF SF AF PF undefined */
#define BT_REG(insn, T, m)                                                                 \
    do {                                                                                   \
        T x = (T)a;                                                                        \
        f = flags_in[k];                                                                   \
        __asm__("push %[f]\n\tpopf\n\t" insn " %" m "[b], %" m "[x]\n\tpushf\n\tpop %[f]" \
                : [x] "+r"(x), [f] "+r"(f)                                                 \
                : [b] "r"(b)                                                               \
                : "cc");                                                                   \
        r = x;                                                                             \
        out("%s %08x %d %s -> %08x %s", insn, (uint32_t)(T)a, b, fl(flags_in[k], ARITH), r, \
            fl(f, def));                                                                   \
    } while (0)
                BT_REG("btl", uint32_t, "k");
                BT_REG("btsl", uint32_t, "k");
                BT_REG("btrl", uint32_t, "k");
                BT_REG("btcl", uint32_t, "k");
                BT_REG("btw", uint16_t, "w");
                BT_REG("btcw", uint16_t, "w");
            }
    group_end();

    /* Memory forms: the register offset is signed and reaches other dwords. */
    group_begin("bt-mem");
    for (unsigned j = 0; j < N(offsets); j++)
        for (unsigned op = 0; op < 4; op++) {
            uint32_t mem[16], f;
            int32_t b = offsets[j];
            for (unsigned i = 0; i < 16; i++)
                mem[i] = 0x9e3779b9u * (i + 1);
            uint32_t *base = &mem[8];
            f = 0;
            switch (op) {
            case 0:
                __asm__("push %[f]\n\tpopf\n\tbtl %[b], (%[p])\n\tpushf\n\tpop %[f]"
                        : [f] "+r"(f) : [b] "r"(b), [p] "r"(base), "m"(mem) : "cc");
                break;
            case 1:
                __asm__("push %[f]\n\tpopf\n\tbtsl %[b], (%[p])\n\tpushf\n\tpop %[f]"
                        : [f] "+r"(f), "+m"(mem) : [b] "r"(b), [p] "r"(base) : "cc");
                break;
            case 2:
                __asm__("push %[f]\n\tpopf\n\tbtrl %[b], (%[p])\n\tpushf\n\tpop %[f]"
                        : [f] "+r"(f), "+m"(mem) : [b] "r"(b), [p] "r"(base) : "cc");
                break;
            case 3:
                __asm__("push %[f]\n\tpopf\n\tlock btcl %[b], (%[p])\n\tpushf\n\tpop %[f]"
                        : [f] "+r"(f), "+m"(mem) : [b] "r"(b), [p] "r"(base) : "cc");
                break;
            }
            uint64_t h = 0;
            for (unsigned i = 0; i < 16; i++)
                h = h * 31 + mem[i];
            out("op%u off %d -> CF=%u mem %016llx", op, b, f & CF, (unsigned long long)h);
        }
    for (unsigned i = 0; i < 4; i++) {
        uint32_t mem[2] = {0x00000004u, 0x80000001u}, f = 0;
        __asm__("push %[f]\n\tpopf\n\tbtsl $33, %[m]\n\tpushf\n\tpop %[f]"
                : [f] "+r"(f), [m] "+m"(mem[0]) : : "cc");
        out("bts imm 33 (wraps to bit 1 of the first dword) -> %08x %08x CF=%u", mem[0], mem[1],
            f & CF);
        (void)i;
    }
    group_end();

    group_begin("bsf-bsr");
    for (unsigned i = 0; i < N(vals); i++)
        for (unsigned k = 0; k < N(flags_in); k++) {
            uint32_t a = vals[i], r = 0x5a5a5a5a, f = flags_in[k];
            __asm__("push %[f]\n\tpopf\n\tbsfl %[a], %[r]\n\tpushf\n\tpop %[f]"
                    : [r] "+r"(r), [f] "+r"(f) : [a] "r"(a) : "cc");
            if (a) /* a zero source leaves the destination undefined */
                out("bsf32 %08x -> %u %s", a, r, fl(f, ZF));
            else
                out("bsf32 0 -> %s", fl(f, ZF));
            f = flags_in[k];
            __asm__("push %[f]\n\tpopf\n\tbsrl %[a], %[r]\n\tpushf\n\tpop %[f]"
                    : [r] "+r"(r), [f] "+r"(f) : [a] "r"(a) : "cc");
            if (a)
                out("bsr32 %08x -> %u %s", a, r, fl(f, ZF));
            else
                out("bsr32 0 -> %s", fl(f, ZF));
            uint16_t a16 = (uint16_t)a, r16 = 0x5a5a;
            f = flags_in[k];
            __asm__("push %[f]\n\tpopf\n\tbsrw %[a], %[r]\n\tpushf\n\tpop %[f]"
                    : [r] "+r"(r16), [f] "+r"(f) : [a] "r"(a16) : "cc");
            if (a16)
                out("bsr16 %04x -> %u %s", a16, r16, fl(f, ZF));
            else
                out("bsr16 0 -> %s", fl(f, ZF));
        }
    group_end();
}

/* ---- BCD ----------------------------------------------------------------------- */

static void test_bcd(void)
{
    group_begin("daa-das");
    for (unsigned al = 0; al < 256; al++)
        for (unsigned fin = 0; fin < 4; fin++) {
            uint32_t f0 = (fin & 1 ? CF : 0) | (fin & 2 ? AF : 0), f = f0;
            uint32_t ax = 0x1200 | al;
            __asm__("push %[f]\n\tpopf\n\tdaa\n\tpushf\n\tpop %[f]"
                    : "+a"(ax), [f] "+r"(f) : : "cc");
            out("daa %02x %s -> %04x %s", al, fl(f0, CF | AF), ax & 0xffff, fl(f, ARITH & ~OF));
            ax = 0x1200 | al;
            f = f0;
            __asm__("push %[f]\n\tpopf\n\tdas\n\tpushf\n\tpop %[f]"
                    : "+a"(ax), [f] "+r"(f) : : "cc");
            out("das %02x %s -> %04x %s", al, fl(f0, CF | AF), ax & 0xffff, fl(f, ARITH & ~OF));
        }
    group_end();

    /* AAA and AAS: old processors adjusted AL alone and AH by one, newer ones
     * (SDM) add or subtract 0x106 to AX; they differ only when AL itself
     * carries or borrows, and those inputs are left out. */
    group_begin("aaa-aas");
    for (unsigned al = 0; al < 256; al++)
        for (unsigned fin = 0; fin < 4; fin++) {
            uint32_t f0 = (fin & 1 ? CF : 0) | (fin & 2 ? AF : 0), f;
            bool adjust = (al & 0x0f) > 9 || (f0 & AF);
            uint32_t ax;
            if (!(adjust && al >= 0xfa)) {
                ax = 0x1200 | al;
                f = f0;
                __asm__("push %[f]\n\tpopf\n\taaa\n\tpushf\n\tpop %[f]"
                        : "+a"(ax), [f] "+r"(f) : : "cc");
                out("aaa %02x %s -> %04x %s", al, fl(f0, CF | AF), ax & 0xffff, fl(f, CF | AF));
            }
            if (!(adjust && al < 6)) {
                ax = 0x1200 | al;
                f = f0;
                __asm__("push %[f]\n\tpopf\n\taas\n\tpushf\n\tpop %[f]"
                        : "+a"(ax), [f] "+r"(f) : : "cc");
                out("aas %02x %s -> %04x %s", al, fl(f0, CF | AF), ax & 0xffff, fl(f, CF | AF));
            }
        }
    group_end();

    group_begin("aam-aad");
    for (unsigned v = 0; v < 0x10000; v += 0x0101 + (v & 0x3f)) {
        uint32_t ax = v, f;
        __asm__("aam\n\tpushf\n\tpop %[f]" : "+a"(ax), [f] "=r"(f) : : "cc");
        out("aam10 %04x -> %04x %s", v, ax & 0xffff, fl(f, SF | ZF | PF));
        ax = v;
        __asm__("aam $16\n\tpushf\n\tpop %[f]" : "+a"(ax), [f] "=r"(f) : : "cc");
        out("aam16 %04x -> %04x %s", v, ax & 0xffff, fl(f, SF | ZF | PF));
        ax = v;
        __asm__("aad\n\tpushf\n\tpop %[f]" : "+a"(ax), [f] "=r"(f) : : "cc");
        out("aad10 %04x -> %04x %s", v, ax & 0xffff, fl(f, SF | ZF | PF));
        ax = v;
        __asm__("aad $7\n\tpushf\n\tpop %[f]" : "+a"(ax), [f] "=r"(f) : : "cc");
        out("aad7 %04x -> %04x %s", v, ax & 0xffff, fl(f, SF | ZF | PF));
    }
    group_end();
}

/* ---- conditions, flag transfer, extension ------------------------------------------- */

static void test_conditions(void)
{
    group_begin("setcc-cmovcc");
    for (uint32_t fin = 0; fin < 64; fin++) {
        /* every combination of the six arithmetic flags */
        static const uint32_t bit[] = {CF, PF, AF, ZF, SF, OF};
        uint32_t f = 0, set = 0, mov = 0;
        for (unsigned b = 0; b < 6; b++)
            if (fin & (1u << b))
                f |= bit[b];
        uint8_t s[16];
        __asm__("push %[f]\n\tpopf\n\t"
                "seto 0(%[s])\n\tsetno 1(%[s])\n\tsetb 2(%[s])\n\tsetae 3(%[s])\n\t"
                "sete 4(%[s])\n\tsetne 5(%[s])\n\tsetbe 6(%[s])\n\tseta 7(%[s])\n\t"
                "sets 8(%[s])\n\tsetns 9(%[s])\n\tsetp 10(%[s])\n\tsetnp 11(%[s])\n\t"
                "setl 12(%[s])\n\tsetge 13(%[s])\n\tsetle 14(%[s])\n\tsetg 15(%[s])"
                : "=m"(s) : [f] "r"(f), [s] "r"(s) : "cc");
        for (unsigned c = 0; c < 16; c++)
            set |= (uint32_t)(s[c] & 1) << c;
        uint32_t one = 1, r;
#define CMOV(cc, bitno)                                                                   \
    r = 0;                                                                                \
    __asm__("push %[f]\n\tpopf\n\tcmov" cc " %[one], %[r]" : [r] "+r"(r) : [f] "r"(f), \
            [one] "rm"(one) : "cc");                                                      \
    mov |= r << (bitno)
        CMOV("o", 0); CMOV("no", 1); CMOV("b", 2); CMOV("ae", 3);
        CMOV("e", 4); CMOV("ne", 5); CMOV("be", 6); CMOV("a", 7);
        CMOV("s", 8); CMOV("ns", 9); CMOV("p", 10); CMOV("np", 11);
        CMOV("l", 12); CMOV("ge", 13); CMOV("le", 14); CMOV("g", 15);
        uint32_t ah;
        __asm__("push %[f]\n\tpopf\n\tlahf\n\tshr $8, %[a]" : [a] "=a"(ah) : [f] "r"(f) : "cc");
        out("%s setcc %04x cmovcc %04x lahf %02x", fl(f, ARITH), set, mov, ah & 0xff);
    }
    for (uint32_t ah = 0; ah < 256; ah += 7) {
        uint32_t f, ax = ah << 8;
        __asm__("push %[z]\n\tpopf\n\tsahf\n\tpushf\n\tpop %[f]"
                : [f] "=r"(f) : "a"(ax), [z] "r"((uint32_t)OF) : "cc");
        out("sahf %02x -> %s", ah, fl(f, ARITH)); /* OF is not in AH: kept */
    }
    group_end();

    group_begin("extend-xlat-loop");
    for (unsigned i = 0; i < N(vals); i++) {
        uint32_t a = vals[i], r, d;
        __asm__("cbtw" : "=a"(r) : "a"(a));
        out("cbw %08x -> %08x", a, r);
        __asm__("cwtl" : "=a"(r) : "a"(a));
        out("cwde %08x -> %08x", a, r);
        __asm__("cltd" : "=d"(d) : "a"(a));
        out("cdq %08x -> %08x", a, d);
        __asm__("cwtd" : "=d"(d) : "a"(a), "d"(0x55555555u));
        out("cwd %08x -> %08x", a, d);
        __asm__("movsbl %b[a], %[r]" : [r] "=r"(r) : [a] "q"(a));
        out("movsx8 %08x -> %08x", a, r);
        __asm__("movzwl %w[a], %[r]" : [r] "=r"(r) : [a] "r"(a));
        out("movzx16 %08x -> %08x", a, r);
        __asm__("leal 0x7fffffff(%[a],%[a],4), %[r]" : [r] "=r"(r) : [a] "r"(a));
        out("lea 0x7fffffff(a,a,4) %08x -> %08x", a, r);
    }
    static const uint8_t table[256] = {[0] = 0x11, [0x7f] = 0x22, [0x80] = 0x33, [0xff] = 0x44};
    static const uint32_t xl[] = {0x0, 0x17f, 0x280, 0xffffffff};
    for (unsigned i = 0; i < N(xl); i++) {
        uint32_t al = xl[i];
        __asm__("xlat" : "+a"(al) : "b"(table), "m"(table));
        out("xlat %08x -> %08x", xl[i], al);
    }
    static const uint32_t counts[] = {0, 1, 5};
    for (unsigned i = 0; i < N(counts); i++) {
        uint32_t c = counts[i], n = 0;
        __asm__("jecxz 2f\n1:\tincl %[n]\n\tloop 1b\n2:" : "+c"(c), [n] "+r"(n) : : "cc");
        out("loop %u -> ran %u ecx %08x", counts[i], n, c);
        c = counts[i];
        n = 0;
        /* loopz stops early once ZF is clear: after the third inc of n from
         * -3 */
        n = (uint32_t)-3;
        __asm__("1:\tincl %[n]\n\tloopnz 1b" : "+c"(c), [n] "+r"(n) : : "cc");
        out("loopnz %u -> n %08x ecx %08x", counts[i], n, c);
    }
    group_end();
}

/* ---- string instructions ------------------------------------------------------------ */

static uint8_t sbuf[256], dbuf[256];

static void str_reset(void)
{
    for (unsigned i = 0; i < sizeof(sbuf); i++) {
        sbuf[i] = (uint8_t)(i * 7 + 3);
        dbuf[i] = (uint8_t)(0xa0 ^ i);
    }
}

static uint64_t buf_hash(const uint8_t *b, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* A string instruction run with DF and the arithmetic flags set from `f`:
 * esi/edi are offsets into sbuf/dbuf, and so are the results. */
#define STR_OP(insn, flags_in_, si, di, cx, ax)                                          \
    do {                                                                                 \
        uint8_t *S = sbuf + (si), *D = dbuf + (di);                                      \
        uint32_t C = (cx), A = (ax), F = (flags_in_);                                    \
        __asm__ volatile("push %[f]\n\tpopf\n\t" insn "\n\tpushf\n\tpop %[f]\n\tcld"     \
                         : "+S"(S), "+D"(D), "+c"(C), "+a"(A), [f] "+r"(F)               \
                         :                                                               \
                         : "memory", "cc");                                              \
        out("%-13s df=%u si=%3d di=%3d cx=%3u ax=%08x -> si=%3d di=%3d cx=%3u ax=%08x %s " \
            "dst %016llx",                                                               \
            insn, !!((flags_in_) & DF), (int)(si), (int)(di), (unsigned)(cx),            \
            (unsigned)(ax), (int)(S - sbuf), (int)(D - dbuf), C, A, fl(F, ARITH),        \
            (unsigned long long)buf_hash(dbuf, sizeof(dbuf)));                           \
    } while (0)

static void test_strings(void)
{
    group_begin("string-ops");
    for (unsigned k = 0; k < 2; k++) {
        uint32_t f = k ? ARITH : 0;
        str_reset();
        STR_OP("rep movsb", f, 3, 5, 13, 0);
        STR_OP("rep movsw", f, 1, 64, 9, 0);
        STR_OP("rep movsl", f, 0, 128, 16, 0);
        STR_OP("rep movsb", f | DF, 200, 100, 40, 0);
        STR_OP("rep movsl", f | DF, 60, 60, 7, 0);
        STR_OP("rep movsb", f, 10, 10, 0, 0); /* ecx 0: nothing, flags kept */
        STR_OP("movsl", f, 20, 30, 77, 0);
        STR_OP("rep stosb", f, 0, 7, 33, 0xdeadbe5a);
        STR_OP("rep stosw", f | DF, 0, 200, 17, 0x1234abcd);
        STR_OP("rep stosl", f, 0, 1, 10, 0x87654321);
        STR_OP("stosb", f | DF, 0, 50, 3, 0x77);
        STR_OP("lodsl", f, 16, 0, 0, 0);
        STR_OP("lodsw", f | DF, 16, 0, 0, 0xffffffff);
        /* dbuf now differs from sbuf; make a stretch equal to compare. */
        memcpy(dbuf + 100, sbuf + 100, 50);
        STR_OP("repe cmpsb", f, 100, 100, 80, 0);  /* stops at offset 150 */
        STR_OP("repe cmpsb", f, 100, 100, 20, 0);  /* runs out, all equal */
        STR_OP("repne cmpsb", f, 0, 0, 100, 0);
        STR_OP("repe cmpsl", f | DF, 140, 140, 30, 0);
        STR_OP("cmpsw", f, 100, 100, 5, 0);
        STR_OP("repne scasb", f, 0, 0, 256, dbuf[77]); /* finds the first */
        STR_OP("repne scasb", f, 0, 0, 20, 0x100);      /* AL 0: not found */
        STR_OP("repe scasl", f, 0, 120, 10, 0);
        STR_OP("repe scasb", f | DF, 0, 255, 30, dbuf[255]);
        STR_OP("repe cmpsb", f, 0, 0, 0, 0); /* ecx 0: flags kept */
    }
    group_end();
}

/* ---- atomics, exchange, byte swap -------------------------------------------------- */

static void test_atomics(void)
{
    group_begin("cmpxchg-xadd");
    for (unsigned i = 0; i < N(vals); i += 2)
        for (unsigned j = 0; j < N(vals); j += 3) {
            uint32_t mem = vals[i], acc = vals[j], f, nv = 0xc0ffee00u + i;
            __asm__("lock cmpxchgl %[n], %[m]\n\tpushf\n\tpop %[f]"
                    : [m] "+m"(mem), "+a"(acc), [f] "=r"(f) : [n] "r"(nv) : "cc");
            out("cmpxchg32 mem %08x eax %08x -> mem %08x eax %08x %s", vals[i], vals[j], mem,
                acc, fl(f, ARITH));
            uint8_t m8 = (uint8_t)vals[i], a8 = (uint8_t)vals[j], n8 = 0x5a;
            __asm__("cmpxchgb %[n], %[m]\n\tpushf\n\tpop %[f]"
                    : [m] "+m"(m8), "+a"(a8), [f] "=r"(f) : [n] "q"(n8) : "cc");
            out("cmpxchg8 mem %02x al %02x -> mem %02x al %02x %s", vals[i] & 0xff,
                vals[j] & 0xff, m8, a8, fl(f, ARITH));
            uint16_t m16 = (uint16_t)vals[i], a16 = (uint16_t)vals[i], n16 = 0x1234;
            __asm__("cmpxchgw %[n], %[m]\n\tpushf\n\tpop %[f]"
                    : [m] "+m"(m16), "+a"(a16), [f] "=r"(f) : [n] "r"(n16) : "cc");
            out("cmpxchg16 equal %04x -> mem %04x ax %04x %s", vals[i] & 0xffff, m16, a16,
                fl(f, ARITH));
            uint32_t r = vals[j];
            mem = vals[i];
            __asm__("lock xaddl %[r], %[m]\n\tpushf\n\tpop %[f]"
                    : [m] "+m"(mem), [r] "+r"(r), [f] "=r"(f) : : "cc");
            out("xadd32 mem %08x reg %08x -> mem %08x reg %08x %s", vals[i], vals[j], mem, r,
                fl(f, ARITH));
            uint8_t r8 = (uint8_t)vals[j];
            m8 = (uint8_t)vals[i];
            __asm__("xaddb %[r], %[m]\n\tpushf\n\tpop %[f]"
                    : [m] "+m"(m8), [r] "+q"(r8), [f] "=r"(f) : : "cc");
            out("xadd8 mem %02x reg %02x -> mem %02x reg %02x %s", vals[i] & 0xff,
                vals[j] & 0xff, m8, r8, fl(f, ARITH));
            uint32_t x = vals[j];
            mem = vals[i];
            __asm__("xchgl %[x], %[m]" : [m] "+m"(mem), [x] "+r"(x));
            out("xchg mem %08x reg %08x -> %08x %08x", vals[i], vals[j], mem, x);
            x = vals[i];
            __asm__("bswap %[x]" : [x] "+r"(x));
            out("bswap %08x -> %08x", vals[i], x);
        }
    for (unsigned i = 0; i < 4; i++) {
        uint64_t mem = 0x0123456789abcdefull, expect = i & 1 ? mem : 0x1111111122222222ull;
        uint32_t lo = 0xfeedface, hi = 0xcafebabe, f, fin = i & 2 ? ARITH : 0;
        f = fin;
        __asm__("push %[f]\n\tpopf\n\tlock cmpxchg8b %[m]\n\tpushf\n\tpop %[f]"
                : [m] "+m"(mem), "+A"(expect), [f] "+r"(f) : "b"(lo), "c"(hi) : "cc");
        /* ZF set or cleared; the others unaffected */
        out("cmpxchg8b %s %s -> mem %016llx edx:eax %016llx %s", i & 1 ? "equal" : "differ",
            fl(fin, ARITH), (unsigned long long)mem, (unsigned long long)expect, fl(f, ARITH));
    }
    group_end();
}

/* ---- x87 --------------------------------------------------------------------------- */

typedef union {
    long double ld;
    struct {
        uint64_t mant;
        uint16_t se;
    } __attribute__((packed)) b;
} x80;

/* Status word bits the SDM defines after an arithmetic instruction: the six
 * exception flags, stack fault, error summary, C1 (rounded up).  C0, C2, C3
 * are undefined there, and TOP depends on the sequence. */
#define SW_EXC 0x003fu
#define SW_DE 0x0002u
#define SW_SF 0x0040u
#define SW_ES 0x0080u
#define SW_C0 0x0100u
#define SW_C1 0x0200u
#define SW_C2 0x0400u
#define SW_C3 0x4000u
#define SW_ARITH (SW_EXC | SW_SF | SW_ES | SW_C1)

#define CW_DEFAULT 0x037fu /* FNINIT: all masked, 64-bit precision, nearest */
#define CW_PC_24 0x0000u
#define CW_PC_53 0x0200u
#define CW_PC_64 0x0300u

/* QEMU sets neither C1 (rounded up) nor DE (denormal operand). */
static uint16_t swq(uint16_t sw)
{
    return qemu_gaps ? sw & ~(SW_C1 | SW_DE) : sw;
}

static const char *const rc_name[4] = {"near", "down", "up", "zero"};

static uint16_t cw_make(unsigned rc, uint16_t pc)
{
    return (uint16_t)((CW_DEFAULT & ~0x0f00u) | pc | (rc << 10));
}

#define X87_STACK_CLOBBERS "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"

/* st0 = a, st1 = b; `insn` leaves its result in st0 and b in st1. */
#define X87_BIN(name, insn)                                                              \
    static long double name(long double a, long double b, uint16_t cw, uint16_t *sw)     \
    {                                                                                    \
        long double r;                                                                   \
        __asm__ volatile("fninit\n\tfldcw %[cw]\n\tfldt %[b]\n\tfldt %[a]\n\t" insn       \
                         "\n\tfnstsw %[sw]\n\tfstpt %[r]\n\tfstp %%st(0)"                 \
                         : [r] "=m"(r), [sw] "=m"(*sw)                                   \
                         : [a] "m"(a), [b] "m"(b), [cw] "m"(cw)                          \
                         : X87_STACK_CLOBBERS);                                          \
        return r;                                                                        \
    }
X87_BIN(x87_add, "fadd %%st(1), %%st")
X87_BIN(x87_sub, "fsub %%st(1), %%st")
X87_BIN(x87_mul, "fmul %%st(1), %%st")
X87_BIN(x87_div, "fdiv %%st(1), %%st")
X87_BIN(x87_prem, "fprem")
X87_BIN(x87_prem1, "fprem1")
X87_BIN(x87_scale, "fscale")

/* st0 = a; `insn` leaves one result in st0. */
#define X87_UN(name, insn)                                                               \
    static long double name(long double a, uint16_t cw, uint16_t *sw)                    \
    {                                                                                    \
        long double r;                                                                   \
        __asm__ volatile("fninit\n\tfldcw %[cw]\n\tfldt %[a]\n\t" insn                    \
                         "\n\tfnstsw %[sw]\n\tfstpt %[r]"                                \
                         : [r] "=m"(r), [sw] "=m"(*sw)                                   \
                         : [a] "m"(a), [cw] "m"(cw)                                      \
                         : X87_STACK_CLOBBERS);                                          \
        return r;                                                                        \
    }
X87_UN(x87_sqrt, "fsqrt")
X87_UN(x87_rndint, "frndint")
X87_UN(x87_sin, "fsin")
X87_UN(x87_cos, "fcos")
X87_UN(x87_f2xm1, "f2xm1")
X87_UN(x87_chs, "fchs")
X87_UN(x87_abs, "fabs")

/* st0 = a, st1 = b; `insn` pops, leaving its result in st0. */
#define X87_BINP(name, insn)                                                             \
    static long double name(long double a, long double b, uint16_t cw, uint16_t *sw)     \
    {                                                                                    \
        long double r;                                                                   \
        __asm__ volatile("fninit\n\tfldcw %[cw]\n\tfldt %[b]\n\tfldt %[a]\n\t" insn       \
                         "\n\tfnstsw %[sw]\n\tfstpt %[r]"                                \
                         : [r] "=m"(r), [sw] "=m"(*sw)                                   \
                         : [a] "m"(a), [b] "m"(b), [cw] "m"(cw)                          \
                         : X87_STACK_CLOBBERS);                                          \
        return r;                                                                        \
    }
X87_BINP(x87_yl2x, "fyl2x")  /* st1 * log2(st0): b * log2(a) */
X87_BINP(x87_patan, "fpatan") /* atan(st1 / st0): atan(b / a) */

static const char *x80_str(long double v)
{
    static char s[4][32];
    static unsigned k;
    x80 x = {.ld = v};
    char *p = s[k++ % 4];
    snprintf(p, 32, "%04x:%016llx", x.b.se, (unsigned long long)x.b.mant);
    return p;
}

/* Transcendentals differ in their last bits between implementations: compare
 * them rounded to single precision (NaN and infinities keep their class). */
static uint32_t x80_as_float_bits(long double v)
{
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static long double ld_from(uint16_t se, uint64_t mant)
{
    x80 x = {.b = {mant, se}};
    return x.ld;
}

static void test_x87(void)
{
    const long double v[] = {
        0.0L,
        -0.0L,
        1.0L,
        3.0L,
        -2.5L,
        ld_from(0x3ffd, 0xaaaaaaaaaaaaaaabull), /* 1/3 */
        ld_from(0x43fe, 0xffffffffffffffffull), /* 2^1024 - 2^960: beyond double */
        ld_from(0x7ffe, 0xffffffffffffffffull), /* LDBL_MAX */
        ld_from(0x0001, 0x8000000000000000ull), /* LDBL_MIN */
        ld_from(0x0000, 0x0000000000000001ull), /* smallest denormal */
        ld_from(0x7fff, 0x8000000000000000ull), /* +inf */
        ld_from(0xffff, 0x8000000000000000ull), /* -inf */
        ld_from(0x7fff, 0xc000000000000000ull), /* QNaN */
        ld_from(0x7fff, 0xa000000000000000ull), /* SNaN */
        ld_from(0x4034, 0xc000000000000001ull), /* 2^53 + 2^-10: rounds differently */
    };
    static const struct {
        const char *name;
        long double (*fn)(long double, long double, uint16_t, uint16_t *);
    } bin[] = {
        {"fadd", x87_add}, {"fsub", x87_sub}, {"fmul", x87_mul}, {"fdiv", x87_div},
    };
    static const uint16_t pcs[] = {CW_PC_24, CW_PC_53, CW_PC_64};
    uint16_t sw;
    char name[32];

    for (unsigned o = 0; o < N(bin); o++) {
        snprintf(name, sizeof(name), "x87-%s", bin[o].name);
        group_begin(name);
        for (unsigned i = 0; i < N(v); i++)
            for (unsigned j = 0; j < N(v); j++)
                for (unsigned rc = 0; rc < 4; rc++)
                    for (unsigned p = 0; p < N(pcs); p++) {
                        if (p != 2 && (rc != 0 && rc != 2))
                            continue; /* precision control: two modes are enough */
                        long double r = bin[o].fn(v[i], v[j], cw_make(rc, pcs[p]), &sw);
                        out("%s %s %s pc%u -> %s sw %04x", x80_str(v[i]), x80_str(v[j]),
                            rc_name[rc], p, x80_str(r), swq(sw & SW_ARITH));
                    }
        group_end();
    }

    group_begin("x87-sqrt-rndint");
    const long double rv[] = {2.5L, -2.5L, 3.5L, 0.5L, -0.5L, 1.7L, -1.7L, 2.0L, 1e20L, -0.0L};
    for (unsigned i = 0; i < N(v); i++)
        for (unsigned rc = 0; rc < 4; rc++) {
            long double r = x87_sqrt(v[i], cw_make(rc, CW_PC_64), &sw);
            out("fsqrt %s %s -> %s sw %04x", x80_str(v[i]), rc_name[rc], x80_str(r),
                swq(sw & SW_ARITH));
            r = x87_sqrt(v[i], cw_make(rc, CW_PC_53), &sw);
            out("fsqrt pc53 %s %s -> %s sw %04x", x80_str(v[i]), rc_name[rc], x80_str(r),
                swq(sw & SW_ARITH));
        }
    for (unsigned i = 0; i < N(rv); i++)
        for (unsigned rc = 0; rc < 4; rc++) {
            long double r = x87_rndint(rv[i], cw_make(rc, CW_PC_64), &sw);
            out("frndint %s %s -> %s sw %04x", x80_str(rv[i]), rc_name[rc], x80_str(r),
                swq(sw & SW_ARITH));
            int32_t n;
            uint16_t cw = cw_make(rc, CW_PC_64);
            __asm__ volatile("fninit\n\tfldcw %[cw]\n\tfldt %[a]\n\tfistpl %[n]\n\tfnstsw %[sw]"
                             : [n] "=m"(n), [sw] "=m"(sw) : [a] "m"(rv[i]), [cw] "m"(cw)
                             : X87_STACK_CLOBBERS);
            out("fistp %s %s -> %08x sw %04x", x80_str(rv[i]), rc_name[rc], (uint32_t)n,
                swq(sw & SW_EXC));
        }
    for (unsigned i = 0; i < N(v); i++) {
        int32_t n;
        int64_t n64;
        int16_t n16;
        __asm__ volatile("fninit\n\tfldt %[a]\n\tfistpl %[n]\n\tfnstsw %[sw]"
                         : [n] "=m"(n), [sw] "=m"(sw) : [a] "m"(v[i]) : X87_STACK_CLOBBERS);
        out("fistp32 %s -> %08x sw %04x", x80_str(v[i]), (uint32_t)n, swq(sw & SW_EXC));
        __asm__ volatile("fninit\n\tfldt %[a]\n\tfistpll %[n]\n\tfnstsw %[sw]"
                         : [n] "=m"(n64), [sw] "=m"(sw) : [a] "m"(v[i]) : X87_STACK_CLOBBERS);
        out("fistp64 %s -> %016llx sw %04x", x80_str(v[i]), (unsigned long long)n64,
            swq(sw & SW_EXC));
        __asm__ volatile("fninit\n\tfldt %[a]\n\tfistps %[n]\n\tfnstsw %[sw]"
                         : [n] "=m"(n16), [sw] "=m"(sw) : [a] "m"(v[i]) : X87_STACK_CLOBBERS);
        out("fistp16 %s -> %04x sw %04x", x80_str(v[i]), (uint16_t)n16, swq(sw & SW_EXC));
        long double c = x87_chs(v[i], CW_DEFAULT, &sw), b = x87_abs(v[i], CW_DEFAULT, &sw);
        out("fchs %s -> %s fabs -> %s", x80_str(v[i]), x80_str(c), x80_str(b));
        float f;
        double d;
        __asm__ volatile("fninit\n\tfldt %[a]\n\tfstps %[f]\n\tfnstsw %[sw]"
                         : [f] "=m"(f), [sw] "=m"(sw) : [a] "m"(v[i]) : X87_STACK_CLOBBERS);
        uint32_t fb;
        memcpy(&fb, &f, 4);
        out("fstp32 %s -> %08x sw %04x", x80_str(v[i]), fb, swq(sw & SW_ARITH));
        __asm__ volatile("fninit\n\tfldt %[a]\n\tfstpl %[d]\n\tfnstsw %[sw]"
                         : [d] "=m"(d), [sw] "=m"(sw) : [a] "m"(v[i]) : X87_STACK_CLOBBERS);
        uint64_t db;
        memcpy(&db, &d, 8);
        out("fstp64 %s -> %016llx sw %04x", x80_str(v[i]), (unsigned long long)db,
            swq(sw & SW_ARITH));
    }
    group_end();

    group_begin("x87-constants");
    for (unsigned rc = 0; rc < 4; rc++) {
        long double c[7];
        uint16_t cw = cw_make(rc, CW_PC_64);
        __asm__ volatile("fninit\n\tfldcw %[cw]\n\t"
                         "fldpi\n\tfstpt 0(%[c])\n\tfldl2e\n\tfstpt 12(%[c])\n\t"
                         "fldl2t\n\tfstpt 24(%[c])\n\tfldlg2\n\tfstpt 36(%[c])\n\t"
                         "fldln2\n\tfstpt 48(%[c])\n\tfld1\n\tfstpt 60(%[c])\n\t"
                         "fldz\n\tfstpt 72(%[c])"
                         : "=m"(c) : [c] "r"(c), [cw] "m"(cw) : X87_STACK_CLOBBERS);
        _Static_assert(sizeof(long double) == 12, "i386 long double");
        out("%s pi %s l2e %s l2t %s", rc_name[rc], x80_str(c[0]), x80_str(c[1]),
            x80_str(c[2]));
        out("%s lg2 %s ln2 %s 1 %s 0 %s", rc_name[rc], x80_str(c[3]), x80_str(c[4]),
            x80_str(c[5]), x80_str(c[6]));
    }
    group_end();

    /* FPREM/FPREM1: remainder, C0 C3 C1 = low quotient bits, C2 = incomplete. */
    group_begin("x87-fprem");
    const long double pr[][2] = {
        {10.5L, 3.0L},  {-10.5L, 3.0L}, {10.5L, -3.0L}, {7.0L, 2.0L},   {5.0L, 0.0L},
        {1e30L, 3.0L},  {1e300L, 7.0L}, {3.0L, 10.5L},  {-0.0L, 1.0L},  {13.0L, 4.0L},
        {11.0L, 4.0L},  {2.5L, 1.0L},   {3.5L, 1.0L},   {1e4000L, 1e-4000L},
    };
    for (unsigned i = 0; i < N(pr); i++) {
        long double r = x87_prem(pr[i][0], pr[i][1], CW_DEFAULT, &sw);
        /* An incomplete reduction (C2) shrinks the exponent by an amount the
         * SDM leaves to the implementation (32 to 63), and the quotient bits
         * are undefined: only C2 is printed then. */
        if (sw & SW_C2)
            out("fprem %s %s -> incomplete", x80_str(pr[i][0]), x80_str(pr[i][1]));
        else
            out("fprem %s %s -> %s sw %04x", x80_str(pr[i][0]), x80_str(pr[i][1]), x80_str(r),
                swq(sw & (SW_EXC | SW_C0 | SW_C3)) | (sw & SW_C1));
        r = x87_prem1(pr[i][0], pr[i][1], CW_DEFAULT, &sw);
        /* QEMU gets FPREM1's quotient bits wrong */
        if (sw & SW_C2)
            out("fprem1 %s %s -> incomplete", x80_str(pr[i][0]), x80_str(pr[i][1]));
        else
            out("fprem1 %s %s -> %s sw %04x", x80_str(pr[i][0]), x80_str(pr[i][1]),
                x80_str(r), swq(sw & (qemu_gaps ? SW_EXC : SW_EXC | SW_C0 | SW_C1 | SW_C3)));
        r = x87_scale(pr[i][0], pr[i][1], CW_DEFAULT, &sw);
        out("fscale %s %s -> %s sw %04x", x80_str(pr[i][0]), x80_str(pr[i][1]), x80_str(r),
            swq(sw & SW_ARITH));
    }
    group_end();

    /* Comparisons: FCOM raises IE on any NaN, FUCOM only on SNaN; FCOMI and
     * FUCOMI report in ZF PF CF. */
    group_begin("x87-compare-fxam");
    /* FCOMI clears OF SF AF; QEMU leaves them. */
    const uint32_t fcomi_def = qemu_gaps ? ZF | PF | CF : ARITH;
    for (unsigned i = 0; i < N(v); i++)
        for (unsigned j = 0; j < N(v); j += 2) {
            uint16_t s1, s2;
            uint32_t f1, f2;
            __asm__ volatile("fninit\n\tfldt %[b]\n\tfldt %[a]\n\tfcom %%st(1)\n\tfnstsw %[s]"
                             : [s] "=m"(s1) : [a] "m"(v[i]), [b] "m"(v[j]) : X87_STACK_CLOBBERS);
            __asm__ volatile("fninit\n\tfldt %[b]\n\tfldt %[a]\n\tfucom %%st(1)\n\tfnstsw %[s]"
                             : [s] "=m"(s2) : [a] "m"(v[i]), [b] "m"(v[j]) : X87_STACK_CLOBBERS);
            __asm__ volatile("fninit\n\tfldt %[b]\n\tfldt %[a]\n\tfcomi %%st(1), %%st\n\t"
                             "pushf\n\tpop %[f]"
                             : [f] "=r"(f1) : [a] "m"(v[i]), [b] "m"(v[j])
                             : "cc", X87_STACK_CLOBBERS);
            __asm__ volatile("fninit\n\tfldt %[b]\n\tfldt %[a]\n\tfucomi %%st(1), %%st\n\t"
                             "pushf\n\tpop %[f]"
                             : [f] "=r"(f2) : [a] "m"(v[i]), [b] "m"(v[j])
                             : "cc", X87_STACK_CLOBBERS);
            const uint16_t m = SW_EXC | SW_C0 | SW_C2 | SW_C3;
            out("%s %s fcom %04x fucom %04x fcomi %s fucomi %s", x80_str(v[i]), x80_str(v[j]),
                swq(s1 & m), swq(s2 & m), fl(f1, fcomi_def), fl(f2, fcomi_def));
        }
    for (unsigned i = 0; i < N(v); i++) {
        __asm__ volatile("fninit\n\tfldt %[a]\n\tfxam\n\tfnstsw %[s]"
                         : [s] "=m"(sw) : [a] "m"(v[i]) : X87_STACK_CLOBBERS);
        out("fxam %s -> %04x", x80_str(v[i]), sw & (SW_C0 | SW_C1 | SW_C2 | SW_C3));
    }
    __asm__ volatile("fninit\n\tfxam\n\tfnstsw %[s]" : [s] "=m"(sw) : : X87_STACK_CLOBBERS);
    out("fxam empty -> %04x", sw & (SW_C0 | SW_C2 | SW_C3));
    /* Stack overflow and underflow: IE with SF, C1 telling which.  QEMU
     * reports neither. */
    if (!qemu_gaps) {
        __asm__ volatile("fninit\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\t"
                         "fld1\n\tfld1\n\tfld1\n\tfnstsw %[s]"
                         : [s] "=m"(sw) : : X87_STACK_CLOBBERS);
        out("push 9 -> sw %04x", sw & (SW_EXC | SW_SF | SW_C1));
        __asm__ volatile("fninit\n\tfadd %%st(1), %%st\n\tfnstsw %[s]"
                         : [s] "=m"(sw) : : X87_STACK_CLOBBERS);
        out("fadd empty -> sw %04x", sw & (SW_EXC | SW_SF | SW_C1));
    }
    group_end();

    group_begin("x87-transcendental");
    const long double tv[] = {0.0L, 0.5L, 1.0L, -1.0L, 3.0L, 1e10L, 1e19L, 1e30L, -0.25L, 0.75L};
    for (unsigned i = 0; i < N(tv); i++) {
        long double s = x87_sin(tv[i], CW_DEFAULT, &sw);
        uint16_t sw2;
        long double c = x87_cos(tv[i], CW_DEFAULT, &sw2);
        /* C2 set: argument out of range (|x| >= 2^63), st0 unchanged */
        out("fsin/fcos %s -> %08x %08x c2 %u %u", x80_str(tv[i]), x80_as_float_bits(s),
            x80_as_float_bits(c), !!(sw & SW_C2), !!(sw2 & SW_C2));
        if (tv[i] >= -1.0L && tv[i] <= 1.0L) {
            long double e = x87_f2xm1(tv[i], CW_DEFAULT, &sw);
            out("f2xm1 %s -> %08x", x80_str(tv[i]), x80_as_float_bits(e));
        }
        if (tv[i] > 0) {
            long double l = x87_yl2x(tv[i], 3.0L, CW_DEFAULT, &sw);
            out("fyl2x %s -> %08x", x80_str(tv[i]), x80_as_float_bits(l));
        }
        long double a = x87_patan(tv[i], 1.0L, CW_DEFAULT, &sw);
        out("fpatan 1/%s -> %08x", x80_str(tv[i]), x80_as_float_bits(a));
    }
    group_end();
}

/* ---- MMX --------------------------------------------------------------------------- */

#define MMX_BIN(name, insn)                                                              \
    static uint64_t name(uint64_t a, uint64_t b)                                         \
    {                                                                                    \
        __asm__("movq %[a], %%mm0\n\tmovq %[b], %%mm1\n\t" insn " %%mm1, %%mm0\n\t"       \
                "movq %%mm0, %[a]\n\temms"                                               \
                : [a] "+m"(a)                                                            \
                : [b] "m"(b)                                                             \
                : "mm0", "mm1", X87_STACK_CLOBBERS);                                     \
        return a;                                                                        \
    }
MMX_BIN(mmx_paddb, "paddb")
MMX_BIN(mmx_paddw, "paddw")
MMX_BIN(mmx_paddd, "paddd")
MMX_BIN(mmx_paddsb, "paddsb")
MMX_BIN(mmx_paddusw, "paddusw")
MMX_BIN(mmx_psubsw, "psubsw")
MMX_BIN(mmx_psubusb, "psubusb")
MMX_BIN(mmx_pmullw, "pmullw")
MMX_BIN(mmx_pmulhw, "pmulhw")
MMX_BIN(mmx_pmaddwd, "pmaddwd")
MMX_BIN(mmx_pcmpeqb, "pcmpeqb")
MMX_BIN(mmx_pcmpgtw, "pcmpgtw")
MMX_BIN(mmx_packsswb, "packsswb")
MMX_BIN(mmx_packuswb, "packuswb")
MMX_BIN(mmx_packssdw, "packssdw")
MMX_BIN(mmx_punpcklbw, "punpcklbw")
MMX_BIN(mmx_punpckhwd, "punpckhwd")
MMX_BIN(mmx_punpckhdq, "punpckhdq")
MMX_BIN(mmx_pandn, "pandn")
MMX_BIN(mmx_pxor, "pxor")
MMX_BIN(mmx_psllw, "psllw")
MMX_BIN(mmx_psrad, "psrad")
MMX_BIN(mmx_psrlq, "psrlq")
MMX_BIN(mmx_pmuludq, "pmuludq") /* SSE2 on MMX registers */
MMX_BIN(mmx_psadbw, "psadbw")   /* SSE on MMX registers */
MMX_BIN(mmx_pavgb, "pavgb")

static const uint64_t v64[] = {
    0, 0xffffffffffffffffull, 0x0123456789abcdefull, 0x8000800080008000ull,
    0x7fff7fff7fff7fffull, 0x00ff00ff80017ffeull, 0x0000000000000040ull, 0xfedcba9876543210ull,
};

static void test_mmx(void)
{
    static const struct {
        const char *name;
        uint64_t (*fn)(uint64_t, uint64_t);
    } ops[] = {
        {"paddb", mmx_paddb},         {"paddw", mmx_paddw},         {"paddd", mmx_paddd},
        {"paddsb", mmx_paddsb},       {"paddusw", mmx_paddusw},     {"psubsw", mmx_psubsw},
        {"psubusb", mmx_psubusb},     {"pmullw", mmx_pmullw},       {"pmulhw", mmx_pmulhw},
        {"pmaddwd", mmx_pmaddwd},     {"pcmpeqb", mmx_pcmpeqb},     {"pcmpgtw", mmx_pcmpgtw},
        {"packsswb", mmx_packsswb},   {"packuswb", mmx_packuswb},   {"packssdw", mmx_packssdw},
        {"punpcklbw", mmx_punpcklbw}, {"punpckhwd", mmx_punpckhwd}, {"punpckhdq", mmx_punpckhdq},
        {"pandn", mmx_pandn},         {"pxor", mmx_pxor},           {"psllw", mmx_psllw},
        {"psrad", mmx_psrad},         {"psrlq", mmx_psrlq},         {"pmuludq", mmx_pmuludq},
        {"psadbw", mmx_psadbw},       {"pavgb", mmx_pavgb},
    };

    group_begin("mmx");
    for (unsigned o = 0; o < N(ops); o++)
        for (unsigned i = 0; i < N(v64); i++)
            for (unsigned j = 0; j < N(v64); j++)
                out("%s %016llx %016llx -> %016llx", ops[o].name, (unsigned long long)v64[i],
                    (unsigned long long)v64[j],
                    (unsigned long long)ops[o].fn(v64[i], v64[j]));
    /* After EMMS the x87 tag word is empty again: FXAM says so. */
    uint16_t sw;
    __asm__ volatile("fninit\n\tpxor %%mm0, %%mm0\n\temms\n\tfxam\n\tfnstsw %[s]"
                     : [s] "=m"(sw) : : "mm0", X87_STACK_CLOBBERS);
    out("emms then fxam -> %04x", sw & (SW_C0 | SW_C2 | SW_C3));
    group_end();
}

/* ---- SSE / SSE2 ------------------------------------------------------------------------ */

typedef union {
    uint8_t b[16];
    uint16_t w[8];
    uint32_t d[4];
    uint64_t q[2];
} v128;

#define MXCSR_DEFAULT 0x1f80u /* all exceptions masked, nearest */
#define MXCSR_FLAGS 0x003fu
#define MXCSR_DE 0x0002u
#define MXCSR_DAZ 0x0040u
#define MXCSR_FTZ 0x8000u

/* MXCSR's exception flags; QEMU does not set DE (denormal operand). */
static uint32_t csrq(uint32_t csr)
{
    return csr & MXCSR_FLAGS & (qemu_gaps ? ~MXCSR_DE : ~0u);
}

static const char *v128_str(const v128 *v)
{
    static char s[4][40];
    static unsigned k;
    char *p = s[k++ % 4];
    snprintf(p, 40, "%08x.%08x.%08x.%08x", v->d[3], v->d[2], v->d[1], v->d[0]);
    return p;
}

/* x = x op y with MXCSR = csr; *csr_out is MXCSR afterwards. */
#define SSE_BIN(name, insn)                                                              \
    static v128 name(v128 x, v128 y, uint32_t csr, uint32_t *csr_out)                    \
    {                                                                                    \
        __asm__ volatile("ldmxcsr %[ci]\n\tmovdqu %[x], %%xmm0\n\tmovdqu %[y], %%xmm1\n\t" \
                         insn " %%xmm1, %%xmm0\n\tmovdqu %%xmm0, %[x]\n\tstmxcsr %[co]"  \
                         : [x] "+m"(x), [co] "=m"(*csr_out)                              \
                         : [y] "m"(y), [ci] "m"(csr)                                     \
                         : "xmm0", "xmm1");                                              \
        return x;                                                                        \
    }
SSE_BIN(sse_addps, "addps")
SSE_BIN(sse_subps, "subps")
SSE_BIN(sse_mulps, "mulps")
SSE_BIN(sse_divps, "divps")
SSE_BIN(sse_minps, "minps")
SSE_BIN(sse_maxps, "maxps")
SSE_BIN(sse_sqrtps, "sqrtps")
SSE_BIN(sse_addpd, "addpd")
SSE_BIN(sse_mulpd, "mulpd")
SSE_BIN(sse_divsd, "divsd")
SSE_BIN(sse_sqrtpd, "sqrtpd")
SSE_BIN(sse_cmpltps, "cmpltps")
SSE_BIN(sse_cmpunordps, "cmpunordps")
SSE_BIN(sse_cmpnleps, "cmpnleps")
SSE_BIN(sse_cmpeqpd, "cmpeqpd")
SSE_BIN(sse_cvtps2dq, "cvtps2dq")
SSE_BIN(sse_cvttps2dq, "cvttps2dq")
SSE_BIN(sse_cvtdq2ps, "cvtdq2ps")
SSE_BIN(sse_cvtpd2ps, "cvtpd2ps")
SSE_BIN(sse_cvtps2pd, "cvtps2pd")
SSE_BIN(sse_cvtpd2dq, "cvtpd2dq")
SSE_BIN(sse_unpcklps, "unpcklps")
SSE_BIN(sse_shufps, "shufps $0x1b,")
SSE_BIN(sse_andnps, "andnps")
SSE_BIN(sse_paddq, "paddq")
SSE_BIN(sse_psubusb, "psubusb")
SSE_BIN(sse_pmulhuw, "pmulhuw")
SSE_BIN(sse_pmuludq, "pmuludq")
SSE_BIN(sse_pmaddwd, "pmaddwd")
SSE_BIN(sse_psadbw, "psadbw")
SSE_BIN(sse_pminub, "pminub")
SSE_BIN(sse_pmaxsw, "pmaxsw")
SSE_BIN(sse_pcmpgtb, "pcmpgtb")
SSE_BIN(sse_pcmpeqd, "pcmpeqd")
SSE_BIN(sse_packssdw, "packssdw")
SSE_BIN(sse_packuswb, "packuswb")
SSE_BIN(sse_punpckhqdq, "punpckhqdq")
SSE_BIN(sse_punpcklbw, "punpcklbw")
SSE_BIN(sse_pshufd, "pshufd $0x4e,")
SSE_BIN(sse_pshufhw, "pshufhw $0xb1,")
SSE_BIN(sse_pslldq, "movdqa %%xmm0, %%xmm1\n\tpslldq $5, %%xmm0\n\tpor")
SSE_BIN(sse_psrldq, "movdqa %%xmm0, %%xmm1\n\tpsrldq $17, %%xmm0\n\tpor")
SSE_BIN(sse_psraw, "psraw")
SSE_BIN(sse_psrld, "psrld")
SSE_BIN(sse_psllq, "psllq")
SSE_BIN(sse_pavgw, "pavgw")

static const uint32_t f32[] = {
    0x00000000, 0x80000000, 0x3f800000, 0x40400000, 0xbfc00000, 0x3eaaaaab, 0x7f7fffff,
    0x00800000, 0x00000001, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fa00000, 0xffc00001,
    0x4f000000, 0xcf000001, 0x3f000000, 0x3fc00000, 0x40200000, 0xc0200000,
};
static const uint64_t f64[] = {
    0, 0x8000000000000000ull, 0x3ff0000000000000ull, 0x4008000000000000ull,
    0x3fd5555555555555ull, 0x7fefffffffffffffull, 0x0010000000000000ull, 0x0000000000000001ull,
    0x7ff0000000000000ull, 0xfff0000000000000ull, 0x7ff8000000000000ull, 0x7ff4000000000000ull,
    0x41dfffffffc00000ull, 0xc1e0000000200000ull, 0x3ff8000000000000ull, 0x36a0000000000000ull,
};

static bool is_nan32(uint32_t v)
{
    return (v & 0x7f800000u) == 0x7f800000u && (v & 0x007fffffu);
}

static bool is_nan64(uint64_t v)
{
    return (v & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (v & 0x000fffffffffffffull);
}

/* Does some lane have a NaN in both operands? */
static bool two_nans(const v128 *a, const v128 *b, bool dbl)
{
    for (unsigned e = 0; e < (dbl ? 2u : 4u); e++)
        if (dbl ? is_nan64(a->q[e]) && is_nan64(b->q[e]) : is_nan32(a->d[e]) && is_nan32(b->d[e]))
            return true;
    return false;
}

static void test_sse(void)
{
    /* QEMU gaps: with two NaN operands x86 returns the first (destination)
     * one, quieted, QEMU the other; and MINPS/MAXPS return a denormal
     * operand as is under DAZ, where x86 returns the zero it counts as. */
    enum { NAN2 = 1, DAZ_MINMAX = 2 };
    static const struct {
        const char *name;
        v128 (*fn)(v128, v128, uint32_t, uint32_t *);
        bool dbl;
        unsigned qemu_gap;
    } fops[] = {
        {"addps", sse_addps, false, NAN2},     {"subps", sse_subps, false, NAN2},
        {"mulps", sse_mulps, false, NAN2},     {"divps", sse_divps, false, NAN2},
        {"minps", sse_minps, false, DAZ_MINMAX}, {"maxps", sse_maxps, false, DAZ_MINMAX},
        {"sqrtps", sse_sqrtps, false, 0},      {"cmpltps", sse_cmpltps, false, 0},
        {"cmpunordps", sse_cmpunordps, false, 0}, {"cmpnleps", sse_cmpnleps, false, 0},
        {"cvtps2dq", sse_cvtps2dq, false, 0},  {"cvttps2dq", sse_cvttps2dq, false, 0},
        {"cvtps2pd", sse_cvtps2pd, false, 0},  {"addpd", sse_addpd, true, NAN2},
        {"mulpd", sse_mulpd, true, NAN2},      {"divsd", sse_divsd, true, NAN2},
        {"sqrtpd", sse_sqrtpd, true, 0},       {"cmpeqpd", sse_cmpeqpd, true, 0},
        {"cvtpd2ps", sse_cvtpd2ps, true, 0},   {"cvtpd2dq", sse_cvtpd2dq, true, 0},
    };
    static const uint32_t modes[] = {
        MXCSR_DEFAULT, MXCSR_DEFAULT | 0x2000, MXCSR_DEFAULT | 0x4000, MXCSR_DEFAULT | 0x6000,
        MXCSR_DEFAULT | MXCSR_DAZ | MXCSR_FTZ,
    };
    static const char *const mode_name[] = {"near", "down", "up", "zero", "daz+ftz"};
    char name[32];

    for (unsigned o = 0; o < N(fops); o++) {
        snprintf(name, sizeof(name), "sse-%s", fops[o].name);
        group_begin(name);
        unsigned n = fops[o].dbl ? N(f64) : N(f32);
        for (unsigned i = 0; i < n; i++)
            for (unsigned j = 0; j < n; j++)
                for (unsigned m = 0; m < N(modes); m++) {
                    v128 a, b;
                    uint32_t csr;
                    if (fops[o].dbl) {
                        a.q[0] = f64[i], a.q[1] = f64[(i + 5) % n];
                        b.q[0] = f64[j], b.q[1] = f64[(j + 3) % n];
                    } else {
                        for (unsigned e = 0; e < 4; e++) {
                            a.d[e] = f32[(i + 5 * e) % n];
                            b.d[e] = f32[(j + 3 * e) % n];
                        }
                    }
                    if (qemu_gaps && (fops[o].qemu_gap & NAN2) && two_nans(&a, &b, fops[o].dbl))
                        continue;
                    if (qemu_gaps && (fops[o].qemu_gap & DAZ_MINMAX) && (modes[m] & MXCSR_DAZ))
                        continue;
                    v128 r = fops[o].fn(a, b, modes[m], &csr);
                    out("%s %s %-7s -> %s mxcsr %02x", v128_str(&a), v128_str(&b), mode_name[m],
                        v128_str(&r), csrq(csr));
                }
        group_end();
    }

    group_begin("sse-scalar-convert");
    for (unsigned i = 0; i < N(f64); i++)
        for (unsigned m = 0; m < 4; m++) {
            uint32_t r, rt, csr1, csr2, csr = modes[m];
            __asm__ volatile("ldmxcsr %[ci]\n\tcvtsd2si %[x], %[r]\n\tstmxcsr %[co]"
                             : [r] "=r"(r), [co] "=m"(csr1) : [x] "m"(f64[i]), [ci] "m"(csr));
            __asm__ volatile("ldmxcsr %[ci]\n\tcvttsd2si %[x], %[r]\n\tstmxcsr %[co]"
                             : [r] "=r"(rt), [co] "=m"(csr2) : [x] "m"(f64[i]), [ci] "m"(csr));
            out("cvtsd2si %016llx %s -> %08x mxcsr %02x cvttsd2si %08x mxcsr %02x",
                (unsigned long long)f64[i], mode_name[m], r, csrq(csr1), rt,
                csrq(csr2));
        }
    for (unsigned i = 0; i < N(vals); i++)
        for (unsigned m = 0; m < 4; m++) {
            uint32_t csr = modes[m], csr1;
            float f;
            __asm__ volatile("ldmxcsr %[ci]\n\tcvtsi2ss %[x], %%xmm0\n\tmovss %%xmm0, %[f]\n\t"
                             "stmxcsr %[co]"
                             : [f] "=m"(f), [co] "=m"(csr1) : [x] "r"(vals[i]), [ci] "m"(csr)
                             : "xmm0");
            uint32_t fb;
            memcpy(&fb, &f, 4);
            out("cvtsi2ss %08x %s -> %08x mxcsr %02x", vals[i], mode_name[m], fb,
                csrq(csr1));
        }
    for (unsigned i = 0; i < N(f32); i++)
        for (unsigned j = 0; j < N(f32); j += 3) {
            uint32_t f1, f2, c1, c2, csr = MXCSR_DEFAULT;
            __asm__ volatile("ldmxcsr %[ci]\n\tmovss %[a], %%xmm0\n\tcomiss %[b], %%xmm0\n\t"
                             "pushf\n\tpop %[f]\n\tstmxcsr %[co]"
                             : [f] "=r"(f1), [co] "=m"(c1)
                             : [a] "m"(f32[i]), [b] "m"(f32[j]), [ci] "m"(csr) : "xmm0", "cc");
            __asm__ volatile("ldmxcsr %[ci]\n\tmovss %[a], %%xmm0\n\tucomiss %[b], %%xmm0\n\t"
                             "pushf\n\tpop %[f]\n\tstmxcsr %[co]"
                             : [f] "=r"(f2), [co] "=m"(c2)
                             : [a] "m"(f32[i]), [b] "m"(f32[j]), [ci] "m"(csr) : "xmm0", "cc");
            out("comiss %08x %08x -> %s mxcsr %02x ucomiss %s mxcsr %02x", f32[i], f32[j],
                fl(f1, ARITH), csrq(c1), fl(f2, ARITH), csrq(c2));
        }
    group_end();

    static const struct {
        const char *name;
        v128 (*fn)(v128, v128, uint32_t, uint32_t *);
    } iops[] = {
        {"cvtdq2ps", sse_cvtdq2ps},     {"unpcklps", sse_unpcklps}, {"shufps", sse_shufps},
        {"andnps", sse_andnps},         {"paddq", sse_paddq},       {"psubusb", sse_psubusb},
        {"pmulhuw", sse_pmulhuw},       {"pmuludq", sse_pmuludq},   {"pmaddwd", sse_pmaddwd},
        {"psadbw", sse_psadbw},         {"pminub", sse_pminub},     {"pmaxsw", sse_pmaxsw},
        {"pcmpgtb", sse_pcmpgtb},       {"pcmpeqd", sse_pcmpeqd},   {"packssdw", sse_packssdw},
        {"packuswb", sse_packuswb},     {"punpckhqdq", sse_punpckhqdq},
        {"punpcklbw", sse_punpcklbw},   {"pshufd", sse_pshufd},     {"pshufhw", sse_pshufhw},
        {"pslldq", sse_pslldq},         {"psrldq", sse_psrldq},     {"psraw", sse_psraw},
        {"psrld", sse_psrld},           {"psllq", sse_psllq},       {"pavgw", sse_pavgw},
    };
    group_begin("sse2-integer");
    for (unsigned o = 0; o < N(iops); o++)
        for (unsigned i = 0; i < N(v64); i++)
            for (unsigned j = 0; j < N(v64); j++) {
                v128 a = {.q = {v64[i], v64[(i + 3) % N(v64)]}};
                v128 b = {.q = {v64[j], v64[(j + 1) % N(v64)]}};
                uint32_t csr;
                if (o >= N(iops) - 4) /* shift counts: small, at and above width */
                    b.q[0] = (uint64_t[]){0, 1, 7, 15, 16, 31, 32, 63, 64, 1000}[j % 10],
                    b.q[1] = 0x5a5a5a5a5a5a5a5aull;
                v128 r = iops[o].fn(a, b, MXCSR_DEFAULT, &csr);
                out("%s %s %s -> %s", iops[o].name, v128_str(&a), v128_str(&b), v128_str(&r));
            }
    for (unsigned i = 0; i < N(v64); i++) {
        v128 a = {.q = {v64[i], v64[(i + 5) % N(v64)]}};
        uint32_t mb, mp, w;
        __asm__("movdqu %[a], %%xmm0\n\tpmovmskb %%xmm0, %[m]\n\tmovmskps %%xmm0, %[p]\n\t"
                "pextrw $5, %%xmm0, %[w]"
                : [m] "=r"(mb), [p] "=r"(mp), [w] "=r"(w) : [a] "m"(a) : "xmm0");
        v128 r;
        uint32_t ins = 0xbeef0000u | i;
        __asm__("movdqu %[a], %%xmm0\n\tpinsrw $3, %[v], %%xmm0\n\tmovdqu %%xmm0, %[r]"
                : [r] "=m"(r) : [a] "m"(a), [v] "r"(ins) : "xmm0");
        out("%s pmovmskb %04x movmskps %x pextrw5 %04x pinsrw3 %s", v128_str(&a), mb, mp, w,
            v128_str(&r));
    }
    group_end();
}

/* ---- exceptions as signals ------------------------------------------------------ */

static sigjmp_buf sig_env;
static volatile sig_atomic_t sig_got_code;

static void sig_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    sig_got_code = si->si_code;
    siglongjmp(sig_env, sig);
}

/* Runs `fn` and tells which signal it raised, if any. */
static void sig_case(const char *what, void (*fn)(void), bool show_code)
{
    int sig = sigsetjmp(sig_env, 1);

    if (sig == 0) {
        fn();
        out("%-22s -> no signal", what);
    } else if (show_code) {
        out("%-22s -> %s code %d", what, sigabbrev_np(sig), (int)sig_got_code);
    } else {
        out("%-22s -> %s", what, sigabbrev_np(sig));
    }
    __asm__ volatile("fninit" : : : X87_STACK_CLOBBERS);
    uint32_t csr = MXCSR_DEFAULT;
    __asm__ volatile("ldmxcsr %0" : : "m"(csr));
}

static void do_div0(void)
{
    uint32_t a = 1, d = 0, z = 0;
    __asm__ volatile("divl %[z]" : "+a"(a), "+d"(d) : [z] "r"(z) : "cc");
}

static void do_idiv_overflow(void)
{
    uint32_t a = 0x80000000u, d = 0xffffffffu, m1 = 0xffffffffu;
    __asm__ volatile("idivl %[m]" : "+a"(a), "+d"(d) : [m] "r"(m1) : "cc");
}

static void do_aam0(void)
{
    uint32_t a = 0x1234;
    __asm__ volatile(".byte 0xd4, 0x00" : "+a"(a) : : "cc"); /* aam $0 */
}

static void do_ud2(void)
{
    __asm__ volatile("ud2");
}

static void do_int3(void)
{
    __asm__ volatile("int3");
}

static void do_hlt(void)
{
    __asm__ volatile("hlt");
}

static void do_cli(void)
{
    __asm__ volatile("cli");
}

static void do_into(void)
{
    uint32_t x = 0x7fffffff;
    __asm__ volatile("addl $1, %0\n\tinto" : "+r"(x) : : "cc");
}

static void do_null_read(void)
{
    volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)0x10;
    (void)*p;
}

static uint8_t *ro_page;

static void do_ro_write(void)
{
    *(volatile uint8_t *)ro_page = 1;
}

static void do_x87_zerodiv(void)
{
    uint16_t cw = CW_DEFAULT & ~0x0004u; /* unmask ZE */
    long double r;
    __asm__ volatile("fninit\n\tfldcw %[cw]\n\tfldz\n\tfld1\n\tfdiv %%st(1), %%st\n\t"
                     "fwait\n\tfstpt %[r]"
                     : [r] "=m"(r) : [cw] "m"(cw) : X87_STACK_CLOBBERS);
}

static void do_sse_zerodiv(void)
{
    uint32_t csr = MXCSR_DEFAULT & ~0x0200u; /* unmask ZE */
    static const float one = 1.0f, zero = 0.0f;
    __asm__ volatile("ldmxcsr %[c]\n\tmovss %[o], %%xmm0\n\tdivss %[z], %%xmm0"
                     : : [c] "m"(csr), [o] "m"(one), [z] "m"(zero) : "xmm0");
}

static void do_syscall_enosys(void)
{
    uint32_t r = 9999;
    __asm__ volatile("int $0x80" : "+a"(r) : : "memory");
    out("int $0x80 nr 9999 -> %d", (int32_t)r);
}

static void test_signals(void)
{
    struct sigaction sa = {.sa_sigaction = sig_handler, .sa_flags = SA_SIGINFO};
    static const int sigs[] = {SIGFPE, SIGILL, SIGSEGV, SIGTRAP, SIGBUS};

    sigemptyset(&sa.sa_mask);
    for (unsigned i = 0; i < N(sigs); i++)
        sigaction(sigs[i], &sa, NULL);
    ro_page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    group_begin("exceptions");
    sig_case("div by 0 (#DE)", do_div0, true);
    sig_case("idiv overflow (#DE)", do_idiv_overflow, true);
    sig_case("aam $0 (#DE)", do_aam0, true);
    sig_case("ud2 (#UD)", do_ud2, true);
    sig_case("int3 (#BP)", do_int3, false);
    sig_case("hlt (#GP)", do_hlt, false);
    sig_case("cli (#GP)", do_cli, false);
    sig_case("into (#OF)", do_into, false);
    sig_case("read 0x10 (#PF)", do_null_read, true);
    if (ro_page != MAP_FAILED)
        sig_case("write r/o page (#PF)", do_ro_write, true);
    if (!qemu_gaps) { /* qemu-i386 raises no signal for these */
        sig_case("x87 1/0 unmasked (#MF)", do_x87_zerodiv, true);
        sig_case("SSE 1/0 unmasked (#XM)", do_sse_zerodiv, true);
    }
    sig_case("int $0x80 ENOSYS", do_syscall_enosys, false);
    group_end();

    sa.sa_handler = SIG_DFL;
    sa.sa_flags = 0;
    for (unsigned i = 0; i < N(sigs); i++)
        sigaction(sigs[i], &sa, NULL);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) {
            verbose = true;
        } else if (!strcmp(argv[i], "-q")) {
            qemu_gaps = true;
        } else {
            fprintf(stderr, "usage: %s [-v] [-q]\n", argv[0]);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    printf("popek fidelity 1\n");
    test_alu2();
    test_alu1();
    test_shifts();
    test_shift_imm();
    test_shxd();
    test_mul();
    test_div();
    test_bits();
    test_bcd();
    test_conditions();
    test_strings();
    test_atomics();
    test_x87();
    test_mmx();
    test_sse();
    test_signals();
    printf("fidelity: done\n");
    return 0;
}
