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

static bool shadow_is_mapped(const struct shadow *sh, uint32_t linear)
{
    uint32_t pn = linear / PAGE_SIZE;
    return (sh->mapped[pn / 8] >> (pn % 8)) & 1;
}

int shadow_init(struct shadow *sh)
{
    memset(sh, 0, sizeof(*sh));
    sh->mapped = calloc(GUEST_SPACE / PAGE_SIZE / 8, 1);
    return sh->mapped ? 0 : -ENOMEM;
}

void shadow_destroy(struct shadow *sh)
{
    free(sh->mapped);
    sh->mapped = NULL;
}

int shadow_map(struct shadow *sh, struct guest_ram *ram, uint32_t linear, uint32_t gpa,
               bool writable)
{
    linear &= PAGE_MASK;
    gpa &= PAGE_MASK;
    if (linear < PAGE_SIZE || !guest_ram_contains(ram, gpa, PAGE_SIZE))
        return -EFAULT;
    int prot = PROT_READ | (writable && !guest_ram_is_code(ram, gpa) ? PROT_WRITE : 0);
    void *p = mmap((void *)(uintptr_t)linear, PAGE_SIZE, prot, MAP_SHARED | MAP_FIXED,
                   ram->memfd, gpa);
    if (p == MAP_FAILED)
        return -errno;
    uint32_t pn = linear / PAGE_SIZE;
    sh->mapped[pn / 8] |= (uint8_t)(1u << (pn % 8));
    return 0;
}

void shadow_unmap_all(struct shadow *sh)
{
    /* Back to the PROT_NONE reservation rather than a hole, so nothing else
     * can ever be placed in the guest's space.  The monitor region is not
     * part of the shadow. */
    for (uint64_t pn = 1; pn < GUEST_SPACE / PAGE_SIZE; pn++) {
        if (!((sh->mapped[pn / 8] >> (pn % 8)) & 1))
            continue;
        uint64_t end = pn;
        while (end < GUEST_SPACE / PAGE_SIZE && ((sh->mapped[end / 8] >> (end % 8)) & 1)) {
            sh->mapped[end / 8] &= (uint8_t)~(1u << (end % 8));
            end++;
        }
        mmap((void *)(uintptr_t)(pn * PAGE_SIZE), (end - pn) * PAGE_SIZE, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
        pn = end;
    }
}

void shadow_set_code(struct shadow *sh, struct guest_ram *ram, uint32_t gpa, bool code)
{
    gpa &= PAGE_MASK;
    if (guest_ram_is_code(ram, gpa) == code)
        return;
    guest_ram_set_code(ram, gpa, code);
    /* Paging off: the frame's only alias is linear == gpa.  A page mapped
     * read-only for other reasons stays so: the next write fault remaps it. */
    if (gpa >= PAGE_SIZE && shadow_is_mapped(sh, gpa))
        mprotect((void *)(uintptr_t)gpa, PAGE_SIZE, PROT_READ | (code ? 0 : PROT_WRITE));
}
