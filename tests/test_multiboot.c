/*
 * Multiboot loader tests.  Kernel images are built in memory by the small
 * generators below (an ELF32 with a text and a data+bss segment, and a raw
 * a.out-kludge image), mutated per test, and written to temporary files.
 * Guest RAM is plain calloc'd memory filled with 0xAA, so a test can see both
 * what the loader wrote and what it must have left alone.  Boot information
 * is read at the offsets the Multiboot 0.6.96 specification gives, not
 * through the loader's own structs.
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "popek/loader.h"

#define RAM_SIZE (16u << 20)
#define FILL 0xAA

#define MB_MAGIC 0x1BADB002u
#define MB_FLAG_AOUT (1u << 16)

/* Documented loader layout (src/monitor/multiboot.c). */
#define INFO_AREA_BASE 0x9000u
#define INFO_AREA_END 0x10000u

/* multiboot_info offsets from the specification */
#define MBI_FLAGS 0
#define MBI_MEM_LOWER 4
#define MBI_MEM_UPPER 8
#define MBI_CMDLINE 16
#define MBI_MODS_COUNT 20
#define MBI_MODS_ADDR 24
#define MBI_MMAP_LENGTH 44
#define MBI_MMAP_ADDR 48
#define MBI_BOOT_LOADER_NAME 64

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

TestSuite(multiboot, .init = setup, .fini = teardown);

/* ---- image generators ---------------------------------------------------- */

struct img {
    _Alignas(8) uint8_t buf[0x4000];
    size_t len;
};

/* Standard ELF: text at file 0x1000 -> 0x100000 (0x100 bytes, multiboot header
 * first, entry 0x100010), data at file 0x2000 -> 0x200000 (0x80 bytes in the
 * file, 0x3000 in memory). */
#define TEXT_OFF 0x1000u
#define TEXT_ADDR 0x100000u
#define TEXT_SIZE 0x100u
#define DATA_OFF 0x2000u
#define DATA_ADDR 0x200000u
#define DATA_FILESZ 0x80u
#define DATA_MEMSZ 0x3000u
#define ENTRY (TEXT_ADDR + 0x10)

static Elf32_Ehdr *ehdr(struct img *im)
{
    return (Elf32_Ehdr *)im->buf;
}

static Elf32_Phdr *phdr(struct img *im, unsigned i)
{
    return (Elf32_Phdr *)(im->buf + sizeof(Elf32_Ehdr) + i * sizeof(Elf32_Phdr));
}

static void put32(struct img *im, size_t off, uint32_t v)
{
    memcpy(im->buf + off, &v, 4);
}

static void mb_header(struct img *im, size_t off, uint32_t flags)
{
    put32(im, off, MB_MAGIC);
    put32(im, off + 4, flags);
    put32(im, off + 8, -(MB_MAGIC + flags));
}

static void elf_build(struct img *im)
{
    Elf32_Ehdr *eh = ehdr(im);

    memset(im, 0, sizeof(*im));
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS32;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_EXEC;
    eh->e_machine = EM_386;
    eh->e_version = EV_CURRENT;
    eh->e_entry = ENTRY;
    eh->e_phoff = sizeof(Elf32_Ehdr);
    eh->e_ehsize = sizeof(Elf32_Ehdr);
    eh->e_phentsize = sizeof(Elf32_Phdr);
    eh->e_phnum = 2;
    *phdr(im, 0) = (Elf32_Phdr){.p_type = PT_LOAD, .p_offset = TEXT_OFF, .p_vaddr = TEXT_ADDR,
                                .p_paddr = TEXT_ADDR, .p_filesz = TEXT_SIZE,
                                .p_memsz = TEXT_SIZE, .p_flags = PF_R | PF_X,
                                .p_align = 0x1000};
    *phdr(im, 1) = (Elf32_Phdr){.p_type = PT_LOAD, .p_offset = DATA_OFF, .p_vaddr = DATA_ADDR,
                                .p_paddr = DATA_ADDR, .p_filesz = DATA_FILESZ,
                                .p_memsz = DATA_MEMSZ, .p_flags = PF_R | PF_W,
                                .p_align = 0x1000};
    for (unsigned i = 12; i < TEXT_SIZE; i++)
        im->buf[TEXT_OFF + i] = (uint8_t)(0x90 + i);
    mb_header(im, TEXT_OFF, 0x3);
    for (unsigned i = 0; i < DATA_FILESZ; i++)
        im->buf[DATA_OFF + i] = (uint8_t)(i * 7 + 1);
    im->len = DATA_OFF + DATA_FILESZ;
}

/* a.out kludge: header at file 0x40 says header_addr 0x100020, load_addr
 * 0x100000, so the text starts at file 0x20; 0x400 bytes are loaded and bss
 * runs to 0x102000; the file is 0x600 bytes. */
#define AOUT_HDR_OFF 0x40u
#define AOUT_TEXT_OFF 0x20u
#define AOUT_LOAD 0x100000u
#define AOUT_LOAD_SIZE 0x400u
#define AOUT_BSS_END 0x102000u
#define AOUT_ENTRY 0x100080u

static void aout_fields(struct img *im, uint32_t header_addr, uint32_t load_addr,
                        uint32_t load_end, uint32_t bss_end, uint32_t entry_addr)
{
    put32(im, AOUT_HDR_OFF + 12, header_addr);
    put32(im, AOUT_HDR_OFF + 16, load_addr);
    put32(im, AOUT_HDR_OFF + 20, load_end);
    put32(im, AOUT_HDR_OFF + 24, bss_end);
    put32(im, AOUT_HDR_OFF + 28, entry_addr);
}

static void aout_build(struct img *im)
{
    memset(im, 0, sizeof(*im));
    im->len = 0x600;
    for (size_t i = 0; i < im->len; i++)
        im->buf[i] = (uint8_t)(i * 13 + 5);
    mb_header(im, AOUT_HDR_OFF, MB_FLAG_AOUT | 0x2);
    aout_fields(im, AOUT_LOAD + (AOUT_HDR_OFF - AOUT_TEXT_OFF), AOUT_LOAD,
                AOUT_LOAD + AOUT_LOAD_SIZE, AOUT_BSS_END, AOUT_ENTRY);
}

static void write_temp(char *path, const void *data, size_t len)
{
    strcpy(path, "/tmp/popek-mb-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
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
    return multiboot_load(&ram, &args, &entry, err);
}

static int load_img(const struct img *im)
{
    kernel_write(im);
    return load(NULL, NULL);
}

static void expect_fail(int rc, int want, const char *substr)
{
    cr_assert_eq(rc, want, "rc %d, want %d (%s)", rc, want, err);
    cr_assert(memchr(err, '\0', sizeof(err)), "message not terminated");
    cr_assert_neq(err[0], '\0', "empty message");
    cr_assert_null(strchr(err, '\n'), "message is not one line: %s", err);
    cr_assert_not_null(strstr(err, substr), "message '%s' lacks '%s'", err, substr);
}

static void expect_elf_fail(struct img *im, const char *substr)
{
    expect_fail(load_img(im), -EINVAL, substr);
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

static bool ram_is(uint32_t gpa, uint32_t len, uint8_t byte)
{
    for (uint32_t i = 0; i < len; i++)
        if (ram.host[gpa + i] != byte)
            return false;
    return true;
}

static const char *ram_str(uint32_t gpa)
{
    cr_assert_lt(gpa, RAM_SIZE);
    cr_assert_not_null(memchr(ram.host + gpa, '\0', RAM_SIZE - gpa));
    return (const char *)ram.host + gpa;
}

/* ---- successful loads ---------------------------------------------------- */

Test(multiboot, elf_loads_segments_and_entry_state)
{
    struct img im;

    elf_build(&im);
    kernel_write(&im);
    cr_assert_eq(load("console=ttyS0 quiet", NULL), 0, "%s", err);

    cr_assert_arr_eq(ram.host + TEXT_ADDR, im.buf + TEXT_OFF, TEXT_SIZE);
    cr_assert_arr_eq(ram.host + DATA_ADDR, im.buf + DATA_OFF, DATA_FILESZ);
    cr_assert(ram_is(DATA_ADDR + DATA_FILESZ, DATA_MEMSZ - DATA_FILESZ, 0), "bss not zeroed");
    cr_assert(ram_is(TEXT_ADDR + TEXT_SIZE, 0x100, FILL), "wrote past the text segment");
    cr_assert(ram_is(DATA_ADDR + DATA_MEMSZ, 0x100, FILL), "wrote past the bss");

    cr_assert_eq(entry.eip, ENTRY);
    cr_assert_eq(entry.eax, 0x2BADB002u);
    cr_assert_geq(entry.ebx, INFO_AREA_BASE);
    cr_assert_lt(entry.ebx, INFO_AREA_END);
    cr_assert_eq(entry.ecx | entry.edx | entry.esi | entry.edi | entry.ebp | entry.esp, 0);
}

Test(multiboot, elf_boot_info)
{
    struct img im;
    char want[256];

    elf_build(&im);
    kernel_write(&im);
    cr_assert_eq(load("console=ttyS0 quiet", NULL), 0, "%s", err);
    uint32_t mbi = entry.ebx;

    /* MEM | CMDLINE | MMAP | BOOT_LOADER_NAME, no modules */
    cr_assert_eq(rd32(mbi + MBI_FLAGS), 0x245u);
    cr_assert_eq(rd32(mbi + MBI_MEM_LOWER), 640u);
    cr_assert_eq(rd32(mbi + MBI_MEM_UPPER), (RAM_SIZE - (1u << 20)) / 1024);
    snprintf(want, sizeof(want), "%s console=ttyS0 quiet", kpath);
    cr_assert_str_eq(ram_str(rd32(mbi + MBI_CMDLINE)), want);
    cr_assert_str_eq(ram_str(rd32(mbi + MBI_BOOT_LOADER_NAME)), "popek");
    cr_assert_eq(rd32(mbi + MBI_MODS_COUNT), 0);

    static const struct { uint64_t addr, len; uint32_t type; } map[] = {
        {0, 0x9FC00, 1},
        {0x9FC00, 0x400, 2},
        {0xF0000, 0x10000, 2},
        {0x100000, RAM_SIZE - 0x100000, 1},
    };
    uint32_t mm = rd32(mbi + MBI_MMAP_ADDR);
    cr_assert_eq(rd32(mbi + MBI_MMAP_LENGTH), 4 * 24);
    for (unsigned i = 0; i < 4; i++) {
        cr_assert_eq(rd32(mm), 20, "entry %u size", i);
        cr_assert_eq(rd64(mm + 4), map[i].addr, "entry %u addr", i);
        cr_assert_eq(rd64(mm + 12), map[i].len, "entry %u len", i);
        cr_assert_eq(rd32(mm + 20), map[i].type, "entry %u type", i);
        mm += rd32(mm) + 4;
    }
}

Test(multiboot, flat_gdt)
{
    struct img im;

    elf_build(&im);
    cr_assert_eq(load_img(&im), 0, "%s", err);
    cr_assert_eq(entry.gdt_limit, 4 * 8 - 1);
    cr_assert_geq(entry.gdt_base, INFO_AREA_BASE);
    cr_assert_leq(entry.gdt_base + 32, INFO_AREA_END);
    cr_assert_eq(rd64(entry.gdt_base), 0);
    cr_assert_eq(rd64(entry.gdt_base + 8), 0);
    /* Ignoring the accessed bit: base 0, limit 0xFFFFF, G=1, D=1, P=1, DPL 0. */
    cr_assert_eq(rd64(entry.gdt_base + 0x10) & ~(1ull << 40), 0x00CF9A000000FFFFull);
    cr_assert_eq(rd64(entry.gdt_base + 0x18) & ~(1ull << 40), 0x00CF92000000FFFFull);
}

Test(multiboot, cmdline_without_args_is_path_and_space_as_qemu)
{
    struct img im;
    char want[256];

    elf_build(&im);
    cr_assert_eq(load_img(&im), 0, "%s", err);
    snprintf(want, sizeof(want), "%s ", kpath);
    cr_assert_str_eq(ram_str(rd32(entry.ebx + MBI_CMDLINE)), want);
}

Test(multiboot, higher_half_entry_is_translated_to_physical)
{
    struct img im;

    elf_build(&im);
    phdr(&im, 0)->p_vaddr = 0xC0000000u + TEXT_ADDR;
    phdr(&im, 1)->p_vaddr = 0xC0000000u + DATA_ADDR;
    ehdr(&im)->e_entry = 0xC0000000u + ENTRY;
    cr_assert_eq(load_img(&im), 0, "%s", err);
    cr_assert_eq(entry.eip, ENTRY);
    cr_assert_arr_eq(ram.host + TEXT_ADDR, im.buf + TEXT_OFF, TEXT_SIZE);
}

Test(multiboot, elf_with_address_fields_still_loads_as_elf)
{
    struct img im;

    elf_build(&im);
    mb_header(&im, TEXT_OFF, MB_FLAG_AOUT);
    /* Nonsense address fields: they must be ignored for an ELF file. */
    put32(&im, TEXT_OFF + 12, 1);
    put32(&im, TEXT_OFF + 16, 2);
    cr_assert_eq(load_img(&im), 0, "%s", err);
    cr_assert_eq(entry.eip, ENTRY);
}

Test(multiboot, non_load_and_empty_segments_are_ignored)
{
    struct img im;

    elf_build(&im);
    ehdr(&im)->e_phnum = 4;
    *phdr(&im, 2) = (Elf32_Phdr){.p_type = PT_NOTE, .p_offset = 0xFFFFFFF0u,
                                 .p_filesz = 0x100, .p_paddr = 0x9000};
    *phdr(&im, 3) = (Elf32_Phdr){.p_type = PT_LOAD, .p_paddr = 0xFFFFFFFFu};
    cr_assert_eq(load_img(&im), 0, "%s", err);
}

Test(multiboot, initrd_is_module_0_after_the_kernel)
{
    struct img im;
    uint8_t data[5000];

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 31);
    write_temp(ipath, data, sizeof(data));
    elf_build(&im);
    kernel_write(&im);
    cr_assert_eq(load("root=/dev/ram0", ipath), 0, "%s", err);

    uint32_t mbi = entry.ebx;
    cr_assert_eq(rd32(mbi + MBI_FLAGS), 0x24Du); /* now with MODS */
    cr_assert_eq(rd32(mbi + MBI_MODS_COUNT), 1);
    uint32_t mod = rd32(mbi + MBI_MODS_ADDR);
    uint32_t start = rd32(mod), end = rd32(mod + 4);
    /* first page boundary above the bss end 0x203000 */
    cr_assert_eq(start, DATA_ADDR + DATA_MEMSZ);
    cr_assert_eq(end, start + sizeof(data));
    cr_assert_arr_eq(ram.host + start, data, sizeof(data));
    cr_assert_str_eq(ram_str(rd32(mod + 8)), ipath);
}

Test(multiboot, initrd_skips_the_info_area_above_a_low_kernel)
{
    struct img im;
    static uint8_t data[0x8000];

    memset(data, 0x77, sizeof(data));
    write_temp(ipath, data, sizeof(data));
    elf_build(&im);
    ehdr(&im)->e_phnum = 1;
    phdr(&im, 0)->p_paddr = phdr(&im, 0)->p_vaddr = 0x1000;
    ehdr(&im)->e_entry = 0x1010;
    kernel_write(&im);
    cr_assert_eq(load(NULL, ipath), 0, "%s", err);
    uint32_t mod = rd32(entry.ebx + MBI_MODS_ADDR);
    cr_assert_eq(rd32(mod), INFO_AREA_END);
    cr_assert_eq(rd32(mod) % 4096, 0);
    cr_assert_arr_eq(ram.host + rd32(mod), data, sizeof(data));
}

Test(multiboot, aout_kludge_loads)
{
    struct img im;

    aout_build(&im);
    cr_assert_eq(load_img(&im), 0, "%s", err);
    cr_assert_arr_eq(ram.host + AOUT_LOAD, im.buf + AOUT_TEXT_OFF, AOUT_LOAD_SIZE);
    cr_assert(ram_is(AOUT_LOAD + AOUT_LOAD_SIZE, AOUT_BSS_END - AOUT_LOAD - AOUT_LOAD_SIZE, 0),
              "bss not zeroed");
    cr_assert(ram_is(AOUT_BSS_END, 0x100, FILL), "wrote past bss_end_addr");
    cr_assert_eq(entry.eip, AOUT_ENTRY);
    cr_assert_eq(entry.eax, 0x2BADB002u);
    cr_assert_eq(rd32(entry.ebx + MBI_FLAGS), 0x245u);
}

Test(multiboot, aout_kludge_zero_fields_load_whole_file_without_bss)
{
    struct img im;

    aout_build(&im);
    aout_fields(&im, AOUT_LOAD + (AOUT_HDR_OFF - AOUT_TEXT_OFF), AOUT_LOAD, 0, 0, AOUT_ENTRY);
    cr_assert_eq(load_img(&im), 0, "%s", err);
    cr_assert_arr_eq(ram.host + AOUT_LOAD, im.buf + AOUT_TEXT_OFF, im.len - AOUT_TEXT_OFF);
    cr_assert(ram_is(AOUT_LOAD + im.len - AOUT_TEXT_OFF, 0x100, FILL));
}

/* ---- not multiboot, unreadable ------------------------------------------- */

Test(multiboot, plain_elf_is_not_multiboot)
{
    struct img im;
    char want[256];

    elf_build(&im);
    memset(im.buf + TEXT_OFF, 0, 12);
    expect_fail(load_img(&im), -ENOEXEC, "is not a multiboot kernel");
    snprintf(want, sizeof(want), "'%s' is not a multiboot kernel", kpath);
    cr_assert_str_eq(err, want);
}

Test(multiboot, empty_file_is_not_multiboot)
{
    struct img im = {.len = 0};

    expect_fail(load_img(&im), -ENOEXEC, "is not a multiboot kernel");
}

Test(multiboot, header_must_be_in_first_8k_and_aligned)
{
    struct img im;

    aout_build(&im);
    im.len = 0x2100;
    memset(im.buf + AOUT_HDR_OFF, 0, 32);
    mb_header(&im, 8192 - 8, MB_FLAG_AOUT); /* straddles the 8 KiB limit */
    mb_header(&im, 0x102, MB_FLAG_AOUT);    /* misaligned */
    expect_fail(load_img(&im), -ENOEXEC, "is not a multiboot kernel");
}

Test(multiboot, bad_checksum)
{
    struct img im;

    elf_build(&im);
    put32(&im, TEXT_OFF + 8, 0x12345678);
    expect_elf_fail(&im, "bad checksum");
}

Test(multiboot, unknown_required_flag)
{
    struct img im;

    elf_build(&im);
    mb_header(&im, TEXT_OFF, 0x3 | (1u << 5));
    expect_elf_fail(&im, "unsupported features");
}

Test(multiboot, missing_kernel_file)
{
    struct loader_args args = {.kernel_path = "/nonexistent/popek-kernel"};

    cr_assert_eq(multiboot_load(&ram, &args, &entry, err), -ENOENT);
    cr_assert_str_eq(err, "cannot read kernel '/nonexistent/popek-kernel': "
                          "No such file or directory");
}

Test(multiboot, kernel_is_a_directory)
{
    struct loader_args args = {.kernel_path = "/tmp"};

    cr_assert_eq(multiboot_load(&ram, &args, &entry, err), -EISDIR);
    cr_assert_str_eq(err, "cannot read kernel '/tmp': Is a directory");
}

Test(multiboot, kernel_larger_than_ram)
{
    struct img im;

    elf_build(&im);
    ram.size = 0x2000;
    expect_fail(load_img(&im), -EFBIG, "larger than guest RAM");
}

Test(multiboot, ram_below_1mib)
{
    struct img im;

    aout_build(&im);
    ram.size = 0x80000;
    expect_elf_fail(&im, "too small");
}

Test(multiboot, missing_initrd)
{
    struct img im;

    elf_build(&im);
    kernel_write(&im);
    expect_fail(load(NULL, "/nonexistent/initrd"), -ENOENT,
                "cannot read initrd '/nonexistent/initrd': No such file or directory");
}

Test(multiboot, initrd_too_large)
{
    struct img im;

    strcpy(ipath, "/tmp/popek-mb-XXXXXX");
    int fd = mkstemp(ipath);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, RAM_SIZE - DATA_ADDR), 0); /* sparse */
    close(fd);
    elf_build(&im);
    kernel_write(&im);
    expect_fail(load(NULL, ipath), -EFBIG, "does not fit in guest RAM");
}

/* ---- malformed ELF ------------------------------------------------------- */

Test(multiboot, elf_truncated_file_header)
{
    struct img im;

    elf_build(&im);
    mb_header(&im, 16, 0); /* inside the would-be ELF header */
    im.len = 40;
    expect_elf_fail(&im, "truncated ELF: file header");
}

Test(multiboot, elf_64bit)
{
    struct img im;

    elf_build(&im);
    ehdr(&im)->e_ident[EI_CLASS] = ELFCLASS64;
    expect_elf_fail(&im, "64-bit");
}

Test(multiboot, elf_bad_class)
{
    struct img im;

    elf_build(&im);
    ehdr(&im)->e_ident[EI_CLASS] = 7;
    expect_elf_fail(&im, "ELF class 7");
}

Test(multiboot, elf_big_endian)
{
    struct img im;

    elf_build(&im);
    ehdr(&im)->e_ident[EI_DATA] = ELFDATA2MSB;
    expect_elf_fail(&im, "little-endian");
}

Test(multiboot, elf_wrong_machine)
{
    struct img im;

    elf_build(&im);
    ehdr(&im)->e_machine = EM_X86_64;
    expect_elf_fail(&im, "machine 62");
}

Test(multiboot, elf_not_executable)
{
    struct img im;

    elf_build(&im);
    ehdr(&im)->e_type = ET_DYN;
    expect_elf_fail(&im, "ET_EXEC");
}

Test(multiboot, elf_bad_phentsize)
{
    struct img im;

    elf_build(&im);
    ehdr(&im)->e_phentsize = 40;
    expect_elf_fail(&im, "program header size is 40");
}

Test(multiboot, elf_no_phdrs)
{
    struct img im;

    elf_build(&im);
    ehdr(&im)->e_phnum = 0;
    expect_elf_fail(&im, "no program headers");
}

Test(multiboot, elf_phdr_past_eof)
{
    struct img im;
    char want[256];

    elf_build(&im);
    /* Move the table to the end of the file, with the third entry cut short. */
    memcpy(im.buf + im.len, phdr(&im, 0), 2 * sizeof(Elf32_Phdr) + 16);
    ehdr(&im)->e_phoff = im.len;
    ehdr(&im)->e_phnum = 3;
    im.len += 2 * sizeof(Elf32_Phdr) + 16;
    expect_elf_fail(&im, "truncated ELF: program header 2 extends past end of file");
    snprintf(want, sizeof(want),
             "kernel '%s': truncated ELF: program header 2 extends past end of file", kpath);
    cr_assert_str_eq(err, want);
}

Test(multiboot, elf_phoff_overflow)
{
    struct img im;

    elf_build(&im);
    ehdr(&im)->e_phoff = 0xFFFFFFF0u;
    expect_elf_fail(&im, "program header 0 extends past end of file");
}

Test(multiboot, elf_phnum_huge)
{
    struct img im;

    elf_build(&im);
    ehdr(&im)->e_phnum = 0xFFFF;
    expect_elf_fail(&im, "extends past end of file");
}

Test(multiboot, elf_segment_past_eof)
{
    struct img im;

    elf_build(&im);
    phdr(&im, 1)->p_filesz = 0x200;
    expect_elf_fail(&im, "truncated ELF: segment 1 file range");
}

Test(multiboot, elf_segment_offset_overflow)
{
    struct img im;

    elf_build(&im);
    phdr(&im, 1)->p_offset = 0xFFFFFFF0u;
    phdr(&im, 1)->p_filesz = 0x20;
    expect_elf_fail(&im, "segment 1 file range");
}

Test(multiboot, elf_filesz_above_memsz)
{
    struct img im;

    elf_build(&im);
    phdr(&im, 1)->p_memsz = 0x10;
    expect_elf_fail(&im, "segment 1: file size 0x80 exceeds memory size 0x10");
}

Test(multiboot, elf_segment_outside_ram)
{
    struct img im;

    elf_build(&im);
    phdr(&im, 1)->p_paddr = RAM_SIZE - 0x1000;
    expect_elf_fail(&im, "segment 1 [0xfff000, 0x1002000) lies outside guest RAM");
}

Test(multiboot, elf_segment_address_overflow)
{
    struct img im;

    elf_build(&im);
    phdr(&im, 1)->p_paddr = 0xFFFFF000u;
    phdr(&im, 1)->p_memsz = 0x2000;
    expect_elf_fail(&im, "outside guest RAM");
}

Test(multiboot, elf_segment_overlaps_boot_info)
{
    struct img im;

    elf_build(&im);
    phdr(&im, 1)->p_paddr = INFO_AREA_BASE - 0x100;
    expect_elf_fail(&im, "segment 1 [0x8f00, 0xbf00) overlaps the boot information area");
}

/* What `ld -Ttext=0x100000` produces: the ELF headers in a read-only segment
 * just below 1 MiB.  QEMU boots such kernels, so must we. */
Test(multiboot, header_segment_below_1mib_loads)
{
    struct img im;

    elf_build(&im);
    ehdr(&im)->e_phnum = 3;
    *phdr(&im, 2) = (Elf32_Phdr){.p_type = PT_LOAD, .p_offset = 0, .p_vaddr = 0xFF000,
                                 .p_paddr = 0xFF000, .p_filesz = 0x94, .p_memsz = 0x94,
                                 .p_flags = PF_R, .p_align = 0x1000};
    cr_assert_eq(load_img(&im), 0, "%s", err);
    cr_assert_arr_eq(ram.host + 0xFF000, im.buf, 0x94);
    cr_assert_eq(entry.eip, ENTRY);
}

Test(multiboot, initrd_skips_the_legacy_hole)
{
    struct img im;
    static uint8_t data[0x1000];

    memset(data, 0x55, sizeof(data));
    write_temp(ipath, data, sizeof(data));
    elf_build(&im);
    ehdr(&im)->e_phnum = 1;
    phdr(&im, 0)->p_paddr = phdr(&im, 0)->p_vaddr = 0x9F000;
    phdr(&im, 0)->p_memsz = 0x900;
    ehdr(&im)->e_entry = 0x9F010;
    kernel_write(&im);
    cr_assert_eq(load(NULL, ipath), 0, "%s", err);
    uint32_t mod = rd32(entry.ebx + MBI_MODS_ADDR);
    cr_assert_eq(rd32(mod), 0x100000);
    cr_assert_arr_eq(ram.host + 0x100000, data, sizeof(data));
}

Test(multiboot, elf_entry_outside_segments)
{
    struct img im;

    elf_build(&im);
    ehdr(&im)->e_entry = 0x300000;
    expect_elf_fail(&im, "entry point 0x300000 is not inside a loaded segment");
}

Test(multiboot, elf_entry_in_bss)
{
    struct img im;

    elf_build(&im);
    ehdr(&im)->e_entry = DATA_ADDR + DATA_FILESZ;
    expect_elf_fail(&im, "entry point");
}

Test(multiboot, elf_no_load_segment)
{
    struct img im;

    elf_build(&im);
    phdr(&im, 0)->p_type = PT_NOTE;
    phdr(&im, 1)->p_type = PT_NOTE;
    expect_elf_fail(&im, "no loadable segment");
}

Test(multiboot, failed_load_leaves_ram_alone)
{
    struct img im;

    elf_build(&im);
    ehdr(&im)->e_entry = 0x300000;
    expect_elf_fail(&im, "entry point");
    cr_assert(ram_is(TEXT_ADDR, TEXT_SIZE, FILL));
    cr_assert(ram_is(INFO_AREA_BASE, INFO_AREA_END - INFO_AREA_BASE, FILL));
}

/* ---- malformed a.out kludge ---------------------------------------------- */

Test(multiboot, raw_image_without_address_fields)
{
    struct img im;

    aout_build(&im);
    mb_header(&im, AOUT_HDR_OFF, 0);
    expect_elf_fail(&im, "not an ELF file and the multiboot header has no address fields");
}

Test(multiboot, aout_truncated_header)
{
    struct img im;

    aout_build(&im);
    memset(im.buf + AOUT_HDR_OFF, 0, 12);
    mb_header(&im, im.len - 16, MB_FLAG_AOUT);
    expect_elf_fail(&im, "truncated multiboot header");
}

Test(multiboot, aout_header_addr_below_load_addr)
{
    struct img im;

    aout_build(&im);
    aout_fields(&im, AOUT_LOAD - 4, AOUT_LOAD, 0, 0, AOUT_ENTRY);
    expect_elf_fail(&im, "header_addr 0xffffc is below load_addr 0x100000");
}

Test(multiboot, aout_load_addr_before_file_start)
{
    struct img im;

    aout_build(&im);
    aout_fields(&im, AOUT_LOAD + AOUT_HDR_OFF + 4, AOUT_LOAD, 0, 0, AOUT_ENTRY);
    expect_elf_fail(&im, "before the header");
}

Test(multiboot, aout_load_end_below_load_addr)
{
    struct img im;

    aout_build(&im);
    aout_fields(&im, AOUT_LOAD + 0x20, AOUT_LOAD, AOUT_LOAD - 1, 0, AOUT_ENTRY);
    expect_elf_fail(&im, "load_end_addr 0xfffff is below load_addr");
}

Test(multiboot, aout_load_past_eof)
{
    struct img im;

    aout_build(&im);
    aout_fields(&im, AOUT_LOAD + 0x20, AOUT_LOAD, AOUT_LOAD + 0x800, 0, AOUT_ENTRY);
    expect_elf_fail(&im, "truncated image");
}

Test(multiboot, aout_load_at_top_of_address_space)
{
    struct img im;

    aout_build(&im);
    aout_fields(&im, 0xFFFFFFF0u, 0xFFFFFFD0u, 0xFFFFFFFFu, 0, 0xFFFFFFE0u);
    expect_elf_fail(&im, "outside guest RAM");
}

Test(multiboot, aout_bss_end_below_load_end)
{
    struct img im;

    aout_build(&im);
    aout_fields(&im, AOUT_LOAD + 0x20, AOUT_LOAD, AOUT_LOAD + 0x400, AOUT_LOAD + 0x3FF,
                AOUT_ENTRY);
    expect_elf_fail(&im, "bss_end_addr 0x1003ff is below");
}

Test(multiboot, aout_outside_ram)
{
    struct img im;

    aout_build(&im);
    aout_fields(&im, 0xFFFFF020u, 0xFFFFF000u, 0, 0xFFFFFFFFu, 0xFFFFF080u);
    expect_elf_fail(&im, "outside guest RAM");
}

Test(multiboot, aout_overlaps_boot_info)
{
    struct img im;

    aout_build(&im);
    aout_fields(&im, 0x8020, 0x8000, 0, 0x9100, 0x8080);
    expect_elf_fail(&im, "overlaps the boot information area");
}

Test(multiboot, aout_entry_outside_image)
{
    struct img im;

    aout_build(&im);
    aout_fields(&im, AOUT_LOAD + 0x20, AOUT_LOAD, AOUT_LOAD + 0x400, AOUT_BSS_END,
                AOUT_LOAD + 0x400);
    expect_elf_fail(&im, "entry_addr 0x100400 is outside the loaded image");
}

/* ---- robustness ------------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* Interesting values for 32-bit fields: edges of RAM, of the file, of 2^32. */
static uint32_t rng_field(void)
{
    static const uint32_t edges[] = {0, 1, 0x34, 0x1000, 0x2000, 0x2080, 0x9000, 0xFFFF,
                                     0x100000, RAM_SIZE - 1, RAM_SIZE, 0x7FFFFFFF,
                                     0x80000000u, 0xFFFFF000u, 0xFFFFFFFFu};
    return rng() % 2 ? rng() : edges[rng() % (sizeof(edges) / sizeof(edges[0]))];
}

static void fuzz_one(const struct img *base, const size_t *hot, size_t nhot)
{
    struct img im = *base;
    unsigned n = 1 + rng() % 4;

    for (unsigned i = 0; i < n; i++) {
        size_t off = hot[rng() % nhot] + (rng() % 8) * 4;
        if (off + 4 <= sizeof(im.buf))
            put32(&im, off, rng_field());
    }
    if (rng() % 4 == 0)
        im.len = rng() % (im.len + 1);
    /* A third of the time, make the checksum right again so the loader looks
     * past the header. */
    bool fix = rng() % 3 == 0;
    for (size_t off = 0; fix && off + 12 <= im.len && off < 8192; off += 4) {
        uint32_t magic, flags;
        memcpy(&magic, im.buf + off, 4);
        memcpy(&flags, im.buf + off + 4, 4);
        if (magic == MB_MAGIC) {
            flags &= 0xFFFF0007u;
            put32(&im, off + 4, flags);
            put32(&im, off + 8, -(MB_MAGIC + flags));
            break;
        }
    }
    int rc = load_img(&im);
    if (rc == 0) {
        cr_assert_lt(entry.eip, RAM_SIZE);
        cr_assert_eq(entry.eax, 0x2BADB002u);
    } else {
        cr_assert_lt(rc, 0);
        cr_assert(memchr(err, '\0', sizeof(err)));
        cr_assert_neq(err[0], '\0', "rc %d without message", rc);
        cr_assert_null(strchr(err, '\n'));
    }
}

Test(multiboot, fuzzed_images_never_crash)
{
    static const size_t elf_hot[] = {0, 16, 24, 28, 32, 44, 0x34, 0x44, 0x54, 0x64, TEXT_OFF};
    static const size_t aout_hot[] = {AOUT_HDR_OFF, AOUT_HDR_OFF + 12};
    struct img elf, aout;

    elf_build(&elf);
    aout_build(&aout);
    for (unsigned i = 0; i < 1500; i++) {
        fuzz_one(&elf, elf_hot, sizeof(elf_hot) / sizeof(elf_hot[0]));
        fuzz_one(&aout, aout_hot, sizeof(aout_hot) / sizeof(aout_hot[0]));
    }
}
