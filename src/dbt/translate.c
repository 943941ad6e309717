/*
 * The block translator: a loop over guest instructions with one hook per
 * instruction class (see decode.c), ending the block at the first control
 * transfer or callout.
 *
 * Emitted sequences touch only %gs-relative monitor memory besides what the
 * guest instruction itself touches, and never change the host flags except
 * where the guest instruction would (the flag-free IBL compare uses
 * LEA + JECXZ; PUSHF/POPF restore the flags from the stack image).  Every
 * sequence keeps its first guest memory access as the only instruction that
 * can fault, so a fault maps back to "restart this guest instruction" (see
 * struct tb_map).
 *
 * Indirect branch lookup (target in %eax, %eax/%ecx saved to scratch):
 *     mov  %eax, %gs:EXIT_EIP          ; for the miss stub
 *     movzwl %ax, %ecx
 *     mov  %gs:IBL(,%ecx,8), %ecx      ; -eip of the entry
 *     lea  (%ecx,%eax), %ecx           ; zero iff it is our target
 *     jecxz hit
 *     <restore eax, ecx>; jmp mon_stub_exit_ibl_miss
 * hit: movzwl %ax,%ecx; mov %gs:IBL+4(,%ecx,8),%ecx; mov %ecx,%gs:IBL_JUMP
 *     <restore eax, ecx>; jmp *%gs:IBL_JUMP
 */
#include <string.h>

#include "popek/vm.h"

#define GS 0x65
#define BLK(off) (MON_BLOCK + (off))
#define TB_WORST_INSN_BYTES 160 /* a page check and its instruction: 131 */
#define TB_WORST_BYTES (TB_MAX_INSNS * TB_WORST_INSN_BYTES + 512)
#define TB_WORST_MAPS (2 * TB_MAX_INSNS + 4)

struct emit {
    uint8_t *p;     /* where the next byte goes (the TC itself) */
    uint32_t addr;  /* its TC address */
};

static void e_bytes(struct emit *e, const void *b, unsigned n)
{
    memcpy(e->p, b, n);
    e->p += n;
    e->addr += n;
}

static void e_u8(struct emit *e, uint8_t v)
{
    e_bytes(e, &v, 1);
}

static void e_u32(struct emit *e, uint32_t v)
{
    e_bytes(e, &v, 4);
}

/* movl $imm, %gs:off */
static void e_gs_store_imm(struct emit *e, uint32_t off, uint32_t imm)
{
    e_bytes(e, (uint8_t[]){ GS, 0xc7, 0x05 }, 3);
    e_u32(e, off);
    e_u32(e, imm);
}

/* movw $imm, %gs:off */
static void e_gs_store_imm16(struct emit *e, uint32_t off, uint16_t imm)
{
    e_bytes(e, (uint8_t[]){ 0x66, GS, 0xc7, 0x05 }, 4);
    e_u32(e, off);
    e_bytes(e, &imm, 2);
}

/* mov %reg, %gs:off  /  mov %gs:off, %reg */
static void e_gs_store_reg(struct emit *e, unsigned reg, uint32_t off)
{
    e_bytes(e, (uint8_t[]){ GS, 0x89, (uint8_t)(0x05 | reg << 3) }, 3);
    e_u32(e, off);
}

static void e_gs_load_reg(struct emit *e, unsigned reg, uint32_t off)
{
    e_bytes(e, (uint8_t[]){ GS, 0x8b, (uint8_t)(0x05 | reg << 3) }, 3);
    e_u32(e, off);
}

/* mov %al, %gs:off: the poll store (6 bytes, no flags, no registers). */
static void e_poll(struct emit *e, uint32_t off)
{
    e_bytes(e, (uint8_t[]){ GS, 0xa2 }, 2);
    e_u32(e, off);
}

/* mov %gs:off, %fs */
static void e_load_fs(struct emit *e, uint32_t off)
{
    e_bytes(e, (uint8_t[]){ GS, 0x8e, 0x25 }, 3);
    e_u32(e, off);
}

/* jmp rel32 to target; returns the address of the rel32 field. */
static uint32_t e_jmp(struct emit *e, uint32_t target)
{
    e_u8(e, 0xe9);
    uint32_t slot = e->addr;
    e_u32(e, target - (slot + 4));
    return slot;
}

struct xlate {
    struct vm *vm;
    struct tblock *tb;
    struct emit e;
    uint32_t ibl_off;  /* gs offset of this CPL's IBL table, 0 if none */
};

static void add_map(struct xlate *x, uint32_t eip, uint8_t restore)
{
    struct tblock *tb = x->tb;
    tb->map[tb->nmap++] = (struct tb_map){
        .tc_off = (uint16_t)(x->e.addr - tb->tc),
        .eip_off = (uint16_t)(eip - tb->eip),
        .restore = restore,
    };
}

/* A direct exit: a jmp whose rel32 is chained later; stubs come after the body. */
static void add_exit_slot(struct xlate *x, uint32_t slot, uint32_t target_eip)
{
    struct tb_exit *ex = &x->tb->exits[x->tb->nexits++];
    ex->slot = slot;
    ex->target_eip = target_eip;
}

static void exit_direct(struct xlate *x, uint32_t target_eip)
{
    add_exit_slot(x, e_jmp(&x->e, 0), target_eip);
}

/* Make the jump whose rel32 is at `slot` land here. */
static void e_land(struct emit *e, uint32_t slot)
{
    int32_t rel = (int32_t)(e->addr - (slot + 4));
    memcpy((void *)(uintptr_t)slot, &rel, 4);
}

/* jecxz over a jmp whose rel32 (returned) the caller lands on its miss path. */
static uint32_t e_jmp_unless_ecx_zero(struct emit *e)
{
    e_bytes(e, (uint8_t[]){ 0xe3, 5 }, 2);                       /* jecxz +5 */
    return e_jmp(e, 0);
}

/* mov %gs:off,%ecx and a jmp (its rel32 returned) unless that is 0. */
static uint32_t e_jmp_unless_zero(struct emit *e, uint32_t off)
{
    e_gs_load_reg(e, R_ECX, BLK(off));
    return e_jmp_unless_ecx_zero(e);
}

/* lea imm32(%ecx),%ecx; returns the address of imm32 (a negated key:
 * %ecx becomes 0 on a match). */
static uint32_t e_lea_ecx(struct emit *e, uint32_t imm)
{
    e_bytes(e, (uint8_t[]){ 0x8d, 0x89 }, 2);
    uint32_t at = e->addr;
    e_u32(e, imm);
    return at;
}

/* Leave for the monitor to emulate the instruction at eip (callout site
 * `site`, 0 if none). */
static void e_exit_emulate(struct xlate *x, uint32_t eip, uint32_t site)
{
    e_gs_store_imm(&x->e, BLK(VB_EXIT_EIP), eip);
    e_gs_store_imm(&x->e, BLK(VB_EXIT_ARG), site);
    e_jmp(&x->e, x->vm->tc.stub_exit_emulate);
}

/* The callout ending the block; `in` and `bytes` its decoding, if any. */
static void emit_callout(struct xlate *x, uint32_t eip, const struct dbt_insn *in,
                         const uint8_t *bytes)
{
    e_exit_emulate(x, eip, in ? tcache_add_callout_site(x->vm, x->tb, in, bytes) : 0);
}

/* The gs offset of the IBL table for blocks at `cpl`, 0 if there is none. */
static uint32_t ibl_table(unsigned cpl)
{
    return cpl == 0 ? MON_IBL : cpl == 3 ? MON_IBL + MON_IBL_ENTRIES * 8 : 0;
}

/* The IBL lookup in table `table` (see ibl_table); `exit_arg` names the RET
 * inline cache exit to chain on a miss (tb_exit_arg; 0: none). */
static void emit_ibl_in(struct xlate *x, uint32_t exit_arg, uint32_t table)
{
    struct emit *e = &x->e;
    uint32_t miss = x->vm->tc.stub_exit_ibl_miss;
    e_gs_store_reg(e, R_EAX, BLK(VB_EXIT_EIP));
    if (table) {
        e_bytes(e, (uint8_t[]){ 0x0f, 0xb7, 0xc8 }, 3);         /* movzwl %ax,%ecx */
        e_bytes(e, (uint8_t[]){ GS, 0x8b, 0x0c, 0xcd }, 4);      /* mov off(,%ecx,8),%ecx */
        e_u32(e, table);
        e_bytes(e, (uint8_t[]){ 0x8d, 0x0c, 0x01 }, 3);          /* lea (%ecx,%eax),%ecx */
        e_bytes(e, (uint8_t[]){ 0xe3, 7 + 7 + 11 + 5 }, 2);      /* jecxz hit */
    }
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_gs_load_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
    e_gs_store_imm(e, BLK(VB_EXIT_ARG), exit_arg);
    e_jmp(e, miss);
    if (!table)
        return;
    /* hit: */
    if (x->vm->cfg.stats) {
        /* Count without touching the flags: load, LEA, store. */
        e_gs_load_reg(e, R_ECX, BLK(VB_IBL_HITS));
        e_bytes(e, (uint8_t[]){ 0x8d, 0x49, 0x01 }, 3);          /* lea 1(%ecx),%ecx */
        e_gs_store_reg(e, R_ECX, BLK(VB_IBL_HITS));
    }
    e_bytes(e, (uint8_t[]){ 0x0f, 0xb7, 0xc8 }, 3);
    e_bytes(e, (uint8_t[]){ GS, 0x8b, 0x0c, 0xcd }, 4);
    e_u32(e, table + 4);
    e_gs_load_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
    e_bytes(e, (uint8_t[]){ 0xff, 0xe1 }, 2);                    /* jmp *%ecx: the IBL prologue restores %ecx */
}

/* The IBL lookup for this block's CPL. */
static void emit_ibl(struct xlate *x, uint32_t exit_arg)
{
    emit_ibl_in(x, exit_arg, x->ibl_off);
}

static uint32_t fs_home(const struct xlate *x);
static uint32_t seg_swap_bytes(const struct xlate *x, const struct dbt_insn *in,
                               const uint8_t *bytes, uint8_t b[16]);

/* JMP/CALL r/m32: the same ModRM addressing as MOV r/m32 -> %eax (a GS or CS
 * operand through FS, as in emit_ident; the FS load comes first, where the
 * fault handler looks for it). */
static void emit_indirect(struct xlate *x, const struct dbt_insn *in, const uint8_t *bytes,
                          uint32_t eip, bool call)
{
    struct emit *e = &x->e;
    unsigned modrm = in->zi.raw.modrm.offset;
    uint8_t mov[16];
    uint32_t alias = 0;
    if (in->seg_swap)
        alias = seg_swap_bytes(x, in, bytes, mov);
    else
        memcpy(mov, bytes, in->zi.length);
    if (alias)
        e_load_fs(e, BLK(alias));
    mov[modrm - 1] = 0x8b;             /* FF /2, FF /4 -> 8B /0 */
    mov[modrm] &= 0xc7;
    e_gs_store_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
    e_gs_store_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_bytes(e, mov, in->zi.length);
    if (alias)
        e_load_fs(e, BLK(fs_home(x)));
    if (call) {
        add_map(x, eip, TB_RESTORE_EAX);
        e_u8(e, 0x68);                 /* push $return_eip */
        e_u32(e, eip + in->zi.length);
    }
    emit_ibl(x, 0);
}

/*
 * RET: a monomorphic inline cache in front of the IBL.  The cached return
 * EIP (negated, patched by tcache_chain) is compared flag-free; a hit pops
 * and takes a direct jump, chained like any block exit.  Until the first
 * patch the jump goes to `fixup`, which undoes the pop and takes the IBL, and
 * a miss goes to `first`, an IBL miss exit that has the monitor set the cache
 * (an IBL lookup could hit and leave it unset for good); tcache_chain points
 * the miss at `generic` and unchain_exit back at `first`.
 *
 *       mov %ecx,%gs:SCRATCH_ECX
 *       mov (%esp),%ecx             the only instruction that can fault
 *       lea -CACHED(%ecx),%ecx
 *       jecxz hit
 *       mov %gs:SCRATCH_ECX,%ecx
 *       jmp <first | generic>
 * hit:  mov %gs:SCRATCH_ECX,%ecx
 *       lea N(%esp),%esp
 *       jmp <cached block | fixup>
 * fixup: lea -N(%esp),%esp
 * generic: <IBL lookup of (%esp)>
 * first: <the same with no table to look in: its miss exit>
 */
static void emit_ret(struct xlate *x, const struct dbt_insn *in)
{
    struct emit *e = &x->e;
    uint32_t pop = 4 + (in->zi.operand_count_visible ? (uint32_t)in->ops[0].imm.value.u : 0);
    e_gs_store_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_bytes(e, (uint8_t[]){ 0x8b, 0x0c, 0x24 }, 3);              /* mov (%esp),%ecx */
    uint32_t key = e_lea_ecx(e, 0);
    e_bytes(e, (uint8_t[]){ 0xe3, 7 + 5 }, 2);                   /* jecxz hit */
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    uint32_t miss = e_jmp(e, 0);
    /* hit: */
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_bytes(e, (uint8_t[]){ 0x8d, 0xa4, 0x24 }, 3);              /* lea pop(%esp),%esp */
    e_u32(e, pop);
    uint32_t slot = e_jmp(e, 0);
    uint32_t fixup = e->addr;
    e_bytes(e, (uint8_t[]){ 0x8d, 0xa4, 0x24 }, 3);              /* lea -pop(%esp),%esp */
    e_u32(e, -pop);
    /* generic: the IBL lookup; first: the same without a table, i.e. its miss exit */
    uint32_t generic = e->addr, first = 0;
    for (unsigned i = 0; i < 2; i++) {
        if (i == 1)
            first = e->addr;
        e_gs_store_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
        e_bytes(e, (uint8_t[]){ 0x8b, 0x04, 0x24 }, 3);          /* mov (%esp),%eax */
        e_bytes(e, (uint8_t[]){ 0x8d, 0xa4, 0x24 }, 3);          /* lea pop(%esp),%esp */
        e_u32(e, pop);
        emit_ibl_in(x, tb_exit_arg((uint32_t)(x->tb - x->vm->tc.blocks), x->tb->nexits),
                    i == 0 ? x->ibl_off : 0);
    }

    struct tb_exit *ex = &x->tb->exits[x->tb->nexits++];
    ex->slot = slot;
    ex->stub = fixup;
    ex->ic_key = key;
    ex->ic_miss = miss;
    ex->ic_generic = generic;
    ex->ic_first = first;
    int32_t rel = (int32_t)(fixup - (slot + 4));
    memcpy((void *)(uintptr_t)slot, &rel, 4);
    rel = (int32_t)(first - (miss + 4));
    memcpy((void *)(uintptr_t)miss, &rel, 4);
}

/*
 * Reads of a segment register, inline: the guest's selectors are kept in
 * vcpu_block.guest_sel (the run loop copies them in before every entry).
 *   PUSH sreg (32-bit): current Intel CPUs write only the low 16 bits of the
 *   slot, so the old dword is read first; that read is the only instruction
 *   that can fault before the stack slot is written, and a fault at either
 *   access restarts the PUSH with %eax restored.
 *       mov %eax,%gs:SCRATCH_EAX
 *       mov -4(%esp),%eax
 *       mov %gs:GUEST_SEL+2*s,%ax
 *       mov %eax,-4(%esp)
 *       lea -4(%esp),%esp
 *       mov %gs:SCRATCH_EAX,%eax
 *   MOV r32, sreg: movzwl %gs:GUEST_SEL+2*s,%r32 (MOV r16, sreg: 16-bit load).
 * Anything else (a memory destination, 16-bit PUSH) stays a callout.
 */
static bool emit_seg_read(struct xlate *x, const struct dbt_insn *in, uint32_t eip)
{
    struct emit *e = &x->e;
    const ZydisDecodedOperand *ops = in->ops;
    if (in->zi.mnemonic == ZYDIS_MNEMONIC_PUSH && ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
        in->zi.operand_width == 32 && in->zi.stack_width == 32) {
        int s = dbt_seg_index(ops[0].reg.value);
        if (s < 0)
            return false;
        e_gs_store_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
        add_map(x, eip, TB_RESTORE_EAX);
        e_bytes(e, (uint8_t[]){ 0x8b, 0x44, 0x24, 0xfc }, 4);        /* mov -4(%esp),%eax */
        e_bytes(e, (uint8_t[]){ 0x66, GS, 0x8b, 0x05 }, 4);          /* mov %gs:sel,%ax */
        e_u32(e, BLK(VB_GUEST_SEL + 2 * (unsigned)s));
        e_bytes(e, (uint8_t[]){ 0x89, 0x44, 0x24, 0xfc }, 4);        /* mov %eax,-4(%esp) */
        e_bytes(e, (uint8_t[]){ 0x8d, 0x64, 0x24, 0xfc }, 4);        /* lea -4(%esp),%esp */
        e_gs_load_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
        return true;
    }
    if (in->zi.mnemonic == ZYDIS_MNEMONIC_MOV && ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
        ZydisRegisterGetClass(ops[1].reg.value) == ZYDIS_REGCLASS_SEGMENT &&
        (ops[0].size == 32 || ops[0].size == 16)) {
        int s = dbt_seg_index(ops[1].reg.value);
        unsigned r = (unsigned)ZydisRegisterGetId(ops[0].reg.value);
        if (s < 0 || r > 7)
            return false;
        if (ops[0].size == 32)
            e_bytes(e, (uint8_t[]){ GS, 0x0f, 0xb7, (uint8_t)(0x05 | r << 3) }, 4);
        else
            e_bytes(e, (uint8_t[]){ 0x66, GS, 0x8b, (uint8_t)(0x05 | r << 3) }, 4);
        e_u32(e, BLK(VB_GUEST_SEL + 2 * (unsigned)s));
        return true;
    }
    return false;
}

/* The instruction's r/m operand into %ecx: its prefixes (but 66), `op` in
 * place of its `opcode_len`-byte opcode, its ModRM with reg = %ecx. */
static void e_rm_to_ecx(struct emit *e, const struct dbt_insn *in, const uint8_t *bytes,
                        unsigned opcode_len, const uint8_t *op, unsigned op_len)
{
    unsigned modrm = in->zi.raw.modrm.offset;
    for (unsigned i = 0; i < modrm - opcode_len; i++)
        if (bytes[i] != 0x66)
            e_u8(e, bytes[i]);
    e_bytes(e, op, op_len);
    e_u8(e, (uint8_t)((bytes[modrm] & 0xc7) | 0x08));
    e_bytes(e, bytes + modrm + 1, in->zi.length - modrm - 1u);
}

/* A segment inline cache and the callout site behind it; the site's index,
 * 0 if either pool is full. */
static uint32_t new_seg_ic(struct xlate *x, const struct dbt_insn *in, const uint8_t *bytes,
                           struct seg_ic **ic)
{
    *ic = tcache_add_seg_ic(x->vm);
    uint32_t site = *ic ? tcache_add_callout_site(x->vm, x->tb, in, bytes) : 0;
    if (site)
        x->vm->tc.sites[site - 1].ic = *ic;
    return site;
}

/* The compares of a segment inline cache, the selector in %ecx: the
 * selector, then the two dwords of its GDT entry read through segment
 * register `s` holding the flat selector.  Each miss is a jmp whose rel32
 * lands in to_miss[]; a fault on the GDT reads restarts the instruction at
 * eip with %ecx restored. */
static void emit_seg_ic_compare(struct xlate *x, struct seg_ic *ic, unsigned s, uint32_t eip,
                                uint32_t to_miss[3])
{
    static const uint8_t prefix[SEG_COUNT] = { [SEG_ES] = 0x26, [SEG_DS] = 0x3e, [SEG_FS] = 0x64 };
    struct emit *e = &x->e;
    for (unsigned i = 0; i < 3; i++) {
        uint32_t key = e_lea_ecx(e, i == 0 ? (uint32_t)-0x10000 : 0);
        if (i == 0)
            ic->neg_sel = key;
        else
            ic->neg_desc[i - 1] = key;
        to_miss[i] = e_jmp_unless_ecx_zero(e);
        if (i == 0) {
            e_bytes(e, (uint8_t[]){ GS, 0x8e, (uint8_t)(s << 3 | 5) }, 3); /* mov %gs:flat,%seg */
            e_u32(e, BLK(VB_FLAT_SEL));
            add_map(x, eip, TB_RESTORE_ECX);
        }
        if (i < 2) {
            e_bytes(e, (uint8_t[]){ prefix[s], 0x8b, 0x0d }, 3);   /* mov %seg:entry,%ecx */
            ic->desc_addr[i] = e->addr;
            e_u32(e, 0);
        }
    }
}

/*
 * MOV DS/ES/FS, r/m16 and POP DS/ES/FS at CPL 0: an inline cache (struct
 * seg_ic) in front of the callout.  Linux loads the same few selectors on
 * every kernel entry and exit.  The cached load is repeated only if the
 * selector is the cached one and the guest's GDT entry still holds the
 * cached descriptor (Linux rewrites its TLS entries on every task switch, so
 * the entry itself is compared, read through the flat read-only host
 * segment, rather than tracing GDT writes).  All compares are flag-free.
 *
 *       mov %ecx,%gs:SCRATCH_ECX
 *       movzwl <src>,%ecx                 the guest's access (POP: (%esp))
 *       lea -SEL(%ecx),%ecx; jecxz 1f; jmp miss
 *   1:  mov %gs:FLAT_SEL,%seg
 *       mov %seg:ENTRY,%ecx               may fault: restart with %ecx restored
 *       lea -LO(%ecx),%ecx; jecxz 2f; jmp miss
 *   2:  mov %seg:ENTRY+4,%ecx
 *       lea -HI(%ecx),%ecx; jecxz 3f; jmp miss
 *   3:  mov $HOST,%ecx; mov %ecx,%seg
 *       movw $HOST,%gs:HOST_SEL+2*seg; movw $SEL,%gs:GUEST_SEL+2*seg
 *       [DS: movl $KEY,%gs:DS_KEY]        for inline INVLPG: 0 iff the base is 0
 *       movl $IC,%gs:SEG_SITE+4*seg       the monitor updates vcpu.seg lazily
 *       [POP: lea 4(%esp),%esp]
 *       mov %gs:SCRATCH_ECX,%ecx; jmp done
 * miss: mov %gs:SCRATCH_ECX,%ecx; <callout>  (the monitor patches the cache)
 * done:
 * Until the first patch SEL is 0x10000, which no selector matches.  POP reads
 * only the low word of its slot (the guest's 4-byte limit check at the top of
 * a stack segment is not repeated inline).
 *
 * GS (Linux loads the next task's on every switch) is the monitor's own
 * segment register: the GDT entry is read through FS (restored after), and a
 * hit stores the two host selectors that stand for the guest's GS (the
 * shadow and its wrap-around half, segments.c) instead of loading one.  The
 * descriptor alternates between the tasks' TLS entries, so GS has two ways,
 * the second compared after the first misses, patched in turn.
 *       ... 3:  mov %gs:HOST_SEL_FS,%fs
 *               movw $HOST,%gs:GS_ALIAS; movw $WRAP,%gs:GS_ALIAS_WRAP ...
 */
static bool emit_seg_load(struct xlate *x, const struct dbt_insn *in, const uint8_t *bytes,
                          uint32_t eip)
{
    struct emit *e = &x->e;
    const ZydisDecodedOperand *ops = in->ops;
    bool pop = in->zi.mnemonic == ZYDIS_MNEMONIC_POP;
    if (x->tb->cpl != 0 || ops[0].type != ZYDIS_OPERAND_TYPE_REGISTER || in->seg_swap ||
        (in->zi.attributes & ZYDIS_ATTRIB_HAS_OPERANDSIZE))
        return false;
    int s = dbt_seg_index(ops[0].reg.value);
    if (s != SEG_DS && s != SEG_ES && s != SEG_FS && s != SEG_GS)
        return false;
    if (pop ? in->zi.stack_width != 32 : in->zi.mnemonic != ZYDIS_MNEMONIC_MOV)
        return false;
    bool gs = s == SEG_GS;
    struct seg_ic *ic[2] = { NULL, NULL };
    uint32_t site = new_seg_ic(x, in, bytes, &ic[0]);
    if (!site)
        return false;
    if (gs && (ic[1] = tcache_add_seg_ic(x->vm)))
        ic[0]->other = ic[1];
    uint32_t to_done[2] = { 0, 0 };

    e_gs_store_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    for (unsigned way = 0; way < 2 && ic[way]; way++) {
        uint32_t to_miss[3];
        if (pop)
            e_bytes(e, (uint8_t[]){ 0x0f, 0xb7, 0x0c, 0x24 }, 4);  /* movzwl (%esp),%ecx */
        else
            e_rm_to_ecx(e, in, bytes, 1, (uint8_t[]){ 0x0f, 0xb7 }, 2); /* 8E /r -> 0F B7 /1 */
        emit_seg_ic_compare(x, ic[way], gs ? SEG_FS : (unsigned)s, eip, to_miss);
        if (gs) {
            e_load_fs(e, BLK(VB_HOST_SEL + 2 * SEG_FS));
            e_gs_store_imm16(e, BLK(VB_GS_ALIAS), 0);
            ic[way]->host_sel_imm2 = e->addr - 2;
            e_gs_store_imm16(e, BLK(VB_GS_ALIAS_WRAP), 0);
            ic[way]->host_sel_imm = e->addr - 2;
        } else {
            e_u8(e, 0xb9);                                         /* mov $host,%ecx */
            ic[way]->host_sel_imm = e->addr;
            e_u32(e, 0);
            e_bytes(e, (uint8_t[]){ 0x8e, (uint8_t)(0xc1 | s << 3) }, 2); /* mov %ecx,%seg */
            e_gs_store_imm16(e, BLK(VB_HOST_SEL + 2 * (unsigned)s), 0);
            ic[way]->host_sel_imm2 = e->addr - 2;
        }
        e_gs_store_imm16(e, BLK(VB_GUEST_SEL + 2 * (unsigned)s), 0);
        ic[way]->guest_sel_imm = e->addr - 2;
        if (s == SEG_DS) {
            e_gs_store_imm(e, BLK(VB_DS_KEY), 1);
            ic[way]->ds_key_imm = e->addr - 4;
        }
        e_gs_store_imm(e, BLK(VB_SEG_SITE + 4 * (unsigned)s),
                       (uint32_t)(ic[way] - x->vm->tc.seg_ics) + 1);
        if (pop)
            e_bytes(e, (uint8_t[]){ 0x8d, 0x64, 0x24, 0x04 }, 4);  /* lea 4(%esp),%esp */
        e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
        to_done[way] = e_jmp(e, 0);
        for (unsigned i = 0; i < 3; i++)
            e_land(e, to_miss[i]);
    }
    if (gs)
        e_load_fs(e, BLK(VB_HOST_SEL + 2 * SEG_FS));
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_exit_emulate(x, eip, site);
    for (unsigned way = 0; way < 2; way++)
        if (to_done[way])
            e_land(e, to_done[way]);
    return true;
}

/*
 * VERW at CPL 0 (Linux runs it on every return to user mode to clear CPU
 * buffers): the same inline cache as segment loads, on the selector and the
 * GDT entry, read through FS; a hit sets ZF to the cached result and leaves
 * the other flags, through LAHF/SAHF and a 256-byte table (no flag-writing
 * arithmetic; SAHF leaves OF alone):
 *       [mov %gs:ALIAS,%fs]                selector through GS or CS
 *       mov %ecx,%gs:SCRATCH_ECX
 *       movzwl <src>,%ecx
 *       [mov %gs:HOST_SEL_FS,%fs]
 *       lea -SEL(%ecx),%ecx; jecxz 1f; jmp miss
 *   1:  mov %gs:FLAT_SEL,%fs
 *       mov %fs:ENTRY,%ecx ... (as emit_seg_load, twice)
 *   3:  mov %gs:HOST_SEL_FS,%fs
 *       mov %eax,%gs:SCRATCH_EAX; lahf; movzbl %ah,%ecx
 *       mov %gs:ZF_TABLE(%ecx),%ah; sahf; mov %gs:SCRATCH_EAX,%eax
 *       mov %gs:SCRATCH_ECX,%ecx; jmp done
 * miss: mov %gs:HOST_SEL_FS,%fs; mov %gs:SCRATCH_ECX,%ecx; <callout>
 * done:
 */
static bool emit_verw(struct xlate *x, const struct dbt_insn *in, const uint8_t *bytes,
                      uint32_t eip)
{
    struct emit *e = &x->e;
    if (x->tb->cpl != 0 || in->zi.mnemonic != ZYDIS_MNEMONIC_VERW ||
        (in->zi.attributes & ZYDIS_ATTRIB_HAS_OPERANDSIZE))
        return false;
    struct seg_ic *ic;
    uint32_t site = new_seg_ic(x, in, bytes, &ic);
    if (!site)
        return false;
    uint32_t to_miss[3], to_done;
    uint8_t b[16];
    const uint8_t *src = bytes;
    if (in->seg_swap) {
        e_load_fs(e, BLK(seg_swap_bytes(x, in, bytes, b))); /* never 0 at CPL 0 */
        src = b;
    }
    e_gs_store_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_rm_to_ecx(e, in, src, 2, (uint8_t[]){ 0x0f, 0xb7 }, 2);     /* 0F 00 /5 -> 0F B7 /1 */
    if (in->seg_swap)
        e_load_fs(e, BLK(VB_HOST_SEL + 2 * SEG_FS));
    emit_seg_ic_compare(x, ic, SEG_FS, eip, to_miss);
    e_load_fs(e, BLK(VB_HOST_SEL + 2 * SEG_FS));
    e_gs_store_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
    e_bytes(e, (uint8_t[]){ 0x9f, 0x0f, 0xb6, 0xcc }, 4);          /* lahf; movzbl %ah,%ecx */
    e_bytes(e, (uint8_t[]){ GS, 0x8a, 0xa1 }, 3);                  /* mov table(%ecx),%ah */
    ic->zf_table = e->addr;
    e_u32(e, BLK(VB_ZF_TABLES));
    e_u8(e, 0x9e);                                                 /* sahf */
    e_gs_load_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    to_done = e_jmp(e, 0);
    for (unsigned i = 0; i < 3; i++)
        e_land(e, to_miss[i]);
    e_load_fs(e, BLK(VB_HOST_SEL + 2 * SEG_FS));
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_exit_emulate(x, eip, site);
    e_land(e, to_done);
    return true;
}

/* PUSHFD (any CPL): push the host flags, then replace the image's virtual bits
 * with the guest's, restoring the host flags from the untouched image. */
static void emit_pushf(struct xlate *x)
{
    struct emit *e = &x->e;
    e_u8(e, 0x9c);                                              /* pushfl */
    e_gs_store_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
    e_bytes(e, (uint8_t[]){ 0x8b, 0x04, 0x24 }, 3);              /* mov (%esp),%eax */
    e_u8(e, 0x25);                                              /* and $ARITH,%eax */
    e_u32(e, EFLAGS_ARITH);
    e_bytes(e, (uint8_t[]){ GS, 0x0b, 0x05 }, 3);                /* or %gs:VFLAGS,%eax */
    e_u32(e, BLK(VB_VFLAGS));
    e_bytes(e, (uint8_t[]){ GS, 0x0b, 0x05 }, 3);                /* or %gs:VIF,%eax */
    e_u32(e, BLK(VB_VIF));
    e_u8(e, 0x0d);                                              /* or $FIXED,%eax */
    e_u32(e, EFLAGS_FIXED);
    e_gs_store_reg(e, R_EAX, BLK(VB_SCRATCH_TMP));
    e_u8(e, 0x9d);                                              /* popfl: host flags back */
    e_bytes(e, (uint8_t[]){ 0x8d, 0x64, 0x24, 0xfc }, 4);        /* lea -4(%esp),%esp */
    e_gs_load_reg(e, R_EAX, BLK(VB_SCRATCH_TMP));
    e_bytes(e, (uint8_t[]){ 0x89, 0x04, 0x24 }, 3);              /* mov %eax,(%esp) */
    e_gs_load_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
}

/* A forward jcc/jmp rel8 (opcode `op`) whose displacement e_land8 fills in. */
static uint8_t *e_jmp8(struct emit *e, uint8_t op)
{
    e_bytes(e, (uint8_t[]){ op, 0 }, 2);
    return e->p - 1;
}

static void e_land8(struct emit *e, uint8_t *rel8)
{
    *rel8 = (uint8_t)(e->p - (rel8 + 1));
}

/*
 * POPFD, without writing the guest's stack: the image's TF, NT, AC and ID
 * (and IOPL at CPL 0) into VFLAGS, IF into VIF at CPL 0 or with IOPL 3; the
 * host flags from the image by STD/CLD, an addition that sets OF or one that
 * clears it, and SAHF for the low byte:
 *       mov %eax,%gs:SCRATCH_EAX; mov (%esp),%eax       the only access
 *       mov %ecx,%gs:SCRATCH_ECX
 *       [CPL > 0: mov %gs:VFLAGS,%ecx; and $IOPL,%ecx; cmp $IOPL,%ecx; jne 1f]
 *       mov %eax,%ecx; and $IF,%ecx; mov %ecx,%gs:VIF
 *   1:  mov %eax,%ecx; and $VIRT,%ecx
 *       andl $~VIRT,%gs:VFLAGS; or %ecx,%gs:VFLAGS
 *       bt $10,%eax; jc 2f; cld; jmp 3f; 2: std
 *   3:  bt $11,%eax; jc 4f; xor %ecx,%ecx; jmp 5f; 4: mov $0x7f,%cl; add $1,%cl
 *   5:  mov %al,%ah; sahf
 *       lea 4(%esp),%esp; mov %gs:SCRATCH_ECX,%ecx; mov %gs:SCRATCH_EAX,%eax
 * The caller polls for an interrupt after it (IF may have been set).
 */
static void emit_popf(struct xlate *x)
{
    struct emit *e = &x->e;
    uint32_t virt = EFLAGS_TF | EFLAGS_NT | EFLAGS_AC | EFLAGS_ID;
    uint8_t *not_iopl3 = NULL;
    e_gs_store_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
    e_bytes(e, (uint8_t[]){ 0x8b, 0x04, 0x24 }, 3);              /* mov (%esp),%eax */
    e_gs_store_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    if (x->tb->cpl == 0) {
        virt |= EFLAGS_IOPL;
    } else {
        e_gs_load_reg(e, R_ECX, BLK(VB_VFLAGS));
        e_bytes(e, (uint8_t[]){ 0x81, 0xe1 }, 2);                /* and $IOPL,%ecx */
        e_u32(e, EFLAGS_IOPL);
        e_bytes(e, (uint8_t[]){ 0x81, 0xf9 }, 2);                /* cmp $IOPL,%ecx */
        e_u32(e, EFLAGS_IOPL);
        not_iopl3 = e_jmp8(e, 0x75);                             /* jne 1f */
    }
    e_bytes(e, (uint8_t[]){ 0x89, 0xc1, 0x81, 0xe1 }, 4);        /* mov %eax,%ecx; and $IF,%ecx */
    e_u32(e, EFLAGS_IF);
    e_gs_store_reg(e, R_ECX, BLK(VB_VIF));
    if (not_iopl3)
        e_land8(e, not_iopl3);
    e_bytes(e, (uint8_t[]){ 0x89, 0xc1, 0x81, 0xe1 }, 4);        /* mov %eax,%ecx; and $virt,%ecx */
    e_u32(e, virt);
    e_bytes(e, (uint8_t[]){ GS, 0x81, 0x25 }, 3);                /* andl $~virt,%gs:VFLAGS */
    e_u32(e, BLK(VB_VFLAGS));
    e_u32(e, ~virt);
    e_bytes(e, (uint8_t[]){ GS, 0x09, 0x0d }, 3);                /* or %ecx,%gs:VFLAGS */
    e_u32(e, BLK(VB_VFLAGS));
    e_bytes(e, (uint8_t[]){ 0x0f, 0xba, 0xe0, 10 }, 4);          /* bt $10,%eax */
    uint8_t *df = e_jmp8(e, 0x72);                               /* jc 2f */
    e_u8(e, 0xfc);                                               /* cld */
    uint8_t *df_done = e_jmp8(e, 0xeb);
    e_land8(e, df);
    e_u8(e, 0xfd);                                               /* std */
    e_land8(e, df_done);
    e_bytes(e, (uint8_t[]){ 0x0f, 0xba, 0xe0, 11 }, 4);          /* bt $11,%eax */
    uint8_t *of = e_jmp8(e, 0x72);                               /* jc 4f */
    e_bytes(e, (uint8_t[]){ 0x31, 0xc9 }, 2);                    /* xor %ecx,%ecx: OF=0 */
    uint8_t *of_done = e_jmp8(e, 0xeb);
    e_land8(e, of);
    e_bytes(e, (uint8_t[]){ 0xb1, 0x7f, 0x80, 0xc1, 0x01 }, 5);  /* mov $0x7f,%cl; add $1,%cl: OF=1 */
    e_land8(e, of_done);
    e_bytes(e, (uint8_t[]){ 0x88, 0xc4, 0x9e }, 3);              /* mov %al,%ah; sahf */
    e_bytes(e, (uint8_t[]){ 0x8d, 0x64, 0x24, 0x04 }, 4);        /* lea 4(%esp),%esp */
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_gs_load_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
}

/*
 * GS belongs to the monitor and CS to translated code: an access through
 * either runs through FS holding the guest segment's shadow.  Between
 * instructions FS holds the guest's GS shadow at CPL 3 (glibc keeps its TLS
 * and the stack protector's canary there; user code hardly uses FS) and the
 * guest's FS shadow at CPL 0-2 (Linux's per-CPU data): the run loop loads it
 * (VB_ENTRY_FS), and so does an inline SYSENTER or SYSEXIT.
 */
static uint32_t fs_home(const struct xlate *x)
{
    return x->tb->cpl == 3 ? VB_GS_ALIAS : VB_HOST_SEL + 2 * SEG_FS;
}

/* Copies the instruction into b with its GS/CS prefix turned into FS and
 * returns the vcpu_block offset of the shadow selector FS must hold for it,
 * or 0 if FS holds it already (at CPL 3, GS at a constant offset that does
 * not wrap; one through registers keeps its FS load, which signal.c points
 * at the wrap-around shadow if the offset turns out to wrap). */
static uint32_t seg_swap_bytes(const struct xlate *x, const struct dbt_insn *in,
                               const uint8_t *bytes, uint8_t b[16])
{
    uint32_t alias = VB_GS_ALIAS;
    bool gs_const = true;
    for (unsigned i = 0; i < in->zi.operand_count; i++) {
        const ZydisDecodedOperand *op = &in->ops[i];
        if (op->type != ZYDIS_OPERAND_TYPE_MEMORY)
            continue;
        if (op->mem.segment == ZYDIS_REGISTER_CS)
            alias = VB_CS_ALIAS;
        else if (op->mem.segment == ZYDIS_REGISTER_FS)
            alias = VB_HOST_SEL + 2 * SEG_FS;
        else if (op->mem.segment != ZYDIS_REGISTER_GS)
            continue;
        else if (op->mem.base != ZYDIS_REGISTER_NONE || op->mem.index != ZYDIS_REGISTER_NONE)
            gs_const = false;
        else if ((int32_t)op->mem.disp.value < 0)
            alias = VB_GS_ALIAS_WRAP; /* a TLS variable below the thread pointer */
    }
    memcpy(b, bytes, in->zi.length);
    for (unsigned i = 0; i < in->zi.raw.prefix_count; i++)
        if (b[i] == 0x65 || b[i] == 0x2e)
            b[i] = 0x64;
    return alias == fs_home(x) && gs_const ? 0 : alias;
}

/*
 * DIV and IDIV: a zero divisor is caught before the instruction, so that the
 * guest's #DE costs a monitor exit instead of a host SIGFPE (about 8k cycles
 * on these machines).  The divisor goes to %ecx (the operand's own ModRM with
 * MOV/MOVZX), which a memory operand faults on as the instruction would:
 *       mov %ecx,%gs:SCRATCH_ECX
 *       mov|movzx <divisor>,%ecx
 *       jecxz zero
 *       mov %gs:SCRATCH_ECX,%ecx
 *       <div>                          a quotient overflow still raises SIGFPE
 *       jmp done
 * zero: mov %gs:SCRATCH_ECX,%ecx
 *       <exit to the monitor, which raises #DE>
 * done:
 */
static bool emit_divide(struct xlate *x, const struct dbt_insn *in, const uint8_t *bytes,
                        uint32_t eip)
{
    struct emit *e = &x->e;
    unsigned size = in->ops[0].size;
    if (in->seg_swap || in->zi.operand_count_visible != 1 || (size != 8 && size != 16 && size != 32))
        return false;
    uint32_t site = tcache_add_callout_site(x->vm, x->tb, in, bytes);
    if (!site)
        return false;
    e_gs_store_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    if (size == 32)
        e_rm_to_ecx(e, in, bytes, 1, (uint8_t[]){ 0x8b }, 1);      /* mov r/m32,%ecx */
    else                                                           /* movzx r/m,%ecx */
        e_rm_to_ecx(e, in, bytes, 1, (uint8_t[]){ 0x0f, size == 8 ? 0xb6 : 0xb7 }, 2);
    e_bytes(e, (uint8_t[]){ 0xe3, (uint8_t)(7 + in->zi.length + 5) }, 2); /* jecxz zero */
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_bytes(e, bytes, in->zi.length);
    uint32_t to_done = e_jmp(e, 0);
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_exit_emulate(x, eip, site);
    e_land(e, to_done);
    return true;
}

static void emit_ident(struct xlate *x, const struct dbt_insn *in, const uint8_t *bytes)
{
    if (!in->seg_swap) {
        e_bytes(&x->e, bytes, in->zi.length);
        return;
    }
    uint8_t b[16];
    uint32_t alias = seg_swap_bytes(x, in, bytes, b);
    if (alias)
        e_load_fs(&x->e, BLK(alias));
    e_bytes(&x->e, b, in->zi.length);
    if (alias)
        e_load_fs(&x->e, BLK(fs_home(x)));
}

static uint32_t branch_target(const struct dbt_insn *in, uint32_t eip)
{
    ZyanU64 t = 0;
    ZydisCalcAbsoluteAddress(&in->zi, &in->ops[0], eip, &t);
    return (uint32_t)t;
}

/*
 * SYSENTER and SYSEXIT (Linux's system call entry and return), inline.  The
 * CPL switch is a WRPKRU; CS and SS, which both instructions load with fixed
 * flat descriptors derived from IA32_SYSENTER_CS, are only written as
 * selectors into the block with the fixed flat host SS and CS alias (the
 * monitor rebuilds vcpu.seg lazily from SYS_INLINE, seg_sync_inline); the
 * new EIP is looked up in the new CPL's IBL table.  IA32_SYSENTER_CS is
 * built in: a WRMSR that changes it flushes the translation cache if such a
 * sequence is in it.  The callout stays behind for SYSENTER with any of TF,
 * IOPL, NT, RF, VM, AC, VIF, VIP, ID set (some must be cleared, and the
 * inline path leaves them all alone), and for SYSEXIT while an interrupt is
 * pending: it must be taken at the user's EIP, not in the STI shadow Linux
 * puts before SYSEXIT.
 *       mov %ecx,%gs:SCRATCH_ECX
 *       mov %gs:VFLAGS,%ecx        (SYSEXIT: %gs:IRQ_PENDING)
 *       jecxz 1f; jmp slow
 *   1:  [SYSEXIT: mov %gs:SCRATCH_ECX,%esp]
 *       mov %eax,%gs:SCRATCH_EAX; mov %edx,%gs:SCRATCH_EDX
 *       mov %gs:PKRU_CPL+4*(CPL==3),%eax; mov $0,%ecx; mov $0,%edx; wrpkru; mov %eax,%gs:PKRU
 *       movw $CS,%gs:GUEST_SEL+2*CS; movw $SS,%gs:GUEST_SEL+2*SS
 *       movw $FLAT_RW,%gs:HOST_SEL+2*SS; mov %gs:HOST_SEL+2*SS,%ss
 *       movw $FLAT_RO,%gs:CS_ALIAS; mov %gs:HOST_SEL_FS (SYSEXIT: GS_ALIAS),%fs
 *       movl $1 (SYSEXIT: 2),%gs:SYS_INLINE
 *       movl $DESC_LO,%gs:CS_DESC; movl $DESC_HI,%gs:CS_DESC+4
 *       SYSENTER: movl $0,%gs:VIF; mov %gs:SYSENTER_ESP,%esp; mov %gs:SYSENTER_EIP,%eax
 *       SYSEXIT:  mov %gs:SCRATCH_EDX,%eax
 *       mov %gs:SCRATCH_EDX,%edx
 *       <IBL lookup of %eax in the new CPL's table>
 * slow: mov %gs:SCRATCH_ECX,%ecx; <callout>
 */
static bool emit_sysenter_sysexit(struct xlate *x, const struct dbt_insn *in, const uint8_t *bytes,
                                  uint32_t eip)
{
    struct emit *e = &x->e;
    bool enter = in->zi.mnemonic == ZYDIS_MNEMONIC_SYSENTER;
    uint16_t cs = (uint16_t)(x->vm->cpu.sysenter_cs & 0xfffc);
    if ((!enter && in->zi.mnemonic != ZYDIS_MNEMONIC_SYSEXIT) || !cs || x->tb->cs_base != 0 ||
        (!enter && x->tb->cpl != 0))
        return false;
    unsigned cpl = enter ? 0 : 3;
    uint16_t new_cs = (uint16_t)(enter ? cs : (cs + 16) | 3);
    x->vm->tc.nsys_inline++;

    e_gs_store_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    uint32_t to_slow = e_jmp_unless_zero(e, enter ? VB_VFLAGS : VB_IRQ_PENDING);
    if (!enter)
        e_gs_load_reg(e, R_ESP, BLK(VB_SCRATCH_ECX));
    e_gs_store_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
    e_gs_store_reg(e, R_EDX, BLK(VB_SCRATCH_EDX));
    e_gs_load_reg(e, R_EAX, BLK(VB_PKRU_CPL + (cpl == 3 ? 4 : 0)));
    e_u8(e, 0xb9);                                               /* mov $0,%ecx */
    e_u32(e, 0);
    e_u8(e, 0xba);                                               /* mov $0,%edx */
    e_u32(e, 0);
    e_bytes(e, (uint8_t[]){ 0x0f, 0x01, 0xef }, 3);              /* wrpkru */
    e_gs_store_reg(e, R_EAX, BLK(VB_PKRU));
    e_gs_store_imm16(e, BLK(VB_GUEST_SEL + 2 * SEG_CS), new_cs);
    e_gs_store_imm16(e, BLK(VB_GUEST_SEL + 2 * SEG_SS), (uint16_t)(new_cs + 8));
    e_gs_store_imm16(e, BLK(VB_HOST_SEL + 2 * SEG_SS), seg_flat_host_selector(true));
    e_bytes(e, (uint8_t[]){ GS, 0x8e, 0x15 }, 3);                /* mov %gs:HOST_SEL+2*SS,%ss */
    e_u32(e, BLK(VB_HOST_SEL + 2 * SEG_SS));
    e_gs_store_imm16(e, BLK(VB_CS_ALIAS), seg_flat_host_selector(false));
    e_load_fs(e, BLK(enter ? VB_HOST_SEL + 2 * SEG_FS : VB_GS_ALIAS)); /* fs_home of the new CPL */
    e_gs_store_imm(e, BLK(VB_SYS_INLINE), enter ? 1 : 2);
    uint64_t desc = seg_flat_desc(true, cpl);
    e_gs_store_imm(e, BLK(VB_CS_DESC), (uint32_t)desc);
    e_gs_store_imm(e, BLK(VB_CS_DESC + 4), (uint32_t)(desc >> 32));
    if (enter) {
        e_gs_store_imm(e, BLK(VB_VIF), 0);
        e_gs_load_reg(e, R_ESP, BLK(VB_SYSENTER_ESP));
        e_gs_load_reg(e, R_EAX, BLK(VB_SYSENTER_EIP));
    } else {
        e_gs_load_reg(e, R_EAX, BLK(VB_SCRATCH_EDX));
    }
    e_gs_load_reg(e, R_EDX, BLK(VB_SCRATCH_EDX));
    emit_ibl_in(x, 0, ibl_table(cpl));
    e_land(e, to_slow);
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_exit_emulate(x, eip, tcache_add_callout_site(x->vm, x->tb, in, bytes));
    return true;
}

/*
 * IRET at CPL 0 back to CPL 0 through the same CS (kernel-mode interrupt
 * returns; Linux's sync_core, thousands of times while it patches its own
 * text at boot), inline behind an inline cache (struct seg_ic) on the popped
 * selector and its GDT entry, which must also be the descriptor CS was
 * loaded from (vcpu_block.cs_desc): then nothing about CS changes.  The
 * popped EFLAGS may differ from the current ones in the arithmetic flags,
 * DF and IF only (VIF, then POPF of the image: the host ignores IF there);
 * its other bits must be the current ones, which the cache holds too, and
 * may only be ID (Linux keeps it set; the host takes it from the POPF, but
 * would take AC too and check alignment).  Anything else, IF set while
 * an interrupt is pending (it would be taken right after IRET) or an IRET
 * back to the last #PF (the monitor maps the page it retries), goes to the
 * callout, which patches the cache.
 *       mov %ecx,%gs:SCRATCH_ECX
 *       mov %gs:VFLAGS,%ecx; lea -VFLAGS(%ecx),%ecx; jecxz; jmp slow
 *       mov %gs:PF_RETRY,%ecx; jecxz; jmp slow
 *       movzwl %gs:GUEST_SEL+2*CS,%ecx; lea -SEL(%ecx),%ecx; jecxz; jmp slow
 *       mov %gs:CS_DESC,%ecx; lea -LO(%ecx),%ecx; jecxz; jmp slow (and HI)
 *       movzwl 10(%esp),%ecx; lea -VFLAGS>>16(%ecx),%ecx; jecxz; jmp slow   may fault
 *       mov %eax,%gs:SCRATCH_EAX; movzbl 9(%esp),%eax; mov %gs:IRQ_PENDING,%ecx
 *       movzbl %gs:IRET_FLAGS(%ecx,%eax),%ecx; mov %gs:SCRATCH_EAX,%eax
 *       jecxz; jmp slow
 *       movzwl 4(%esp),%ecx; <selector and GDT entry compares through FS: slow_fs>
 *       mov %gs:HOST_SEL_FS,%fs
 *       mov %eax,%gs:SCRATCH_EAX; mov (%esp),%eax      may fault
 *       mov 8(%esp),%ecx; and $IF,%ecx; mov %ecx,%gs:VIF
 *       lea 8(%esp),%esp; popf
 *       <IBL lookup of %eax>
 * slow_fs: mov %gs:HOST_SEL_FS,%fs
 * slow: mov %gs:SCRATCH_ECX,%ecx; <callout>
 */
static bool emit_iret(struct xlate *x, const struct dbt_insn *in, const uint8_t *bytes,
                      uint32_t eip)
{
    struct emit *e = &x->e;
    if (x->tb->cpl != 0 || in->zi.mnemonic != ZYDIS_MNEMONIC_IRETD)
        return false;
    struct seg_ic *ic;
    uint32_t site = new_seg_ic(x, in, bytes, &ic);
    if (!site)
        return false;
    uint32_t to_slow[8], to_slow_fs[3];
    unsigned n = 0;

    e_gs_store_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_gs_load_reg(e, R_ECX, BLK(VB_VFLAGS));
    ic->iret_vflags_key[0] = e_lea_ecx(e, 0);
    to_slow[n++] = e_jmp_unless_ecx_zero(e);
    to_slow[n++] = e_jmp_unless_zero(e, VB_PF_RETRY);
    e_bytes(e, (uint8_t[]){ GS, 0x0f, 0xb7, 0x0d }, 4);         /* movzwl %gs:CS,%ecx */
    e_u32(e, BLK(VB_GUEST_SEL + 2 * SEG_CS));
    ic->iret_neg_cur[0] = e_lea_ecx(e, (uint32_t)-0x10000);
    to_slow[n++] = e_jmp_unless_ecx_zero(e);
    for (unsigned i = 0; i < 2; i++) {
        e_gs_load_reg(e, R_ECX, BLK(VB_CS_DESC + 4 * i));
        ic->iret_neg_cur[1 + i] = e_lea_ecx(e, 0);
        to_slow[n++] = e_jmp_unless_ecx_zero(e);
    }
    add_map(x, eip, TB_RESTORE_ECX);
    e_bytes(e, (uint8_t[]){ 0x0f, 0xb7, 0x4c, 0x24, 10 }, 5);   /* movzwl 10(%esp),%ecx */
    ic->iret_vflags_key[1] = e_lea_ecx(e, 0);
    to_slow[n++] = e_jmp_unless_ecx_zero(e);
    e_gs_store_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
    e_bytes(e, (uint8_t[]){ 0x0f, 0xb6, 0x44, 0x24, 9 }, 5);    /* movzbl 9(%esp),%eax */
    e_gs_load_reg(e, R_ECX, BLK(VB_IRQ_PENDING));
    e_bytes(e, (uint8_t[]){ GS, 0x0f, 0xb6, 0x8c, 0x01 }, 5);   /* movzbl off(%ecx,%eax),%ecx */
    e_u32(e, BLK(VB_IRET_FLAGS));
    e_gs_load_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
    to_slow[n++] = e_jmp_unless_ecx_zero(e);
    e_bytes(e, (uint8_t[]){ 0x0f, 0xb7, 0x4c, 0x24, 4 }, 5);    /* movzwl 4(%esp),%ecx */
    emit_seg_ic_compare(x, ic, SEG_FS, eip, to_slow_fs);
    e_load_fs(e, BLK(VB_HOST_SEL + 2 * SEG_FS));
    e_gs_store_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
    add_map(x, eip, TB_RESTORE_EAX | TB_RESTORE_ECX);
    e_bytes(e, (uint8_t[]){ 0x8b, 0x04, 0x24 }, 3);             /* mov (%esp),%eax */
    e_bytes(e, (uint8_t[]){ 0x8b, 0x4c, 0x24, 8 }, 4);          /* mov 8(%esp),%ecx */
    e_bytes(e, (uint8_t[]){ 0x81, 0xe1 }, 2);                   /* and $IF,%ecx */
    e_u32(e, EFLAGS_IF);
    e_gs_store_reg(e, R_ECX, BLK(VB_VIF));
    e_bytes(e, (uint8_t[]){ 0x8d, 0x64, 0x24, 8, 0x9d }, 5);    /* lea 8(%esp),%esp; popf */
    emit_ibl_in(x, 0, ibl_table(0));
    for (unsigned i = 0; i < 3; i++)
        e_land(e, to_slow_fs[i]);
    e_load_fs(e, BLK(VB_HOST_SEL + 2 * SEG_FS));
    for (unsigned i = 0; i < n; i++)
        e_land(e, to_slow[i]);
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_exit_emulate(x, eip, site);
    return true;
}

/* MOV from CR2 at CPL 0 (every Linux page fault reads it): a load from the
 * block. */
static bool emit_cr2_read(struct xlate *x, const struct dbt_insn *in)
{
    const ZydisDecodedOperand *ops = in->ops;
    if (x->tb->cpl != 0 || in->zi.mnemonic != ZYDIS_MNEMONIC_MOV ||
        ops[1].type != ZYDIS_OPERAND_TYPE_REGISTER || ops[1].reg.value != ZYDIS_REGISTER_CR2)
        return false;
    e_gs_load_reg(&x->e, (unsigned)ZydisRegisterGetId(ops[0].reg.value), BLK(VB_CR2));
    return true;
}

/* Save %ecx to SCRATCH_ECX and test DS: a jmp (its rel32 returned) unless DS
 * is usable with base 0 (vcpu_block.ds_key), %ecx as it was on both paths
 * but the jump's, where SCRATCH_ECX holds it. */
static uint32_t e_jmp_unless_ds_flat(struct emit *e)
{
    e_gs_store_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    uint32_t to = e_jmp_unless_zero(e, VB_DS_KEY);
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    return to;
}

/*
 * INVLPG at CPL 0 through DS: a no-op while the page is in no bit of the
 * INVLPG map (mmu.h: not shadowed, no large mapping around it, no translated
 * code on it), which is most of Linux's INVLPGs (fork, exit, munmap, the
 * boot's MP-table scan); anything else, or a DS whose base is not 0, takes
 * the callout.  BT's flags are saved and put back (LAHF/SAHF, OF via SETO and
 * ADD), so the guest's flags survive.
 *       mov %ecx,%gs:SCRATCH_ECX
 *       mov %gs:DS_KEY,%ecx; jecxz 1f; jmp slow
 *   1:  mov %gs:SCRATCH_ECX,%ecx
 *       lea <m>,%ecx
 *       mov %eax,%gs:SCRATCH_EAX; lahf; seto %al
 *       shr $12,%ecx; bt %ecx,%gs:INVLPG_MAP; setc %cl
 *       add $0x7f,%al; sahf; mov %gs:SCRATCH_EAX,%eax
 *       movzbl %cl,%ecx; jecxz 2f
 * slow: mov %gs:SCRATCH_ECX,%ecx; <callout>
 *   2:  mov %gs:SCRATCH_ECX,%ecx
 */
static bool emit_invlpg(struct xlate *x, const struct dbt_insn *in, const uint8_t *bytes,
                        uint32_t eip)
{
    struct emit *e = &x->e;
    const ZydisDecodedOperand *op = &in->ops[0];
    if (x->tb->cpl != 0 || in->zi.mnemonic != ZYDIS_MNEMONIC_INVLPG || in->seg_swap ||
        op->type != ZYDIS_OPERAND_TYPE_MEMORY || op->mem.segment != ZYDIS_REGISTER_DS ||
        !x->vm->shadow.invlpg_map)
        return false;
    uint32_t site = tcache_add_callout_site(x->vm, x->tb, in, bytes);
    if (!site)
        return false;
    uint32_t to_slow = e_jmp_unless_ds_flat(e);
    e_rm_to_ecx(e, in, bytes, 2, (uint8_t[]){ 0x8d }, 1);       /* lea <m>,%ecx */
    e_gs_store_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
    e_bytes(e, (uint8_t[]){ 0x9f, 0x0f, 0x90, 0xc0 }, 4);        /* lahf; seto %al */
    e_bytes(e, (uint8_t[]){ 0xc1, 0xe9, 0x0c }, 3);              /* shr $12,%ecx */
    e_bytes(e, (uint8_t[]){ GS, 0x0f, 0xa3, 0x0d }, 4);          /* bt %ecx,%gs:map */
    e_u32(e, MON_INVLPG_MAP);
    e_bytes(e, (uint8_t[]){ 0x0f, 0x92, 0xc1 }, 3);              /* setc %cl */
    e_bytes(e, (uint8_t[]){ 0x04, 0x7f, 0x9e }, 3);              /* add $0x7f,%al; sahf */
    e_gs_load_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
    e_bytes(e, (uint8_t[]){ 0x0f, 0xb6, 0xc9 }, 3);              /* movzbl %cl,%ecx */
    e_bytes(e, (uint8_t[]){ 0xe3, 5 }, 2);                       /* jecxz +5: the no-op */
    uint32_t to_slow2 = e_jmp(e, 0);
    uint32_t to_done = e_jmp(e, 0);
    e_land(e, to_slow);
    e_land(e, to_slow2);
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_exit_emulate(x, eip, site);
    e_land(e, to_done);
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    return true;
}

/*
 * IN AL from a port at CPL 0 (never above IOPL): the value from the I/O bus's
 * fast-read table (devices.h) where the device published one, which is all
 * an IN of an unclaimed port, of port 0x80 or of the PIC's mask register
 * needs; the callout for any other port.
 *       mov %ecx,%gs:SCRATCH_ECX
 *       movzwl %gs:PORT_READS+2*imm8,%ecx   or   movzwl %dx,%ecx
 *                                                 movzwl %gs:PORT_READS(,%ecx,2),%ecx
 *       jecxz slow; mov %cl,%al; mov %gs:SCRATCH_ECX,%ecx; jmp done
 * slow: mov %gs:SCRATCH_ECX,%ecx; <callout>
 * done:
 */
static bool emit_in_fast(struct xlate *x, const struct dbt_insn *in, const uint8_t *bytes,
                         uint32_t eip)
{
    struct emit *e = &x->e;
    const ZydisDecodedOperand *ops = in->ops;
    if (x->tb->cpl != 0 || in->zi.mnemonic != ZYDIS_MNEMONIC_IN ||
        ops[0].reg.value != ZYDIS_REGISTER_AL || (x->vm->cfg.log_mask & LOG_IO))
        return false; /* -d io logs every access */
    bool imm = ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE;
    if (!imm && (ops[1].type != ZYDIS_OPERAND_TYPE_REGISTER || ops[1].reg.value != ZYDIS_REGISTER_DX))
        return false;
    uint32_t site = tcache_add_callout_site(x->vm, x->tb, in, bytes);
    if (!site)
        return false;
    e_gs_store_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    if (imm) {
        e_bytes(e, (uint8_t[]){ GS, 0x0f, 0xb7, 0x0d }, 4);          /* movzwl %gs:abs,%ecx */
        e_u32(e, MON_PORT_READS + 2 * (uint32_t)(ops[1].imm.value.u & 0xff));
    } else {
        e_bytes(e, (uint8_t[]){ 0x0f, 0xb7, 0xca }, 3);              /* movzwl %dx,%ecx */
        e_bytes(e, (uint8_t[]){ GS, 0x0f, 0xb7, 0x0c, 0x4d }, 5);    /* movzwl %gs:abs(,%ecx,2),%ecx */
        e_u32(e, MON_PORT_READS);
    }
    uint8_t *to_slow = e_jmp8(e, 0xe3);                              /* jecxz slow */
    e_bytes(e, (uint8_t[]){ 0x88, 0xc8 }, 2);                        /* mov %cl,%al */
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    uint32_t to_done = e_jmp(e, 0);
    e_land8(e, to_slow);
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_exit_emulate(x, eip, site);
    e_land(e, to_done);
    return true;
}

/* lea EA,%ecx for memory operand `op` (32-bit addressing, general registers;
 * always a 32-bit displacement). */
static void e_lea_ecx_ea(struct emit *e, const ZydisDecodedOperand *op)
{
    int base = op->mem.base == ZYDIS_REGISTER_NONE ? -1 : ZydisRegisterGetId(op->mem.base);
    int index = op->mem.index == ZYDIS_REGISTER_NONE ? -1 : ZydisRegisterGetId(op->mem.index);
    uint8_t ss = op->mem.scale == 8 ? 3 : op->mem.scale == 4 ? 2 : op->mem.scale == 2 ? 1 : 0;
    e_u8(e, 0x8d);
    if (base < 0 && index < 0) {
        e_u8(e, 0x0d);                                    /* mod 00, rm 101: disp32 */
    } else if (index < 0 && base != R_ESP) {
        e_u8(e, (uint8_t)(0x88 | base));                  /* mod 10: disp32(base) */
    } else {
        e_u8(e, base < 0 ? 0x0c : 0x8c);                  /* rm 100: SIB */
        e_u8(e, (uint8_t)(ss << 6 | (index < 0 ? 4 : index) << 3 | (base < 0 ? 5 : base)));
    }
    e_u32(e, (uint32_t)op->mem.disp.value);
}

/*
 * A checked fault site (dbt.h): the data access of an ident instruction that
 * keeps faulting is tested against its page's hint first (shadow.hints), so
 * that a page the shadow lacks calls out (the monitor maps it or delivers
 * the guest's #PF) instead of faulting to a host signal.  Only while DS is
 * usable with base 0, so that the operand's offset is the linear address;
 * the hint table has a byte per page, indexed through SHRX (BMI2), which
 * leaves the flags alone.  A stale hint only costs what the check saves: a
 * page hinted mapped that is not still faults as before.
 *       mov %ecx,%gs:SCRATCH_ECX
 *       mov %gs:DS_KEY,%ecx; jecxz 1f; jmp ok
 *   1:  mov %gs:SCRATCH_ECX,%ecx; mov %eax,%gs:SCRATCH_EAX
 *       lea EA,%ecx; mov $12,%eax; shrx %eax,%ecx,%ecx
 *       movzbl %gs:PAGE_HINTS(%ecx),%ecx; mov %gs:SCRATCH_EAX,%eax
 *       read:  jecxz slow; jmp ok                 (any hint)
 *       write: lea -WRITE(%ecx),%ecx; jecxz ok    (hint WRITE only)
 * slow: mov %gs:SCRATCH_ECX,%ecx; <page-check callout>
 * ok:   mov %gs:SCRATCH_ECX,%ecx
 *       <the instruction>
 */
static bool emit_page_check(struct xlate *x, const struct dbt_insn *in, const uint8_t *bytes,
                            uint32_t eip)
{
    struct emit *e = &x->e;
    bool write;
    const ZydisDecodedOperand *op = dbt_checkable_access(in, &write);
    if (!op || !tcache_site_checked(x->vm, x->tb, eip))
        return false;
    uint32_t site = tcache_add_callout_site(x->vm, x->tb, in, bytes);
    if (!site)
        return false;

    uint32_t to_ok = e_jmp_unless_ds_flat(e);
    e_gs_store_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
    e_lea_ecx_ea(e, op);
    e_bytes(e, (uint8_t[]){ 0xb8, 12, 0, 0, 0 }, 5);                 /* mov $12,%eax (page shift) */
    e_bytes(e, (uint8_t[]){ 0xc4, 0xe2, 0x7b, 0xf7, 0xc9 }, 5);      /* shrx %eax,%ecx,%ecx */
    e_bytes(e, (uint8_t[]){ GS, 0x0f, 0xb6, 0x89 }, 4);              /* movzbl %gs:abs(%ecx),%ecx */
    e_u32(e, MON_PAGE_HINTS);
    e_gs_load_reg(e, R_EAX, BLK(VB_SCRATCH_EAX));
    uint8_t *to_ok8 = NULL;
    uint32_t to_ok32 = 0;
    if (write) {
        e_lea_ecx(e, (uint32_t)-SHADOW_HINT_WRITE);
        to_ok8 = e_jmp8(e, 0xe3);                                    /* jecxz ok */
    } else {
        to_ok32 = e_jmp_unless_ecx_zero(e);
    }
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    e_exit_emulate(x, eip, site | EXIT_ARG_PAGE_CHECK);
    e_land(e, to_ok);
    if (to_ok8)
        e_land8(e, to_ok8);
    else
        e_land(e, to_ok32);
    e_gs_load_reg(e, R_ECX, BLK(VB_SCRATCH_ECX));
    return true;
}

/* Record the frames an instruction at `lin` of `len` bytes came from; false
 * if the block would then span more than two pages. */
static bool note_pages(struct xlate *x, const struct fetch *ft, uint32_t lin, unsigned len)
{
    struct tblock *tb = x->tb;
    bool crosses = (lin & ~PAGE_MASK) + len > PAGE_SIZE;
    uint32_t pages[2] = { ft->phys[0], crosses ? ft->phys[1] : ft->phys[0] };
    for (unsigned i = 0; i < 2; i++) {
        uint32_t pg = pages[i];
        if (!guest_ram_contains(&x->vm->ram, pg, PAGE_SIZE) || pg == tb->phys[0] || pg == tb->phys[1])
            continue;
        if (tb->phys[0] == ~0u)
            tb->phys[0] = pg;
        else if (tb->phys[1] == ~0u)
            tb->phys[1] = pg;
        else
            return false;
    }
    tb->global &= ft->global;
    return true;
}

struct tblock *tcache_translate(struct vm *vm, uint32_t eip, struct fault *f)
{
    struct vcpu *c = &vm->cpu;
    if (!(c->seg[SEG_CS].attr & SEG_ATTR_DB)) {
        vm_stop(vm, 3, "popek: guest runs 16-bit protected-mode code at %04x:%08x (not supported yet)",
                c->seg[SEG_CS].sel, eip);
        return NULL;
    }
    if (!tcache_ibl_valid(vm))
        tcache_ibl_clear(vm);

    struct xlate x = { .vm = vm };
    x.tb = tcache_alloc_block(vm, TB_WORST_BYTES, TB_WORST_MAPS);
    struct tblock *tb = x.tb;
    tb->eip = eip;
    tb->cs_base = c->seg[SEG_CS].base;
    tb->cpl = (uint8_t)vcpu_cpl(c);
    tb->fpu_trap = c->cr0 & (CR0_TS | CR0_EM);
    tb->global = true;
    x.e.addr = tb->tc - TB_IBL_PROLOGUE;
    x.e.p = (uint8_t *)(uintptr_t)x.e.addr;
    x.ibl_off = ibl_table(tb->cpl);

    e_gs_load_reg(&x.e, R_ECX, BLK(VB_SCRATCH_ECX)); /* IBL prologue, at tb->tc - 7 */
    e_poll(&x.e, MON_POLL_EXIT);
    uint32_t cur = eip;
    int irq_poll_in = -1; /* instructions left before the post-STI interrupt check */
    bool ended = false;
    bool plain = true;    /* no IF change, interrupt check or callout in the block */

    for (unsigned n = 0; n < TB_MAX_INSNS && !ended; n++) {
        struct fetch ft;
        struct dbt_insn in;
        int poll_before = irq_poll_in; /* an inline callout would skip the post-STI check */
        vm_fetch(vm, cur, &ft);
        const uint8_t *bytes = ft.bytes;
        bool ok = ft.n && dbt_decode(&vm->tc.dec, bytes, ft.n, tb->cpl, &in);
        if (!ok && n == 0 && ft.faulted) {
            /* The first instruction cannot be fetched: the fault is the guest's. */
            *f = ft.f;
            return NULL;
        }
        if (ok && !note_pages(&x, &ft, c->seg[SEG_CS].base + cur, in.zi.length)) {
            exit_direct(&x, cur);
            break;
        }
        if (ok)
            dbt_apply_mode(&in, tb->cpl, tb->fpu_trap, c->cr4 & CR4_TSD);
        if (!ok) {
            if (n > 0) {
                exit_direct(&x, cur);  /* let the fault belong to its own block */
                break;
            }
            in.cls = DBT_INVALID;
        }
        if (irq_poll_in >= 0 && (in.cls == DBT_CALLOUT || in.cls == DBT_INVALID)) {
            /* STI; HLT and friends: the monitor checks for interrupts after
             * the callout, which keeps the STI shadow. */
            irq_poll_in = -1;
        } else if (irq_poll_in == 0 || (irq_poll_in > 0 && in.cls != DBT_IDENT)) {
            add_map(&x, cur, 0);
            e_poll(&x.e, MON_POLL_IRQ);
            irq_poll_in = -1;
        }
        add_map(&x, cur, 0);
        uint32_t next = ok ? cur + in.zi.length : cur;
        if (in.cls == DBT_STI || in.cls == DBT_POPF || in.cls == DBT_CALLOUT ||
            in.cls == DBT_INVALID || irq_poll_in >= 0)
            plain = false;

        switch (in.cls) {
        case DBT_IDENT:
            if ((in.zi.mnemonic == ZYDIS_MNEMONIC_DIV || in.zi.mnemonic == ZYDIS_MNEMONIC_IDIV) &&
                emit_divide(&x, &in, bytes, cur))
                break;
            if (poll_before < 0 && emit_page_check(&x, &in, bytes, cur))
                plain = false; /* it has a callout */
            emit_ident(&x, &in, bytes);
            break;
        case DBT_JUMP:
            exit_direct(&x, branch_target(&in, cur));
            ended = true;
            break;
        case DBT_JCC: {
            e_bytes(&x.e, (uint8_t[]){ 0x0f, (uint8_t)(0x80 | (in.zi.opcode & 0xf)) }, 2);
            uint32_t slot = x.e.addr;
            e_u32(&x.e, 0);
            add_exit_slot(&x, slot, branch_target(&in, cur));
            /* Keep going on the fall-through path while there is room for
             * the exits a later terminator needs (at most two). */
            if (tb->nexits + 2 >= TB_MAX_EXITS) {
                exit_direct(&x, next);
                ended = true;
            }
            break;
        }
        case DBT_LOOP: {
            if (in.zi.attributes & ZYDIS_ATTRIB_HAS_ADDRESSSIZE)
                e_u8(&x.e, 0x67);
            e_bytes(&x.e, (uint8_t[]){ in.zi.opcode, 2, 0xeb, 5 }, 4);
            exit_direct(&x, branch_target(&in, cur));
            exit_direct(&x, next);
            ended = true;
            break;
        }
        case DBT_CALL:
            e_u8(&x.e, 0x68);
            e_u32(&x.e, next);
            exit_direct(&x, branch_target(&in, cur));
            ended = true;
            break;
        case DBT_IND_JMP:
        case DBT_IND_CALL:
            emit_indirect(&x, &in, bytes, cur, in.cls == DBT_IND_CALL);
            ended = true;
            break;
        case DBT_RET:
            emit_ret(&x, &in);
            ended = true;
            break;
        case DBT_CLI:
            e_gs_store_imm(&x.e, BLK(VB_VIF), 0);
            break;
        case DBT_STI:
            e_gs_store_imm(&x.e, BLK(VB_VIF), EFLAGS_IF);
            irq_poll_in = 1;
            break;
        case DBT_PUSHF:
            emit_pushf(&x);
            break;
        case DBT_POPF:
            emit_popf(&x);
            add_map(&x, next, 0);
            e_poll(&x.e, MON_POLL_IRQ);
            break;
        case DBT_CALLOUT:
            if (in.kind == CO_SEGMENT && poll_before < 0 &&
                (emit_seg_read(&x, &in, cur) || emit_seg_load(&x, &in, bytes, cur) ||
                 emit_verw(&x, &in, bytes, cur)))
                break;
            if (in.kind == CO_CONTROL && poll_before < 0 &&
                (emit_cr2_read(&x, &in) || emit_invlpg(&x, &in, bytes, cur)))
                break;
            if (in.kind == CO_IO && poll_before < 0 && emit_in_fast(&x, &in, bytes, cur))
                break;
            vm->tc.stats.callouts[in.kind]++;
            if (!(in.kind == CO_SYSCALL && emit_sysenter_sysexit(&x, &in, bytes, cur)) &&
                !(in.kind == CO_INTERRUPT && poll_before < 0 && emit_iret(&x, &in, bytes, cur)))
                emit_callout(&x, cur, &in, bytes);
            ended = true;
            break;
        case DBT_INVALID:
            emit_callout(&x, cur, NULL, NULL);
            ended = true;
            break;
        }
        if (irq_poll_in > 0 && in.cls != DBT_STI)
            irq_poll_in--;
        cur = next;
    }
    if (!ended) {
        if (irq_poll_in >= 0) {
            add_map(&x, cur, 0);
            e_poll(&x.e, MON_POLL_IRQ);
        }
        add_map(&x, cur, 0);
        exit_direct(&x, cur);
    }
    tb->tc_end = x.e.addr;
    tb->plain = plain;

    /* Unchained stubs, one per exit. */
    for (unsigned i = 0; i < tb->nexits; i++) {
        struct tb_exit *ex = &tb->exits[i];
        if (ex->ic_key)
            continue; /* its stub is the inline sequence's own fixup */
        ex->stub = x.e.addr;
        e_gs_store_imm(&x.e, BLK(VB_EXIT_EIP), ex->target_eip);
        e_gs_store_imm(&x.e, BLK(VB_EXIT_ARG), tb_exit_arg((uint32_t)(tb - vm->tc.blocks), i));
        e_jmp(&x.e, vm->tc.stub_exit_chain);
        int32_t rel = (int32_t)(ex->stub - (ex->slot + 4));
        memcpy((void *)(uintptr_t)ex->slot, &rel, 4);
    }
    tcache_commit_block(vm, tb, x.e.addr);
    if (vm->perfmap)
        fprintf(vm->perfmap, "%x %x guest_%08x_cpl%u\n", tb->tc - TB_IBL_PROLOGUE,
                x.e.addr - tb->tc + TB_IBL_PROLOGUE, tb->cs_base + eip, tb->cpl);
    if (vm->cfg.log_mask & LOG_IN_ASM) {
        uint8_t code[TB_MAX_INSNS * 15];
        uint32_t len = cur - eip < sizeof(code) ? cur - eip : sizeof(code);
        vm_log(vm, LOG_IN_ASM, "IN: %04x:%08x (cpl %u)\n", c->seg[SEG_CS].sel, eip, tb->cpl);
        if (vm_read_linear(vm, c->seg[SEG_CS].base + eip, code, len))
            dbt_disas(vm->log, code, len, eip);
    }
    if (vm->cfg.log_mask & LOG_OUT_ASM) {
        vm_log(vm, LOG_OUT_ASM, "OUT: tc %08x (%u bytes with stubs)\n", tb->tc, x.e.addr - tb->tc);
        dbt_disas(vm->log, (const uint8_t *)(uintptr_t)(tb->tc - TB_IBL_PROLOGUE),
                  x.e.addr - tb->tc + TB_IBL_PROLOGUE, tb->tc - TB_IBL_PROLOGUE);
    }
    return tb;
}
