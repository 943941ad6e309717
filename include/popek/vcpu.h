/*
 * The virtual CPU.
 *
 * Guest state is split in two:
 *  - `struct vcpu_block` lives in the monitor region (low 4 GiB, reached
 *    through host %gs).  It holds what translated code and the entry/exit
 *    stubs touch: guest GPRs, arithmetic flags, the virtual IF and the other
 *    virtual EFLAGS bits, exit information, scratch slots and the host
 *    selectors that shadow the guest's segment registers.  Its offsets are
 *    hard-coded in emitted code and in entry.S: VB_* below, checked with
 *    _Static_assert in vcpu.c.
 *  - `struct vcpu` (ordinary host memory) holds everything only C touches:
 *    segment descriptor caches, control registers, descriptor-table
 *    registers, MSRs.
 *
 * Monitor region (gs base = mon_base; offsets below):
 *
 *   0x000000  poll page EXIT  every block entry stores a byte here; the page is
 *                             made read-only to force an exit at the next block
 *   0x001000  poll page IRQ   stored to after STI/POPF set the virtual IF;
 *                             read-only while an interrupt is pending
 *   0x002000  vcpu_block
 *   0x003000  stubs           exit stubs (compat and 64-bit code), 4 KiB
 *   0x004000  window          2 pages aliasing guest memory that guest segments
 *                             cannot reach natively (page 0, the region itself)
 *   0x010000  INVLPG map      a bit per linear page an INVLPG has work on
 *   0x030000  port reads      the I/O bus's fast-read table
 *   0x100000  IBL tables      indirect-branch lookup, one per privilege class
 *   0x200000  page hints      a byte per linear page: mapped, and how (checked sites)
 *   0x300000  translation cache (tc_size bytes) up to 4 GiB
 */
#ifndef POPEK_VCPU_H
#define POPEK_VCPU_H

#ifndef __ASSEMBLER__
#include <stdbool.h>
#include <stdint.h>
#endif

/* ---- architectural constants (Intel SDM vol. 3A) --------------------------- */

#define EFLAGS_CF 0x00000001u
#define EFLAGS_FIXED 0x00000002u /* bit 1 always reads 1 */
#define EFLAGS_PF 0x00000004u
#define EFLAGS_AF 0x00000010u
#define EFLAGS_ZF 0x00000040u
#define EFLAGS_SF 0x00000080u
#define EFLAGS_TF 0x00000100u
#define EFLAGS_IF 0x00000200u
#define EFLAGS_DF 0x00000400u
#define EFLAGS_OF 0x00000800u
#define EFLAGS_IOPL 0x00003000u
#define EFLAGS_IOPL_SHIFT 12
#define EFLAGS_NT 0x00004000u
#define EFLAGS_RF 0x00010000u
#define EFLAGS_VM 0x00020000u
#define EFLAGS_AC 0x00040000u
#define EFLAGS_VIF 0x00080000u
#define EFLAGS_VIP 0x00100000u
#define EFLAGS_ID 0x00200000u

/* Flags the host CPU holds for the guest while translated code runs. */
#define EFLAGS_ARITH (EFLAGS_CF | EFLAGS_PF | EFLAGS_AF | EFLAGS_ZF | EFLAGS_SF | EFLAGS_OF | EFLAGS_DF)
/* Flags kept only in vcpu_block.vflags (IF lives in vcpu_block.vif). */
#define EFLAGS_VIRT (EFLAGS_TF | EFLAGS_IOPL | EFLAGS_NT | EFLAGS_RF | EFLAGS_VM | EFLAGS_AC | EFLAGS_VIF | EFLAGS_VIP | EFLAGS_ID)

#define CR0_PE 0x00000001u
#define CR0_MP 0x00000002u
#define CR0_EM 0x00000004u
#define CR0_TS 0x00000008u
#define CR0_ET 0x00000010u
#define CR0_NE 0x00000020u
#define CR0_WP 0x00010000u
#define CR0_AM 0x00040000u
#define CR0_NW 0x20000000u
#define CR0_CD 0x40000000u
#define CR0_PG 0x80000000u

#define CR4_VME 0x0001u
#define CR4_PVI 0x0002u
#define CR4_TSD 0x0004u
#define CR4_DE 0x0008u
#define CR4_PSE 0x0010u
#define CR4_PAE 0x0020u
#define CR4_MCE 0x0040u
#define CR4_PGE 0x0080u
#define CR4_PCE 0x0100u
#define CR4_OSFXSR 0x0200u
#define CR4_OSXMMEXCPT 0x0400u

#ifndef __ASSEMBLER__
/* Exception vectors. */
enum {
    EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5,
    EXC_UD = 6, EXC_NM = 7, EXC_DF = 8, EXC_TS = 10, EXC_NP = 11, EXC_SS = 12,
    EXC_GP = 13, EXC_PF = 14, EXC_MF = 16, EXC_AC = 17, EXC_MC = 18, EXC_XM = 19,
};
#endif

#define DR6_BD 0x2000u
#define DR7_GD 0x2000u

#define MSR_IA32_TSC 0x010
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_IA32_BIOS_SIGN_ID 0x08b

/* Segment register numbers, in the x86 encoding order (Sreg field).  Plain
 * macros because entry.S uses them too. */
#define SEG_ES 0
#define SEG_CS 1
#define SEG_SS 2
#define SEG_DS 3
#define SEG_FS 4
#define SEG_GS 5
#define SEG_COUNT 6

/* GPR numbers in the x86 encoding order. */
#define R_EAX 0
#define R_ECX 1
#define R_EDX 2
#define R_EBX 3
#define R_ESP 4
#define R_EBP 5
#define R_ESI 6
#define R_EDI 7

/* ---- monitor region layout ----------------------------------------------------- */

#define MON_POLL_EXIT 0x000000u
#define MON_POLL_IRQ 0x001000u
#define MON_BLOCK 0x002000u
#define MON_STUBS 0x003000u
#define MON_STUBS_SIZE 0x001000u
#define MON_WINDOW 0x004000u   /* two pages: alias of guest memory for relocated accesses */
#define MON_INVLPG_MAP 0x010000u /* 128 KiB: a bit per linear page an INVLPG has work on (mmu.h) */
#define MON_PORT_READS 0x030000u /* 128 KiB: the I/O bus's fast-read table (devices.h) */
#define MON_IBL 0x100000u
#define MON_IBL_ENTRIES 65536u /* indexed by the low 16 bits of the target */
#define MON_IBL_TABLES 2u      /* CPL 0 and CPL 3 */
#define MON_PAGE_HINTS 0x200000u /* 1 MiB: a byte per linear page, SHADOW_HINT_* (mmu.h) */
#define MON_TC 0x300000u
/* The Linux CI workload translates ~6.5 MB of code: room to spare. */
#define MON_DEFAULT_TC_SIZE (14u << 20)

#ifndef __ASSEMBLER__
/* One IBL entry: the target's EIP negated (so a flag-free LEA tests equality)
 * and the address of the translation's IBL prologue (which restores %ecx).
 * Empty entries point at mon_stub_ibl_empty. */
struct ibl_entry {
    uint32_t neg_eip;
    uint32_t tc;
};
#endif

/* Why translated code came back to the monitor (vcpu_block.exit_reason). */
#define EXIT_NONE 0
#define EXIT_CHAIN 1    /* an unchained direct exit: exit_eip = target, exit_arg = slot */
#define EXIT_EMULATE 2  /* callout: emulate the instruction at exit_eip */
#define EXIT_IBL_MISS 3 /* indirect branch to exit_eip not in the IBL table */
#define EXIT_SIGNAL 4   /* a signal handler redirected execution to the monitor */

/* ---- the block shared with translated code ---------------------------------------- */

#define VB_GPR 0x00          /* 8 x u32, enum gpr order */
#define VB_EFLAGS 0x20       /* arithmetic flags (and DF) as the host CPU had them */
#define VB_VIF 0x24          /* 0 or EFLAGS_IF */
#define VB_VFLAGS 0x28       /* EFLAGS_VIRT bits */
#define VB_EXIT_REASON 0x2c
#define VB_EXIT_EIP 0x30
#define VB_EXIT_ARG 0x34
#define VB_SCRATCH 0x38      /* 4 x u32 */
#define VB_HOST_RSP 0x50
#define VB_HOST_FSBASE 0x58
#define VB_ENTRY_FAR 0x60    /* m16:32 far pointer used to enter the TC */
#define VB_HOST_SEL 0x68     /* 6 x u16 host selectors, enum seg order */
#define VB_GS_ALIAS 0x74     /* host selector shadowing the guest's GS */
#define VB_CS_ALIAS 0x76     /* host data selector shadowing the guest's CS */
#define VB_IN_GUEST_FS 0x78  /* FS holds a guest selector (signal handlers reload it) */
#define VB_EXIT_FAR 0x7c     /* m16:32 far pointer to the 64-bit exit stub */
#define VB_MON_GS 0x82       /* host selector of the monitor segment (base = mon_base) */
#define VB_VM 0x88           /* struct vm * (host), for signal handlers */
#define VB_IBL_HITS 0x90     /* IBL hits since the monitor last folded them into its stats */
#define VB_RESUME_FS 0x94    /* FS selector the signal trampoline reloads on return */
#define VB_PKRU 0x98         /* PKRU for the guest's CPL: supervisor pages denied at CPL 3 */
#define VB_GS_ALIAS_WRAP 0x9c /* the guest's GS for offsets that wrap past 4 GiB (segments.c) */
#define VB_ENTRY_FS 0x9e     /* FS at entry: the guest's GS shadow at CPL 3, its FS shadow else */
#define VB_GUEST_SEL 0xa0    /* 6 x u16 the guest's selectors (PUSH/MOV from a segment register) */
#define VB_SEG_SITE 0xac     /* 6 x u32 callout site of an inline segment load not yet in vcpu.seg */
#define VB_FLAT_SEL 0xc4     /* host selector: read-only data, base 0, up to mon_base (GDT reads) */
#define VB_SYSENTER_ESP 0xc8 /* IA32_SYSENTER_ESP and _EIP (inline SYSENTER reads them) */
#define VB_SYSENTER_EIP 0xcc
#define VB_IRQ_PENDING 0xd0  /* 256 while the PIC has an interrupt for the CPU, else 0 (inline SYSEXIT, IRET) */
#define VB_CR2 0xd4          /* CR2 (MOV from CR2 reads it inline) */
#define VB_SYS_INLINE 0xd8   /* the last inline SYSENTER (1) or SYSEXIT (2) not yet in vcpu.seg, or 0 */
#define VB_CS_DESC 0xdc      /* 2 x u32: the descriptor CS was loaded from, A bit set (inline IRET) */
#define VB_PF_RETRY 0xe4     /* non-zero: an IRET back to the last #PF maps CR2's page (emulate.c) */
#define VB_PKRU_CPL 0xe8     /* 2 x u32: PKRU for CPL 0 and for CPL 3 (inline SYSENTER/SYSEXIT) */
#define VB_DS_KEY 0xf0       /* 0 iff DS is usable with base 0 (inline INVLPG) */
#define VB_FXSAVE 0x100      /* guest SSE state while the monitor runs, as in an FXSAVE image: */
#define VB_MXCSR (VB_FXSAVE + 24)  /* MXCSR */
#define VB_XMM (VB_FXSAVE + 160)   /* XMM0-7 (x87 state stays in the registers) */
#define VB_ZF_TABLES 0x300   /* 2 x 256 bytes: AH image with ZF clear / set (inline VERW) */
#define VB_IRET_FLAGS 0x500  /* 2 x 256 bytes, by IRQ_PENDING: non-zero for EFLAGS bits 8-15 an
                              * inline IRET leaves to the monitor */

#define VB_SCRATCH_EAX (VB_SCRATCH + 0)
#define VB_SCRATCH_ECX (VB_SCRATCH + 4)
#define VB_SCRATCH_TMP (VB_SCRATCH + 8)
#define VB_SCRATCH_EDX (VB_SCRATCH + 12)

#ifndef __ASSEMBLER__
struct vcpu_block {
    uint32_t gpr[8];
    uint32_t eflags;
    uint32_t vif;
    uint32_t vflags;
    uint32_t exit_reason;
    uint32_t exit_eip;
    uint32_t exit_arg;
    uint32_t scratch[4];
    uint32_t pad0[2];
    uint64_t host_rsp;
    uint64_t host_fsbase;
    uint32_t entry_far_off;
    uint16_t entry_far_sel;
    uint16_t pad1;
    uint16_t host_sel[SEG_COUNT];
    uint16_t gs_alias;
    uint16_t cs_alias;
    uint32_t in_guest_fs;
    uint32_t exit_far_off;
    uint16_t exit_far_sel;
    uint16_t mon_gs;
    uint32_t pad2;
    void *vm;
    uint32_t ibl_hits;
    uint16_t resume_fs;
    uint16_t pad3;
    uint32_t pkru;
    uint16_t gs_alias_wrap;
    uint16_t entry_fs;
    uint16_t guest_sel[SEG_COUNT];
    uint32_t seg_site[SEG_COUNT];
    uint16_t flat_sel;
    uint16_t pad6;
    uint32_t sysenter_esp, sysenter_eip;
    uint32_t irq_pending;
    uint32_t cr2;
    uint32_t sys_inline;
    uint32_t cs_desc[2];
    uint32_t pf_retry;
    uint32_t pkru_cpl[2];
    uint32_t ds_key;
    uint8_t pad4[VB_FXSAVE - 0xf4];
    uint8_t fxsave[512] __attribute__((aligned(16)));
    uint8_t zf_table[2][256];
    uint8_t iret_flags[2][256];
};

/* A segment register's hidden part, as loaded (SDM 3.4.3). */
struct seg_cache {
    uint16_t sel;
    uint32_t base;
    uint32_t limit;   /* byte granular, already expanded */
    uint16_t attr;    /* descriptor bits 40-47 (type, S, DPL, P) | bits 52-55 << 8 (AVL, L, D/B, G) */
    bool valid;       /* false: null selector loaded (data segments) */
};

#define SEG_ATTR_TYPE 0x000f
#define SEG_ATTR_S 0x0010
#define SEG_ATTR_DPL 0x0060
#define SEG_ATTR_P 0x0080
#define SEG_ATTR_DB 0x0400
#define SEG_ATTR_G 0x0800
#define SEG_TYPE_CODE 0x8
#define SEG_TYPE_EXPDOWN 0x4 /* data */
#define SEG_TYPE_CONFORMING 0x4 /* code */
#define SEG_TYPE_WRITABLE 0x2 /* data */
#define SEG_TYPE_READABLE 0x2 /* code */
#define SEG_TYPE_ACCESSED 0x1

struct dtr {
    uint32_t base;
    uint16_t limit;
};

struct vcpu {
    struct vcpu_block *blk;   /* in the monitor region */
    uint32_t eip;
    struct seg_cache seg[SEG_COUNT];
    struct dtr gdtr, idtr;
    struct seg_cache ldtr, tr;
    uint32_t cr0, cr3, cr4;   /* CR2 is in the block */
    uint32_t dr[8];
    uint32_t sysenter_cs;     /* IA32_SYSENTER_ESP and _EIP are in the block */
    int64_t tsc_offset;
    bool halted;
    bool irq_shadow;          /* STI / MOV SS: no interrupt before the next instruction */
};

/* vcpu_block.ds_key for a DS loaded as `ds`: 0 iff usable with base 0. */
static inline uint32_t seg_ds_key(const struct seg_cache *ds)
{
    return ds->base | !ds->valid;
}

static inline unsigned vcpu_cpl(const struct vcpu *v)
{
    return v->seg[SEG_CS].sel & 3;
}

static inline uint32_t vcpu_get_eflags(const struct vcpu *v)
{
    return (v->blk->eflags & EFLAGS_ARITH) | v->blk->vif | v->blk->vflags | EFLAGS_FIXED;
}

static inline void vcpu_set_eflags(struct vcpu *v, uint32_t f)
{
    v->blk->eflags = f & EFLAGS_ARITH;
    v->blk->vif = f & EFLAGS_IF;
    v->blk->vflags = f & EFLAGS_VIRT;
}
#endif

#endif
