/*
 * Guest kernel loaders.  They write the image into guest RAM and describe the
 * CPU state the kernel must be entered with.  They never abort: bad input is a
 * negative errno plus a one-line message in `err`.
 */
#ifndef POPEK_LOADER_H
#define POPEK_LOADER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "popek/mmu.h"

struct boot_entry {
    uint32_t eip;
    uint32_t eax, ebx, ecx, edx, esi, edi, ebp, esp;
    uint32_t gdt_base;  /* a flat GDT the loader placed in RAM: */
    uint16_t gdt_limit; /* code selector 0x10, data selector 0x18, as QEMU's loader */
};

struct loader_args {
    const char *kernel_path;
    const char *cmdline;      /* may be NULL */
    const char *initrd_path;  /* may be NULL */
};

#define LOADER_ERR_LEN 256

/* Multiboot v1 (ELF32).  Returns 0, or -ENOEXEC if the file is not a multiboot
 * kernel at all (so another loader may try), or another -errno with `err` set. */
int multiboot_load(struct guest_ram *ram, const struct loader_args *args,
                   struct boot_entry *entry, char err[LOADER_ERR_LEN]);

/* Linux/x86 boot protocol, 32-bit entry (bzImage, protocol 2.06 or later).
 * Returns 0, or -ENOEXEC if the file is not a bzImage at all (no "HdrS"
 * setup header), so that another loader may try, or another -errno with
 * `err` set. */
int linux_load(struct guest_ram *ram, const struct loader_args *args,
               struct boot_entry *entry, char err[LOADER_ERR_LEN]);

/*
 * The flat GDT every loader enters its kernel with: null, null, code, data.
 * The selectors are Linux's __BOOT_CS and __BOOT_DS, which the 32-bit boot
 * protocol requires, and also those of QEMU's multiboot option ROM, so
 * multiboot kernels that reload them before installing their own GDT behave
 * as under QEMU.  The accessed bits are set so that loading a selector never
 * makes the CPU write the descriptor.
 */
#define BOOT_GDT_CS 0x10u
#define BOOT_GDT_DS 0x18u
#define BOOT_GDT_SIZE 32u
#define GDT_CODE32_FLAT 0x00CF9B000000FFFFull /* base 0, 4 GiB, D=1, execute/read */
#define GDT_DATA32_FLAT 0x00CF93000000FFFFull /* base 0, 4 GiB, B=1, read/write */

/* Writes "kernel 'PATH': <message>" into err and returns rc.  (loader.c) */
int loader_fail(char err[LOADER_ERR_LEN], const char *kernel_path, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reads up to `len` bytes (retrying short reads); *got is less only at end of
 * file.  0 or -errno.  (loader.c) */
int loader_read_all(int fd, void *dst, size_t len, size_t *got);

/* Writes the boot GDT at `gpa`, BOOT_GDT_SIZE bytes of RAM the caller checked;
 * the kernel is entered with gdt_base = gpa, gdt_limit = BOOT_GDT_SIZE - 1. */
static inline void loader_put_boot_gdt(struct guest_ram *ram, uint32_t gpa)
{
    static const uint64_t gdt[] = {0, 0, GDT_CODE32_FLAT, GDT_DATA32_FLAT};

    _Static_assert(sizeof(gdt) == BOOT_GDT_SIZE, "boot GDT size");
    _Static_assert(BOOT_GDT_CS == 2 * 8 && BOOT_GDT_DS == 3 * 8, "boot GDT selectors");
    memcpy(ram->host + gpa, gdt, sizeof(gdt));
}

#endif
