/*
 * popek: command line, spelled like QEMU's so users can switch.
 *
 * Bad input (unknown options, missing files, absurd sizes, files that are not
 * kernels) is one line on stderr and exit status 2.  The guest's own ending
 * sets the status: isa-debug-exit's (v << 1) | 1, 0 for a reset under
 * -no-reboot, 3 for a guest that did something Popek cannot run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "popek/vm.h"

#define MIN_RAM_MB 2
#define MAX_RAM_MB 3072 /* guest RAM must stay clear of the monitor region */
#define DEFAULT_RAM_MB 128

static const struct {
    const char *name;
    unsigned mask;
    const char *help;
} log_categories[] = {
    { "in_asm", LOG_IN_ASM, "guest blocks as they are translated" },
    { "out_asm", LOG_OUT_ASM, "translation cache code produced" },
    { "exec", LOG_EXEC, "every block entered from the monitor" },
    { "int", LOG_INT, "interrupts and exceptions delivered to the guest" },
    { "callout", LOG_CALLOUT, "every instruction emulated by the monitor" },
    { "fault", LOG_FAULT, "host faults raised by translated code" },
    { "unimp", LOG_UNIMP, "unimplemented features the guest touched" },
    { "io", LOG_IO, "port I/O" },
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: popek -kernel FILE [options]\n"
            "Run a 32-bit x86 guest kernel by binary translation (no VT-x needed).\n"
            "COM1 is the terminal; Ctrl-A X quits, Ctrl-A Ctrl-A sends Ctrl-A.\n\n"
            "  -kernel FILE     kernel to boot: Linux bzImage or Multiboot ELF32\n"
            "  -m MB            guest RAM in MiB, suffix M or G allowed (default %d)\n"
            "  -append STR      kernel command line\n"
            "  -initrd FILE     initial ramdisk (for Multiboot kernels: module 0)\n"
            "  -nographic       COM1 on the terminal (the only display there is)\n"
            "  -no-reboot       exit with status 0 when the guest resets\n"
            "  -d CATS          trace categories, comma separated ('-d help' lists them)\n"
            "  -D FILE          write traces to FILE instead of stderr\n"
            "  -tb-size MB      translation cache size in MiB (default %u)\n"
            "  --stats          print translation statistics at exit\n"
            "  -perfmap         write /tmp/perf-PID.map: perf names translated code by guest address\n"
            "  --help, --version\n",
            DEFAULT_RAM_MB, MON_DEFAULT_TC_SIZE >> 20);
}

static int bad(const char *fmt, const char *arg)
{
    fprintf(stderr, "popek: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    return 2;
}

/* "128", "128M", "1G" -> MiB; 0 on error. */
static uint32_t parse_mb(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || v > 1u << 20)
        return 0;
    if (*end == 'G' || *end == 'g')
        v <<= 10, end++;
    else if (*end == 'M' || *end == 'm')
        end++;
    return *end || v > UINT32_MAX ? 0 : (uint32_t)v;
}

static int parse_log(const char *s, unsigned *mask)
{
    if (!strcmp(s, "help")) {
        for (unsigned i = 0; i < sizeof(log_categories) / sizeof(log_categories[0]); i++)
            printf("%-8s %s\n", log_categories[i].name, log_categories[i].help);
        exit(0);
    }
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        unsigned i;
        for (i = 0; i < sizeof(log_categories) / sizeof(log_categories[0]); i++)
            if (!strcmp(tok, log_categories[i].name))
                break;
        if (i == sizeof(log_categories) / sizeof(log_categories[0]))
            return bad("unknown trace category '%s' (try -d help)", tok);
        *mask |= log_categories[i].mask;
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct vm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->ram_mb = DEFAULT_RAM_MB;
    cfg->tc_size = MON_DEFAULT_TC_SIZE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* QEMU accepts both -opt and --opt. */
        if (a[0] == '-' && a[1] == '-')
            a++;
        bool takes_arg = !strcmp(a, "-kernel") || !strcmp(a, "-m") || !strcmp(a, "-append") ||
                         !strcmp(a, "-initrd") || !strcmp(a, "-d") || !strcmp(a, "-D") ||
                         !strcmp(a, "-tb-size");
        const char *val = NULL;
        if (takes_arg) {
            if (i + 1 >= argc)
                return bad("option '%s' needs an argument", argv[i]);
            val = argv[++i];
        }
        if (!strcmp(a, "-help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "-version")) {
            printf("popek %s\n", POPEK_VERSION);
            exit(0);
        } else if (!strcmp(a, "-kernel")) {
            cfg->kernel = val;
        } else if (!strcmp(a, "-initrd")) {
            cfg->initrd = val;
        } else if (!strcmp(a, "-append")) {
            cfg->append = val;
        } else if (!strcmp(a, "-m")) {
            cfg->ram_mb = parse_mb(val);
            if (cfg->ram_mb < MIN_RAM_MB || cfg->ram_mb > MAX_RAM_MB)
                return bad("-m %s: guest RAM must be between 2 MiB and 3072 MiB", val);
        } else if (!strcmp(a, "-tb-size")) {
            uint32_t mb = parse_mb(val);
            if (mb < 1 || mb > 256)
                return bad("-tb-size %s: translation cache must be between 1 and 256 MiB", val);
            cfg->tc_size = mb << 20;
        } else if (!strcmp(a, "-d")) {
            if (parse_log(val, &cfg->log_mask))
                return 2;
        } else if (!strcmp(a, "-D")) {
            cfg->log_file = val;
        } else if (!strcmp(a, "-nographic")) {
            /* COM1 is always the terminal. */
        } else if (!strcmp(a, "-no-reboot")) {
            cfg->no_reboot = true;
        } else if (!strcmp(a, "-stats")) {
            cfg->stats = true;
        } else if (!strcmp(a, "-perfmap")) {
            cfg->perfmap = true;
        } else {
            return bad("unknown option '%s' (try --help)", argv[i]);
        }
    }
    if (!cfg->kernel)
        return bad("%s", "no kernel given (use -kernel FILE; try --help)");
    const char *files[][2] = { { "kernel", cfg->kernel }, { "initrd", cfg->initrd } };
    for (unsigned i = 0; i < 2; i++)
        if (files[i][1] && access(files[i][1], R_OK) < 0) {
            fprintf(stderr, "popek: cannot read %s '%s': %s\n", files[i][0], files[i][1],
                    strerror(errno));
            return 2;
        }
    if ((uint64_t)cfg->ram_mb * (1u << 20) + cfg->tc_size + MON_TC >= GUEST_SPACE)
        return bad("%s", "guest RAM and translation cache do not fit in 4 GiB");
    return 0;
}

int main(int argc, char **argv)
{
    struct vm_config cfg;
    int r = parse_args(argc, argv, &cfg);
    if (r)
        return r;

    struct vm *vm = calloc(1, sizeof(*vm));
    if (!vm) {
        fprintf(stderr, "popek: out of memory\n");
        return 2;
    }
    int err = vm_init(vm, &cfg);
    if (err == -EEXIST) {
        fprintf(stderr, "popek: cannot create the virtual machine: the low 4 GiB of the address "
                        "space (the guest's) is already in use (a sanitizer's shadow memory?)\n");
        return 2;
    }
    if (err) {
        fprintf(stderr, "popek: cannot create the virtual machine: %s\n", strerror(-err));
        return 2;
    }
    if (cfg.log_file && !(vm->log = fopen(cfg.log_file, "w"))) {
        fprintf(stderr, "popek: cannot write trace file '%s': %s\n", cfg.log_file, strerror(errno));
        return 2;
    }
    if (cfg.perfmap) {
        char name[64];
        snprintf(name, sizeof(name), "/tmp/perf-%d.map", (int)getpid());
        if (!(vm->perfmap = fopen(name, "w"))) {
            fprintf(stderr, "popek: cannot write %s: %s\n", name, strerror(errno));
            return 2;
        }
    }
    char lerr[LOADER_ERR_LEN] = "";
    if (vm_load(vm, lerr)) {
        fprintf(stderr, "popek: %s\n", lerr);
        return 2;
    }
    if ((err = seccomp_install())) {
        fprintf(stderr, "popek: cannot install the seccomp filter: %s\n", strerror(-err));
        return 2;
    }
    int status = vm_run(vm);
    console_restore(vm);
    if (vm->stop_msg[0])
        fprintf(stderr, "%s\n", vm->stop_msg);
    if (cfg.stats)
        vm_print_stats(vm, stderr);
    vm_destroy(vm);
    free(vm);
    return status;
}
