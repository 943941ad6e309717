/*
 * Guest kernel loaders.  They write the image into guest RAM and describe the
 * CPU state the kernel must be entered with.  They never abort: bad input is a
 * negative errno plus a one-line message in `err`.
 */
#ifndef POPEK_LOADER_H
#define POPEK_LOADER_H

#include <stddef.h>
#include <stdint.h>

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

#endif
