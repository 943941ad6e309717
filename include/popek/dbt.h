/*
 * The binary translator and its translation cache.
 *
 * A translation block (tblock) is one guest basic block, keyed by
 * (CS base, EIP, CPL, code size).  Its code lives in the translation cache, a
 * bump-allocated arena in the monitor region that is flushed whole when full.
 *
 *   tb->tc:  mov %al, %gs:POLL_EXIT          exit-request check (a store)
 *            <ident copies / inline sequences>
 *            jmp rel32 ----------------.     exit slot: patched to chain
 *   stubs:   movl $target,%gs:EXIT_EIP  <'     unchained: tell the monitor
 *            movl $slot,%gs:EXIT_ARG            which slot to patch
 *            jmp  mon_stub_exit_chain
 *
 * Each block records, per guest instruction, where its translation starts in
 * the TC, so a host fault inside the block maps back to the exact guest
 * instruction.  Inline sequences are written so that only their first guest
 * memory access can fault, with every guest register still intact (or saved
 * in a scratch slot named by the map entry's `restore` bits).
 */
#ifndef POPEK_DBT_H
#define POPEK_DBT_H

#include <stdbool.h>
#include <stdint.h>

#include <Zydis/Zydis.h>

#include "popek/vcpu.h"

/* ---- decoding and classification (src/dbt/decode.c) ------------------------ */

enum dbt_class {
    DBT_IDENT,     /* copied byte for byte (possibly with a segment prefix swap) */
    DBT_JUMP,      /* direct JMP rel */
    DBT_JCC,       /* Jcc rel */
    DBT_LOOP,      /* LOOP/LOOPcc/JECXZ/JCXZ rel8 */
    DBT_CALL,      /* direct CALL rel */
    DBT_IND_JMP,   /* JMP r/m32 */
    DBT_IND_CALL,  /* CALL r/m32 */
    DBT_RET,       /* RET / RET imm16 */
    DBT_CLI,       /* inline at CPL 0 */
    DBT_STI,
    DBT_PUSHF,
    DBT_POPF,
    DBT_CALLOUT,   /* emulated by the monitor */
    DBT_INVALID,   /* undecodable: the emulator raises #UD */
};

/* Why an instruction is a callout, for statistics. */
enum callout_kind {
    CO_DESCTABLE,  /* SGDT SIDT SLDT STR LGDT LIDT LLDT LTR */
    CO_SEGMENT,    /* MOV/PUSH/POP sreg, LDS..LSS, LAR LSL VERR VERW */
    CO_FARBRANCH,  /* far JMP/CALL/RET */
    CO_INTERRUPT,  /* INT n, INT3, INTO, INT1, IRET */
    CO_SYSCALL,    /* SYSENTER SYSEXIT SYSCALL SYSRET */
    CO_IO,         /* IN OUT INS OUTS */
    CO_CONTROL,    /* MOV CRn/DRn, SMSW LMSW CLTS, INVLPG, INVD WBINVD */
    CO_MSR,        /* RDMSR WRMSR RDPMC */
    CO_CPUID,
    CO_HLT,
    CO_FLAGS,      /* CLI STI PUSHF POPF where they cannot be inline */
    CO_BRANCH,     /* near branches the translator leaves to the emulator */
    CO_FPU,        /* x87/MMX/SSE while CR0.TS or CR0.EM is set */
    CO_OTHER,
    CO_COUNT,
};

struct dbt_insn {
    ZydisDecodedInstruction zi;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    enum dbt_class cls;
    enum callout_kind kind;  /* when cls == DBT_CALLOUT */
    bool seg_swap;           /* has a GS or CS memory override: run through FS */
};

void dbt_decoder_init(ZydisDecoder *dec);
/* A Zydis segment register as the x86 encoding numbers it (SEG_ES..SEG_GS), or -1. */
int dbt_seg_index(ZydisRegister r);
/* Decode and classify one instruction at guest CPL `cpl`.  Returns false if
 * the bytes do not decode (cls = DBT_INVALID). */
bool dbt_decode(const ZydisDecoder *dec, const uint8_t *buf, unsigned len, unsigned cpl,
                struct dbt_insn *out);
const char *callout_kind_name(enum callout_kind k);
/* The one data access of an ident instruction that a page check can test
 * (translate.c, emit_page_check): an explicit memory operand through DS with
 * 32-bit addressing by general registers, and no other memory operand (no
 * string or stack access).  NULL if there is none; *write if it writes. */
const ZydisDecodedOperand *dbt_checkable_access(const struct dbt_insn *in, bool *write);

/* Which CR0.TS/EM/MP rules (SDM vol. 3A, table 2-2) apply to an instruction. */
enum dbt_fpu_use { FPU_NONE, FPU_X87, FPU_SIMD, FPU_WAIT };
enum dbt_fpu_use dbt_fpu_use(const struct dbt_insn *in);
/* Classification that depends on control-register state: x87/MMX/SSE
 * become callouts while CR0.TS or EM is set (fpu_trap), RDTSC outside ring 0
 * while CR4.TSD is set.  Blocks are keyed by fpu_trap; TSD changes flush. */
void dbt_apply_mode(struct dbt_insn *in, unsigned cpl, bool fpu_trap, bool tsd);

/* ---- translation blocks and the cache (src/dbt/tcache.c) ---------------------- */

#define TB_MAX_INSNS 64
/* Conditional branches are side exits: translation continues on the
 * fall-through path (a superblock), so a block has up to this many exits. */
#define TB_MAX_EXITS 6

/* What an unchained exit leaves in vcpu_block.exit_arg for the monitor to
 * chain it: its block's index in the pool and its own (0: nothing to chain). */
static inline uint32_t tb_exit_arg(uint32_t block, unsigned exit)
{
    _Static_assert(TB_MAX_EXITS <= 8, "exit index in 3 bits");
    return (block + 1) << 3 | exit;
}

/* Its inverse; false for 0 (nothing to chain). */
static inline bool tb_exit_arg_decode(uint32_t arg, uint32_t *block, unsigned *exit)
{
    *block = (arg >> 3) - 1;
    *exit = arg & 7;
    return arg != 0;
}

/* Bits in tb_map.restore: registers an inline sequence had saved to scratch
 * before the mapped instruction and that a fault there must restore. */
#define TB_RESTORE_EAX 1u
#define TB_RESTORE_ECX 2u

struct tb_map {
    uint16_t tc_off;   /* first TC byte of this guest instruction's translation */
    uint16_t eip_off;  /* guest EIP - tb->eip */
    uint8_t restore;
};

struct tblock;

struct tb_exit {
    uint32_t slot;            /* TC address of the rel32 field to patch */
    uint32_t ic_key;          /* inline cache (RET): TC address of the imm32 holding -EIP, or 0 */
    uint32_t ic_miss;         /* RET: rel32 of the jump taken on a cache miss */
    uint32_t ic_generic;      /* RET: the IBL lookup it takes once the cache is set */
    uint32_t ic_first;        /* RET: the exit to the monitor it takes until then */
    uint32_t stub;            /* TC address of the unchained stub */
    uint32_t target_eip;
    struct tblock *to;        /* chained target or NULL */
    struct tblock *in_next;   /* next and previous (NULL: to->in_head is this) */
    struct tblock *in_prev;   /* exits in to's incoming list */
    uint8_t in_next_exit, in_prev_exit;
    bool dormant;             /* its last link is in the dormant pool */
};

/* Bytes before tb->tc: the IBL prologue, `mov %gs:SCRATCH_ECX,%ecx`. */
#define TB_IBL_PROLOGUE 7
#define TB_POLL_BYTES 6   /* the poll store at the block entry (tb->tc) */

struct tblock {
    uint32_t eip, cs_base;
    uint8_t cpl;
    bool fpu_trap;            /* translated with CR0.TS or CR0.EM set */
    bool global;              /* all its code came through global mappings (or paging off) */
    bool valid;
    bool plain;               /* no STI, POPF or callout: chained to from plain blocks past its poll */
    uint32_t tc;              /* TC address of the block entry */
    uint32_t tc_end;          /* end of its code (before stubs) */
    uint32_t phys[2];         /* guest physical pages the code came from (~0u: none) */
    uint16_t nmap;
    uint8_t nexits;
    struct tb_map *map;
    struct tb_exit exits[TB_MAX_EXITS];
    struct tblock *hash_next;
    struct tblock *in_head;   /* blocks chained to this one */
    uint8_t in_head_exit;
    struct tblock *lpage_next; /* next block starting on the same linear page */
    struct tblock *ppage_next[2]; /* next block with code in the frame of phys[0], phys[1] */
    bool ibl_dormant;         /* its IBL entry is in the dormant pool */
};

/* A chain or IBL entry that depends on non-global mappings: undone when the
 * guest changes address space (CR3 write) to tables that do not map its
 * target as before, like a non-global TLB entry. */
struct volatile_link {
    struct tblock *from;      /* NULL: an IBL entry, `exit` unused */
    uint8_t exit;
    uint32_t ibl_index;       /* for IBL entries: table * MON_IBL_ENTRIES + index */
    struct tblock *to;        /* the block linked to */
    uint8_t age;              /* address-space switches it was restored over without use */
    uint32_t next;            /* index + 1 of the next of its group (or free), 0: none */
};
#define TC_VOLATILE_MAX 16384

/* The volatile links by their target's first linear page and its frame:
 * a CR3 write probes each group's page once in the new tables and leaves
 * the links of a group whose page they map as before (text two processes
 * share) in place, whatever their number.  Links that were undone since
 * (INVLPG, invalidation) stay listed until their group goes or the pool
 * fills up; a pool or group table full of links in place undoes them all. */
#define TC_LINK_GROUPS 2048
#define TC_LINK_GROUP_HASH 1024
struct link_group {
    uint32_t page, frame;
    bool user;                /* targets at CPL 3: the probe is a user access */
    bool spans;               /* targets running onto a second page: never kept */
    uint32_t head;            /* its first link (index + 1); 0: the group is free */
    uint32_t count;
    uint32_t hnext;           /* index + 1 of the next group in its hash chain (or free) */
};

/* The volatile links a CR3 write undid when the guest last left an address
 * space (by its CR3), for making them again when it comes back: the last
 * TC_LINK_SPACES page directories, up to TC_LINK_SPACE_MAX links each. */
#define TC_LINK_SPACES 16
#define TC_LINK_SPACE_MAX 1024
/* A restored link is not known to be used: after this many restores in a
 * row it is dropped, and made again (age 0) if the guest needs it. */
#define TC_LINK_MAX_AGE 8
struct link_space {
    uint32_t cr3;
    uint64_t flushes;         /* stats.flushes when saved: older ones are void */
    uint64_t last_used;
    uint32_t n;
    struct volatile_link links[TC_LINK_SPACE_MAX];
};
#define TC_LPAGE_HASH 4096u

/* The links CR3 writes undid, for any address space loaded after (a fork
 * child runs its parent's code, an exec'd busybox the shell's): one is made
 * again when the monitor first sees a block on its target's page and the
 * space maps that block as before (tcache_wake_links).  Each link is in the
 * pool once (tb_exit.dormant, tblock.ibl_dormant), by target page; a full
 * pool starts again empty. */
#define TC_DORMANT_HASH 1024u
struct dormant_link {
    struct volatile_link l;
    uint32_t next;            /* index + 1 of the next in its hash chain, 0: none */
};

struct dbt_stats {
    uint64_t blocks_translated;
    uint64_t flushes;
    uint64_t chained_exits;    /* exits patched into direct jumps */
    uint64_t unchained_exits;  /* block exits that came back to the monitor */
    uint64_t links_kept;       /* chains and IBL entries a CR3 write left in place (by
                                * group count, which includes ones undone since) */
    uint64_t links_restored;   /* chains and IBL entries made again on a CR3 write */
    uint64_t links_woken;      /* dormant ones made again in another address space */
    uint64_t ibl_hits;         /* counted inline when --stats is on */
    uint64_t ibl_misses;
    uint64_t invalidations;
    uint64_t callouts[CO_COUNT];
    uint64_t sites_checked;    /* fault sites translated with a page check */
    uint64_t sites_unchecked;  /* ... and then without again, for good */
    uint64_t checks_mapped;    /* page-check callouts that mapped the page */
    uint64_t checks_faulted;   /* ... that delivered the guest's #PF */
};

#define TC_HASH_SIZE 65536u

/* A callout's instruction as the translator decoded it: while its block is
 * valid the bytes are unchanged, so the emulator need not fetch and decode it
 * again.  The callout passes its index (from 1) in exit_arg. */
struct callout_site {
    const struct tblock *tb;
    struct dbt_insn in;
    uint8_t bytes[15];
    struct seg_ic *ic;       /* an inline segment load's cache in front of this callout */
    /* The block execution went on with after the callout last time, valid
     * while tcache.space_gen is unchanged (no CR3 write, INVLPG, flush). */
    struct tblock *next;
    uint32_t next_eip;
    uint64_t next_gen;
};

/*
 * The inline cache of a MOV/POP to DS, ES, FS or GS at CPL 0 (translate.c): TC
 * addresses of the immediates the monitor patches after it emulated a load
 * through the site, and what that load produced.  The translated code
 * repeats the load without the monitor while the selector is the same and
 * the guest's GDT entry holds the same eight bytes: the checks and the
 * result depend on nothing else at a given CPL.
 */
struct seg_ic {
    uint32_t neg_sel;        /* lea -sel(%ecx): -0x10000 while unpatched, never hits */
    uint32_t desc_addr[2];   /* disp32 of the two reads of the GDT entry */
    uint32_t neg_desc[2];    /* lea -dword(%ecx) */
    uint32_t host_sel_imm;   /* mov $host,%ecx (GS: movw $wrap,%gs:GS_ALIAS_WRAP) */
    uint32_t guest_sel_imm;  /* movw $sel,%gs:GUEST_SEL */
    uint32_t host_sel_imm2;  /* movw $host,%gs:HOST_SEL (GS: %gs:GS_ALIAS) */
    uint32_t ds_key_imm;     /* DS: movl $key,%gs:DS_KEY (vcpu_block.ds_key), else 0 */
    struct seg_cache cache;  /* the guest segment cache after the load */
    uint32_t zf_table;       /* VERW instead of a load: disp32 of the ZF table read */
    struct seg_ic *other;    /* the second way of a two-way cache (GS), or NULL */
    uint32_t iret_neg_cur[3]; /* IRET: lea -sel / -dword(%ecx) on CS and vcpu_block.cs_desc */
    uint32_t iret_vflags_key[2]; /* IRET: lea -vflags / -(vflags >> 16) */
    bool victim_other;       /* the next miss patches `other` */
};
#define TC_CALLOUT_SITES 4096

/*
 * Guest instructions that keep faulting on data pages the shadow does not
 * map (hidden faults and the guest's own #PFs alike: a kernel's copy loop, a
 * user program touching fresh pages), by the physical address of the
 * instruction.  From TC_FAULT_HOT faults on, a site is "checked": translated
 * behind a test of its page's hint (shadow.hints) that calls out when the
 * page is not mapped, so that a missing page costs a callout instead of a
 * host signal (VMware's adaptive translation of instructions that trace, for
 * page faults).  A site the callout cannot serve (MMIO, page 0, a write to a
 * code page, a non-flat DS) is translated plainly again and never checked.
 */
#define TC_FAULT_SITES 4096 /* a power of two */
#define EXIT_ARG_PAGE_CHECK 0x80000000u /* in a callout's exit_arg: a page check's miss */
#define TC_FAULT_PROBES 8
#define TC_FAULT_HOT 3

struct fault_site {
    uint32_t gpa1;            /* the instruction's physical address + 1, 0: free */
    uint16_t faults;
    bool checked, never;
};

struct tcache {
    uint8_t *mon;              /* monitor region base (== mon_base as a pointer) */
    uint32_t mon_base;
    uint32_t tc_start, tc_end; /* TC address range */
    uint32_t tc_next;          /* bump pointer */
    struct tblock *blocks;     /* pool, in TC order (bsearch by address) */
    uint32_t nblocks, max_blocks;
    struct tb_map *maps;       /* map pool */
    uint32_t nmaps, max_maps;
    struct tblock *hash[TC_HASH_SIZE];
    uint32_t stub_exit_chain, stub_exit_emulate, stub_exit_ibl_miss, stub_ibl_empty;
    uint32_t stub_exit64, stub_exit_host;
    struct tblock *lpage_hash[TC_LPAGE_HASH]; /* blocks by linear page of their start */
    struct tblock *ppage_hash[TC_LPAGE_HASH]; /* blocks by frame (either of theirs) */
    struct volatile_link *volatile_links; /* pool of TC_VOLATILE_MAX, used up to nvolatile */
    uint32_t nvolatile;
    uint32_t volatile_free;     /* free list of the pool (index + 1) */
    uint32_t last_volatile;     /* the link add_volatile listed last (index + 1), 0: none */
    struct link_group *groups;  /* TC_LINK_GROUPS of them, used up to ngroups */
    uint32_t ngroups;
    uint32_t group_free;        /* free list (index + 1, through hnext) */
    uint32_t group_hash[TC_LINK_GROUP_HASH]; /* index + 1 */
    struct link_space *link_spaces; /* TC_LINK_SPACES of them */
    struct dormant_link *dormant;   /* TC_VOLATILE_MAX of them, in use: ndormant */
    uint32_t ndormant;
    uint32_t dormant_head[TC_DORMANT_HASH]; /* index + 1, 0: none */
    uint64_t space_gen;         /* bumped when a lookup may find another block */
    uint64_t link_clock;
    uint32_t ibl_cs_base;      /* the CS base the IBL tables were filled under */
    bool ibl_fpu_trap;         /* and the CR0.TS/EM setting */
    struct callout_site *sites; /* TC_CALLOUT_SITES of them */
    uint32_t nsites;
    struct seg_ic *seg_ics;     /* TC_CALLOUT_SITES of them, in use: nseg_ics */
    uint32_t nseg_ics;
    uint32_t nsys_inline;      /* inline SYSENTER/SYSEXIT translated (IA32_SYSENTER_CS built in) */
    struct fault_site *fault_sites; /* TC_FAULT_SITES of them, open addressing */
    bool page_checks;          /* the host has SHRX (BMI2), which page checks use */
    struct dbt_stats stats;
    ZydisDecoder dec;
};

#endif
