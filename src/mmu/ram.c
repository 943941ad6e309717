/*
 * Guest RAM and the shadow mappings of the low 4 GiB.
 *
 * The whole low 4 GiB of the process is reserved PROT_NONE at start
 * (MAP_FIXED_NOREPLACE fails if anything already lives there, which would
 * mean the host binary or a library was placed low: then we refuse to run
 * rather than let the guest see it).  RAM is a memfd, mapped once above 4 GiB
 * for the monitor and, page by page on hidden faults, at guest linear
 * addresses.  Pages holding translated code are mapped read-only so that guest
 * writes to them fault and invalidate translations.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "popek/mmu.h"

int guest_ram_init(struct guest_ram *ram, uint32_t size)
{
    memset(ram, 0, sizeof(*ram));
    ram->memfd = -1;
    if (size == 0 || (size & (PAGE_SIZE - 1)))
        return -EINVAL;

    /* Page 0 cannot be mapped (vm.mmap_min_addr); reserve from there up. */
    void *low = mmap((void *)(uintptr_t)PAGE_SIZE, GUEST_SPACE - PAGE_SIZE, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (low == MAP_FAILED)
        return -errno;
    if (low != (void *)(uintptr_t)PAGE_SIZE) {
        munmap(low, GUEST_SPACE - PAGE_SIZE);
        return -EEXIST;
    }

    int err;
    ram->memfd = memfd_create("popek-ram", MFD_CLOEXEC);
    if (ram->memfd < 0) {
        err = -errno;
        goto fail;
    }
    if (ftruncate(ram->memfd, size) < 0) {
        err = -errno;
        goto fail;
    }
    ram->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, ram->memfd, 0);
    if (ram->host == MAP_FAILED) {
        err = -errno;
        ram->host = NULL;
        goto fail;
    }
    ram->size = size;
    ram->code_bits = calloc(size / PAGE_SIZE / 8 + 1, 1);
    if (!ram->code_bits) {
        err = -ENOMEM;
        goto fail;
    }
    return 0;

fail:
    guest_ram_destroy(ram);
    return err;
}

void guest_ram_destroy(struct guest_ram *ram)
{
    if (ram->host)
        munmap(ram->host, ram->size);
    if (ram->memfd >= 0)
        close(ram->memfd);
    free(ram->code_bits);
    memset(ram, 0, sizeof(*ram));
    ram->memfd = -1;
}
