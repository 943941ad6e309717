/*
 * The one place that decides how a guest instruction is translated.
 *
 * Zydis decodes; dbt_classify() sorts every instruction into ident (copied),
 * a branch form the translator rewrites, an inline sequence (CLI, STI, PUSHF,
 * POPF at CPL 0) or a callout into the monitor's emulator.  Callouts are the
 * 17 sensitive instructions that break trap-and-emulate on x86 and every
 * privileged instruction, plus the few unprivileged ones that would reach
 * host state if run natively (SYSCALL from compat mode enters the host
 * kernel, WRPKRU rewrites the host's protection keys, XSAVE follows the
 * host's XCR0).  Guest memory operands through GS (which the monitor owns) or
 * CS (translated code runs on the monitor's code segment) stay ident but run
 * with FS temporarily holding the right shadow ("segment swap").
 */
#include "popek/dbt.h"

int dbt_seg_index(ZydisRegister r)
{
    switch (r) {
    case ZYDIS_REGISTER_ES: return 0;
    case ZYDIS_REGISTER_CS: return 1;
    case ZYDIS_REGISTER_SS: return 2;
    case ZYDIS_REGISTER_DS: return 3;
    case ZYDIS_REGISTER_FS: return 4;
    case ZYDIS_REGISTER_GS: return 5;
    default: return -1;
    }
}

void dbt_decoder_init(ZydisDecoder *dec)
{
    ZydisDecoderInit(dec, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
}

const char *callout_kind_name(enum callout_kind k)
{
    static const char *const names[CO_COUNT] = {
        [CO_DESCTABLE] = "descriptor-table", [CO_SEGMENT] = "segment",
        [CO_FARBRANCH] = "far-branch",      [CO_INTERRUPT] = "interrupt",
        [CO_SYSCALL] = "syscall",           [CO_IO] = "io",
        [CO_CONTROL] = "control-register",  [CO_MSR] = "msr",
        [CO_CPUID] = "cpuid",               [CO_HLT] = "hlt",
        [CO_FLAGS] = "flags",               [CO_BRANCH] = "near-branch",
        [CO_FPU] = "fpu-trap",          [CO_OTHER] = "other",
    };
    return (unsigned)k < CO_COUNT ? names[k] : "?";
}

static bool has_reg_class(const struct dbt_insn *in, ZydisRegisterClass cls)
{
    for (unsigned i = 0; i < in->zi.operand_count; i++)
        if (in->ops[i].type == ZYDIS_OPERAND_TYPE_REGISTER &&
            ZydisRegisterGetClass(in->ops[i].reg.value) == cls)
            return true;
    return false;
}

/* Every memory operand but LEA-style address generation reaches memory:
 * gathers and scatters (VSIB) and MPX's MIB operands do too. */
static bool mem_through(const struct dbt_insn *in, ZydisRegister seg)
{
    for (unsigned i = 0; i < in->zi.operand_count; i++)
        if (in->ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY &&
            in->ops[i].mem.type != ZYDIS_MEMOP_TYPE_AGEN && in->ops[i].mem.segment == seg)
            return true;
    return false;
}

static bool gpr32_or_none(ZydisRegister r)
{
    return r == ZYDIS_REGISTER_NONE || ZydisRegisterGetClass(r) == ZYDIS_REGCLASS_GPR32;
}

const ZydisDecodedOperand *dbt_checkable_access(const struct dbt_insn *in, bool *write)
{
    const ZydisDecodedOperand *found = NULL;
    if (in->cls != DBT_IDENT || in->seg_swap || in->zi.address_width != 32)
        return NULL;
    switch (in->zi.mnemonic) {
    case ZYDIS_MNEMONIC_BT: case ZYDIS_MNEMONIC_BTS: case ZYDIS_MNEMONIC_BTR:
    case ZYDIS_MNEMONIC_BTC:
        return NULL; /* a register bit offset reaches past the operand */
    case ZYDIS_MNEMONIC_PREFETCH: case ZYDIS_MNEMONIC_PREFETCHW: case ZYDIS_MNEMONIC_PREFETCHWT1:
    case ZYDIS_MNEMONIC_PREFETCHNTA: case ZYDIS_MNEMONIC_PREFETCHT0: case ZYDIS_MNEMONIC_PREFETCHT1:
    case ZYDIS_MNEMONIC_PREFETCHT2: case ZYDIS_MNEMONIC_NOP:
        return NULL; /* never faults */
    default:
        break;
    }
    for (unsigned i = 0; i < in->zi.operand_count; i++) {
        const ZydisDecodedOperand *op = &in->ops[i];
        if (op->type != ZYDIS_OPERAND_TYPE_MEMORY || op->mem.type == ZYDIS_MEMOP_TYPE_AGEN)
            continue;
        if (found || op->visibility != ZYDIS_OPERAND_VISIBILITY_EXPLICIT ||
            op->mem.type != ZYDIS_MEMOP_TYPE_MEM || op->mem.segment != ZYDIS_REGISTER_DS ||
            !gpr32_or_none(op->mem.base) || !gpr32_or_none(op->mem.index))
            return NULL;
        /* A masked or conditional access may touch nothing at all. */
        if (op->actions & (ZYDIS_OPERAND_ACTION_CONDREAD | ZYDIS_OPERAND_ACTION_CONDWRITE) ||
            !(op->actions & (ZYDIS_OPERAND_ACTION_READ | ZYDIS_OPERAND_ACTION_WRITE)))
            return NULL;
        found = op;
    }
    if (found)
        *write = found->actions & ZYDIS_OPERAND_ACTION_WRITE;
    return found;
}

static enum dbt_class callout(struct dbt_insn *in, enum callout_kind k)
{
    in->kind = k;
    return DBT_CALLOUT;
}

static enum dbt_class classify(struct dbt_insn *in, unsigned cpl)
{
    const ZydisDecodedInstruction *zi = &in->zi;
    bool far = zi->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR;
    bool op16 = zi->operand_width == 16;

    /* FS holds the guest's GS at CPL 3, its FS elsewhere (translate.c, fs_home). */
    in->seg_swap = mem_through(in, ZYDIS_REGISTER_GS) || mem_through(in, ZYDIS_REGISTER_CS) ||
                   (cpl == 3 && mem_through(in, ZYDIS_REGISTER_FS));

    switch (zi->mnemonic) {
    case ZYDIS_MNEMONIC_SGDT: case ZYDIS_MNEMONIC_SIDT: case ZYDIS_MNEMONIC_SLDT:
    case ZYDIS_MNEMONIC_STR: case ZYDIS_MNEMONIC_LGDT: case ZYDIS_MNEMONIC_LIDT:
    case ZYDIS_MNEMONIC_LLDT: case ZYDIS_MNEMONIC_LTR:
        return callout(in, CO_DESCTABLE);
    case ZYDIS_MNEMONIC_LAR: case ZYDIS_MNEMONIC_LSL: case ZYDIS_MNEMONIC_VERR:
    case ZYDIS_MNEMONIC_VERW: case ZYDIS_MNEMONIC_LDS: case ZYDIS_MNEMONIC_LES:
    case ZYDIS_MNEMONIC_LFS: case ZYDIS_MNEMONIC_LGS: case ZYDIS_MNEMONIC_LSS:
        return callout(in, CO_SEGMENT);
    case ZYDIS_MNEMONIC_SMSW: case ZYDIS_MNEMONIC_LMSW: case ZYDIS_MNEMONIC_CLTS:
    case ZYDIS_MNEMONIC_INVLPG: case ZYDIS_MNEMONIC_INVD: case ZYDIS_MNEMONIC_WBINVD:
        return callout(in, CO_CONTROL);
    case ZYDIS_MNEMONIC_INT: case ZYDIS_MNEMONIC_INT1: case ZYDIS_MNEMONIC_INT3:
    case ZYDIS_MNEMONIC_INTO: case ZYDIS_MNEMONIC_IRET: case ZYDIS_MNEMONIC_IRETD:
        return callout(in, CO_INTERRUPT);
    case ZYDIS_MNEMONIC_SYSENTER: case ZYDIS_MNEMONIC_SYSEXIT: case ZYDIS_MNEMONIC_SYSCALL:
    case ZYDIS_MNEMONIC_SYSRET:
        return callout(in, CO_SYSCALL);
    case ZYDIS_MNEMONIC_IN: case ZYDIS_MNEMONIC_OUT: case ZYDIS_MNEMONIC_INSB:
    case ZYDIS_MNEMONIC_INSW: case ZYDIS_MNEMONIC_INSD: case ZYDIS_MNEMONIC_OUTSB:
    case ZYDIS_MNEMONIC_OUTSW: case ZYDIS_MNEMONIC_OUTSD:
        return callout(in, CO_IO);
    case ZYDIS_MNEMONIC_RDMSR: case ZYDIS_MNEMONIC_WRMSR: case ZYDIS_MNEMONIC_RDPMC:
        return callout(in, CO_MSR);
    case ZYDIS_MNEMONIC_CPUID:
        return callout(in, CO_CPUID);
    case ZYDIS_MNEMONIC_HLT:
        return callout(in, CO_HLT);
    case ZYDIS_MNEMONIC_WRPKRU: case ZYDIS_MNEMONIC_RDPKRU: case ZYDIS_MNEMONIC_XGETBV:
    case ZYDIS_MNEMONIC_XSETBV: case ZYDIS_MNEMONIC_XSAVE: case ZYDIS_MNEMONIC_XSAVEC:
    case ZYDIS_MNEMONIC_XSAVEOPT: case ZYDIS_MNEMONIC_XSAVES: case ZYDIS_MNEMONIC_XRSTOR:
    case ZYDIS_MNEMONIC_XRSTORS: case ZYDIS_MNEMONIC_MONITOR: case ZYDIS_MNEMONIC_MWAIT:
    case ZYDIS_MNEMONIC_RSM:
    /* The host's IA32_TSC_AUX; the virtual CPU has neither (cpuid.c). */
    case ZYDIS_MNEMONIC_RDTSCP: case ZYDIS_MNEMONIC_RDPID:
    /* Zydis files these under conditional branches, but XEND has no target
     * and XBEGIN's EIP-relative abort address cannot be copied. */
    case ZYDIS_MNEMONIC_XBEGIN: case ZYDIS_MNEMONIC_XEND:
    /* In VMX non-root operation (the host is itself a guest) these exit to
     * the hypervisor at any CPL instead of raising #UD. */
    case ZYDIS_MNEMONIC_VMCALL: case ZYDIS_MNEMONIC_VMMCALL: case ZYDIS_MNEMONIC_VMFUNC:
        return callout(in, CO_OTHER);
    case ZYDIS_MNEMONIC_CLI:
        return cpl == 0 ? DBT_CLI : callout(in, CO_FLAGS);
    case ZYDIS_MNEMONIC_STI:
        return cpl == 0 ? DBT_STI : callout(in, CO_FLAGS);
    case ZYDIS_MNEMONIC_PUSHFD:
        return DBT_PUSHF; /* the image's IF and IOPL are the virtual ones at any CPL */
    case ZYDIS_MNEMONIC_POPFD:
        return DBT_POPF;
    case ZYDIS_MNEMONIC_PUSHF: case ZYDIS_MNEMONIC_POPF:
        return callout(in, CO_FLAGS);
    case ZYDIS_MNEMONIC_JMP:
        if (far)
            return callout(in, CO_FARBRANCH);
        if (op16)
            return callout(in, CO_BRANCH);
        return (zi->attributes & ZYDIS_ATTRIB_IS_RELATIVE) ? DBT_JUMP : DBT_IND_JMP;
    case ZYDIS_MNEMONIC_CALL:
        if (far)
            return callout(in, CO_FARBRANCH);
        if (op16)
            return callout(in, CO_BRANCH);
        return (zi->attributes & ZYDIS_ATTRIB_IS_RELATIVE) ? DBT_CALL : DBT_IND_CALL;
    case ZYDIS_MNEMONIC_RET:
        if (far)
            return callout(in, CO_FARBRANCH);
        return op16 ? callout(in, CO_BRANCH) : DBT_RET;
    case ZYDIS_MNEMONIC_LOOP: case ZYDIS_MNEMONIC_LOOPE: case ZYDIS_MNEMONIC_LOOPNE:
    case ZYDIS_MNEMONIC_JCXZ: case ZYDIS_MNEMONIC_JECXZ:
        return op16 ? callout(in, CO_BRANCH) : DBT_LOOP;
    default:
        break;
    }
    if (zi->meta.category == ZYDIS_CATEGORY_COND_BR)
        return op16 ? callout(in, CO_BRANCH) : DBT_JCC;
    /* MOV to/from CRn, DRn, segment registers; PUSH/POP of segment registers. */
    if (has_reg_class(in, ZYDIS_REGCLASS_CONTROL) || has_reg_class(in, ZYDIS_REGCLASS_DEBUG))
        return callout(in, CO_CONTROL);
    if (has_reg_class(in, ZYDIS_REGCLASS_SEGMENT) &&
        (zi->mnemonic == ZYDIS_MNEMONIC_MOV || zi->mnemonic == ZYDIS_MNEMONIC_PUSH ||
         zi->mnemonic == ZYDIS_MNEMONIC_POP))
        return callout(in, CO_SEGMENT);
    /* Anything else the CPU only allows at CPL 0 (and everything not listed
     * above that Zydis knows to be privileged) is left to the emulator, which
     * raises the architectural exception. */
    if (zi->attributes & ZYDIS_ATTRIB_IS_PRIVILEGED)
        return callout(in, CO_OTHER);
    return DBT_IDENT;
}

bool dbt_decode(const ZydisDecoder *dec, const uint8_t *buf, unsigned len, unsigned cpl,
                struct dbt_insn *out)
{
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(dec, buf, len, &out->zi, out->ops))) {
        out->cls = DBT_INVALID;
        out->kind = CO_OTHER;
        out->seg_swap = false;
        return false;
    }
    out->kind = CO_OTHER;
    out->cls = classify(out, cpl);
    return true;
}

enum dbt_fpu_use dbt_fpu_use(const struct dbt_insn *in)
{
    const ZydisDecodedInstruction *zi = &in->zi;
    if (in->cls == DBT_INVALID)
        return FPU_NONE;
    if (zi->mnemonic == ZYDIS_MNEMONIC_FWAIT)
        return FPU_WAIT;
    if (zi->meta.isa_ext == ZYDIS_ISA_EXT_X87 || zi->meta.category == ZYDIS_CATEGORY_X87_ALU ||
        zi->meta.category == ZYDIS_CATEGORY_FCMOV || zi->mnemonic == ZYDIS_MNEMONIC_FXSAVE ||
        zi->mnemonic == ZYDIS_MNEMONIC_FXRSTOR)
        return FPU_X87;
    /* MMX before the x87-state attribute EMMS carries: CR0.EM makes it #UD. */
    if (zi->meta.isa_ext == ZYDIS_ISA_EXT_MMX)
        return FPU_SIMD;
    if (zi->attributes & (ZYDIS_ATTRIB_FPU_STATE_CR | ZYDIS_ATTRIB_FPU_STATE_CW))
        return FPU_X87;
    if (zi->attributes & (ZYDIS_ATTRIB_XMM_STATE_CR | ZYDIS_ATTRIB_XMM_STATE_CW))
        return FPU_SIMD;
    /* Whatever names an XMM or MMX register (AES, SHA and PCLMULQDQ too); not
     * the SSE-era instructions on other state, which CR0.TS leaves alone:
     * PAUSE, PREFETCHh, the fences, MOVNTI, CLFLUSH, CRC32, POPCNT (SDM vol.
     * 3A, table 2-2). */
    for (unsigned i = 0; i < zi->operand_count; i++) {
        if (in->ops[i].type != ZYDIS_OPERAND_TYPE_REGISTER)
            continue;
        ZydisRegister r = in->ops[i].reg.value;
        ZydisRegisterClass rc = ZydisRegisterGetClass(r);
        if (rc == ZYDIS_REGCLASS_XMM || rc == ZYDIS_REGCLASS_MMX || r == ZYDIS_REGISTER_MXCSR)
            return FPU_SIMD;
    }
    return FPU_NONE;
}

void dbt_apply_mode(struct dbt_insn *in, unsigned cpl, bool fpu_trap, bool tsd)
{
    if (in->cls != DBT_IDENT)
        return;
    if (fpu_trap && dbt_fpu_use(in) != FPU_NONE) {
        in->cls = DBT_CALLOUT;
        in->kind = CO_FPU;
    } else if (tsd && cpl > 0 && in->zi.mnemonic == ZYDIS_MNEMONIC_RDTSC) {
        in->cls = DBT_CALLOUT; /* CR4.TSD: #GP(0) outside ring 0 */
        in->kind = CO_MSR;
    }
}
