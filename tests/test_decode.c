/*
 * The instruction classifier (src/dbt/decode.c).
 *
 * Two kinds of test.  Tables of hand-written encodings pin the class of every
 * sensitive and privileged instruction in each of its forms (prefixes, operand
 * sizes, register and memory operands), of every branch form the translator
 * rewrites, and of a broad sample of innocuous instructions, which must be
 * copied as they are.  Every table entry is a complete instruction: decoding
 * it must consume exactly its bytes, which also catches a typo in the table.
 *
 * A generated corpus then checks what no table can: a quarter of a million
 * pseudo-random, prefix- and opcode-biased byte strings are decoded by Zydis
 * (through dbt_decode) and by Capstone, an independent decoder, and where both
 * accept an instruction their lengths must agree, because a wrong length
 * silently corrupts every translation after it.  The same corpus checks
 * invariants of the classification itself (a privileged instruction is never
 * copied, a branch class only ever comes from its own opcode, memory operands
 * through GS or CS always get the segment swap).
 */
#include <capstone/capstone.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "popek/dbt.h"

#define MAX_BYTES 16

struct bytes {
    uint8_t b[MAX_BYTES];
    unsigned n;
};

/* "0f 01 00" -> bytes.  Table strings are trusted test input. */
static struct bytes hex(const char *s)
{
    struct bytes r = { .n = 0 };
    unsigned v;
    int used;
    while (r.n < MAX_BYTES && sscanf(s, " %2x%n", &v, &used) == 1) {
        r.b[r.n++] = (uint8_t)v;
        s += used;
    }
    return r;
}

static ZydisDecoder dec;

static void decoder_setup(void)
{
    dbt_decoder_init(&dec);
}

static const char *class_name(enum dbt_class c)
{
    static const char *const names[] = {
        [DBT_IDENT] = "IDENT",     [DBT_JUMP] = "JUMP",       [DBT_JCC] = "JCC",
        [DBT_LOOP] = "LOOP",       [DBT_CALL] = "CALL",       [DBT_IND_JMP] = "IND_JMP",
        [DBT_IND_CALL] = "IND_CALL", [DBT_RET] = "RET",       [DBT_CLI] = "CLI",
        [DBT_STI] = "STI",         [DBT_PUSHF] = "PUSHF",     [DBT_POPF] = "POPF",
        [DBT_CALLOUT] = "CALLOUT", [DBT_INVALID] = "INVALID",
    };
    return (unsigned)c <= DBT_INVALID ? names[c] : "?";
}

/* ---- classification tables --------------------------------------------------- */

struct enc {
    const char *hex;
    enum dbt_class cls;
    enum callout_kind kind;  /* when cls == DBT_CALLOUT */
};

#define CO(k) DBT_CALLOUT, CO_##k
#define CLS(c) DBT_##c, CO_OTHER

/* Decode `e` at `cpl` and check the whole instruction was consumed and the
 * class (and callout kind) is as expected.  cr_expect so one run lists every
 * wrong entry of a table. */
static void expect_class(const char *hexstr, unsigned cpl, enum dbt_class cls,
                         enum callout_kind kind)
{
    struct bytes in = hex(hexstr);
    struct dbt_insn di;
    bool ok = dbt_decode(&dec, in.b, in.n, cpl, &di);
    cr_expect(ok, "%s: does not decode", hexstr);
    if (!ok)
        return;
    cr_expect_eq(di.zi.length, in.n, "%s (%s): length %u, table has %u bytes", hexstr,
                 ZydisMnemonicGetString(di.zi.mnemonic), di.zi.length, in.n);
    cr_expect_eq(di.cls, cls, "%s (%s) at CPL %u: class %s, expected %s", hexstr,
                 ZydisMnemonicGetString(di.zi.mnemonic), cpl, class_name(di.cls),
                 class_name(cls));
    if (di.cls == DBT_CALLOUT && cls == DBT_CALLOUT)
        cr_expect_eq(di.kind, kind, "%s (%s): callout kind %s, expected %s", hexstr,
                     ZydisMnemonicGetString(di.zi.mnemonic), callout_kind_name(di.kind),
                     callout_kind_name(kind));
}

/* Entries whose class does not depend on the guest CPL: checked at 0 and 3. */
static void expect_table(const struct enc *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        expect_class(t[i].hex, 0, t[i].cls, t[i].kind);
        expect_class(t[i].hex, 3, t[i].cls, t[i].kind);
    }
}

#define EXPECT_TABLE(t) expect_table(t, sizeof(t) / sizeof((t)[0]))

TestSuite(classify, .init = decoder_setup);

Test(classify, descriptor_tables)
{
    static const struct enc t[] = {
        { "0f 01 00", CO(DESCTABLE) },                /* sgdt [eax] */
        { "0f 01 05 00 10 00 00", CO(DESCTABLE) },    /* sgdt [0x1000] */
        { "66 0f 01 00", CO(DESCTABLE) },             /* sgdt, 16-bit operand */
        { "65 0f 01 00", CO(DESCTABLE) },             /* sgdt gs:[eax] */
        { "0f 01 08", CO(DESCTABLE) },                /* sidt [eax] */
        { "0f 01 0c 24", CO(DESCTABLE) },             /* sidt [esp] */
        { "67 0f 01 0f", CO(DESCTABLE) },             /* sidt [bx] */
        { "0f 00 c0", CO(DESCTABLE) },                /* sldt eax */
        { "66 0f 00 c0", CO(DESCTABLE) },             /* sldt ax */
        { "0f 00 44 24 04", CO(DESCTABLE) },          /* sldt [esp+4] */
        { "0f 00 c8", CO(DESCTABLE) },                /* str eax */
        { "0f 00 08", CO(DESCTABLE) },                /* str [eax] */
        { "0f 01 10", CO(DESCTABLE) },                /* lgdt [eax] */
        { "66 0f 01 10", CO(DESCTABLE) },             /* lgdt, 24-bit base */
        { "2e 0f 01 10", CO(DESCTABLE) },             /* lgdt cs:[eax] */
        { "0f 01 18", CO(DESCTABLE) },                /* lidt [eax] */
        { "0f 01 9c 24 00 01 00 00", CO(DESCTABLE) }, /* lidt [esp+0x100] */
        { "0f 00 d0", CO(DESCTABLE) },                /* lldt ax */
        { "0f 00 10", CO(DESCTABLE) },                /* lldt [eax] */
        { "0f 00 d8", CO(DESCTABLE) },                /* ltr ax */
        { "0f 00 18", CO(DESCTABLE) },                /* ltr [eax] */
    };
    EXPECT_TABLE(t);
}

Test(classify, control_registers)
{
    static const struct enc t[] = {
        { "0f 01 e0", CO(CONTROL) },          /* smsw eax */
        { "66 0f 01 e0", CO(CONTROL) },       /* smsw ax */
        { "0f 01 20", CO(CONTROL) },          /* smsw [eax] */
        { "0f 01 f0", CO(CONTROL) },          /* lmsw ax */
        { "0f 01 30", CO(CONTROL) },          /* lmsw [eax] */
        { "0f 06", CO(CONTROL) },             /* clts */
        { "0f 20 c0", CO(CONTROL) },          /* mov eax, cr0 */
        { "0f 20 d0", CO(CONTROL) },          /* mov eax, cr2 */
        { "0f 20 db", CO(CONTROL) },          /* mov ebx, cr3 */
        { "0f 20 e0", CO(CONTROL) },          /* mov eax, cr4 */
        { "0f 20 00", CO(CONTROL) },          /* mod bits are ignored: still mov eax, cr0 */
        { "0f 22 c0", CO(CONTROL) },          /* mov cr0, eax */
        { "0f 22 d8", CO(CONTROL) },          /* mov cr3, eax */
        { "0f 22 e1", CO(CONTROL) },          /* mov cr4, ecx */
        { "0f 21 c0", CO(CONTROL) },          /* mov eax, dr0 */
        { "0f 21 f8", CO(CONTROL) },          /* mov eax, dr7 */
        { "0f 23 c0", CO(CONTROL) },          /* mov dr0, eax */
        { "0f 23 f0", CO(CONTROL) },          /* mov dr6, eax */
        { "0f 23 f8", CO(CONTROL) },          /* mov dr7, eax */
        { "0f 01 38", CO(CONTROL) },          /* invlpg [eax] */
        { "0f 01 3c 24", CO(CONTROL) },       /* invlpg [esp] */
        { "64 0f 01 38", CO(CONTROL) },       /* invlpg fs:[eax] */
        { "0f 08", CO(CONTROL) },             /* invd */
        { "0f 09", CO(CONTROL) },             /* wbinvd */
    };
    EXPECT_TABLE(t);
}

Test(classify, segments)
{
    static const struct enc t[] = {
        { "0f 02 c1", CO(SEGMENT) },          /* lar eax, ecx */
        { "66 0f 02 c1", CO(SEGMENT) },       /* lar ax, cx */
        { "0f 02 00", CO(SEGMENT) },          /* lar eax, [eax] */
        { "0f 03 c1", CO(SEGMENT) },          /* lsl eax, ecx */
        { "66 0f 03 00", CO(SEGMENT) },       /* lsl ax, [eax] */
        { "0f 00 e0", CO(SEGMENT) },          /* verr ax */
        { "0f 00 20", CO(SEGMENT) },          /* verr [eax] */
        { "0f 00 e8", CO(SEGMENT) },          /* verw ax */
        { "0f 00 28", CO(SEGMENT) },          /* verw [eax] */
        { "06", CO(SEGMENT) },                /* push es */
        { "66 06", CO(SEGMENT) },
        { "07", CO(SEGMENT) },                /* pop es */
        { "0e", CO(SEGMENT) },                /* push cs */
        { "16", CO(SEGMENT) },                /* push ss */
        { "17", CO(SEGMENT) },                /* pop ss */
        { "1e", CO(SEGMENT) },                /* push ds */
        { "1f", CO(SEGMENT) },                /* pop ds */
        { "66 1f", CO(SEGMENT) },
        { "0f a0", CO(SEGMENT) },             /* push fs */
        { "0f a1", CO(SEGMENT) },             /* pop fs */
        { "0f a8", CO(SEGMENT) },             /* push gs */
        { "0f a9", CO(SEGMENT) },             /* pop gs */
        { "66 0f a8", CO(SEGMENT) },
        { "66 0f a9", CO(SEGMENT) },
        { "8c c0", CO(SEGMENT) },             /* mov eax, es */
        { "66 8c c8", CO(SEGMENT) },          /* mov ax, cs */
        { "8c e8", CO(SEGMENT) },             /* mov eax, gs */
        { "8c 18", CO(SEGMENT) },             /* mov [eax], ds */
        { "65 8c 20", CO(SEGMENT) },          /* mov gs:[eax], fs */
        { "8e d8", CO(SEGMENT) },             /* mov ds, eax */
        { "8e d0", CO(SEGMENT) },             /* mov ss, eax */
        { "66 8e e8", CO(SEGMENT) },          /* mov gs, ax */
        { "8e 00", CO(SEGMENT) },             /* mov es, [eax] */
        { "65 8e 20", CO(SEGMENT) },          /* mov fs, gs:[eax] */
        { "c5 00", CO(SEGMENT) },             /* lds eax, [eax] */
        { "66 c5 00", CO(SEGMENT) },          /* lds ax, [eax] */
        { "36 c5 00", CO(SEGMENT) },          /* lds eax, ss:[eax] */
        { "c4 00", CO(SEGMENT) },             /* les eax, [eax] */
        { "0f b4 00", CO(SEGMENT) },          /* lfs */
        { "0f b5 00", CO(SEGMENT) },          /* lgs */
        { "0f b2 00", CO(SEGMENT) },          /* lss */
        { "66 0f b2 04 24", CO(SEGMENT) },    /* lss ax, [esp] */
    };
    EXPECT_TABLE(t);
}

Test(classify, far_branches)
{
    static const struct enc t[] = {
        { "9a 00 00 10 00 08 00", CO(FARBRANCH) },    /* call 0x8:0x100000 */
        { "66 9a 00 10 08 00", CO(FARBRANCH) },       /* call 0x8:0x1000 (ptr16:16) */
        { "ea 00 00 10 00 08 00", CO(FARBRANCH) },    /* jmp 0x8:0x100000 */
        { "66 ea 00 10 08 00", CO(FARBRANCH) },
        { "ff 18", CO(FARBRANCH) },                   /* call far [eax] */
        { "66 ff 18", CO(FARBRANCH) },                /* call far m16:16 */
        { "64 ff 18", CO(FARBRANCH) },                /* call far fs:[eax] */
        { "ff 28", CO(FARBRANCH) },                   /* jmp far [eax] */
        { "ff 2c 85 00 20 00 00", CO(FARBRANCH) },    /* jmp far [eax*4+0x2000] */
        { "65 ff 28", CO(FARBRANCH) },                /* jmp far gs:[eax]: far wins */
        { "cb", CO(FARBRANCH) },                      /* retf */
        { "66 cb", CO(FARBRANCH) },
        { "ca 08 00", CO(FARBRANCH) },                /* retf 8 */
    };
    EXPECT_TABLE(t);
}

Test(classify, interrupts)
{
    static const struct enc t[] = {
        { "cd 80", CO(INTERRUPT) },           /* int 0x80 */
        { "cd 03", CO(INTERRUPT) },           /* int 3, long form */
        { "cc", CO(INTERRUPT) },              /* int3 */
        { "ce", CO(INTERRUPT) },              /* into */
        { "f1", CO(INTERRUPT) },              /* int1 / icebp */
        { "cf", CO(INTERRUPT) },              /* iretd */
        { "66 cf", CO(INTERRUPT) },           /* iret */
    };
    EXPECT_TABLE(t);
}

Test(classify, io)
{
    static const struct enc t[] = {
        { "e4 60", CO(IO) },                  /* in al, 0x60 */
        { "e5 40", CO(IO) },                  /* in eax, 0x40 */
        { "66 e5 40", CO(IO) },               /* in ax, 0x40 */
        { "ec", CO(IO) },                     /* in al, dx */
        { "ed", CO(IO) },
        { "66 ed", CO(IO) },
        { "e6 80", CO(IO) },                  /* out 0x80, al */
        { "e7 40", CO(IO) },
        { "66 e7 40", CO(IO) },
        { "ee", CO(IO) },                     /* out dx, al */
        { "ef", CO(IO) },
        { "66 ef", CO(IO) },
        { "6c", CO(IO) },                     /* insb */
        { "6d", CO(IO) },                     /* insd */
        { "66 6d", CO(IO) },                  /* insw */
        { "f3 6c", CO(IO) },                  /* rep insb */
        { "f3 6d", CO(IO) },
        { "66 f3 6d", CO(IO) },
        { "67 f3 6d", CO(IO) },               /* rep insd with cx/di */
        { "6e", CO(IO) },                     /* outsb */
        { "6f", CO(IO) },                     /* outsd */
        { "66 6f", CO(IO) },                  /* outsw */
        { "f3 6e", CO(IO) },                  /* rep outsb */
        { "f3 6f", CO(IO) },
        { "65 f3 6f", CO(IO) },               /* rep outsd from gs:[esi] */
        { "2e 6e", CO(IO) },
    };
    EXPECT_TABLE(t);
}

Test(classify, system)
{
    static const struct enc t[] = {
        { "f4", CO(HLT) },
        { "0f a2", CO(CPUID) },
        { "0f 32", CO(MSR) },                 /* rdmsr */
        { "0f 30", CO(MSR) },                 /* wrmsr */
        { "0f 33", CO(MSR) },                 /* rdpmc */
        { "0f 34", CO(SYSCALL) },             /* sysenter */
        { "0f 35", CO(SYSCALL) },             /* sysexit */
        { "0f 05", CO(SYSCALL) },             /* syscall: enters the host kernel from compat mode */
        { "0f 07", CO(SYSCALL) },             /* sysret */
        { "0f 01 ef", CO(OTHER) },            /* wrpkru: the host's protection keys */
        { "0f 01 ee", CO(OTHER) },            /* rdpkru */
        { "0f ae 20", CO(OTHER) },            /* xsave [eax]: layout follows the host's XCR0 */
        { "0f ae 28", CO(OTHER) },            /* xrstor [eax] */
        { "0f ae 30", CO(OTHER) },            /* xsaveopt [eax] */
        { "0f c7 20", CO(OTHER) },            /* xsavec [eax] */
        { "0f c7 28", CO(OTHER) },            /* xsaves [eax] */
        { "0f c7 18", CO(OTHER) },            /* xrstors [eax] */
        { "0f 01 d0", CO(OTHER) },            /* xgetbv */
        { "0f 01 d1", CO(OTHER) },            /* xsetbv */
        { "0f 01 c8", CO(OTHER) },            /* monitor */
        { "0f 01 c9", CO(OTHER) },            /* mwait */
        { "0f aa", CO(OTHER) },               /* rsm */
        /* Privileged instructions with no case of their own reach the emulator
         * through Zydis' privileged attribute. */
        { "0f 01 ca", CO(OTHER) },            /* clac */
        { "0f 01 cb", CO(OTHER) },            /* stac */
        { "66 0f 38 82 00", CO(OTHER) },      /* invpcid eax, [eax] */
        { "f3 0f 09", CO(CONTROL) },          /* wbnoinvd: Zydis calls it wbinvd */
        { "0f 01 c4", CO(OTHER) },            /* vmxoff */
    };
    EXPECT_TABLE(t);
}

/* CLI and STI are inline against the virtual IF at CPL 0 and emulated
 * elsewhere (IOPL and VIF rules); PUSHFD and POPFD are inline everywhere
 * (POPFD's translation follows the CPL); the 16-bit PUSHF/POPF are always
 * emulated. */
Test(classify, flags)
{
    static const struct {
        const char *hex;
        enum dbt_class cpl0;
    } t[] = {
        { "fa", DBT_CLI },
        { "fb", DBT_STI },
        { "9c", DBT_PUSHF },
        { "9d", DBT_POPF },
        { "66 9c", DBT_CALLOUT },
        { "66 9d", DBT_CALLOUT },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        expect_class(t[i].hex, 0, t[i].cpl0, CO_FLAGS);
        for (unsigned cpl = 1; cpl <= 3; cpl++)
            expect_class(t[i].hex, cpl,
                         t[i].cpl0 == DBT_PUSHF || t[i].cpl0 == DBT_POPF ? t[i].cpl0 : DBT_CALLOUT,
                         CO_FLAGS);
    }
}

Test(classify, near_branches)
{
    static const struct enc t[] = {
        { "eb 10", CLS(JUMP) },                   /* jmp rel8 */
        { "e9 00 01 00 00", CLS(JUMP) },          /* jmp rel32 */
        { "e8 00 01 00 00", CLS(CALL) },          /* call rel32 */
        { "67 e8 00 01 00 00", CLS(CALL) },       /* address size does not matter */
        { "f2 e8 00 01 00 00", CLS(CALL) },       /* bnd call */
        { "f2 e9 00 01 00 00", CLS(JUMP) },       /* bnd jmp */
        /* A 16-bit operand size truncates EIP to 16 bits: left to the emulator. */
        { "66 eb 10", CO(BRANCH) },
        { "66 e9 00 01", CO(BRANCH) },            /* jmp rel16 */
        { "66 e8 00 01", CO(BRANCH) },            /* call rel16 */
        { "66 74 10", CO(BRANCH) },
        { "66 0f 84 00 01", CO(BRANCH) },         /* jz rel16 */
        { "66 e2 10", CO(BRANCH) },               /* loop, 16-bit IP */
        { "66 c3", CO(BRANCH) },                  /* ret to a 16-bit IP */
        { "66 c2 04 00", CO(BRANCH) },
        { "66 ff e0", CO(BRANCH) },               /* jmp ax */
        { "66 ff d0", CO(BRANCH) },               /* call ax */
        { "66 ff 20", CO(BRANCH) },               /* jmp word [eax] */
        { "70 10", CLS(JCC) },                    /* jo */
        { "74 fe", CLS(JCC) },                    /* jz */
        { "7f 10", CLS(JCC) },                    /* jg */
        { "2e 74 10", CLS(JCC) },                 /* branch-not-taken hint */
        { "3e 75 10", CLS(JCC) },                 /* branch-taken hint */
        { "0f 80 00 01 00 00", CLS(JCC) },        /* jo rel32 */
        { "0f 84 00 01 00 00", CLS(JCC) },
        { "0f 8f 00 01 00 00", CLS(JCC) },
        { "3e 0f 85 00 01 00 00", CLS(JCC) },
        { "e2 fe", CLS(LOOP) },                   /* loop */
        { "e1 fe", CLS(LOOP) },                   /* loope */
        { "e0 fe", CLS(LOOP) },                   /* loopne */
        { "e3 10", CLS(LOOP) },                   /* jecxz */
        { "67 e3 10", CLS(LOOP) },                /* jcxz */
        { "67 e2 fe", CLS(LOOP) },                /* loop on cx */
        { "ff e0", CLS(IND_JMP) },                /* jmp eax */
        { "ff 20", CLS(IND_JMP) },                /* jmp [eax] */
        { "ff 24 85 00 20 00 00", CLS(IND_JMP) }, /* jmp [eax*4+0x2000]: switch table */
        { "ff 25 00 20 00 00", CLS(IND_JMP) },    /* jmp [0x2000] */
        { "64 ff 20", CLS(IND_JMP) },             /* jmp fs:[eax] */
        { "36 ff 20", CLS(IND_JMP) },
        { "67 ff 27", CLS(IND_JMP) },             /* jmp [bx] */
        { "f2 ff e0", CLS(IND_JMP) },             /* bnd jmp eax */
        { "ff d0", CLS(IND_CALL) },               /* call eax */
        { "ff 10", CLS(IND_CALL) },               /* call [eax] */
        { "ff 15 00 20 00 00", CLS(IND_CALL) },   /* call [0x2000] */
        { "ff 54 24 04", CLS(IND_CALL) },         /* call [esp+4] */
        { "26 ff 10", CLS(IND_CALL) },            /* call es:[eax] */
        /* Through GS (the monitor's) or CS (the TC's) the target load runs
         * through FS (seg_swap), like any other access (glibc's
         * call *%gs:0x10 into the vDSO on every system call). */
        { "65 ff 20", CLS(IND_JMP) },
        { "65 ff 24 85 00 20 00 00", CLS(IND_JMP) },
        { "2e ff 20", CLS(IND_JMP) },
        { "65 ff 10", CLS(IND_CALL) },
        { "2e ff 15 00 20 00 00", CLS(IND_CALL) },
        { "c3", CLS(RET) },
        { "c2 08 00", CLS(RET) },                 /* ret 8 */
        { "f3 c3", CLS(RET) },                    /* "rep ret", from AMD-tuned compilers */
        { "f2 c3", CLS(RET) },                    /* bnd ret */
    };
    EXPECT_TABLE(t);
}

/* Innocuous instructions run natively, byte for byte. */
static const char *const innocuous[] = {
    /* ALU and moves */
    "01 c8", "03 04 24", "83 c0 01", "81 e9 00 10 00 00", "66 05 34 12", "29 d8",
    "31 c0", "21 4d fc", "f7 d8", "f7 e1", "f7 f1", "0f af c1", "69 c0 10 00 00 00",
    "c1 e8 04", "d3 e0", "d1 f8", "0f a4 c2 04", "0f ad c2", "89 c8", "8b 45 fc",
    "8a 04 0e", "c7 05 00 20 00 00 01 00 00 00", "a1 00 20 00 00", "a3 00 20 00 00",
    "66 8b 00", "67 8b 07", "b8 01 00 00 00", "66 b8 01 00", "0f b6 c0", "0f bf 00",
    "87 08", "86 c4", "98", "99", "37", "27", "d4 0a", "0f 44 c1", "0f 94 c0",
    "0f a3 c8", "0f ba e0 03", "0f bc c1", "0f bd c1", "f3 0f b8 c1", "f3 0f bc c1",
    "0f c8", "0f cf", "f8", "f9", "f5", "fc", "fd", "9e", "9f", "d7", "62 00", "63 c8",
    /* LEA */
    "8d 44 24 08", "8d 04 85 00 00 00 00", "67 8d 00",
    /* LOCK-prefixed read-modify-write */
    "f0 01 08", "f0 ff 00", "f0 0f b1 0a", "f0 0f c1 08", "f0 0f c7 0e", "f0 0f ab 08",
    "f0 80 30 01", "f0 66 87 08",
    /* the stack, excluding segment registers and flags */
    "50", "5f", "60", "61", "6a 01", "68 00 10 00 00", "ff 30", "8f 00", "66 50",
    "c8 08 00 00", "c9",
    /* strings */
    "a4", "a5", "66 a5", "f3 a5", "f3 a4", "67 f3 a4", "aa", "f3 ab", "ac", "a6",
    "f3 a6", "f2 ae", "af",
    /* x87 */
    "d9 e8", "dd 04 24", "de c1", "d9 7d fe", "d9 6d fe", "df e0", "9b", "db e3",
    "d9 c9", "db 2c 24", "dd 34 24", "dd 24 24", "d9 34 24",
    /* MMX and 3DNow! */
    "0f 6f c1", "0f fc c1", "0f 7f 00", "0f 77", "0f 0f c1 b4",
    /* SSE, SSE2, SSE3, SSSE3, SSE4 */
    "0f 28 c1", "0f 58 c1", "f3 0f 10 00", "0f ae 10", "0f ae 18", "0f c6 c1 1b",
    "66 0f 6f 00", "66 0f fe c1", "f2 0f 58 c1", "66 0f ef c0", "f3 0f 7e c1",
    "f2 0f 2c c1", "66 0f 7e c0", "f2 0f f0 00", "66 0f 38 00 c1", "66 0f 3a 0f c1 08",
    "66 0f 38 17 c1", "66 0f 3a 16 c0 01", "66 0f 3a 63 c1 0c", "f2 0f 38 f1 c1",
    "66 0f 38 dc c1",
    /* AVX, AVX2, AVX-512 */
    "c5 f8 28 c1", "c5 fd ef c0", "c4 e2 7d 18 00", "c5 f8 77",
    "62 f1 7c 48 28 c1",
    /* fences, hints, cache control, counters */
    "90", "66 90", "0f 1f 00", "0f 1f 44 00 00", "66 0f 1f 84 00 00 00 00 00",
    "f3 90", "0f ae e8", "0f ae f0", "0f ae f8", "0f ae 38", "66 0f ae 38",
    "0f 18 08", "0f 0d 08", "f3 0f 1e fb", "0f 31",
    /* no XCR0 dependence: the legacy FXSAVE image */
    "0f ae 00", "0f ae 08",
    /* cmpxchg8b, random numbers, movbe */
    "0f c7 08", "0f c7 f0", "0f c7 f8", "0f 38 f0 00",
    /* these fault natively, which is what the guest gets */
    "0f 0b", "0f b9 00", "0f ff 00",
};

/* Segment overrides that do not reach memory through GS or CS need no swap
 * (FS: below). */
static const char *const no_swap[] = {
    "26 8b 00", "36 8b 00", "3e 8b 00", "26 f3 a5",
    /* GS or CS prefix, but no memory operand */
    "65 90", "2e 90", "65 01 c8", "2e 40", "65 f3 90", "65 d9 e8", "65 0f 31",
    "65 0f 28 c1",
    /* stack (always SS) and string destinations (always ES) ignore overrides */
    "65 50", "2e 6a 00", "65 c9", "65 aa", "2e f3 ab", "65 ae",
    /* LEA computes an address and never touches memory */
    "65 8d 00", "2e 8d 04 24", "65 8d 04 85 00 00 00 00",
};

/* Memory operands through GS (the monitor's) or CS (the TC's) run through FS. */
static const char *const swap[] = {
    "65 8b 00", "2e 8b 00", "65 89 08", "2e 8a 04 0e", "65 a1 00 00 00 00",
    "65 a3 00 00 00 00", "2e a1 00 20 00 00", "65 67 8b 07", "65 c7 00 01 00 00 00",
    /* string sources */
    "65 f3 a4", "2e f3 a5", "65 a4", "66 65 a5", "65 ac", "65 a6", "65 f3 a6", "65 d7",
    /* read-modify-write, locked or not */
    "65 01 08", "65 f0 0f c1 08", "65 0f c7 08", "65 f0 0f c7 0e", "2e ff 00",
    /* pushes and pops of memory */
    "65 ff 30", "65 8f 00",
    /* FPU and vector memory operands */
    "65 d9 00", "2e dd 04 24", "65 0f 10 00", "65 66 0f 6f 00", "65 c5 f8 10 00",
    "65 62 f1 7c 48 10 00",
    /* implicit DS:EDI destinations, which do honour an override */
    "65 0f f7 c1", "65 66 0f f7 c1",
    /* cache control through GS still names a monitor line */
    "65 0f ae 38", "65 0f 18 08",
    "65 62 00",  /* bound eax, gs:[eax] */
};

/* Memory through FS: FS holds the guest's FS at CPL 0 and its GS at CPL 3
 * (translate.c, fs_home), so these swap at CPL 3 only. */
static const char *const fs_memory[] = {
    "64 8b 00", "64 a1 00 20 00 00", "64 f3 a4", "64 ff 30", "64 0f c7 08",
};

static void expect_ident_at(const char *hexstr, bool swap_cpl0, bool swap_cpl3)
{
    for (unsigned cpl = 0; cpl <= 3; cpl += 3) {
        bool seg_swap = cpl == 3 ? swap_cpl3 : swap_cpl0;
        struct bytes in = hex(hexstr);
        struct dbt_insn di;
        bool ok = dbt_decode(&dec, in.b, in.n, cpl, &di);
        cr_expect(ok, "%s: does not decode", hexstr);
        if (!ok)
            continue;
        const char *m = ZydisMnemonicGetString(di.zi.mnemonic);
        cr_expect_eq(di.zi.length, in.n, "%s (%s): length %u, table has %u bytes", hexstr, m,
                     di.zi.length, in.n);
        cr_expect_eq(di.cls, DBT_IDENT, "%s (%s) at CPL %u: class %s, expected IDENT", hexstr, m,
                     cpl, class_name(di.cls));
        cr_expect_eq(di.seg_swap, seg_swap, "%s (%s) at CPL %u: seg_swap %d, expected %d", hexstr,
                     m, cpl, di.seg_swap, seg_swap);
    }
}

static void expect_ident(const char *hexstr, bool seg_swap)
{
    expect_ident_at(hexstr, seg_swap, seg_swap);
}

Test(classify, innocuous_is_ident)
{
    for (size_t i = 0; i < sizeof innocuous / sizeof innocuous[0]; i++)
        expect_ident(innocuous[i], false);
}

Test(classify, segment_overrides_without_swap)
{
    for (size_t i = 0; i < sizeof no_swap / sizeof no_swap[0]; i++)
        expect_ident(no_swap[i], false);
    for (size_t i = 0; i < sizeof fs_memory / sizeof fs_memory[0]; i++)
        expect_ident_at(fs_memory[i], false, true);
}

Test(classify, gs_and_cs_memory_swap)
{
    for (size_t i = 0; i < sizeof swap / sizeof swap[0]; i++)
        expect_ident(swap[i], true);
}

/* Gathers and scatters address memory through a VSIB operand, which decode.c
 * does not count as a memory access: a GS-prefixed gather or scatter would be
 * copied and read or write the monitor region through the host's GS. */
Test(classify, vsib_through_gs_swaps)
{
    expect_ident("65 c4 e2 71 90 04 10", true);        /* vpgatherdd xmm0, gs:[eax+xmm2], xmm1 */
    expect_ident("2e c4 e2 71 90 04 10", true);        /* ... cs: */
    expect_ident("65 62 f2 7d 49 a0 04 10", true);     /* vpscatterdd gs:[eax+zmm2]{k1}, zmm0 */
    expect_ident("c4 e2 71 90 04 10", false);
}

/* Zydis files XBEGIN and XEND under conditional branches, so they came out as
 * DBT_JCC: XEND has no target at all and XBEGIN's fallback address is
 * EIP-relative, so neither can be copied or rewritten as a Jcc.  The emulator
 * decides (the guest is not offered RTM: #UD). */
Test(classify, rtm_is_emulated)
{
    static const struct enc t[] = {
        { "c7 f8 00 01 00 00", CO(OTHER) },   /* xbegin rel32 */
        { "66 c7 f8 00 01", CO(OTHER) },      /* xbegin rel16 */
        { "0f 01 d5", CO(OTHER) },            /* xend */
    };
    EXPECT_TABLE(t);
    /* Outside a transaction these are a no-op and a ZF=1 test. */
    expect_ident("c6 f8 01", false);          /* xabort */
    expect_ident("0f 01 d6", false);          /* xtest */
}

/* Unprivileged instructions that reach host state when copied and run at host
 * CPL 3 in compatibility mode:
 *  - RDTSCP and RDPID return the host's IA32_TSC_AUX (Linux keeps the host
 *    CPU and node number there), not the value the guest wrote;
 *  - VMCALL (and VMFUNC) in VMX non-root operation exit to the hypervisor
 *    whatever the CPL (SDM vol. 3C 25.1.2), and this host is itself a guest:
 *    KVM answers a CPL-3 VMCALL by writing -KVM_EPERM to EAX where the guest
 *    expects #UD.  VMMCALL does the same on AMD hosts. */
Test(classify, host_state_is_emulated)
{
    static const struct enc t[] = {
        { "0f 01 f9", CO(OTHER) },            /* rdtscp: #UD, hidden by CPUID */
        { "f3 0f c7 f8", CO(OTHER) },         /* rdpid eax: #UD, hidden by CPUID */
        { "0f 01 c1", CO(OTHER) },            /* vmcall */
        { "0f 01 d9", CO(OTHER) },            /* vmmcall */
        { "0f 01 d4", CO(OTHER) },            /* vmfunc */
    };
    EXPECT_TABLE(t);
}

/* With CR0.TS or EM set, every instruction on x87, MMX or XMM state becomes
 * a callout (#NM / #UD), the extensions outside the SSE category included. */
Test(classify, fpu_state_users)
{
    static const struct {
        const char *hex;
        enum dbt_fpu_use use;
    } t[] = {
        { "d9 c0", FPU_X87 },                   /* fld st0 */
        { "9b", FPU_WAIT },                     /* fwait */
        { "0f 58 c1", FPU_SIMD },               /* addps xmm0, xmm1 */
        { "0f fc c1", FPU_SIMD },               /* paddb mm0, mm1 */
        { "66 0f 38 dc c1", FPU_SIMD },         /* aesenc xmm0, xmm1 */
        { "66 0f 3a 44 c1 00", FPU_SIMD },      /* pclmulqdq xmm0, xmm1, 0 */
        { "0f 38 cb c1", FPU_SIMD },            /* sha256rnds2 xmm0, xmm1 */
        { "0f 38 cc 08", FPU_SIMD },            /* sha256msg1 xmm1, [eax] */
        { "01 c8", FPU_NONE },                  /* add eax, ecx */
        { "f3 0f b8 c1", FPU_NONE },            /* popcnt eax, ecx */
        { "0f ae f8", FPU_NONE },               /* sfence */
        { "0f c3 08", FPU_NONE },               /* movnti [eax], ecx */
        { "0f ae 10", FPU_SIMD },               /* ldmxcsr [eax] */
        { "0f 77", FPU_SIMD },                  /* emms */
    };
    for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct bytes in = hex(t[i].hex);
        struct dbt_insn di;
        cr_assert(dbt_decode(&dec, in.b, in.n, 0, &di), "\"%s\" does not decode", t[i].hex);
        cr_expect_eq(dbt_fpu_use(&di), t[i].use, "\"%s\": fpu use %d, want %d", t[i].hex,
                     dbt_fpu_use(&di), t[i].use);
        dbt_apply_mode(&di, 0, true, false);
        cr_expect_eq(di.cls == DBT_CALLOUT, t[i].use != FPU_NONE, "\"%s\" with CR0.TS", t[i].hex);
    }
}

Test(classify, invalid)
{
    static const char *const t[] = {
        "",                          /* nothing */
        "66", "f3 65",               /* prefixes only */
        "0f", "0f 01", "0f 38",      /* opcode escapes without opcode or ModRM */
        "e8 00 00 00",               /* call rel32, truncated */
        "0f 84 00 00 00",            /* jz rel32, truncated */
        "0f 01 05 00 10 00",         /* sgdt [disp32], truncated */
        "0f ff", "0f b9",            /* ud0/ud1 need a ModRM */
        "ff ff",                     /* FF /7 */
        "ff d8", "ff e8",            /* far call/jmp need a memory operand */
        "8d c0",                     /* lea with a register source */
        "8c f8", "8e c8",            /* segment register 7; mov cs */
        "0f 00 30", "0f 24 c0",      /* 0F 00 /6; mov from a test register */
        "0f 38 f8 00",               /* no unprefixed 0F 38 F8 */
        "0f 0f c0 00",               /* 3DNow! opcode 00 */
        "f0 90", "f0 01 c8", "f0 8b 00", "f0 fa", "f0 0f 20 c0", /* LOCK where illegal */
        "0f 01 f8",                  /* swapgs: 64-bit only */
        "f3 0f ae c0",               /* rdfsbase: 64-bit only */
        /* 16 bytes: longer than the 15-byte limit */
        "66 66 66 66 66 66 66 66 66 66 66 66 66 66 66 90",
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct bytes in = hex(t[i]);
        for (unsigned cpl = 0; cpl <= 3; cpl += 3) {
            struct dbt_insn di;
            memset(&di, 0xA5, sizeof di);
            cr_expect(!dbt_decode(&dec, in.b, in.n, cpl, &di), "\"%s\" decodes as %s", t[i],
                      ZydisMnemonicGetString(di.zi.mnemonic));
            cr_expect_eq(di.cls, DBT_INVALID, "\"%s\": class %s", t[i], class_name(di.cls));
            cr_expect(!di.seg_swap, "\"%s\": seg_swap set", t[i]);
        }
    }
}

Test(classify, callout_kind_names)
{
    for (unsigned k = 0; k < CO_COUNT; k++) {
        const char *n = callout_kind_name((enum callout_kind)k);
        cr_expect(n && n[0] && strcmp(n, "?") != 0, "kind %u has no name", k);
    }
    cr_expect_str_eq(callout_kind_name(CO_COUNT), "?");
}

/* ---- generated corpus --------------------------------------------------------- */

#define CORPUS_SIZE 250000u
#define MAX_REPORTS 20

/* xorshift64: deterministic across runs and libcs. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* One candidate instruction: a quarter of them with one to three legacy
 * prefixes (so that prefixes combine with every opcode), 60% one-byte opcodes
 * (which include the VEX/EVEX escapes C4/C5/62 whenever the next byte looks
 * like a register ModRM), the rest 0F xx, 0F 38 xx, 0F 3A xx; ModRM, SIB,
 * displacement and immediate are whatever random bytes follow. */
static void corpus_next(uint64_t *s, uint8_t buf[MAX_BYTES])
{
    static const uint8_t prefixes[] = { 0x66, 0x67, 0xF2, 0xF3, 0x2E, 0x36,
                                        0x3E, 0x26, 0x64, 0x65, 0xF0 };
    uint64_t r = rng_next(s);
    unsigned n = 0;
    unsigned nprefix = (r & 3) == 0 ? 1 + (unsigned)(r >> 2) % 3 : 0;
    for (unsigned i = 0; i < nprefix; i++)
        buf[n++] = prefixes[rng_next(s) % sizeof prefixes];
    unsigned map = (unsigned)(r >> 8) % 100;
    if (map >= 60) {
        buf[n++] = 0x0F;
        if (map >= 92)
            buf[n++] = 0x3A;
        else if (map >= 85)
            buf[n++] = 0x38;
    }
    while (n < MAX_BYTES) {
        uint64_t v = rng_next(s);
        for (unsigned i = 0; i < 8 && n < MAX_BYTES; i++, v >>= 8)
            buf[n++] = (uint8_t)v;
    }
}

static bool has_prefix(const struct dbt_insn *in, const uint8_t *b, uint8_t p)
{
    for (unsigned i = 0; i < in->zi.raw.prefix_count; i++)
        if (b[i] == p)
            return true;
    return false;
}

/*
 * Length disagreements in which Capstone 4.0.2 (Debian's libcapstone4) is
 * wrong, each checked against the SDM / AMD APM.  Matched narrowly, by what
 * Capstone gets wrong, so that any other disagreement still fails.
 */
static bool capstone_known_wrong(const struct dbt_insn *in, const uint8_t *b, unsigned cs_len)
{
    const ZydisDecodedInstruction *zi = &in->zi;
    switch (zi->mnemonic) {
    case ZYDIS_MNEMONIC_UD0:
    case ZYDIS_MNEMONIC_UD1:
        /* UD0 (0F FF /r) and UD1 (0F B9 /r) take a ModRM since the 2017 SDM;
         * Capstone decodes the older two-byte form. */
        return cs_len == zi->raw.prefix_count + 2u;
    case ZYDIS_MNEMONIC_EXTRQ:
    case ZYDIS_MNEMONIC_INSERTQ:
        /* SSE4a EXTRQ/INSERTQ xmm, ib, ib (66/F2 0F 78 /r ib ib): Capstone
         * ignores the mandatory prefix, decodes VMREAD and drops the two
         * immediates. */
        return cs_len + 2 == zi->length;
    case ZYDIS_MNEMONIC_CALL:
        /* 66 E8 rel16 with an F2 (BND) or F3 prefix as well: Capstone drops
         * the operand-size override and reads a rel32. */
        return zi->operand_width == 16 && (has_prefix(in, b, 0xF2) || has_prefix(in, b, 0xF3)) &&
               cs_len == zi->length + 2u;
    default:
        return false;
    }
}

static void report(unsigned *count, const char *what, const uint8_t *b, unsigned len,
                   const struct dbt_insn *in)
{
    if (++*count > MAX_REPORTS)
        return;
    char h[3 * MAX_BYTES + 1] = "";
    for (unsigned i = 0; i < len; i++)
        snprintf(h + 3 * i, sizeof h - 3 * i, "%02x ", b[i]);
    const char *m = in->cls == DBT_INVALID ? NULL : ZydisMnemonicGetString(in->zi.mnemonic);
    cr_log_error("%s: %s(%s, class %s)", what, h, m ? m : "-", class_name(in->cls));
}

/* The raw encoding a branch class may come from: a class produced for any
 * other opcode means the translator would rewrite a non-branch. */
static bool branch_opcode_matches(const struct dbt_insn *in)
{
    const ZydisDecodedInstruction *zi = &in->zi;
    bool one = zi->opcode_map == ZYDIS_OPCODE_MAP_DEFAULT;
    bool two = zi->opcode_map == ZYDIS_OPCODE_MAP_0F;
    switch (in->cls) {
    case DBT_JUMP: return one && (zi->opcode == 0xEB || zi->opcode == 0xE9);
    case DBT_CALL: return one && zi->opcode == 0xE8;
    case DBT_JCC:
        return (one && (zi->opcode & 0xF0) == 0x70) || (two && (zi->opcode & 0xF0) == 0x80);
    case DBT_LOOP: return one && zi->opcode >= 0xE0 && zi->opcode <= 0xE3;
    case DBT_IND_JMP: return one && zi->opcode == 0xFF && zi->raw.modrm.reg == 4;
    case DBT_IND_CALL: return one && zi->opcode == 0xFF && zi->raw.modrm.reg == 2;
    case DBT_RET: return one && (zi->opcode == 0xC3 || zi->opcode == 0xC2);
    case DBT_CLI: return one && zi->opcode == 0xFA;
    case DBT_STI: return one && zi->opcode == 0xFB;
    case DBT_PUSHF: return one && zi->opcode == 0x9C;
    case DBT_POPF: return one && zi->opcode == 0x9D;
    default: return true;
    }
}

static bool needs_swap(const struct dbt_insn *in)
{
    for (unsigned i = 0; i < in->zi.operand_count; i++) {
        const ZydisDecodedOperand *op = &in->ops[i];
        if (op->type == ZYDIS_OPERAND_TYPE_MEMORY && op->mem.type != ZYDIS_MEMOP_TYPE_AGEN &&
            (op->mem.segment == ZYDIS_REGISTER_GS || op->mem.segment == ZYDIS_REGISTER_CS))
            return true;
    }
    return false;
}

/* CLI and STI inline at CPL 0, elsewhere a CO_FLAGS callout; every other
 * class is the same at every CPL. */
static bool cpl_consistent(const struct dbt_insn *k0, const struct dbt_insn *k3)
{
    switch (k0->cls) {
    case DBT_CLI: case DBT_STI:
        return k3->cls == DBT_CALLOUT && k3->kind == CO_FLAGS;
    case DBT_CALLOUT:
        return k3->cls == DBT_CALLOUT && k3->kind == k0->kind;
    default:
        return k3->cls == k0->cls;
    }
}

Test(corpus, lengths_agree_with_capstone_and_classes_are_consistent, .init = decoder_setup)
{
    csh cs;
    cr_assert_eq(cs_open(CS_ARCH_X86, CS_MODE_32, &cs), CS_ERR_OK);
    cs_insn *ci = cs_malloc(cs);
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    unsigned compared = 0, known = 0, zydis_only = 0;
    unsigned len_bad = 0, priv_bad = 0, trunc_bad = 0, cpl_bad = 0, branch_bad = 0,
             swap_bad = 0;

    for (unsigned i = 0; i < CORPUS_SIZE; i++) {
        uint8_t b[MAX_BYTES];
        corpus_next(&seed, b);
        struct dbt_insn k0, k3, again;
        /* 15 bytes: the architectural maximum, so Zydis sees no more than
         * a CPU would. */
        bool zok = dbt_decode(&dec, b, 15, 0, &k0);
        const uint8_t *p = b;
        size_t left = 15;
        uint64_t addr = 0x1000;
        bool cok = cs_disasm_iter(cs, &p, &left, &addr, ci);
        if (!zok) {
            if (k0.cls != DBT_INVALID || k0.seg_swap)
                report(&trunc_bad, "failed decode not DBT_INVALID", b, 15, &k0);
            continue;
        }
        unsigned len = k0.zi.length;
        if (cok) {
            compared++;
            if (ci->size != len) {
                if (capstone_known_wrong(&k0, b, ci->size))
                    known++;
                else
                    report(&len_bad, "Zydis and Capstone lengths differ", b, len, &k0);
            }
        } else {
            zydis_only++;
        }

        if ((k0.zi.attributes & ZYDIS_ATTRIB_IS_PRIVILEGED) && k0.cls == DBT_IDENT)
            report(&priv_bad, "privileged but ident", b, len, &k0);

        /* Exactly `len` bytes decode the same; one fewer does not decode.  The
         * translator fetches guest code up to page ends with these lengths. */
        if (!dbt_decode(&dec, b, len, 0, &again) || again.zi.length != len ||
            again.cls != k0.cls || dbt_decode(&dec, b, len - 1, 0, &again) ||
            again.cls != DBT_INVALID)
            report(&trunc_bad, "decode depends on bytes past the instruction", b, len, &k0);

        dbt_decode(&dec, b, len, 3, &k3);
        if (!cpl_consistent(&k0, &k3))
            report(&cpl_bad, "class differs between CPL 0 and 3", b, len, &k0);

        if (!branch_opcode_matches(&k0))
            report(&branch_bad, "branch or flags class from another opcode", b, len, &k0);

        bool gs_or_cs = has_prefix(&k0, b, 0x65) || has_prefix(&k0, b, 0x2E);
        if ((k0.seg_swap && !gs_or_cs) || k0.seg_swap != needs_swap(&k0) ||
            (k0.seg_swap && k0.cls != DBT_IDENT && k0.cls != DBT_CALLOUT &&
             k0.cls != DBT_IND_JMP && k0.cls != DBT_IND_CALL))
            report(&swap_bad, "wrong seg_swap", b, len, &k0);
    }
    cs_free(ci, 1);
    cs_close(&cs);

    cr_log_info("corpus: %u compared with Capstone (%u known Capstone errors), %u Zydis only",
                compared, known, zydis_only);
    /* Guard against a generator that stops producing instructions. */
    cr_expect_gt(compared, CORPUS_SIZE / 2);
    cr_expect_eq(len_bad, 0, "%u length mismatches", len_bad);
    cr_expect_eq(priv_bad, 0, "%u privileged instructions classified ident", priv_bad);
    cr_expect_eq(trunc_bad, 0, "%u decodes depend on bytes past the instruction", trunc_bad);
    cr_expect_eq(cpl_bad, 0, "%u classes depend on CPL", cpl_bad);
    cr_expect_eq(branch_bad, 0, "%u branch classes from non-branch opcodes", branch_bad);
    cr_expect_eq(swap_bad, 0, "%u wrong segment swaps", swap_bad);
}

/* Which data accesses a page check may test (dbt_checkable_access): one
 * explicit DS operand with 32-bit addressing, nothing else touching memory.
 * 0: none, 'r': a read, 'w': a write. */
static const struct {
    const char *hex;
    char access;
} checkable[] = {
    { "8b 03", 'r' },                   /* mov eax, [ebx] */
    { "0f b6 46 01", 'r' },             /* movzx eax, byte [esi+1] */
    { "8b 4c 9e 10", 'r' },             /* mov ecx, [esi+ebx*4+0x10] */
    { "39 06", 'r' },                   /* cmp [esi], eax */
    { "a1 00 00 44 00", 'r' },          /* mov eax, [0x440000] */
    { "89 07", 'w' },                   /* mov [edi], eax */
    { "01 06", 'w' },                   /* add [esi], eax (read and write) */
    { "66 c7 46 02 66 55", 'w' },       /* mov word [esi+2], 0x5566 */
    { "3e 8b 04 24", 'r' },             /* mov eax, ds:[esp] */
    { "8b 45 04", 0 },                  /* mov eax, [ebp+4]: SS */
    { "26 8b 03", 0 },                  /* mov eax, es:[ebx] */
    { "64 8b 03", 0 },                  /* mov eax, fs:[ebx] */
    { "67 8b 07", 0 },                  /* mov eax, [bx]: 16-bit addressing */
    { "8d 04 9e", 0 },                  /* lea eax, [esi+ebx*4]: no access */
    { "ff 36", 0 },                     /* push dword [esi]: a stack access too */
    { "a5", 0 },                        /* movsd */
    { "0f a3 08", 0 },                  /* bt [eax], ecx: reaches past the operand */
    { "0f 0d 08", 0 },                  /* prefetchw [eax]: never faults */
    { "0f 18 08", 0 },                  /* prefetcht0 [eax] */
    { "0f 1f 00", 0 },                  /* nop dword [eax] */
    { "8b c3", 0 },                     /* mov eax, ebx */
};

Test(classify, checkable_accesses)
{
    for (size_t i = 0; i < sizeof checkable / sizeof checkable[0]; i++) {
        struct bytes in = hex(checkable[i].hex);
        struct dbt_insn di;
        bool write = false;
        cr_assert(dbt_decode(&dec, in.b, in.n, 0, &di), "%s: does not decode", checkable[i].hex);
        const ZydisDecodedOperand *op = dbt_checkable_access(&di, &write);
        char got = op ? (write ? 'w' : 'r') : 0;
        cr_expect_eq(got, checkable[i].access, "%s (%s): access '%c', expected '%c'",
                     checkable[i].hex, ZydisMnemonicGetString(di.zi.mnemonic), got ? got : '-',
                     checkable[i].access ? checkable[i].access : '-');
    }
}
