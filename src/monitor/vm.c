/*
 * VM lifecycle: guest RAM, the monitor region, devices, loading, reset,
 * statistics.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <unistd.h>

#include "popek/vm.h"

#define HOST_CS32 0x23 /* Linux __USER32_CS: flat 32-bit code, DPL 3 */
#define HOST_CS64 0x33 /* Linux __USER_CS */
#define MON_ALIGN (1u << 20)

extern const char mon_stubs_start[];

_Static_assert(offsetof(struct vcpu_block, gpr) == VB_GPR, "VB_GPR");
_Static_assert(offsetof(struct vcpu_block, eflags) == VB_EFLAGS, "VB_EFLAGS");
_Static_assert(offsetof(struct vcpu_block, vif) == VB_VIF, "VB_VIF");
_Static_assert(offsetof(struct vcpu_block, vflags) == VB_VFLAGS, "VB_VFLAGS");
_Static_assert(offsetof(struct vcpu_block, exit_reason) == VB_EXIT_REASON, "VB_EXIT_REASON");
_Static_assert(offsetof(struct vcpu_block, exit_eip) == VB_EXIT_EIP, "VB_EXIT_EIP");
_Static_assert(offsetof(struct vcpu_block, exit_arg) == VB_EXIT_ARG, "VB_EXIT_ARG");
_Static_assert(offsetof(struct vcpu_block, scratch) == VB_SCRATCH, "VB_SCRATCH");
_Static_assert(offsetof(struct vcpu_block, host_rsp) == VB_HOST_RSP, "VB_HOST_RSP");
_Static_assert(offsetof(struct vcpu_block, host_fsbase) == VB_HOST_FSBASE, "VB_HOST_FSBASE");
_Static_assert(offsetof(struct vcpu_block, entry_far_off) == VB_ENTRY_FAR, "VB_ENTRY_FAR");
_Static_assert(offsetof(struct vcpu_block, host_sel) == VB_HOST_SEL, "VB_HOST_SEL");
_Static_assert(offsetof(struct vcpu_block, gs_alias) == VB_GS_ALIAS, "VB_GS_ALIAS");
_Static_assert(offsetof(struct vcpu_block, cs_alias) == VB_CS_ALIAS, "VB_CS_ALIAS");
_Static_assert(offsetof(struct vcpu_block, guest_sel) == VB_GUEST_SEL, "VB_GUEST_SEL");
_Static_assert(offsetof(struct vcpu_block, sysenter_esp) == VB_SYSENTER_ESP, "VB_SYSENTER_ESP");
_Static_assert(offsetof(struct vcpu_block, sysenter_eip) == VB_SYSENTER_EIP, "VB_SYSENTER_EIP");
_Static_assert(offsetof(struct vcpu_block, irq_pending) == VB_IRQ_PENDING, "VB_IRQ_PENDING");
_Static_assert(offsetof(struct vcpu_block, cr2) == VB_CR2, "VB_CR2");
_Static_assert(offsetof(struct vcpu_block, entry_fs) == VB_ENTRY_FS, "VB_ENTRY_FS");
_Static_assert(offsetof(struct vcpu_block, sys_inline) == VB_SYS_INLINE, "VB_SYS_INLINE");
_Static_assert(offsetof(struct vcpu_block, cs_desc) == VB_CS_DESC, "VB_CS_DESC");
_Static_assert(offsetof(struct vcpu_block, pf_retry) == VB_PF_RETRY, "VB_PF_RETRY");
_Static_assert(offsetof(struct vcpu_block, iret_flags) == VB_IRET_FLAGS, "VB_IRET_FLAGS");
_Static_assert(offsetof(struct vcpu_block, seg_site) == VB_SEG_SITE, "VB_SEG_SITE");
_Static_assert(offsetof(struct vcpu_block, flat_sel) == VB_FLAT_SEL, "VB_FLAT_SEL");
_Static_assert(offsetof(struct vcpu_block, zf_table) == VB_ZF_TABLES, "VB_ZF_TABLES");
_Static_assert(sizeof(struct vcpu_block) <= MON_STUBS - MON_BLOCK, "vcpu_block fits its page");
_Static_assert(offsetof(struct vcpu_block, in_guest_fs) == VB_IN_GUEST_FS, "VB_IN_GUEST_FS");
_Static_assert(offsetof(struct vcpu_block, exit_far_off) == VB_EXIT_FAR, "VB_EXIT_FAR");
_Static_assert(offsetof(struct vcpu_block, mon_gs) == VB_MON_GS, "VB_MON_GS");
_Static_assert(offsetof(struct vcpu_block, vm) == VB_VM, "VB_VM");
_Static_assert(offsetof(struct vcpu_block, ibl_hits) == VB_IBL_HITS, "VB_IBL_HITS");
_Static_assert(offsetof(struct vcpu_block, resume_fs) == VB_RESUME_FS, "VB_RESUME_FS");
_Static_assert(offsetof(struct vcpu_block, pkru) == VB_PKRU, "VB_PKRU");
_Static_assert(offsetof(struct vcpu_block, pkru_cpl) == VB_PKRU_CPL, "VB_PKRU_CPL");
_Static_assert(offsetof(struct vcpu_block, ds_key) == VB_DS_KEY, "VB_DS_KEY");
_Static_assert(MON_INVLPG_MAP >= MON_WINDOW + 2 * PAGE_SIZE &&
               MON_INVLPG_MAP + SHADOW_PAGES / 8 <= MON_PORT_READS, "the INVLPG map fits");
_Static_assert(MON_PORT_READS + IOBUS_PORTS * 2 <= MON_IBL, "the fast-read table fits");
_Static_assert(offsetof(struct vcpu_block, gs_alias_wrap) == VB_GS_ALIAS_WRAP, "VB_GS_ALIAS_WRAP");
_Static_assert(offsetof(struct vcpu_block, fxsave) == VB_FXSAVE, "VB_FXSAVE");
_Static_assert(sizeof(struct vcpu_block) <= MON_STUBS - MON_BLOCK, "vcpu_block fits its page");
_Static_assert(MON_IBL + MON_IBL_TABLES * MON_IBL_ENTRIES * sizeof(struct ibl_entry) <= MON_PAGE_HINTS &&
               MON_PAGE_HINTS + SHADOW_PAGES <= MON_TC,
               "IBL tables and page hints fit below the TC");

void vm_stop(struct vm *vm, int status, const char *fmt, ...)
{
    if (vm->stop)
        return;
    vm->stop = true;
    vm->exit_status = status;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(vm->stop_msg, sizeof(vm->stop_msg), fmt, ap);
        va_end(ap);
    }
}

/* ---- console (COM1 on the terminal) ----------------------------------------------
 *
 * Like QEMU's -nographic: the terminal is put in raw mode so that every key,
 * Ctrl-C included, goes to the guest, and Ctrl-A starts a monitor escape:
 * Ctrl-A X quits, Ctrl-A Ctrl-A sends a Ctrl-A, Ctrl-A H lists them.
 */
#define CTRL_A 0x01

static void console_write(void *opaque, uint8_t byte)
{
    (void)opaque;
    (void)!write(STDOUT_FILENO, &byte, 1);
}

static void console_say(const char *msg)
{
    (void)!write(STDERR_FILENO, msg, strlen(msg));
}

static int console_read(void *opaque)
{
    struct vm *vm = opaque;
    struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
    uint8_t c;
    while (!vm->console_eof && poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP))) {
        if (read(STDIN_FILENO, &c, 1) != 1) {
            vm->console_eof = true;
            break;
        }
        if (!vm->console_escape) {
            if (c == CTRL_A && vm->console_raw) {
                vm->console_escape = true;
                continue;
            }
            return c;
        }
        vm->console_escape = false;
        switch (c) {
        case 'x':
        case 'X':
            console_say("\r\npopek: terminated (Ctrl-A X)\r\n");
            vm_stop(vm, 0, NULL);
            return -1;
        case 'h':
        case 'H':
            console_say("\r\nC-a x    exit\r\nC-a C-a  send C-a\r\nC-a h    this help\r\n");
            continue;
        case CTRL_A:
            return CTRL_A;
        default:
            continue;
        }
    }
    return -1;
}

void console_restore(struct vm *vm)
{
    if (vm->console_raw) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &vm->console_saved);
        vm->console_raw = false;
    }
}

static void console_init(struct vm *vm)
{
    struct termios t;
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &t) < 0)
        return;
    vm->console_saved = t;
    cfmakeraw(&t);
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0)
        vm->console_raw = true;
}

/* ---- I/O ------------------------------------------------------------------------------ */

/* Ports of the devices with timers (the PIT with port B, the RTC): an access
 * may move their next deadline, which the run loop then brings the host
 * timer in line with.  Other devices act at once or on the host timer. */
static bool timer_port(uint16_t port)
{
    return (port >= 0x40 && port <= 0x43) || port == 0x61 || port == 0x70 || port == 0x71;
}

uint32_t vm_io_in(struct vm *vm, uint16_t port, unsigned size)
{
    vm->devices_touched |= timer_port(port);
    uint32_t v = iobus_read(&vm->io, port, size);
    vm_log(vm, LOG_IO, "in%c %#x -> %#x\n", "bw?l"[size - 1], port, v);
    return v;
}

void vm_io_out(struct vm *vm, uint16_t port, unsigned size, uint32_t val)
{
    vm_log(vm, LOG_IO, "out%c %#x <- %#x\n", "bw?l"[size - 1], port, val);
    vm->devices_touched |= timer_port(port);
    iobus_write(&vm->io, port, size, val);
}

static uint64_t monotonic_ns(void *opaque)
{
    (void)opaque;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int devices_init(struct vm *vm)
{
    vm->clock = (struct clock){ monotonic_ns, NULL };
    vm->console = (struct chardev){ console_write, console_read, vm };
    console_init(vm);
    i8259_init(&vm->pic, (struct irq_line){ 0 });
    i8254_init(&vm->pit, vm->clock, i8259_irq_line(&vm->pic, 0));
    mc146818_init(&vm->rtc, vm->clock, time(NULL), vm->ram.size, i8259_irq_line(&vm->pic, 8));
    uart16550_init(&vm->uart, &vm->console, i8259_irq_line(&vm->pic, 4));
    debug_exit_init(&vm->dbgexit, &vm->ctl);
    i8042_init(&vm->kbc, &vm->ctl);
    vm->kbc.kbd_irq = i8259_irq_line(&vm->pic, 1);
    vm->kbc.aux_irq = i8259_irq_line(&vm->pic, 12);
    resetcf9_init(&vm->cf9, &vm->ctl);
    int err;
    if ((err = iobus_register(&vm->io, 0x3f8, 8, &uart16550_io_ops, &vm->uart)) ||
        (err = iobus_register(&vm->io, 0xf4, 4, &debug_exit_io_ops, &vm->dbgexit)) ||
        (err = iobus_register(&vm->io, 0x80, 1, &port80_io_ops, &vm->port80)) ||
        (err = i8042_register(&vm->kbc, &vm->io)) ||
        (err = iobus_register(&vm->io, 0xcf9, 1, &resetcf9_io_ops, &vm->cf9)) ||
        (err = pci_host_register(&vm->pci, &vm->io)) ||
        (err = i8259_register(&vm->pic, &vm->io)) || (err = i8254_register(&vm->pit, &vm->io)) ||
        (err = mc146818_register(&vm->rtc, &vm->io)))
        return err;
    struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGALRM };
    if (timer_create(CLOCK_MONOTONIC, &sev, &vm->host_timer) < 0)
        return -errno;
    return 0;
}

/* ---- monitor region ------------------------------------------------------------------------ */

static int monitor_region_init(struct vm *vm)
{
    uint64_t size = ((uint64_t)MON_TC + vm->cfg.tc_size + MON_ALIGN - 1) & ~(uint64_t)(MON_ALIGN - 1);
    vm->mon_size = (uint32_t)size;
    vm->mon_base = (uint32_t)(GUEST_SPACE - size);
    void *p = mmap((void *)(uintptr_t)vm->mon_base, size, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    mprotect(p, MON_STUBS, PROT_READ | PROT_WRITE); /* poll pages and the vCPU block: data */
    struct vcpu_block *b = (struct vcpu_block *)(uintptr_t)(vm->mon_base + MON_BLOCK);
    vm->cpu.blk = b;
    b->vm = vm;
    b->entry_far_sel = HOST_CS32;
    uint32_t pkru;
    __asm__ volatile("rdpkru" : "=a"(pkru) : "c"(0) : "edx");
    vm->host_pkru = pkru;
    b->exit_far_sel = HOST_CS64;
    for (unsigned ah = 0; ah < 256; ah++) {
        b->zf_table[0][ah] = (uint8_t)(ah & ~EFLAGS_ZF);
        b->zf_table[1][ah] = (uint8_t)(ah | EFLAGS_ZF);
        /* Of EFLAGS bits 8-15 an inline IRET takes IF, DF and OF only, and
         * not IF while an interrupt is pending (it would be taken at once). */
        b->iret_flags[0][ah] = (ah << 8) & ~(uint32_t)(EFLAGS_IF | EFLAGS_DF | EFLAGS_OF) ? 1 : 0;
        b->iret_flags[1][ah] = (ah << 8) & ~(uint32_t)(EFLAGS_DF | EFLAGS_OF) ? 1 : 0;
    }
    return 0;
}

int vm_init(struct vm *vm, const struct vm_config *cfg)
{
    int err;
    memset(vm, 0, sizeof(*vm));
    vm->cfg = *cfg;
    vm->log = stderr;
    if ((err = guest_ram_init(&vm->ram, cfg->ram_mb << 20)) || (err = shadow_init(&vm->shadow, &vm->ram)) ||
        (err = monitor_region_init(vm)) || (err = segments_init(vm)))
        return err;
    vm->shadow.limit = vm->mon_base;
    vm->shadow.invlpg_map = (uint8_t *)(uintptr_t)(vm->mon_base + MON_INVLPG_MAP);
    vm->shadow.hints = (uint8_t *)(uintptr_t)(vm->mon_base + MON_PAGE_HINTS);
    if (tcache_init(vm))
        return -ENOMEM;
    vm->cpu.blk->exit_far_off = vm->tc.stub_exit64;
    /* The guest's FPU starts as after reset and FNINIT: XMM registers
     * zero, SSE exceptions masked. */
    __asm__ volatile("fninit");
    memset(vm->cpu.blk->fxsave, 0, sizeof(vm->cpu.blk->fxsave));
    uint32_t mxcsr = 0x1f80;
    memcpy(&vm->cpu.blk->fxsave[VB_MXCSR - VB_FXSAVE], &mxcsr, sizeof(mxcsr));
    __asm__ volatile("movw %0, %%gs" ::"r"(vm->cpu.blk->mon_gs));
    if ((err = devices_init(vm)))
        return err;
    iobus_set_fast(&vm->io, (uint16_t *)(uintptr_t)(vm->mon_base + MON_PORT_READS));
    vm->devices_touched = true;
    if (signals_init(vm))
        return -errno;
    return 0;
}

void vm_destroy(struct vm *vm)
{
    console_restore(vm);
    timer_delete(vm->host_timer);
    tcache_destroy(vm);
    segments_destroy(vm);
    shadow_destroy(&vm->shadow);
    guest_ram_destroy(&vm->ram);
    if (vm->log && vm->log != stderr)
        fclose(vm->log);
    if (vm->perfmap)
        fclose(vm->perfmap);
    free(vm->altstack);
}

/* ---- boot ------------------------------------------------------------------------------ */

void vm_reset_cpu(struct vm *vm)
{
    struct vcpu *c = &vm->cpu;
    struct vcpu_block *b = c->blk;
    const struct boot_entry *be = &vm->boot;
    memset(b->gpr, 0, sizeof(b->gpr));
    b->gpr[R_EAX] = be->eax;
    b->gpr[R_EBX] = be->ebx;
    b->gpr[R_ECX] = be->ecx;
    b->gpr[R_EDX] = be->edx;
    b->gpr[R_ESI] = be->esi;
    b->gpr[R_EDI] = be->edi;
    b->gpr[R_EBP] = be->ebp;
    b->gpr[R_ESP] = be->esp;
    vcpu_set_eflags(c, EFLAGS_FIXED);
    c->eip = be->eip;
    c->cr0 = CR0_PE | CR0_ET;
    c->blk->cr2 = c->cr3 = c->cr4 = 0;
    memset(c->dr, 0, sizeof(c->dr));
    c->dr[6] = 0xffff0ff0u;
    c->dr[7] = 0x400;
    c->gdtr = (struct dtr){ be->gdt_base, be->gdt_limit };
    c->idtr = (struct dtr){ 0, 0x3ff };
    memset(&c->ldtr, 0, sizeof(c->ldtr));
    memset(&c->tr, 0, sizeof(c->tr));
    c->sysenter_cs = c->blk->sysenter_esp = c->blk->sysenter_eip = 0;
    c->tsc_offset = 0;
    c->halted = c->irq_shadow = false;
    seg_load_flat(vm, SEG_CS, 0x10, true);
    static const unsigned data[] = { SEG_DS, SEG_ES, SEG_FS, SEG_GS, SEG_SS };
    for (unsigned i = 0; i < 5; i++)
        seg_load_flat(vm, data[i], 0x18, false);
}

int vm_load(struct vm *vm, char err[LOADER_ERR_LEN])
{
    /* Linux keeps its fixmap just below 4 GiB, inside the monitor region,
     * where every access would be relocated one step at a time: ask it to
     * keep out (arch/x86/mm/pgtable_32.c, reservetop=), unless told otherwise. */
    char cmdline[4096];
    const char *append = vm->cfg.append ? vm->cfg.append : "";
    if (strstr(append, "reservetop="))
        snprintf(cmdline, sizeof(cmdline), "%s", append);
    else
        snprintf(cmdline, sizeof(cmdline), "reservetop=%u%s%s", vm->mon_size, *append ? " " : "",
                 append); /* first: whatever follows "--" belongs to init */
    struct loader_args args = { vm->cfg.kernel, cmdline, vm->cfg.initrd };
    int r = linux_load(&vm->ram, &args, &vm->boot, err);
    if (r == -ENOEXEC) {
        args.cmdline = vm->cfg.append;
        r = multiboot_load(&vm->ram, &args, &vm->boot, err);
    }
    if (r == -ENOEXEC)
        snprintf(err, LOADER_ERR_LEN, "'%s' is not a loadable kernel (expected a Linux bzImage "
                 "or a Multiboot ELF32 image)", vm->cfg.kernel);
    if (r)
        return r;
    vm_reset_cpu(vm);
    return 0;
}

/* A machine reset: what QEMU does with -kernel, reload the kernel and start over. */
int vm_reset(struct vm *vm)
{
    char err[LOADER_ERR_LEN];
    tcache_flush(vm);
    shadow_unmap_all(&vm->shadow, false);
    memset(vm->ram.host, 0, vm->ram.size);
    memset(&vm->ctl, 0, sizeof(vm->ctl));
    if (vm_load(vm, err)) {
        vm_stop(vm, 2, "popek: reset: %s", err);
        return -1;
    }
    return 0;
}

void vm_print_stats(struct vm *vm, FILE *f)
{
    const struct dbt_stats *s = &vm->tc.stats;
    fprintf(f, "popek statistics:\n");
    fprintf(f, "  blocks translated      %llu\n", (unsigned long long)s->blocks_translated);
    fprintf(f, "  TC bytes used          %u of %u\n", vm->tc.tc_next - vm->tc.tc_start,
            vm->tc.tc_end - vm->tc.tc_start);
    fprintf(f, "  TC flushes             %llu\n", (unsigned long long)s->flushes);
    fprintf(f, "  invalidations (SMC)    %llu blocks, %llu write faults\n",
            (unsigned long long)s->invalidations, (unsigned long long)vm->stats.smc_faults);
    fprintf(f, "  exits chained          %llu\n", (unsigned long long)s->chained_exits);
    fprintf(f, "  exits unchained        %llu\n", (unsigned long long)s->unchained_exits);
    fprintf(f, "  links kept             %llu, restored %llu, woken %llu\n",
            (unsigned long long)s->links_kept, (unsigned long long)s->links_restored,
            (unsigned long long)s->links_woken);
    fprintf(f, "  IBL hits               %llu\n", (unsigned long long)s->ibl_hits);
    fprintf(f, "  IBL misses             %llu\n", (unsigned long long)s->ibl_misses);
    fprintf(f, "  hidden faults          %llu\n", (unsigned long long)vm->shadow.hidden_faults);
    fprintf(f, "  page checks            %llu sites (%llu undone), %llu pages mapped, %llu #PF\n",
            (unsigned long long)s->sites_checked, (unsigned long long)s->sites_unchecked,
            (unsigned long long)s->checks_mapped, (unsigned long long)s->checks_faulted);
    fprintf(f, "  shadow mmaps           %llu placed, %llu dropped\n",
            (unsigned long long)vm->shadow.maps, (unsigned long long)vm->shadow.unmaps);
    fprintf(f, "  CR3 writes kept        %llu pages, parked %llu, reloaded %llu\n",
            (unsigned long long)vm->shadow.kept, (unsigned long long)vm->shadow.parked,
            (unsigned long long)vm->shadow.reloaded);
    fprintf(f, "  pages made dead        %llu, mapped again %llu, retries emulated %llu\n",
            (unsigned long long)vm->shadow.killed, (unsigned long long)vm->shadow.revived,
            (unsigned long long)vm->shadow.retries_emulated);
    fprintf(f, "  guest exceptions       %llu\n", (unsigned long long)vm->stats.guest_exceptions);
    fprintf(f, "  monitor entries        %llu\n", (unsigned long long)vm->stats.monitor_entries);
    fprintf(f, "  callouts (translated sites / executed):\n");
    for (unsigned k = 0; k < CO_COUNT; k++)
        if (s->callouts[k] || vm->stats.callouts_run[k])
            fprintf(f, "    %-18s %llu / %llu\n", callout_kind_name(k),
                    (unsigned long long)s->callouts[k], (unsigned long long)vm->stats.callouts_run[k]);
}
