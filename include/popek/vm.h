/*
 * One `struct vm` owns everything: vCPU, guest RAM, shadow, translation
 * cache, devices.  It is passed explicitly; signal handlers reach it through
 * the vCPU's monitor block (found with rdgsbase), documented in signal.c.
 */
#ifndef POPEK_VM_H
#define POPEK_VM_H

#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <termios.h>
#include <time.h>

#include "popek/dbt.h"
#include "popek/devices.h"
#include "popek/loader.h"
#include "popek/mmu.h"
#include "popek/vcpu.h"

/* Trace categories for -d, like QEMU's. */
enum {
    LOG_IN_ASM = 1u << 0,   /* guest blocks as translated */
    LOG_OUT_ASM = 1u << 1,  /* the TC code produced */
    LOG_EXEC = 1u << 2,     /* every block entered from the monitor */
    LOG_INT = 1u << 3,      /* interrupts and exceptions */
    LOG_CALLOUT = 1u << 4,  /* every emulated instruction */
    LOG_FAULT = 1u << 5,    /* host faults and how they were handled */
    LOG_UNIMP = 1u << 6,    /* unimplemented features the guest touched */
    LOG_IO = 1u << 7,       /* port I/O */
};

struct vm_config {
    const char *kernel, *initrd, *append;
    uint32_t ram_mb;
    uint32_t tc_size;
    bool no_reboot;
    bool stats;
    bool perfmap; /* -perfmap: /tmp/perf-PID.map for perf */
    unsigned log_mask;
    const char *log_file;
};

/* A guest exception being raised. */
struct fault {
    uint8_t vector;
    bool has_error;
    uint32_t error;
};

struct vm_stats {
    uint64_t hidden_faults;
    uint64_t smc_faults;
    uint64_t guest_exceptions;
    uint64_t monitor_entries;
    uint64_t callouts_run[CO_COUNT];
};

struct vm {
    struct vm_config cfg;
    struct guest_ram ram;
    struct shadow shadow;
    struct vcpu cpu;
    struct tcache tc;
    uint32_t mon_base, mon_size;
    struct host_ldt *ldt;            /* host LDT slots (segments.c) */
    uint32_t host_pkru;              /* PKRU as the process started */
    struct platform_ctl ctl;
    struct iobus io;
    struct mmio_bus mmio;
    struct uart16550 uart;
    struct chardev console;
    struct debug_exit dbgexit;
    struct port80 port80;
    struct i8042 kbc;
    struct resetcf9 cf9;
    struct pci_host pci;
    struct i8259_pair pic;
    struct i8254 pit;
    struct mc146818 rtc;
    struct clock clock;              /* CLOCK_MONOTONIC, for the devices */
    timer_t host_timer;              /* SIGALRM at the next device deadline */
    uint64_t timer_deadline;         /* what host_timer is armed for (0: disarmed) */
    volatile sig_atomic_t timer_fired;
    bool devices_touched;            /* a timer port or MMIO access since the last devices_update */
    bool poll_irq_armed;
    volatile sig_atomic_t poll_exit_armed; /* MON_POLL_EXIT is armed (or may be) */
    bool console_raw;                /* stdin is a terminal we put in raw mode */
    bool console_escape;             /* Ctrl-A seen, waiting for the command key */
    bool console_eof;                /* stdin reached end of file: stop polling it */
    struct termios console_saved;
    struct vm_stats stats;
    struct fault pending_fault;      /* raised by a host fault, delivered by the run loop */
    struct fault mem_fault;          /* the #PF of the last failed vm_read/write_linear */
    bool has_pending_fault;
    volatile int stop_signal;        /* SIGINT/SIGTERM/SIGHUP received */
    bool smc_step;                   /* single-stepping out of a block that wrote its own code */
    bool loop_step;                  /* single-stepping a plain block to an instruction boundary */
    /* Single-stepping the instruction in an interrupt shadow (after STI or
     * MOV SS the monitor emulated): guest instruction starts seen so far. */
    bool shadow_step;
    unsigned shadow_starts;
    bool reloc_step;                 /* single-stepping one access through temporary segments */
    bool mmio_pending;               /* the instruction at EIP touches MMIO: emulate it */
    /* The last #PF delivered (while vcpu_block.pf_retry): an IRET back to
     * its instruction maps CR2's page if the handler made it valid (saves
     * the fault on the retry). */
    uint32_t pf_retry_eip, pf_retry_cs_base, pf_retry_lin;
    uint16_t reloc_saved_fs;         /* FS before the relocated step */
    uint32_t wp0_step_page;          /* mapped writable for one step (CR0.WP=0), or 0 */
    void *altstack;
    FILE *log;
    FILE *perfmap;                   /* -perfmap: "tc size name" per block */
    struct boot_entry boot;
    int exit_status;                 /* valid once stop is set */
    bool stop;
    char stop_msg[256];
};

#define vm_log(vm, cat, ...)                                           \
    do {                                                               \
        if ((vm)->cfg.log_mask & (cat))                                \
            fprintf((vm)->log, __VA_ARGS__);                           \
    } while (0)

/* vm.c */
int vm_init(struct vm *vm, const struct vm_config *cfg);
void vm_destroy(struct vm *vm);
int vm_load(struct vm *vm, char err[LOADER_ERR_LEN]);
void vm_reset_cpu(struct vm *vm);
int vm_reset(struct vm *vm);
/* Stop the VM with a message and an exit status (first call wins). */
void vm_stop(struct vm *vm, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void vm_print_stats(struct vm *vm, FILE *f);
/* Give the terminal back as it was (also on every exit path). */
void console_restore(struct vm *vm);

/* run.c */
int vm_run(struct vm *vm);
/* PKRU while the guest runs at `cpl`: parked address spaces denied (mmu.h),
 * and supervisor pages at CPL 3. */
static inline uint32_t vm_pkru(const struct vm *vm, unsigned cpl)
{
    const struct shadow *sh = &vm->shadow;
    uint32_t pkru = (vm->host_pkru & ~sh->key_bits) | sh->pkru_deny;
    return cpl == 3 ? pkru | 1u << (2 * sh->pkey_sup) : pkru;
}

/* gmem.c: guest memory as the CPU sees it (linear addresses, segments).
 * vm_read_linear/vm_write_linear are supervisor accesses; on a #PF they
 * return false and leave the fault in vm->mem_fault (CR2 already set). */
struct paging_mode vm_paging_mode(const struct vm *vm);
/* Up to 15 code bytes at CS:eip within the CS limit, and the frames they came
 * from.  If fewer came back, `f` says why (#GP past the limit, #PF). */
struct fetch {
    uint8_t bytes[15];
    unsigned n;
    uint32_t phys[2];   /* frame of the first byte, and of the second page if any */
    bool global;        /* every page came from a global mapping (or paging is off) */
    bool faulted;
    struct fault f;
};
unsigned vm_fetch(struct vm *vm, uint32_t eip, struct fetch *out);
bool vm_translate(struct vm *vm, uint32_t lin, uint32_t access, struct walk *w, struct fault *f);
/* Shadow the page of `lin` as walk `w` found it, for the instruction at
 * `eip`, as a hidden fault does (read-only until D is set; a guest 4 MiB
 * page, or RAM with paging off, 4 MiB at once).  0 or -errno. */
int vm_shadow_fill(struct vm *vm, uint32_t lin, const struct walk *w, uint32_t eip);
bool vm_read_linear(struct vm *vm, uint32_t lin, void *buf, uint32_t len);
bool vm_write_linear(struct vm *vm, uint32_t lin, const void *buf, uint32_t len);
/* Segment-checked access; on failure *f holds #GP(0) or #SS(0). */
bool seg_read(struct vm *vm, unsigned seg, uint32_t off, void *buf, uint32_t len, struct fault *f);
bool seg_write(struct vm *vm, unsigned seg, uint32_t off, const void *buf, uint32_t len, struct fault *f);
bool vm_push32(struct vm *vm, uint32_t val, struct fault *f);
bool vm_pop32(struct vm *vm, uint32_t *val, struct fault *f);

/* segments.c */
int segments_init(struct vm *vm);
void segments_destroy(struct vm *vm);
bool seg_load(struct vm *vm, unsigned seg, uint16_t sel, struct fault *f);
void seg_load_flat(struct vm *vm, unsigned seg, uint16_t sel, bool code);
bool seg_read_descriptor(struct vm *vm, uint16_t sel, uint64_t *desc, struct fault *f);
void seg_cache_from_desc(struct seg_cache *sc, uint16_t sel, uint64_t desc);
bool seg_set_accessed(struct vm *vm, uint16_t sel, uint64_t *desc);
/* Load CS for a far transfer to `sel` (descriptor already checked). */
void seg_load_cs(struct vm *vm, uint16_t sel, uint64_t desc, unsigned cpl);
/* The 8-byte descriptor of a flat 4 GiB segment (code: readable, data:
 * writable; accessed), and recording the one CS was loaded from
 * (vcpu_block.cs_desc, which inline IRET compares with the GDT entry). */
uint64_t seg_flat_desc(bool code, unsigned dpl);
void seg_set_cs_desc(struct vm *vm, uint64_t desc);
void seg_refresh_host(struct vm *vm, unsigned seg);
uint16_t seg_temp_selector(struct vm *vm, unsigned host_seg, uint32_t base, bool writable);
/* The host selector of every flat 4 GiB data segment (or CS alias). */
uint16_t seg_flat_host_selector(bool writable);
/* CS and SS as SYSENTER and SYSEXIT load them (from IA32_SYSENTER_CS). */
void seg_sysenter(struct vm *vm);
void seg_sysexit(struct vm *vm);
bool seg_check_limit(const struct seg_cache *sc, uint32_t off, uint32_t len);

/* translate.c / tcache.c */
int tcache_init(struct vm *vm);
void tcache_destroy(struct vm *vm);
/* A fresh block with room for worst_bytes of code and worst_maps map entries
 * (flushing the cache if needed); tcache_commit_block() publishes it. */
struct tblock *tcache_alloc_block(struct vm *vm, uint32_t worst_bytes, unsigned worst_maps);
void tcache_commit_block(struct vm *vm, struct tblock *tb, uint32_t end);
void tcache_ibl_insert(struct vm *vm, const struct tblock *tb);
struct tblock *tcache_lookup(struct vm *vm, uint32_t eip);
struct tblock *tcache_translate(struct vm *vm, uint32_t eip, struct fault *f);
void tcache_flush(struct vm *vm);
/* Remember the decoded callout ending tb: its index for exit_arg, 0 if full. */
uint32_t tcache_add_callout_site(struct vm *vm, const struct tblock *tb, const struct dbt_insn *in,
                                 const uint8_t *bytes);
/* The site a callout passed, if its block is still valid; else NULL. */
struct callout_site *tcache_callout_site(struct vm *vm, uint32_t index);
/* Inline segment-load caches (struct seg_ic): a new one (NULL if full), the
 * patch after an emulated load of `seg` through it, and the reset of all. */
struct seg_ic *tcache_add_seg_ic(struct vm *vm);
void tcache_seg_ic_patch(struct vm *vm, struct seg_ic *ic, unsigned seg);
void tcache_verw_ic_patch(struct vm *vm, struct seg_ic *ic, uint16_t sel, bool zf);
void tcache_iret_ic_patch(struct vm *vm, struct seg_ic *ic);
void tcache_seg_ic_reset(struct vm *vm);
/* Bring vcpu.seg up to date with the segment loads translated code did
 * inline (vcpu_block.seg_site): before C looks at the guest's segments. */
void seg_sync_inline(struct vm *vm);
void tcache_chain(struct vm *vm, struct tblock *from, unsigned exit, struct tblock *to);
struct tblock *tcache_find_by_tc(struct vm *vm, uint32_t tc_addr);
/* Map a TC address inside tb to the guest instruction it belongs to. */
const struct tb_map *tcache_map_tc(const struct tblock *tb, uint32_t tc_addr);
void tcache_invalidate_phys(struct vm *vm, uint32_t gpa);
/* A host page fault on guest data at the start of the translation of the
 * instruction at eip in tb (dbt.h, fault sites): count it, and once the site
 * is checked, invalidate tb so that it is translated with the check. */
void tcache_note_fault(struct vm *vm, struct tblock *tb, uint32_t eip);
/* Is guest instruction eip of tb (being translated) a checked site? */
bool tcache_site_checked(const struct vm *vm, const struct tblock *tb, uint32_t eip);
/* The page check of the instruction at eip in tb cannot serve its access:
 * translate it plainly again, for good. */
void tcache_uncheck_site(struct vm *vm, const struct tblock *tb, uint32_t eip);
void tcache_address_space_changed(struct vm *vm, uint32_t old_cr3, uint32_t new_cr3);
void tcache_unchain_all(struct vm *vm);
/* The run loop found `to` for the guest: wake the dormant links into its page. */
void tcache_wake_links(struct vm *vm, const struct tblock *to);
void tcache_invalidate_linear_page(struct vm *vm, uint32_t lin);
void tcache_ibl_clear(struct vm *vm);
bool tcache_ibl_valid(const struct vm *vm);

/* disas.c: Capstone disassembly for -d in_asm / out_asm */
void dbt_disas(FILE *f, const uint8_t *code, size_t len, uint32_t addr);

/* emulate.c */
/* Emulate the instruction at cpu.eip; false if it raised *f.  `site` (may be
 * NULL) is its decoding from translation time. */
bool emulate_insn(struct vm *vm, const struct callout_site *site, struct fault *f);
/* The page check of the instruction at cpu.eip missed (translate.c,
 * emit_page_check): map its page or raise the guest's #PF (false, *f); the
 * instruction itself runs natively next. */
bool emulate_page_check(struct vm *vm, const struct callout_site *site, struct fault *f);
/* Emulate the data instruction at cpu.eip whose memory operand is MMIO. */
bool emulate_mmio(struct vm *vm, struct fault *f);

/* exceptions.c */
/* Deliver an exception or interrupt through the guest IDT (with #DF and
 * triple-fault escalation).  `soft` is INT n (DPL checks, EIP after). */
void deliver_fault(struct vm *vm, const struct fault *f);
bool deliver_interrupt(struct vm *vm, uint8_t vector, bool soft, bool has_error, uint32_t error,
                       uint32_t return_eip, struct fault *f);

/* cpuid.c / msr.c */
void cpuid_filtered(uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
bool msr_read(struct vm *vm, uint32_t msr, uint64_t *val);
bool msr_write(struct vm *vm, uint32_t msr, uint64_t val);

/* signal.c / seccomp.c */
int signals_init(struct vm *vm);
void poll_arm(struct vm *vm, uint32_t page, bool armed);
/* Disarm MON_POLL_EXIT if a signal or the run loop armed it (an mprotect
 * saved on every exit that did not need it). */
static inline void poll_exit_disarm(struct vm *vm)
{
    if (vm->poll_exit_armed)
        poll_arm(vm, MON_POLL_EXIT, false);
}
int seccomp_install(void);

/* ioport dispatch with tracing (devices registered in vm.c) */
uint32_t vm_io_in(struct vm *vm, uint16_t port, unsigned size);
void vm_io_out(struct vm *vm, uint16_t port, unsigned size, uint32_t val);

static inline uint32_t *vm_gpr(struct vm *vm, unsigned r)
{
    return &vm->cpu.blk->gpr[r];
}

#endif
