/*
 * Linux boot protocol loader tests.  bzImages are built in memory by
 * bz_build() (a setup header like Debian 12's 6.1 kernel's: protocol 2.15,
 * relocatable, 16 MiB alignment and pref_address; a small patterned
 * protected-mode part), mutated per test and written to temporary files.
 * Guest RAM is calloc'd memory filled with 0xAA so a test sees both what the
 * loader wrote and what it left alone.  boot_params is read at the offsets
 * Documentation/arch/x86/boot.rst and zero-page.rst give, not through the
 * loader's own constants.
 *
 * With POPEK_GUEST_KERNEL=path/to/vmlinuz in the environment, one more test
 * loads that real kernel (scripts/fetch-guest.sh puts Debian's in
 * cache/guest/vmlinuz); without it that test is skipped.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "popek/loader.h"

#define RAM_SIZE (32u << 20)
#define FILL 0xAA

/* Documented loader layout (src/monitor/linuxboot.c). */
#define GDT_ADDR 0x9000u
#define ZP 0x10000u /* boot_params */
#define CMDLINE_ADDR 0x20000u
#define KERNEL_ADDR 0x100000u

/* Setup header (boot.rst), same offsets in the image and in boot_params. */
#define SETUP_SECTS 0x1F1
#define SYSSIZE 0x1F4
#define VID_MODE 0x1FA
#define BOOT_FLAG 0x1FE
#define JUMP 0x200
#define HEADER 0x202
#define VERSION 0x206
#define KERNEL_VERSION 0x20E
#define TYPE_OF_LOADER 0x210
#define LOADFLAGS 0x211
#define CODE32_START 0x214
#define RAMDISK_IMAGE 0x218
#define RAMDISK_SIZE 0x21C
#define HEAP_END_PTR 0x224
#define CMD_LINE_PTR 0x228
#define INITRD_ADDR_MAX 0x22C
#define KERNEL_ALIGNMENT 0x230
#define RELOCATABLE_KERNEL 0x234
#define MIN_ALIGNMENT 0x235
#define XLOADFLAGS 0x236
#define CMDLINE_SIZE 0x238
#define PAYLOAD_OFFSET 0x248
#define PAYLOAD_LENGTH 0x24C
#define PREF_ADDRESS 0x258
#define INIT_SIZE 0x260
#define HANDOVER_OFFSET 0x264
#define KERNEL_INFO_OFFSET 0x268
#define HDR_END 0x26C /* 0x202 + jump offset 0x6a, as Linux 6.1 */

/* boot_params outside the setup header (zero-page.rst) */
#define BP_EXT_MEM_K 0x002
#define BP_ORIG_VIDEO_ISVGA 0x00F
#define BP_ALT_MEM_K 0x1E0
#define BP_E820_ENTRIES 0x1E8
#define BP_SENTINEL 0x1EF
#define BP_E820_TABLE 0x2D0

/* Synthetic image: 3 setup sectors + boot sector, 0x3000 bytes of kernel. */
#define IMG_SETUP_SECTS 3u
#define IMG_SETUP_SIZE ((IMG_SETUP_SECTS + 1) * 512u)
#define IMG_PM_SIZE 0x3000u
#define IMG_INIT_SIZE 0x400000u  /* 4 MiB from the runtime start */
#define IMG_PREF 0x1000000u      /* 16 MiB, Debian's LOAD_PHYSICAL_ADDR */
#define IMG_KERNEL_END (IMG_PREF + IMG_INIT_SIZE)

static struct guest_ram ram;
static char err[LOADER_ERR_LEN];
static struct boot_entry entry;
static char kpath[64], ipath[64];

static void setup(void)
{
    ram.host = malloc(RAM_SIZE);
    cr_assert_not_null(ram.host);
    memset(ram.host, FILL, RAM_SIZE);
    ram.size = RAM_SIZE;
    ram.memfd = -1;
    kpath[0] = ipath[0] = '\0';
}

static void teardown(void)
{
    if (kpath[0])
        unlink(kpath);
    if (ipath[0])
        unlink(ipath);
    free(ram.host);
}

TestSuite(linuxboot, .init = setup, .fini = teardown);

/* ---- image generator --------------------------------------------------------- */

struct img {
    uint8_t buf[0x8000];
    size_t len;
};

static void put8(struct img *im, size_t off, uint8_t v)
{
    im->buf[off] = v;
}

static void put16(struct img *im, size_t off, uint16_t v)
{
    memcpy(im->buf + off, &v, 2);
}

static void put32(struct img *im, size_t off, uint32_t v)
{
    memcpy(im->buf + off, &v, 4);
}

static void put64(struct img *im, size_t off, uint64_t v)
{
    memcpy(im->buf + off, &v, 8);
}

/* The whole file is patterned first, so any byte the loader copies from the
 * wrong place, or copies when it must not, shows. */
static void bz_build(struct img *im)
{
    memset(im, 0, sizeof(*im));
    im->len = IMG_SETUP_SIZE + IMG_PM_SIZE;
    for (size_t i = 0; i < im->len; i++)
        im->buf[i] = (uint8_t)(i * 29 + 7);
    put8(im, BP_SENTINEL, 0xFF); /* as in real images: must not reach boot_params */
    put8(im, SETUP_SECTS, IMG_SETUP_SECTS);
    put16(im, 0x1F2, 1);          /* root_flags */
    put32(im, SYSSIZE, IMG_PM_SIZE / 16);
    put16(im, 0x1F8, 0);          /* ram_size */
    put16(im, VID_MODE, 0xFFFD);  /* "ask": the loader must write "normal" */
    put16(im, 0x1FC, 0);          /* root_dev */
    put16(im, BOOT_FLAG, 0xAA55);
    put8(im, JUMP, 0xEB);
    put8(im, JUMP + 1, HDR_END - HEADER);
    memcpy(im->buf + HEADER, "HdrS", 4);
    put16(im, VERSION, 0x020F);
    put32(im, 0x208, 0);          /* realmode_swtch */
    put16(im, 0x20C, 0x1000);     /* start_sys_seg */
    put16(im, KERNEL_VERSION, 0x200);
    put8(im, TYPE_OF_LOADER, 0);
    put8(im, LOADFLAGS, 0x01 | 0x20 | 0x40); /* LOADED_HIGH, QUIET, KEEP_SEGMENTS */
    put16(im, 0x212, 0x8000);     /* setup_move_size */
    put32(im, CODE32_START, 0x100000);
    put32(im, RAMDISK_IMAGE, 0x12345678);
    put32(im, RAMDISK_SIZE, 0x9ABCDEF0);
    put32(im, 0x220, 0);          /* bootsect_kludge */
    put16(im, HEAP_END_PTR, 0x57C0);
    put8(im, 0x226, 0);           /* ext_loader_ver */
    put8(im, 0x227, 0);           /* ext_loader_type */
    put32(im, CMD_LINE_PTR, 0);
    put32(im, INITRD_ADDR_MAX, 0x7FFFFFFF);
    put32(im, KERNEL_ALIGNMENT, 0x1000000);
    put8(im, RELOCATABLE_KERNEL, 1);
    put8(im, MIN_ALIGNMENT, 13);
    put16(im, XLOADFLAGS, 0x4);   /* XLF_EFI_HANDOVER_32 */
    put32(im, CMDLINE_SIZE, 2047);
    put32(im, 0x23C, 0);          /* hardware_subarch */
    put64(im, 0x240, 0);          /* hardware_subarch_data */
    put32(im, PAYLOAD_OFFSET, 0x2C4);
    put32(im, PAYLOAD_LENGTH, 0x2000);
    put64(im, 0x250, 0);          /* setup_data */
    put64(im, PREF_ADDRESS, IMG_PREF);
    put32(im, INIT_SIZE, IMG_INIT_SIZE);
    put32(im, HANDOVER_OFFSET, 0x190);
    put32(im, KERNEL_INFO_OFFSET, 0x2000);
}

static void write_temp(char *path, const void *data, size_t len)
{
    strcpy(path, "/tmp/popek-lb-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* A sparse file of `len` bytes: big initrds cost no disk. */
static void write_sparse(char *path, size_t len)
{
    strcpy(path, "/tmp/popek-lb-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)len), 0);
    close(fd);
}

static void kernel_write(const struct img *im)
{
    if (kpath[0])
        unlink(kpath);
    write_temp(kpath, im->buf, im->len);
}

static int load(const char *cmdline, const char *initrd)
{
    struct loader_args args = {.kernel_path = kpath, .cmdline = cmdline,
                               .initrd_path = initrd};

    memset(&entry, 0x5A, sizeof(entry));
    memset(err, 'x', sizeof(err));
    return linux_load(&ram, &args, &entry, err);
}

static int load_img(const struct img *im, const char *cmdline)
{
    kernel_write(im);
    return load(cmdline, NULL);
}

static void expect_fail(int rc, int want, const char *substr)
{
    cr_assert_eq(rc, want, "rc %d, want %d (%s)", rc, want, err);
    cr_assert(memchr(err, '\0', sizeof(err)), "message not terminated");
    cr_assert_neq(err[0], '\0', "empty message");
    cr_assert_null(strchr(err, '\n'), "message is not one line: %s", err);
    cr_assert_not_null(strstr(err, substr), "message '%s' lacks '%s'", err, substr);
}

static bool ram_is(uint32_t gpa, uint32_t len, uint8_t byte)
{
    for (uint32_t i = 0; i < len; i++)
        if (ram.host[gpa + i] != byte)
            return false;
    return true;
}

/* A refused load writes nothing: every byte of RAM is still FILL. */
static void expect_ram_untouched(void)
{
    cr_assert(ram_is(0, RAM_SIZE, FILL), "a refused load wrote guest RAM");
}

static void expect_img_fail(const struct img *im, int want, const char *substr)
{
    expect_fail(load_img(im, "console=ttyS0"), want, substr);
    expect_ram_untouched();
}

static uint8_t rd8(uint32_t gpa)
{
    return ram.host[gpa];
}

static uint16_t rd16(uint32_t gpa)
{
    uint16_t v;
    memcpy(&v, ram.host + gpa, 2);
    return v;
}

static uint32_t rd32(uint32_t gpa)
{
    uint32_t v;
    memcpy(&v, ram.host + gpa, 4);
    return v;
}

static uint64_t rd64(uint32_t gpa)
{
    uint64_t v;
    memcpy(&v, ram.host + gpa, 8);
    return v;
}

/* ---- successful loads -------------------------------------------------------- */

Test(linuxboot, entry_state_is_the_32bit_boot_protocol)
{
    struct img im;

    bz_build(&im);
    cr_assert_eq(load_img(&im, "console=ttyS0"), 0, "%s", err);
    cr_assert_str_eq(err, "");
    cr_assert_eq(entry.eip, KERNEL_ADDR);
    cr_assert_eq(entry.esi, ZP);
    cr_assert_eq(entry.ebx, 0);
    cr_assert_eq(entry.ebp, 0);
    cr_assert_eq(entry.edi, 0);
    cr_assert_eq(entry.eax | entry.ecx | entry.edx | entry.esp, 0);
    cr_assert_eq(entry.gdt_base, GDT_ADDR);
    cr_assert_eq(entry.gdt_limit, 4 * 8 - 1);
}

Test(linuxboot, flat_gdt_with_boot_cs_and_ds)
{
    struct img im;

    bz_build(&im);
    cr_assert_eq(load_img(&im, NULL), 0, "%s", err);
    cr_assert_eq(rd64(GDT_ADDR), 0);
    cr_assert_eq(rd64(GDT_ADDR + 8), 0);
    /* __BOOT_CS 0x10: base 0, limit 4 GiB, 32-bit, execute/read; __BOOT_DS 0x18:
     * read/write.  The accessed bit (40) may be either. */
    cr_assert_eq(rd64(GDT_ADDR + 0x10) & ~(1ull << 40), 0x00CF9A000000FFFFull);
    cr_assert_eq(rd64(GDT_ADDR + 0x18) & ~(1ull << 40), 0x00CF92000000FFFFull);
    cr_assert_eq(BOOT_GDT_CS, 0x10);
    cr_assert_eq(BOOT_GDT_DS, 0x18);
}

Test(linuxboot, protected_mode_kernel_at_1mib)
{
    struct img im;

    bz_build(&im);
    cr_assert_eq(load_img(&im, NULL), 0, "%s", err);
    cr_assert_arr_eq(ram.host + KERNEL_ADDR, im.buf + IMG_SETUP_SIZE, IMG_PM_SIZE);
    cr_assert(ram_is(KERNEL_ADDR + IMG_PM_SIZE, 0x1000, FILL), "wrote past the kernel");
    cr_assert(ram_is(KERNEL_ADDR - 0x1000, 0x1000, FILL), "wrote below the kernel");
}

Test(linuxboot, loads_syssize_not_the_whole_file)
{
    struct img im;

    /* Signed kernels carry a signature after syssize * 16 bytes. */
    bz_build(&im);
    im.len += 0x5C0;
    cr_assert_eq(load_img(&im, NULL), 0, "%s", err);
    cr_assert_arr_eq(ram.host + KERNEL_ADDR, im.buf + IMG_SETUP_SIZE, IMG_PM_SIZE);
    cr_assert(ram_is(KERNEL_ADDR + IMG_PM_SIZE, 0x1000, FILL), "loaded the trailer");
}

Test(linuxboot, setup_sects_zero_means_four)
{
    struct img im;

    bz_build(&im);
    put8(&im, SETUP_SECTS, 0);
    im.len = 5 * 512 + IMG_PM_SIZE;
    cr_assert_eq(load_img(&im, NULL), 0, "%s", err);
    cr_assert_arr_eq(ram.host + KERNEL_ADDR, im.buf + 5 * 512, IMG_PM_SIZE);
    cr_assert_eq(rd8(ZP + SETUP_SECTS), 0, "setup header copied as is");
}

Test(linuxboot, zero_page_setup_header)
{
    struct img im;

    bz_build(&im);
    cr_assert_eq(load_img(&im, "console=ttyS0"), 0, "%s", err);

    /* Fields the loader writes. */
    cr_assert_eq(rd16(ZP + VID_MODE), 0xFFFF, "vid_mode normal");
    cr_assert_eq(rd8(ZP + TYPE_OF_LOADER), 0xFF, "type_of_loader undefined");
    cr_assert_eq(rd8(ZP + LOADFLAGS), 0x81, "LOADED_HIGH | CAN_USE_HEAP, nothing else");
    cr_assert_eq(rd32(ZP + CODE32_START), KERNEL_ADDR);
    cr_assert_eq(rd32(ZP + RAMDISK_IMAGE), 0, "no initrd");
    cr_assert_eq(rd32(ZP + RAMDISK_SIZE), 0, "no initrd");
    cr_assert_eq(rd16(ZP + HEAP_END_PTR), 0xFE00);
    cr_assert_eq(rd32(ZP + CMD_LINE_PTR), CMDLINE_ADDR);
    /* The heap ends (heap_end_ptr + 0x200 from the zero page) at or below the
     * command line, as boot.rst asks. */
    cr_assert_leq(ZP + rd16(ZP + HEAP_END_PTR) + 0x200u, CMDLINE_ADDR);

    /* Every other byte of the header is the image's. */
    static const struct { unsigned off, len; } written[] = {
        {VID_MODE, 2}, {TYPE_OF_LOADER, 1}, {LOADFLAGS, 1}, {CODE32_START, 4},
        {RAMDISK_IMAGE, 4}, {RAMDISK_SIZE, 4}, {HEAP_END_PTR, 2}, {CMD_LINE_PTR, 4},
    };
    for (unsigned off = SETUP_SECTS; off < HDR_END; off++) {
        bool skip = false;
        for (unsigned i = 0; i < sizeof(written) / sizeof(written[0]); i++)
            skip |= off >= written[i].off && off < written[i].off + written[i].len;
        if (!skip)
            cr_assert_eq(rd8(ZP + off), im.buf[off], "header byte 0x%x", off);
    }
}

Test(linuxboot, zero_page_outside_the_header)
{
    struct img im;
    const uint32_t ext_kb = (RAM_SIZE - (1u << 20)) / 1024;

    bz_build(&im);
    cr_assert_eq(load_img(&im, "console=ttyS0"), 0, "%s", err);

    cr_assert_eq(rd16(ZP + BP_EXT_MEM_K), ext_kb);
    cr_assert_eq(rd32(ZP + BP_ALT_MEM_K), ext_kb);
    cr_assert_eq(rd8(ZP + BP_E820_ENTRIES), 4);
    cr_assert_eq(rd8(ZP + BP_SENTINEL), 0, "sentinel: header copied from 0x1f1 only");
    cr_assert_eq(rd8(ZP + BP_ORIG_VIDEO_ISVGA), 0, "no VGA");
    /* All the rest is zero: screen_info, apm, ..., edd, the unused e820 slots. */
    for (unsigned off = 0; off < 4096; off++) {
        if (off == BP_EXT_MEM_K || off == BP_EXT_MEM_K + 1 ||
            (off >= BP_ALT_MEM_K && off < BP_ALT_MEM_K + 4) || off == BP_E820_ENTRIES ||
            (off >= SETUP_SECTS && off < HDR_END) ||
            (off >= BP_E820_TABLE && off < BP_E820_TABLE + 4 * 20))
            continue;
        cr_assert_eq(rd8(ZP + off), 0, "boot_params byte 0x%x", off);
    }
    cr_assert(ram_is(ZP + 4096, 0x100, FILL), "wrote past boot_params");
}

Test(linuxboot, e820_map)
{
    struct img im;
    static const struct { uint64_t addr, size; uint32_t type; } map[] = {
        {0, 0x9FC00, 1},
        {0x9FC00, 0x400, 2},
        {0xF0000, 0x10000, 2},
        {0x100000, RAM_SIZE - 0x100000, 1},
    };

    bz_build(&im);
    cr_assert_eq(load_img(&im, NULL), 0, "%s", err);
    cr_assert_eq(rd8(ZP + BP_E820_ENTRIES), 4);
    for (unsigned i = 0; i < 4; i++) {
        uint32_t e = ZP + BP_E820_TABLE + 20 * i;
        cr_assert_eq(rd64(e), map[i].addr, "entry %u addr", i);
        cr_assert_eq(rd64(e + 8), map[i].size, "entry %u size", i);
        cr_assert_eq(rd32(e + 16), map[i].type, "entry %u type", i);
    }
}

Test(linuxboot, ext_mem_k_saturates)
{
    struct img im;

    /* 128 MiB: 130048 KiB above 1 MiB does not fit the 16-bit field. */
    free(ram.host);
    ram.size = 128u << 20;
    ram.host = calloc(1, ram.size);
    cr_assert_not_null(ram.host);
    bz_build(&im);
    cr_assert_eq(load_img(&im, NULL), 0, "%s", err);
    cr_assert_eq(rd16(ZP + BP_EXT_MEM_K), 0xFFFF);
    cr_assert_eq(rd32(ZP + BP_ALT_MEM_K), (ram.size - (1u << 20)) / 1024);
    cr_assert_eq(rd64(ZP + BP_E820_TABLE + 3 * 20 + 8), ram.size - 0x100000u);
    free(ram.host);
    ram.size = RAM_SIZE;
    ram.host = malloc(RAM_SIZE); /* teardown frees it */
}

Test(linuxboot, cmdline_placement)
{
    struct img im;
    static const char cmd[] = "console=ttyS0 root=/dev/ram0 rdinit=/init quiet";

    bz_build(&im);
    cr_assert_eq(load_img(&im, cmd), 0, "%s", err);
    cr_assert_eq(rd32(ZP + CMD_LINE_PTR), CMDLINE_ADDR);
    cr_assert_arr_eq(ram.host + CMDLINE_ADDR, cmd, sizeof(cmd), "string and its NUL");
    cr_assert_eq(rd8(CMDLINE_ADDR + sizeof(cmd)), FILL, "wrote past the NUL");
}

Test(linuxboot, no_cmdline_is_empty_string)
{
    struct img im;

    bz_build(&im);
    cr_assert_eq(load_img(&im, NULL), 0, "%s", err);
    cr_assert_eq(rd32(ZP + CMD_LINE_PTR), CMDLINE_ADDR);
    cr_assert_eq(rd8(CMDLINE_ADDR), 0);
    cr_assert_eq(rd8(CMDLINE_ADDR + 1), FILL);
}

Test(linuxboot, cmdline_of_exactly_cmdline_size)
{
    struct img im;
    char cmd[17];

    bz_build(&im);
    put32(&im, CMDLINE_SIZE, 16);
    memset(cmd, 'c', 16);
    cmd[16] = '\0';
    cr_assert_eq(load_img(&im, cmd), 0, "%s", err);
    cr_assert_str_eq((const char *)ram.host + CMDLINE_ADDR, cmd);
}

Test(linuxboot, initrd_at_top_of_ram_page_aligned)
{
    struct img im;
    uint8_t data[5000];

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 3 + 1);
    write_temp(ipath, data, sizeof(data));
    bz_build(&im);
    kernel_write(&im);
    cr_assert_eq(load("console=ttyS0", ipath), 0, "%s", err);
    uint32_t want = (RAM_SIZE - sizeof(data)) & ~0xFFFu;
    cr_assert_eq(rd32(ZP + RAMDISK_IMAGE), want);
    cr_assert_eq(rd32(ZP + RAMDISK_SIZE), sizeof(data));
    cr_assert_arr_eq(ram.host + want, data, sizeof(data));
    cr_assert(ram_is(want + sizeof(data), RAM_SIZE - want - sizeof(data), FILL),
              "wrote past the initrd");
    cr_assert(ram_is(want - 0x1000, 0x1000, FILL), "wrote below the initrd");
}

Test(linuxboot, initrd_below_initrd_addr_max)
{
    struct img im;
    uint8_t data[0x2000];

    memset(data, 0x3C, sizeof(data));
    write_temp(ipath, data, sizeof(data));
    bz_build(&im);
    put32(&im, INITRD_ADDR_MAX, 0x17FFFFF); /* highest byte: below 24 MiB */
    kernel_write(&im);
    cr_assert_eq(load(NULL, ipath), 0, "%s", err);
    cr_assert_eq(rd32(ZP + RAMDISK_IMAGE), 0x1800000u - sizeof(data));
    cr_assert_eq(rd32(ZP + RAMDISK_SIZE), sizeof(data));
    cr_assert_arr_eq(ram.host + 0x1800000u - sizeof(data), data, sizeof(data));
}

Test(linuxboot, initrd_just_fits_above_the_kernel)
{
    struct img im;

    /* From the end of init_size to the end of RAM, exactly. */
    write_sparse(ipath, RAM_SIZE - IMG_KERNEL_END);
    bz_build(&im);
    kernel_write(&im);
    cr_assert_eq(load(NULL, ipath), 0, "%s", err);
    cr_assert_eq(rd32(ZP + RAMDISK_IMAGE), IMG_KERNEL_END);
    cr_assert_eq(rd32(ZP + RAMDISK_SIZE), RAM_SIZE - IMG_KERNEL_END);
}

Test(linuxboot, empty_initrd_is_no_initrd)
{
    struct img im;

    write_temp(ipath, "", 0);
    bz_build(&im);
    kernel_write(&im);
    cr_assert_eq(load(NULL, ipath), 0, "%s", err);
    cr_assert_eq(rd32(ZP + RAMDISK_IMAGE), 0);
    cr_assert_eq(rd32(ZP + RAMDISK_SIZE), 0);
}

Test(linuxboot, fixed_kernel_needs_init_size_from_pref_address)
{
    struct img im;

    /* Not relocatable, runs at 2 MiB: needs RAM up to 6 MiB only, so an
     * initrd of 26 MiB fits above it in 32 MiB. */
    write_sparse(ipath, RAM_SIZE - 0x600000u);
    bz_build(&im);
    put8(&im, RELOCATABLE_KERNEL, 0);
    put64(&im, PREF_ADDRESS, 0x200000);
    kernel_write(&im);
    cr_assert_eq(load(NULL, ipath), 0, "%s", err);
    cr_assert_eq(rd32(ZP + RAMDISK_IMAGE), 0x600000u);
}

Test(linuxboot, relocatable_kernel_runs_at_aligned_load_address)
{
    struct img im;

    /* kernel_alignment 4 MiB above pref_address 1 MiB: the decompressor runs
     * at 4 MiB and needs up to 8 MiB; one page more of initrd does not fit. */
    bz_build(&im);
    put64(&im, PREF_ADDRESS, 0x100000);
    put32(&im, KERNEL_ALIGNMENT, 0x400000);
    kernel_write(&im);
    write_sparse(ipath, RAM_SIZE - 0x800000u);
    cr_assert_eq(load(NULL, ipath), 0, "%s", err);
    cr_assert_eq(rd32(ZP + RAMDISK_IMAGE), 0x800000u);
    unlink(ipath);
    memset(ram.host, FILL, RAM_SIZE);
    write_sparse(ipath, RAM_SIZE - 0x800000u + 0x1000u);
    expect_fail(load(NULL, ipath), -EFBIG, "too small for the kernel and initrd");
}

/* ---- refusals ------------------------------------------------------------- */

Test(linuxboot, not_a_bzimage_is_enoexec)
{
    struct img im;

    bz_build(&im);
    memcpy(im.buf + HEADER, "HdrT", 4);
    expect_img_fail(&im, -ENOEXEC, "not a Linux bzImage");

    /* An ELF (a multiboot kernel, say) is for the next loader. */
    memset(&im, 0, sizeof(im));
    memcpy(im.buf, "\177ELF", 4);
    im.len = 0x1000;
    expect_img_fail(&im, -ENOEXEC, "not a Linux bzImage");
}

Test(linuxboot, short_file_is_enoexec)
{
    struct img im;

    bz_build(&im);
    im.len = HEADER + 3; /* "HdrS" cut */
    expect_img_fail(&im, -ENOEXEC, "not a Linux bzImage");
    im.len = 0;
    expect_img_fail(&im, -ENOEXEC, "not a Linux bzImage");
}

Test(linuxboot, truncated_kernel)
{
    struct img im;

    bz_build(&im);
    im.len -= 1;
    expect_img_fail(&im, -EINVAL, "truncated bzImage");
    cr_assert_not_null(strstr(err, kpath), "names the file: %s", err);
}

Test(linuxboot, truncated_inside_setup_header)
{
    struct img im;

    bz_build(&im);
    im.len = 0x240;
    expect_img_fail(&im, -EINVAL, "truncated bzImage");
}

Test(linuxboot, syssize_zero)
{
    struct img im;

    bz_build(&im);
    put32(&im, SYSSIZE, 0);
    expect_img_fail(&im, -EINVAL, "syssize");
}

Test(linuxboot, old_protocol)
{
    struct img im;

    bz_build(&im);
    put16(&im, VERSION, 0x0205);
    expect_img_fail(&im, -EINVAL, "boot protocol 2.05 is too old");
    put16(&im, VERSION, 0x0206);
    put8(&im, JUMP + 1, CMDLINE_SIZE + 4 - HEADER); /* to cmdline_size, as 2.6.22 */
    cr_assert_eq(load_img(&im, NULL), 0, "2.06 is enough: %s", err);
}

Test(linuxboot, zimage)
{
    struct img im;

    bz_build(&im);
    put8(&im, LOADFLAGS, 0);
    expect_img_fail(&im, -EINVAL, "zImage");
}

Test(linuxboot, x86_64_kernel)
{
    struct img im;

    bz_build(&im);
    put16(&im, XLOADFLAGS, 0x1 | 0x2); /* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
    expect_img_fail(&im, -EINVAL, "64-bit");
}

Test(linuxboot, setup_header_too_short_or_too_long)
{
    struct img im;

    bz_build(&im);
    put8(&im, JUMP + 1, INIT_SIZE - HEADER); /* ends before init_size (2.10+) */
    expect_img_fail(&im, -EINVAL, "setup header ends at 0x260");
    put8(&im, JUMP + 1, 0xF0); /* 0x2f2: past boot_params' room for it */
    expect_img_fail(&im, -EINVAL, "setup header ends at 0x2f2");
}

Test(linuxboot, cmdline_too_long)
{
    struct img im;
    char cmd[18];

    bz_build(&im);
    put32(&im, CMDLINE_SIZE, 16);
    memset(cmd, 'c', 17);
    cmd[17] = '\0';
    expect_fail(load_img(&im, cmd), -E2BIG, "cmdline_size 16");
    expect_ram_untouched();
}

Test(linuxboot, cmdline_longer_than_the_area)
{
    struct img im;
    size_t len = 0x10000;
    char *cmd = malloc(len + 1);

    cr_assert_not_null(cmd);
    memset(cmd, 'c', len);
    cmd[len] = '\0';
    bz_build(&im);
    put32(&im, CMDLINE_SIZE, 0x100000);
    expect_fail(load_img(&im, cmd), -E2BIG, "room for");
    expect_ram_untouched();
    free(cmd);
}

Test(linuxboot, initrd_larger_than_ram)
{
    struct img im;

    write_sparse(ipath, RAM_SIZE + 1);
    bz_build(&im);
    kernel_write(&im);
    expect_fail(load(NULL, ipath), -EFBIG, "larger than guest RAM");
    cr_assert_not_null(strstr(err, ipath), "names the initrd: %s", err);
    expect_ram_untouched();
}

Test(linuxboot, initrd_does_not_fit_above_the_kernel)
{
    struct img im;

    write_sparse(ipath, RAM_SIZE - IMG_KERNEL_END + 1);
    bz_build(&im);
    kernel_write(&im);
    expect_fail(load(NULL, ipath), -EFBIG, "too small for the kernel and initrd");
    expect_ram_untouched();
}

Test(linuxboot, ram_too_small_for_init_size)
{
    struct img im;

    bz_build(&im);
    put32(&im, INIT_SIZE, RAM_SIZE - IMG_PREF + 0x1000);
    expect_img_fail(&im, -EINVAL, "guest RAM (32 MiB) is too small");
    /* Exactly enough is enough. */
    put32(&im, INIT_SIZE, RAM_SIZE - IMG_PREF);
    cr_assert_eq(load_img(&im, NULL), 0, "%s", err);
}

Test(linuxboot, ram_too_small_for_the_image)
{
    struct img im;

    /* An old protocol without init_size: the image itself must fit. */
    bz_build(&im);
    put16(&im, VERSION, 0x0209);
    put32(&im, SYSSIZE, (RAM_SIZE - KERNEL_ADDR + 16) / 16); /* bigger than RAM... */
    im.len = sizeof(im.buf);
    expect_img_fail(&im, -EINVAL, "truncated"); /* ...and than the file */
    free(ram.host);
    ram.size = 1u << 20;
    ram.host = malloc(ram.size);
    cr_assert_not_null(ram.host);
    memset(ram.host, FILL, ram.size);
    bz_build(&im);
    put16(&im, VERSION, 0x0209);
    kernel_write(&im);
    expect_fail(load(NULL, NULL), -EINVAL, "is too small");
    cr_assert(ram_is(0, ram.size, FILL), "a refused load wrote guest RAM");
    free(ram.host);
    ram.size = RAM_SIZE;
    ram.host = malloc(RAM_SIZE);
}

Test(linuxboot, missing_files)
{
    struct img im;

    strcpy(kpath, "/nonexistent/popek-vmlinuz");
    expect_fail(load(NULL, NULL), -ENOENT, "cannot read kernel");
    kpath[0] = '\0';
    bz_build(&im);
    kernel_write(&im);
    expect_fail(load(NULL, "/nonexistent/popek-initrd"), -ENOENT, "cannot read initrd");
    expect_ram_untouched();
}

Test(linuxboot, kernel_is_a_directory)
{
    strcpy(kpath, "/tmp");
    expect_fail(load(NULL, NULL), -EISDIR, "cannot read kernel");
    kpath[0] = '\0';
}

/* ---- the real kernel, when one is given ------------------------------------ */

Test(linuxboot, debian_kernel)
{
    const char *path = getenv("POPEK_GUEST_KERNEL");

    if (!path || !*path)
        cr_skip_test("POPEK_GUEST_KERNEL not set (scripts/fetch-guest.sh, cache/guest/vmlinuz)");
    free(ram.host);
    ram.size = 256u << 20;
    ram.host = malloc(ram.size);
    cr_assert_not_null(ram.host);
    memset(ram.host, FILL, ram.size);

    struct loader_args args = {.kernel_path = path, .cmdline = "console=ttyS0"};
    cr_assert_eq(linux_load(&ram, &args, &entry, err), 0, "%s", err);
    cr_assert_eq(entry.eip, KERNEL_ADDR);
    cr_assert_eq(rd16(ZP + VERSION) >= 0x20A, 1, "a modern kernel");
    cr_assert_eq(rd16(ZP + BOOT_FLAG), 0xAA55);
    cr_assert_eq(rd32(ZP + HEADER), 0x53726448u);
    /* The decompressor's first instructions are in place: whatever they are,
     * they are not our fill. */
    cr_assert_neq(rd32(KERNEL_ADDR), 0xAAAAAAAAu);

    free(ram.host);
    ram.size = RAM_SIZE;
    ram.host = malloc(RAM_SIZE);
}
