/*
 * Linux/x86 boot protocol loader (Documentation/arch/x86/boot.rst and
 * zero-page.rst), 32-bit entry, for bzImage kernels of protocol 2.06 and later
 * (Linux 2.6.22 on; Debian 12's 6.1 kernels speak 2.15).
 *
 * A bzImage is the real-mode setup code (boot sector + setup_sects sectors,
 * with the setup header at 0x1f1) followed by the protected-mode kernel (a
 * self-decompressing stub).  The setup code needs a BIOS, so it is never run:
 * the loader does its job instead, as EFI loaders and kexec do ("32-bit Boot
 * Protocol").  It builds struct boot_params, the "zero page": all zero, plus
 * the image's setup header, the fields a loader writes, and the e820 memory
 * map; and it enters the protected-mode kernel at its first byte, 0x100000,
 * in flat 32-bit protected mode with paging and interrupts off, CS = __BOOT_CS,
 * the data segments __BOOT_DS, ESI = &boot_params and EBX = EBP = EDI = 0.
 *
 * Everything is checked before one byte of guest RAM is written.  The head of
 * the file is read first: without the "HdrS" magic it is -ENOEXEC, so the
 * caller can try the multiboot loader, and any other fault in the header is
 * named.  The sizes the header gives are checked against the file and guest
 * RAM before the image is read (so a bogus size never makes a huge buffer),
 * then the command line and the initrd's size and place.
 *
 * Guest physical layout set up here:
 *
 *    0x00000 +------------------------------+
 *            | (free)                       |
 *    0x09000 | boot GDT (loader_put_boot_gdt, the multiboot loader's address)
 *            | (free)                       |
 *    0x10000 +------------------------------+ LB_ZERO_PAGE: ESI points here
 *            | struct boot_params (4 KiB)   |
 *            | what would be the setup heap |  heap_end_ptr: the heap fills
 *    0x20000 +------------------------------+  this 64 KiB "real-mode segment"
 *            | command line (at most        |  LB_CMDLINE, below the EBDA as
 *            |  cmdline_size + 1 bytes)     |  boot.rst asks
 *    0x30000 +------------------------------+
 *            | (free)                       |
 *    0x9fc00 +------------------------------+ EBDA, VGA hole, BIOS: reserved
 *   0x100000 +------------------------------+ in the e820 map
 *            | protected-mode kernel (the   |  32-bit entry point
 *            |  file after the setup code)  |
 *            |   ...                        |
 *   runtime  | the decompressor copies the  |  pref_address (16 MiB for Debian's
 *    start   |  kernel here and needs       |  kernel): this and init_size say
 *            |  init_size bytes from here   |  how much RAM it needs to boot
 *            |   ...                        |
 *     initrd | as high as RAM and           |
 *            |  initrd_addr_max allow       |  page aligned
 *    ram end +------------------------------+
 *
 * The zero page and command line sit in low memory so they never collide with
 * the kernel or the initrd, whatever their sizes; Linux copies both early
 * (copy_bootdata) and may then reuse the memory, which the e820 map therefore
 * shows as usable, as QEMU's does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "popek/loader.h"

/* Setup header fields, at the same offsets in the image and in boot_params
 * (boot.rst "The Real-Mode Kernel Header"). */
#define HDR_SETUP_SECTS 0x1F1u   /* 1: setup sectors after the boot sector; 0 means 4 */
#define HDR_SYSSIZE 0x1F4u       /* 4: protected-mode code size, 16-byte units */
#define HDR_VID_MODE 0x1FAu      /* 2 */
#define HDR_JUMP 0x200u          /* 2: EB xx; 0x202 + xx is the header's end */
#define HDR_HEADER 0x202u        /* 4: "HdrS" */
#define HDR_VERSION 0x206u       /* 2: protocol, (major << 8) | minor */
#define HDR_TYPE_OF_LOADER 0x210u /* 1 */
#define HDR_LOADFLAGS 0x211u     /* 1 */
#define HDR_CODE32_START 0x214u  /* 4 */
#define HDR_RAMDISK_IMAGE 0x218u /* 4 */
#define HDR_RAMDISK_SIZE 0x21Cu  /* 4 */
#define HDR_HEAP_END_PTR 0x224u  /* 2 */
#define HDR_CMD_LINE_PTR 0x228u  /* 4 */
#define HDR_INITRD_ADDR_MAX 0x22Cu /* 4: highest byte the initrd may occupy */
#define HDR_KERNEL_ALIGNMENT 0x230u /* 4 */
#define HDR_RELOCATABLE_KERNEL 0x234u /* 1 */
#define HDR_XLOADFLAGS 0x236u    /* 2 (2.12+) */
#define HDR_CMDLINE_SIZE 0x238u  /* 4 (2.06+): longest command line, without NUL */
#define HDR_PREF_ADDRESS 0x258u  /* 8 (2.10+) */
#define HDR_INIT_SIZE 0x260u     /* 4 (2.10+) */

#define HDR_MAGIC 0x53726448u /* "HdrS" */
#define LOADED_HIGH (1u << 0)  /* loadflags: protected-mode code at 0x100000 */
#define CAN_USE_HEAP (1u << 7) /* loadflags: heap_end_ptr is valid */
#define XLF_KERNEL_64 (1u << 0) /* xloadflags: an x86-64 kernel */
#define TYPE_OF_LOADER_UNDEFINED 0xFFu /* boot.rst: no assigned loader id */
#define VID_MODE_NORMAL 0xFFFFu /* "vga=normal"; read only by the setup code */

#define PROTOCOL_MIN 0x0206u       /* cmdline_size; 32-bit boot protocol */
#define PROTOCOL_INIT_SIZE 0x020Au /* init_size and pref_address */
#define PROTOCOL_XLOADFLAGS 0x020Cu
#define SECTOR_SIZE 512u
#define SETUP_SECTS_DEFAULT 4u

/* boot_params ("zero page") fields outside the setup header (zero-page.rst). */
#define BP_SIZE 4096u
#define BP_EXT_MEM_K 0x002u     /* 2: screen_info.ext_mem_k, KiB above 1 MiB */
#define BP_ALT_MEM_K 0x1E0u     /* 4: KiB above 1 MiB */
#define BP_E820_ENTRIES 0x1E8u  /* 1 */
#define BP_HDR_END_MAX 0x290u   /* edd_mbr_sig_buffer: the setup header's room ends */
#define BP_E820_TABLE 0x2D0u    /* struct boot_e820_entry[128] */
#define E820_MAX_ENTRIES_ZEROPAGE 128u
#define E820_TYPE_RAM 1u
#define E820_TYPE_RESERVED 2u

struct boot_e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
} __attribute__((packed));

_Static_assert(sizeof(struct boot_e820_entry) == 20, "e820 entry layout");
_Static_assert(BP_E820_TABLE + E820_MAX_ENTRIES_ZEROPAGE * sizeof(struct boot_e820_entry) <=
                   0xD00u, "e820 table ends where eddbuf starts");

/* Guest physical layout, see the picture above. */
#define LB_GDT_ADDR 0x9000u
#define LB_ZERO_PAGE 0x10000u
#define LB_CMDLINE 0x20000u
#define LB_CMDLINE_END 0x30000u
#define LB_HEAP_END_PTR 0xFE00u /* setup heap to the end of the 64 KiB segment at the
                                 * zero page, less 0x200 as boot.rst defines it */
#define LB_KERNEL_ADDR 0x100000u /* LOADED_HIGH: the 32-bit entry point */
#define LOW_MEM_END 0x9FC00u    /* 639 KiB: conventional memory below the EBDA */
#define VGA_HOLE 0xA0000u
#define BIOS_ROM_BASE 0xF0000u

_Static_assert(LB_GDT_ADDR + BOOT_GDT_SIZE <= LB_ZERO_PAGE, "layout");
_Static_assert(LB_ZERO_PAGE + LB_HEAP_END_PTR + 0x200u == LB_CMDLINE, "heap ends at cmdline");
_Static_assert(LB_CMDLINE_END <= LOW_MEM_END, "layout: below the EBDA");

/* The setup header lies within the first 0x290 bytes: read those first. */
#define LB_HEAD_LEN BP_HDR_END_MAX

struct lb_loader {
    struct guest_ram *ram;
    const struct loader_args *args;
    char *err;
    int kernel_fd;
    size_t size;    /* of the kernel file */
    uint8_t *image; /* its first setup_size + pm_size bytes (at least LB_HEAD_LEN) */
    uint32_t hdr_end;    /* end of the setup header in the file */
    uint16_t version;
    uint32_t setup_size; /* boot sector + setup code, bytes */
    uint32_t pm_size;    /* protected-mode kernel, bytes (syssize * 16) */
    uint64_t kernel_end; /* first byte above what the kernel needs to boot */
    const char *cmdline;
    size_t cmdline_len;
    int initrd_fd;
    size_t initrd_size;
    uint32_t initrd_addr;
};

#define lb_fail(l, rc, ...) loader_fail((l)->err, (l)->args->kernel_path, rc, __VA_ARGS__)

static uint32_t get8(const uint8_t *p, uint32_t off)
{
    return p[off];
}

static uint32_t get16(const uint8_t *p, uint32_t off)
{
    uint16_t v;
    memcpy(&v, p + off, sizeof(v));
    return v;
}

static uint32_t get32(const uint8_t *p, uint32_t off)
{
    uint32_t v;
    memcpy(&v, p + off, sizeof(v));
    return v;
}

static uint64_t get64(const uint8_t *p, uint32_t off)
{
    uint64_t v;
    memcpy(&v, p + off, sizeof(v));
    return v;
}

static void put8(uint8_t *p, uint32_t off, uint8_t v)
{
    p[off] = v;
}

static void put16(uint8_t *p, uint32_t off, uint16_t v)
{
    memcpy(p + off, &v, sizeof(v));
}

static void put32(uint8_t *p, uint32_t off, uint32_t v)
{
    memcpy(p + off, &v, sizeof(v));
}

/* Opens a regular file for reading.  `what` names it in messages. */
static int lb_open(const char *what, const char *path, int *fd_out, size_t *size_out,
                   char *err)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(err, LOADER_ERR_LEN, "cannot read %s '%s': %s", what, path, strerror(-rc));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        snprintf(err, LOADER_ERR_LEN, "cannot read %s '%s': %s", what, path,
                 rc == -EISDIR ? strerror(EISDIR) : "not a regular file");
        close(fd);
        return rc;
    }
    *fd_out = fd;
    *size_out = (size_t)st.st_size;
    return 0;
}

/*
 * Reads the head of the kernel file, enough for the setup header, and tells
 * a bzImage from anything else: only the magic decides -ENOEXEC, the rest of
 * the header is checked by lb_check_header.  The buffer is zero-filled past
 * the end of a short file.
 */
static int lb_read_head(struct lb_loader *l)
{
    const char *path = l->args->kernel_path;
    size_t got;
    int rc;

    rc = lb_open("kernel", path, &l->kernel_fd, &l->size, l->err);
    if (rc < 0)
        return rc;
    l->image = calloc(1, LB_HEAD_LEN);
    if (!l->image) {
        snprintf(l->err, LOADER_ERR_LEN, "cannot read kernel '%s': %s", path, strerror(ENOMEM));
        return -ENOMEM;
    }
    rc = loader_read_all(l->kernel_fd, l->image, LB_HEAD_LEN, &got);
    if (rc < 0) {
        snprintf(l->err, LOADER_ERR_LEN, "cannot read kernel '%s': %s", path, strerror(-rc));
        return rc;
    }
    if (got < HDR_HEADER + 4 || get32(l->image, HDR_HEADER) != HDR_MAGIC) {
        snprintf(l->err, LOADER_ERR_LEN, "'%s' is not a Linux bzImage (no \"HdrS\" at 0x%x)",
                 path, HDR_HEADER);
        return -ENOEXEC;
    }
    return 0;
}

/* Reads the rest of what will be loaded, once the header said how much and
 * lb_check_ram that it fits in guest RAM. */
static int lb_read_image(struct lb_loader *l)
{
    size_t len = (size_t)l->setup_size + l->pm_size, got;
    uint8_t *image;
    int rc;

    if (len <= LB_HEAD_LEN)
        return 0;
    image = realloc(l->image, len);
    if (!image)
        return lb_fail(l, -ENOMEM, "cannot read: %s", strerror(ENOMEM));
    l->image = image;
    rc = loader_read_all(l->kernel_fd, l->image + LB_HEAD_LEN, len - LB_HEAD_LEN, &got);
    if (rc < 0)
        return lb_fail(l, rc, "cannot read: %s", strerror(-rc));
    if (got < len - LB_HEAD_LEN)
        return lb_fail(l, -EIO, "file shrank to %zu bytes while being read",
                       LB_HEAD_LEN + got);
    return 0;
}

static void lb_version_str(uint16_t v, char buf[8])
{
    snprintf(buf, 8, "%u.%02u", v >> 8, v & 0xFFu);
}

/* Checks what the setup header says about the image itself. */
static int lb_check_header(struct lb_loader *l)
{
    const uint8_t *img = l->image;
    uint32_t setup_sects, syssize, need_end;
    char ver[8];

    /* The jump at 0x200 doubles as the header's length. */
    l->hdr_end = HDR_HEADER + get8(img, HDR_JUMP + 1);
    if (l->size < l->hdr_end || l->size < HDR_VERSION + 2)
        return lb_fail(l, -EINVAL,
                       "truncated bzImage: the file (%zu bytes) ends inside the setup header "
                       "(0x%x bytes)", l->size, l->hdr_end);

    l->version = (uint16_t)get16(img, HDR_VERSION);
    lb_version_str(l->version, ver);
    if (l->version < PROTOCOL_MIN)
        return lb_fail(l, -EINVAL,
                       "boot protocol %s is too old: the 32-bit boot protocol needs 2.06 "
                       "(Linux 2.6.22) or later", ver);
    need_end = l->version >= PROTOCOL_INIT_SIZE ? HDR_INIT_SIZE + 4 : HDR_CMDLINE_SIZE + 4;
    if (l->hdr_end < need_end || l->hdr_end > BP_HDR_END_MAX)
        return lb_fail(l, -EINVAL,
                       "setup header ends at 0x%x (jump at 0x200); protocol %s needs it to "
                       "reach 0x%x and boot_params has room up to 0x%x",
                       l->hdr_end, ver, need_end, BP_HDR_END_MAX);

    if (!(get8(img, HDR_LOADFLAGS) & LOADED_HIGH))
        return lb_fail(l, -EINVAL,
                       "is a zImage (loadflags.LOADED_HIGH clear: loaded low at 0x10000); "
                       "only bzImage kernels are supported");
    if (l->version >= PROTOCOL_XLOADFLAGS && (get16(img, HDR_XLOADFLAGS) & XLF_KERNEL_64))
        return lb_fail(l, -EINVAL,
                       "is a 64-bit (x86-64) kernel; Popek runs 32-bit guests, give an i386 "
                       "kernel");

    setup_sects = get8(img, HDR_SETUP_SECTS);
    if (setup_sects == 0)
        setup_sects = SETUP_SECTS_DEFAULT;
    syssize = get32(img, HDR_SYSSIZE);
    l->setup_size = (setup_sects + 1) * SECTOR_SIZE;
    if (syssize == 0 || syssize > UINT32_MAX / 16)
        return lb_fail(l, -EINVAL, "setup header: syssize %u is not a kernel size", syssize);
    l->pm_size = syssize * 16;
    if ((uint64_t)l->setup_size + l->pm_size > l->size)
        return lb_fail(l, -EINVAL,
                       "truncated bzImage: the header promises %u bytes of setup code and %u "
                       "of protected-mode kernel (%llu in all), the file has %zu",
                       l->setup_size, l->pm_size,
                       (unsigned long long)l->setup_size + l->pm_size, l->size);
    return 0;
}

/*
 * Where the decompressor will run and how much RAM it needs there: a
 * relocatable kernel runs at the load address aligned up to kernel_alignment
 * but never below pref_address (LOAD_PHYSICAL_ADDR: arch/x86/boot/compressed/
 * head_32.S), a fixed one at pref_address; either way it needs init_size
 * bytes from that address.  Protocols before 2.10 say neither, and then only
 * the image itself is known to need room.
 */
static int lb_check_ram(struct lb_loader *l)
{
    const uint8_t *img = l->image;
    uint64_t start = LB_KERNEL_ADDR, end = (uint64_t)LB_KERNEL_ADDR + l->pm_size;

    if (l->version >= PROTOCOL_INIT_SIZE) {
        uint64_t pref = get64(img, HDR_PREF_ADDRESS);
        uint32_t align = get32(img, HDR_KERNEL_ALIGNMENT);

        start = pref;
        if (get8(img, HDR_RELOCATABLE_KERNEL) && align && !(align & (align - 1))) {
            uint64_t aligned = ((uint64_t)LB_KERNEL_ADDR + align - 1) & ~(uint64_t)(align - 1);
            if (aligned > start)
                start = aligned;
        }
        if (start + get32(img, HDR_INIT_SIZE) > end)
            end = start + get32(img, HDR_INIT_SIZE);
    }
    l->kernel_end = end;
    if (end > l->ram->size)
        return lb_fail(l, -EINVAL,
                       "guest RAM (%u MiB) is too small: the kernel needs RAM up to 0x%llx "
                       "(%u bytes at 0x%x, init_size %u at 0x%llx), at least %llu MiB",
                       l->ram->size >> 20, (unsigned long long)end, l->pm_size, LB_KERNEL_ADDR,
                       l->version >= PROTOCOL_INIT_SIZE ? get32(img, HDR_INIT_SIZE) : 0,
                       (unsigned long long)start,
                       (unsigned long long)((end + (1u << 20) - 1) >> 20));
    return 0;
}

static int lb_check_cmdline(struct lb_loader *l)
{
    uint32_t max = get32(l->image, HDR_CMDLINE_SIZE);

    l->cmdline = l->args->cmdline ? l->args->cmdline : "";
    l->cmdline_len = strlen(l->cmdline);
    if (l->cmdline_len > max)
        return lb_fail(l, -E2BIG,
                       "command line is %zu bytes, longer than the kernel accepts "
                       "(cmdline_size %u)", l->cmdline_len, max);
    if (l->cmdline_len >= LB_CMDLINE_END - LB_CMDLINE)
        return lb_fail(l, -E2BIG, "command line is %zu bytes, longer than the %u Popek has "
                                  "room for", l->cmdline_len, LB_CMDLINE_END - LB_CMDLINE - 1);
    return 0;
}

/*
 * Places the initrd as high as RAM and initrd_addr_max allow, page aligned,
 * as bootloaders do: the kernel's early allocations grow up from its image,
 * and the initrd stays out of their way.  It must lie above all the kernel
 * needs to boot.
 */
static int lb_place_initrd(struct lb_loader *l)
{
    const char *path = l->args->initrd_path;
    uint64_t top = (uint64_t)get32(l->image, HDR_INITRD_ADDR_MAX) + 1;
    int rc;

    rc = lb_open("initrd", path, &l->initrd_fd, &l->initrd_size, l->err);
    if (rc < 0)
        return rc;
    if (l->initrd_size > l->ram->size) {
        snprintf(l->err, LOADER_ERR_LEN, "initrd '%s' (%zu bytes) is larger than guest RAM "
                 "(%u bytes)", path, l->initrd_size, l->ram->size);
        return -EFBIG;
    }
    if (top > l->ram->size)
        top = l->ram->size;
    if (l->initrd_size > top || ((top - l->initrd_size) & PAGE_MASK) < l->kernel_end)
        return lb_fail(l, -EFBIG,
                       "guest RAM (%u MiB) is too small for the kernel and initrd '%s' (%zu "
                       "bytes): the kernel needs RAM up to 0x%llx and the initrd must lie "
                       "above that, below 0x%llx",
                       l->ram->size >> 20, path, l->initrd_size,
                       (unsigned long long)l->kernel_end, (unsigned long long)top);
    l->initrd_addr = (uint32_t)((top - l->initrd_size) & PAGE_MASK);
    return 0;
}

static void lb_put_e820(uint8_t *bp, uint32_t ram_size)
{
    const struct boot_e820_entry map[] = {
        {0, LOW_MEM_END, E820_TYPE_RAM},
        {LOW_MEM_END, VGA_HOLE - LOW_MEM_END, E820_TYPE_RESERVED},
        {BIOS_ROM_BASE, LB_KERNEL_ADDR - BIOS_ROM_BASE, E820_TYPE_RESERVED},
        {LB_KERNEL_ADDR, ram_size - LB_KERNEL_ADDR, E820_TYPE_RAM},
    };

    memcpy(bp + BP_E820_TABLE, map, sizeof(map));
    put8(bp, BP_E820_ENTRIES, sizeof(map) / sizeof(map[0]));
}

/* Writes everything into guest RAM; all checks have passed. */
static int lb_write(struct lb_loader *l)
{
    uint8_t *bp = l->ram->host + LB_ZERO_PAGE;
    uint32_t ext_kb = (l->ram->size - LB_KERNEL_ADDR) / 1024;
    size_t got = 0;
    int rc;

    if (l->args->initrd_path) {
        rc = loader_read_all(l->initrd_fd, l->ram->host + l->initrd_addr, l->initrd_size, &got);
        if (rc < 0)
            return lb_fail(l, rc, "cannot read initrd '%s': %s", l->args->initrd_path,
                           strerror(-rc));
    }
    memcpy(l->ram->host + LB_KERNEL_ADDR, l->image + l->setup_size, l->pm_size);
    loader_put_boot_gdt(l->ram, LB_GDT_ADDR);
    memcpy(l->ram->host + LB_CMDLINE, l->cmdline, l->cmdline_len + 1);

    /* 32-bit boot protocol: zero the page, then copy in the setup header;
     * the bytes before 0x1f1 (the sentinel at 0x1ef among them) stay zero. */
    memset(bp, 0, BP_SIZE);
    memcpy(bp + HDR_SETUP_SECTS, l->image + HDR_SETUP_SECTS, l->hdr_end - HDR_SETUP_SECTS);
    put16(bp, HDR_VID_MODE, VID_MODE_NORMAL);
    put8(bp, HDR_TYPE_OF_LOADER, TYPE_OF_LOADER_UNDEFINED);
    put8(bp, HDR_LOADFLAGS, LOADED_HIGH | CAN_USE_HEAP);
    put32(bp, HDR_CODE32_START, LB_KERNEL_ADDR);
    put16(bp, HDR_HEAP_END_PTR, LB_HEAP_END_PTR);
    put32(bp, HDR_CMD_LINE_PTR, LB_CMDLINE);
    put32(bp, HDR_RAMDISK_IMAGE, got ? l->initrd_addr : 0);
    put32(bp, HDR_RAMDISK_SIZE, (uint32_t)got);

    /* screen_info stays zero: no VGA (orig_video_isVGA = 0, and vgacon
     * declines a screen of 0 columns).  The legacy memory sizes only matter
     * to a kernel that ignores e820. */
    put16(bp, BP_EXT_MEM_K, ext_kb > 0xFFFFu ? 0xFFFFu : (uint16_t)ext_kb);
    put32(bp, BP_ALT_MEM_K, ext_kb);
    lb_put_e820(bp, l->ram->size);
    return 0;
}

int linux_load(struct guest_ram *ram, const struct loader_args *args,
               struct boot_entry *entry, char err[LOADER_ERR_LEN])
{
    struct lb_loader l = {.ram = ram, .args = args, .err = err, .kernel_fd = -1,
                          .initrd_fd = -1};
    int rc;

    err[0] = '\0';
    rc = lb_read_head(&l);
    if (rc == 0)
        rc = lb_check_header(&l);
    if (rc == 0)
        rc = lb_check_ram(&l);
    if (rc == 0)
        rc = lb_read_image(&l);
    if (rc == 0)
        rc = lb_check_cmdline(&l);
    if (rc == 0 && args->initrd_path)
        rc = lb_place_initrd(&l);
    if (rc == 0)
        rc = lb_write(&l);
    if (rc == 0)
        *entry = (struct boot_entry){
            .eip = LB_KERNEL_ADDR,
            .esi = LB_ZERO_PAGE,
            .gdt_base = LB_GDT_ADDR,
            .gdt_limit = BOOT_GDT_SIZE - 1,
        };
    if (l.kernel_fd >= 0)
        close(l.kernel_fd);
    if (l.initrd_fd >= 0)
        close(l.initrd_fd);
    free(l.image);
    return rc;
}
