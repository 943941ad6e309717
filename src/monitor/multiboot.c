/*
 * Multiboot v1 loader (Multiboot Specification 0.6.96), for ELF32 kernels and
 * for raw images that carry the "a.out kludge" address fields.
 *
 * The whole kernel file is read into a host buffer and everything in it is
 * checked before one byte of guest RAM is written: offsets and sizes come from
 * the file, so every sum is done in 64 bits and every range is checked against
 * the file and against guest RAM.  The only -ENOEXEC is "no multiboot header at
 * all", which lets the caller try another loader; a file that has a header but
 * is broken gets another -errno and a message naming the problem.
 *
 * Format choice: an ELF file is loaded from its program headers (PT_LOAD at
 * p_paddr), even when the header also sets the address-fields flag, because in
 * such files those fields describe the same layout; a non-ELF file needs the
 * address fields.  QEMU decides by the flag alone; GRUB, like us, trusts ELF.
 *
 * The entry point is e_entry translated through the segment that contains it
 * (p_paddr + e_entry - p_vaddr), as GRUB does, so a kernel linked at a higher
 * virtual address than it is loaded starts at the right physical address; for
 * the usual identity-linked kernel this is e_entry, which is what QEMU uses.
 *
 * Guest physical layout set up here:
 *
 *   0x00000 +--------------------------+
 *           | (free)                   |
 *   0x09000 +--------------------------+ MB_AREA_BASE: boot information area
 *           | GDT: null, null,         |   0x9000  gdt (32 bytes)
 *           |  code 0x10, data 0x18    |
 *           | struct multiboot_info    |   0x9040  (EBX points here)
 *           | memory map (4 entries)   |   0x90c0
 *           | module list (1 entry)    |   0x9140
 *           | strings: loader name,    |   0x9180 ...
 *           |  command line, mod name  |
 *   0x10000 +--------------------------+ MB_AREA_END
 *           | (free)                   |
 *   0x9fc00 +--------------------------+ EBDA, VGA/ROM hole, BIOS: not
 *           | reserved in the map      |   "available", so no module here
 *  0x100000 +--------------------------+
 *           | kernel (usually here)    |
 *           | initrd = module 0, on    |   the first page boundary above the
 *           |  the next page boundary  |   kernel that avoids both areas
 *   ram end +--------------------------+
 *
 * Kernels whose segments overlap the boot information area are refused.  The
 * area sits below the EBDA as QEMU's (0x9000) does, so the usual 1 MiB kernels
 * never collide with it.  Kernel segments may land in the legacy hole, as they
 * may under QEMU: `ld -Ttext=0x100000` emits a read-only segment holding the
 * ELF headers at 0xff000, and such kernels boot there.
 */
#include <elf.h>
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

/* Multiboot header (in the kernel file). */
#define MULTIBOOT_HEADER_MAGIC 0x1BADB002u
#define MULTIBOOT_SEARCH 8192u      /* the header lies within the first 8 KiB */
#define MULTIBOOT_HEADER_ALIGN 4u
#define MULTIBOOT_PAGE_ALIGN (1u << 0)  /* modules page aligned: always done */
#define MULTIBOOT_MEMORY_INFO (1u << 1) /* mem_* fields: always provided */
#define MULTIBOOT_VIDEO_MODE (1u << 2)  /* accepted, not honoured, as QEMU */
#define MULTIBOOT_AOUT_KLUDGE (1u << 16)
/* Bits 0-15 are requirements: a loader that does not know one must refuse. */
#define MULTIBOOT_REQUIRED_MASK 0x0000FFFFu
#define MULTIBOOT_KNOWN_FLAGS \
    (MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO | MULTIBOOT_VIDEO_MODE)

/* Boot information (in guest RAM). */
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u
#define MULTIBOOT_INFO_MEMORY (1u << 0)
#define MULTIBOOT_INFO_CMDLINE (1u << 2)
#define MULTIBOOT_INFO_MODS (1u << 3)
#define MULTIBOOT_INFO_MEM_MAP (1u << 6)
#define MULTIBOOT_INFO_BOOT_LOADER_NAME (1u << 9)
#define MULTIBOOT_MEMORY_AVAILABLE 1u
#define MULTIBOOT_MEMORY_RESERVED 2u

#define MB_LOADER_NAME "popek"

/* Guest physical layout, see the picture above. */
#define MB_AREA_BASE 0x9000u
#define MB_AREA_END 0x10000u
#define MB_GDT_ADDR MB_AREA_BASE
#define MB_INFO_ADDR (MB_AREA_BASE + 0x40u)
#define MB_MMAP_ADDR (MB_AREA_BASE + 0xC0u)
#define MB_MODS_ADDR (MB_AREA_BASE + 0x140u)
#define MB_STRINGS_ADDR (MB_AREA_BASE + 0x180u)

#define LOW_MEM_END 0x9FC00u   /* 639 KiB: conventional memory below the EBDA */
/* mem_lower is all of conventional memory, as the spec's "at most 640"; the
 * memory map is what tells the kernel that the top KiB is the EBDA. */
#define MB_MEM_LOWER_KB 640u
#define BIOS_ROM_BASE 0xF0000u
#define HIGH_MEM_BASE 0x100000u

struct multiboot_header {
    uint32_t magic;
    uint32_t flags;
    uint32_t checksum;
    /* Valid with MULTIBOOT_AOUT_KLUDGE: */
    uint32_t header_addr;   /* physical address of `magic` */
    uint32_t load_addr;     /* where the text starts; the file is loaded from
                             * header offset - (header_addr - load_addr) */
    uint32_t load_end_addr; /* end of data to load; 0: to the end of file */
    uint32_t bss_end_addr;  /* end of zeroed memory; 0: no bss */
    uint32_t entry_addr;
};

#define MULTIBOOT_HEADER_MIN 12u /* magic, flags, checksum */

struct multiboot_info {
    uint32_t flags;
    uint32_t mem_lower; /* KiB from 0 */
    uint32_t mem_upper; /* KiB from 1 MiB */
    uint32_t boot_device;
    uint32_t cmdline;
    uint32_t mods_count;
    uint32_t mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length; /* bytes */
    uint32_t mmap_addr;
    uint32_t drives_length;
    uint32_t drives_addr;
    uint32_t config_table;
    uint32_t boot_loader_name;
    uint32_t apm_table;
    uint32_t vbe_control_info;
    uint32_t vbe_mode_info;
    uint16_t vbe_mode;
    uint16_t vbe_interface_seg;
    uint16_t vbe_interface_off;
    uint16_t vbe_interface_len;
};

/* `size` counts the bytes after itself, so a guest walks entries by size + 4. */
struct multiboot_mmap_entry {
    uint32_t size;
    uint64_t addr;
    uint64_t len;
    uint32_t type;
} __attribute__((packed));

struct multiboot_mod_list {
    uint32_t mod_start;
    uint32_t mod_end; /* exclusive */
    uint32_t cmdline;
    uint32_t pad;
};

_Static_assert(sizeof(struct multiboot_header) == 32, "multiboot header layout");
_Static_assert(offsetof(struct multiboot_info, mmap_length) == 44, "mbi layout");
_Static_assert(offsetof(struct multiboot_info, boot_loader_name) == 64, "mbi layout");
_Static_assert(sizeof(struct multiboot_info) == 88, "mbi layout");
_Static_assert(sizeof(struct multiboot_mmap_entry) == 24, "mmap entry layout");
_Static_assert(sizeof(struct multiboot_mod_list) == 16, "module entry layout");

_Static_assert(MB_GDT_ADDR + BOOT_GDT_SIZE <= MB_INFO_ADDR, "area layout");
_Static_assert(MB_INFO_ADDR + sizeof(struct multiboot_info) <= MB_MMAP_ADDR, "area layout");
_Static_assert(MB_MMAP_ADDR + 4 * sizeof(struct multiboot_mmap_entry) <= MB_MODS_ADDR,
               "area layout");
_Static_assert(MB_MODS_ADDR + sizeof(struct multiboot_mod_list) <= MB_STRINGS_ADDR,
               "area layout");
_Static_assert(MB_AREA_END <= LOW_MEM_END, "area must be in conventional memory");

/* Physical ranges the initrd is kept out of, sorted by address. */
static const struct {
    uint32_t base, end;
} mb_module_holes[] = {
    {MB_AREA_BASE, MB_AREA_END},
    {LOW_MEM_END, HIGH_MEM_BASE},
};

struct mb_loader {
    struct guest_ram *ram;
    const struct loader_args *args;
    char *err;
    uint8_t *image; /* the whole kernel file */
    size_t size;
    uint32_t header_off;
    struct multiboot_header hdr;
    uint64_t kernel_end; /* highest physical address the kernel occupies + 1 */
    uint32_t entry;
    uint32_t strings_next; /* next free byte in the string area */
};

#define mb_fail(l, rc, ...) loader_fail((l)->err, (l)->args->kernel_path, rc, __VA_ARGS__)

/*
 * Checks that [start, start+len) is RAM the kernel may occupy: inside RAM and
 * clear of the boot information area.  `what` names the range in messages.
 */
static int mb_check_range(struct mb_loader *l, const char *what, uint64_t start,
                          uint64_t len)
{
    if (!guest_ram_contains(l->ram, start, len))
        return mb_fail(l, -EINVAL, "%s [0x%llx, 0x%llx) lies outside guest RAM (0x%x bytes)",
                       what, (unsigned long long)start, (unsigned long long)(start + len),
                       l->ram->size);
    if (len && start < MB_AREA_END && start + len > MB_AREA_BASE)
        return mb_fail(l, -EINVAL,
                       "%s [0x%llx, 0x%llx) overlaps the boot information area [0x%x, 0x%x)",
                       what, (unsigned long long)start, (unsigned long long)(start + len),
                       MB_AREA_BASE, MB_AREA_END);
    return 0;
}

/*
 * Opens a regular file for reading, no larger than `max` bytes.  The messages
 * name the file as `what` ("kernel", "initrd").
 */
static int mb_open(const char *what, const char *path, uint64_t max, int *fd_out,
                   size_t *size_out, char *err)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd < 0) {
        rc = -errno;
        snprintf(err, LOADER_ERR_LEN, "cannot read %s '%s': %s", what, path, strerror(-rc));
        return rc;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(err, LOADER_ERR_LEN, "cannot read %s '%s': %s", what, path, strerror(-rc));
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
    if ((uint64_t)st.st_size > max) {
        snprintf(err, LOADER_ERR_LEN, "%s '%s' (%lld bytes) is larger than guest RAM (%llu bytes)",
                 what, path, (long long)st.st_size, (unsigned long long)max);
        close(fd);
        return -EFBIG;
    }
    *fd_out = fd;
    *size_out = (size_t)st.st_size;
    return 0;
}

static int mb_read_kernel(struct mb_loader *l)
{
    const char *path = l->args->kernel_path;
    size_t size;
    int fd, rc;

    rc = mb_open("kernel", path, l->ram->size, &fd, &size, l->err);
    if (rc < 0)
        return rc;
    l->image = malloc(size ? size : 1);
    if (!l->image) {
        close(fd);
        snprintf(l->err, LOADER_ERR_LEN, "cannot read kernel '%s': %s", path, strerror(ENOMEM));
        return -ENOMEM;
    }
    rc = loader_read_all(fd, l->image, size, &l->size);
    close(fd);
    if (rc < 0)
        snprintf(l->err, LOADER_ERR_LEN, "cannot read kernel '%s': %s", path, strerror(-rc));
    return rc;
}

/*
 * Finds the first 4-byte aligned header in the first 8 KiB whose checksum
 * holds.  A magic with a bad checksum is skipped, as QEMU and GRUB do (it may
 * be data that happens to match), but remembered for the error message.
 */
static int mb_find_header(struct mb_loader *l)
{
    size_t limit = l->size < MULTIBOOT_SEARCH ? l->size : MULTIBOOT_SEARCH;
    long bad_off = -1;

    for (size_t off = 0; off + MULTIBOOT_HEADER_MIN <= limit; off += MULTIBOOT_HEADER_ALIGN) {
        uint32_t w[3];

        memcpy(w, l->image + off, sizeof(w));
        if (w[0] != MULTIBOOT_HEADER_MAGIC)
            continue;
        if ((uint32_t)(w[0] + w[1] + w[2]) != 0) {
            if (bad_off < 0)
                bad_off = (long)off;
            continue;
        }
        memset(&l->hdr, 0, sizeof(l->hdr));
        memcpy(&l->hdr, l->image + off,
               off + sizeof(l->hdr) <= limit ? sizeof(l->hdr) : limit - off);
        l->header_off = (uint32_t)off;
        return 0;
    }
    if (bad_off >= 0)
        return mb_fail(l, -EINVAL, "multiboot header at offset 0x%lx has a bad checksum",
                       bad_off);
    snprintf(l->err, LOADER_ERR_LEN, "'%s' is not a multiboot kernel", l->args->kernel_path);
    return -ENOEXEC;
}

static bool mb_is_elf(const struct mb_loader *l)
{
    return l->size >= SELFMAG && memcmp(l->image, ELFMAG, SELFMAG) == 0;
}

/* Validates the ELF file and header and fills *eh. */
static int mb_elf_check_header(struct mb_loader *l, Elf32_Ehdr *eh)
{
    if (l->size < EI_NIDENT)
        return mb_fail(l, -EINVAL, "truncated ELF: file header needs %zu bytes, file has %zu",
                       sizeof(*eh), l->size);
    if (l->image[EI_CLASS] == ELFCLASS64)
        return mb_fail(l, -EINVAL, "64-bit ELF kernels are not supported, give a 32-bit one");
    if (l->image[EI_CLASS] != ELFCLASS32)
        return mb_fail(l, -EINVAL, "unknown ELF class %u", l->image[EI_CLASS]);
    if (l->image[EI_DATA] != ELFDATA2LSB)
        return mb_fail(l, -EINVAL, "ELF data encoding %u is not little-endian",
                       l->image[EI_DATA]);
    if (l->size < sizeof(*eh))
        return mb_fail(l, -EINVAL, "truncated ELF: file header needs %zu bytes, file has %zu",
                       sizeof(*eh), l->size);
    memcpy(eh, l->image, sizeof(*eh));
    if (eh->e_machine != EM_386)
        return mb_fail(l, -EINVAL, "ELF machine %u is not i386 (EM_386)", eh->e_machine);
    if (eh->e_type != ET_EXEC)
        return mb_fail(l, -EINVAL, "ELF type %u is not an executable (ET_EXEC)", eh->e_type);
    if (eh->e_phentsize != sizeof(Elf32_Phdr))
        return mb_fail(l, -EINVAL, "ELF program header size is %u, expected %zu",
                       eh->e_phentsize, sizeof(Elf32_Phdr));
    if (eh->e_phnum == 0)
        return mb_fail(l, -EINVAL, "ELF has no program headers");
    return 0;
}

/* Program header `i`, checked to lie in the file. */
static int mb_elf_phdr(struct mb_loader *l, const Elf32_Ehdr *eh, unsigned i, Elf32_Phdr *ph)
{
    uint64_t off = (uint64_t)eh->e_phoff + (uint64_t)i * sizeof(*ph);

    if (off + sizeof(*ph) > l->size)
        return mb_fail(l, -EINVAL, "truncated ELF: program header %u extends past end of file",
                       i);
    memcpy(ph, l->image + off, sizeof(*ph));
    return 0;
}

static int mb_elf_check_segment(struct mb_loader *l, unsigned i, const Elf32_Phdr *ph)
{
    char what[32];

    if (ph->p_filesz > ph->p_memsz)
        return mb_fail(l, -EINVAL, "segment %u: file size 0x%x exceeds memory size 0x%x", i,
                       ph->p_filesz, ph->p_memsz);
    if ((uint64_t)ph->p_offset + ph->p_filesz > l->size)
        return mb_fail(l, -EINVAL,
                       "truncated ELF: segment %u file range [0x%x, 0x%llx) extends past end "
                       "of file (0x%zx bytes)",
                       i, ph->p_offset, (unsigned long long)ph->p_offset + ph->p_filesz,
                       l->size);
    snprintf(what, sizeof(what), "segment %u", i);
    return mb_check_range(l, what, ph->p_paddr, ph->p_memsz);
}

/*
 * Checks every program header, then copies the PT_LOAD segments.  Segments
 * with p_memsz 0 occupy nothing and are skipped.
 */
static int mb_elf_load(struct mb_loader *l)
{
    Elf32_Ehdr eh;
    Elf32_Phdr ph;
    bool entry_found = false;
    unsigned nload = 0;
    int rc;

    rc = mb_elf_check_header(l, &eh);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        rc = mb_elf_phdr(l, &eh, i, &ph);
        if (rc < 0)
            return rc;
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        rc = mb_elf_check_segment(l, i, &ph);
        if (rc < 0)
            return rc;
        nload++;
        if (ph.p_paddr + (uint64_t)ph.p_memsz > l->kernel_end)
            l->kernel_end = ph.p_paddr + (uint64_t)ph.p_memsz;
        if (!entry_found && eh.e_entry >= ph.p_vaddr &&
            eh.e_entry - ph.p_vaddr < ph.p_filesz) {
            l->entry = ph.p_paddr + (eh.e_entry - ph.p_vaddr);
            entry_found = true;
        }
    }
    if (nload == 0)
        return mb_fail(l, -EINVAL, "ELF has no loadable segment");
    if (!entry_found)
        return mb_fail(l, -EINVAL, "entry point 0x%x is not inside a loaded segment",
                       eh.e_entry);

    for (unsigned i = 0; i < eh.e_phnum; i++) {
        mb_elf_phdr(l, &eh, i, &ph); /* cannot fail: checked above */
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        memcpy(l->ram->host + ph.p_paddr, l->image + ph.p_offset, ph.p_filesz);
        memset(l->ram->host + ph.p_paddr + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
    }
    return 0;
}

/* Loads a non-ELF image described by the header's address fields. */
static int mb_aout_load(struct mb_loader *l)
{
    const struct multiboot_header *h = &l->hdr;
    uint64_t text_off, load_size, mem_size;

    if ((uint64_t)l->header_off + sizeof(*h) > l->size ||
        l->header_off + sizeof(*h) > MULTIBOOT_SEARCH)
        return mb_fail(l, -EINVAL,
                       "truncated multiboot header: address fields at offset 0x%x extend past "
                       "%s",
                       l->header_off,
                       l->header_off + sizeof(*h) > MULTIBOOT_SEARCH ? "the first 8 KiB"
                                                                     : "end of file");
    if (h->header_addr < h->load_addr)
        return mb_fail(l, -EINVAL, "a.out kludge: header_addr 0x%x is below load_addr 0x%x",
                       h->header_addr, h->load_addr);
    if (h->header_addr - h->load_addr > l->header_off)
        return mb_fail(l, -EINVAL,
                       "a.out kludge: load_addr 0x%x would start 0x%x bytes before the header, "
                       "which is at file offset 0x%x",
                       h->load_addr, h->header_addr - h->load_addr, l->header_off);
    text_off = l->header_off - (h->header_addr - h->load_addr);

    if (h->load_end_addr == 0) {
        load_size = l->size - text_off;
    } else {
        if (h->load_end_addr < h->load_addr)
            return mb_fail(l, -EINVAL, "a.out kludge: load_end_addr 0x%x is below load_addr 0x%x",
                           h->load_end_addr, h->load_addr);
        load_size = h->load_end_addr - h->load_addr;
        if (text_off + load_size > l->size)
            return mb_fail(l, -EINVAL,
                           "truncated image: a.out kludge load range [0x%llx, 0x%llx) of the "
                           "file extends past end of file (0x%zx bytes)",
                           (unsigned long long)text_off,
                           (unsigned long long)(text_off + load_size), l->size);
    }
    if (h->bss_end_addr == 0) {
        mem_size = load_size;
    } else {
        if (h->bss_end_addr < h->load_addr + load_size)
            return mb_fail(l, -EINVAL,
                           "a.out kludge: bss_end_addr 0x%x is below the end of loaded data "
                           "0x%llx",
                           h->bss_end_addr, (unsigned long long)(h->load_addr + load_size));
        mem_size = h->bss_end_addr - h->load_addr;
    }
    int rc = mb_check_range(l, "a.out kludge image", h->load_addr, mem_size);
    if (rc < 0)
        return rc;
    if (h->entry_addr < h->load_addr || h->entry_addr - h->load_addr >= load_size)
        return mb_fail(l, -EINVAL,
                       "a.out kludge: entry_addr 0x%x is outside the loaded image "
                       "[0x%x, 0x%llx)",
                       h->entry_addr, h->load_addr,
                       (unsigned long long)(h->load_addr + load_size));

    memcpy(l->ram->host + h->load_addr, l->image + text_off, load_size);
    memset(l->ram->host + h->load_addr + load_size, 0, mem_size - load_size);
    l->kernel_end = h->load_addr + mem_size;
    l->entry = h->entry_addr;
    return 0;
}

/* Formats a NUL-terminated string into the string area; 0 when it is full. */
static uint32_t __attribute__((format(printf, 2, 3)))
mb_put_string(struct mb_loader *l, const char *fmt, ...)
{
    uint32_t room = MB_AREA_END - l->strings_next;
    uint32_t gpa = l->strings_next;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf((char *)l->ram->host + gpa, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (uint32_t)n >= room)
        return 0;
    l->strings_next += (uint32_t)n + 1;
    return gpa;
}

static void mb_put_mmap(struct mb_loader *l, struct multiboot_info *mbi)
{
    struct multiboot_mmap_entry map[4];
    unsigned n = 0;

    map[n++] = (struct multiboot_mmap_entry){.addr = 0, .len = LOW_MEM_END,
                                             .type = MULTIBOOT_MEMORY_AVAILABLE};
    map[n++] = (struct multiboot_mmap_entry){.addr = LOW_MEM_END,
                                             .len = 0xA0000u - LOW_MEM_END,
                                             .type = MULTIBOOT_MEMORY_RESERVED};
    map[n++] = (struct multiboot_mmap_entry){.addr = BIOS_ROM_BASE,
                                             .len = HIGH_MEM_BASE - BIOS_ROM_BASE,
                                             .type = MULTIBOOT_MEMORY_RESERVED};
    if (l->ram->size > HIGH_MEM_BASE)
        map[n++] = (struct multiboot_mmap_entry){.addr = HIGH_MEM_BASE,
                                                 .len = l->ram->size - HIGH_MEM_BASE,
                                                 .type = MULTIBOOT_MEMORY_AVAILABLE};
    for (unsigned i = 0; i < n; i++)
        map[i].size = sizeof(map[i]) - sizeof(map[i].size);
    memcpy(l->ram->host + MB_MMAP_ADDR, map, n * sizeof(map[0]));
    mbi->mmap_addr = MB_MMAP_ADDR;
    mbi->mmap_length = n * sizeof(map[0]);
    mbi->flags |= MULTIBOOT_INFO_MEM_MAP;
}

/*
 * Loads the initrd as module 0 on the first page boundary above the kernel
 * that is clear of the holes (only a kernel loaded below 1 MiB can push it
 * into one).  It is read straight into guest RAM.
 */
static int mb_load_initrd(struct mb_loader *l, struct multiboot_info *mbi)
{
    const char *path = l->args->initrd_path;
    struct multiboot_mod_list mod = {0};
    uint64_t start = (l->kernel_end + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
    size_t size, got;
    int fd, rc;

    rc = mb_open("initrd", path, l->ram->size, &fd, &size, l->err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < sizeof(mb_module_holes) / sizeof(mb_module_holes[0]); i++) {
        if (start < mb_module_holes[i].end && start + size > mb_module_holes[i].base)
            start = (mb_module_holes[i].end + PAGE_SIZE - 1) & PAGE_MASK;
    }
    if (!guest_ram_contains(l->ram, start, size)) {
        close(fd);
        snprintf(l->err, LOADER_ERR_LEN,
                 "initrd '%s' (%zu bytes) does not fit in guest RAM (0x%x bytes) at 0x%llx, "
                 "above the kernel",
                 path, size, l->ram->size, (unsigned long long)start);
        return -EFBIG;
    }
    rc = loader_read_all(fd, l->ram->host + start, size, &got);
    close(fd);
    if (rc < 0) {
        snprintf(l->err, LOADER_ERR_LEN, "cannot read initrd '%s': %s", path, strerror(-rc));
        return rc;
    }
    mod.mod_start = (uint32_t)start;
    mod.mod_end = (uint32_t)(start + got);
    mod.cmdline = mb_put_string(l, "%s", path);
    if (!mod.cmdline)
        return mb_fail(l, -E2BIG, "initrd name does not fit in the boot information area");
    memcpy(l->ram->host + MB_MODS_ADDR, &mod, sizeof(mod));
    mbi->mods_addr = MB_MODS_ADDR;
    mbi->mods_count = 1;
    mbi->flags |= MULTIBOOT_INFO_MODS;
    return 0;
}

/* Writes the GDT and the boot information; the kernel is already in RAM. */
static int mb_build_info(struct mb_loader *l)
{
    struct multiboot_info mbi = {0};
    int rc;

    memset(l->ram->host + MB_AREA_BASE, 0, MB_AREA_END - MB_AREA_BASE);
    loader_put_boot_gdt(l->ram, MB_GDT_ADDR);
    l->strings_next = MB_STRINGS_ADDR;

    mbi.flags = MULTIBOOT_INFO_MEMORY;
    mbi.mem_lower = MB_MEM_LOWER_KB;
    mbi.mem_upper = (l->ram->size - HIGH_MEM_BASE) / 1024;

    /* Cannot fail: it is the first string in an empty area. */
    mbi.boot_loader_name = mb_put_string(l, "%s", MB_LOADER_NAME);
    mbi.flags |= MULTIBOOT_INFO_BOOT_LOADER_NAME;

    /* QEMU passes "<kernel path> <append>", with the space even if append is empty. */
    mbi.cmdline = mb_put_string(l, "%s %s", l->args->kernel_path,
                                l->args->cmdline ? l->args->cmdline : "");
    if (!mbi.cmdline)
        return mb_fail(l, -E2BIG, "command line does not fit in the boot information area "
                                  "(%u bytes)", MB_AREA_END - MB_STRINGS_ADDR);
    mbi.flags |= MULTIBOOT_INFO_CMDLINE;

    mb_put_mmap(l, &mbi);

    if (l->args->initrd_path) {
        rc = mb_load_initrd(l, &mbi);
        if (rc < 0)
            return rc;
    }
    memcpy(l->ram->host + MB_INFO_ADDR, &mbi, sizeof(mbi));
    return 0;
}

int multiboot_load(struct guest_ram *ram, const struct loader_args *args,
                   struct boot_entry *entry, char err[LOADER_ERR_LEN])
{
    struct mb_loader l = {.ram = ram, .args = args, .err = err};
    int rc;

    err[0] = '\0';
    rc = mb_read_kernel(&l);
    if (rc < 0)
        goto out;
    rc = mb_find_header(&l);
    if (rc < 0)
        goto out;
    if (ram->size < HIGH_MEM_BASE) {
        rc = mb_fail(&l, -EINVAL, "guest RAM (0x%x bytes) is too small, multiboot needs 1 MiB",
                     ram->size);
        goto out;
    }
    if (l.hdr.flags & MULTIBOOT_REQUIRED_MASK & ~MULTIBOOT_KNOWN_FLAGS) {
        rc = mb_fail(&l, -EINVAL, "multiboot header requires unsupported features (flags 0x%x)",
                     l.hdr.flags);
        goto out;
    }
    if (mb_is_elf(&l))
        rc = mb_elf_load(&l);
    else if (l.hdr.flags & MULTIBOOT_AOUT_KLUDGE)
        rc = mb_aout_load(&l);
    else
        rc = mb_fail(&l, -EINVAL, "not an ELF file and the multiboot header has no address "
                                  "fields (flag bit 16)");
    if (rc < 0)
        goto out;
    rc = mb_build_info(&l);
    if (rc < 0)
        goto out;

    *entry = (struct boot_entry){
        .eip = l.entry,
        .eax = MULTIBOOT_BOOTLOADER_MAGIC,
        .ebx = MB_INFO_ADDR,
        .gdt_base = MB_GDT_ADDR,
        .gdt_limit = BOOT_GDT_SIZE - 1,
    };
out:
    free(l.image);
    return rc;
}
