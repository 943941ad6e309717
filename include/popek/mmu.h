/*
 * Guest memory.
 *
 * Guest physical RAM is one memfd.  It is mapped once above 4 GiB (`host`),
 * where the monitor, loaders and devices read and write it, and piecewise into
 * the low 4 GiB of the process, which *is* the guest linear address space: the
 * host page tables of that range are the shadow page tables.
 *
 *   0x0000_0000 +-----------------------------+
 *               | guest linear space          |  PROT_NONE until a hidden fault
 *               |  (shadow mappings of memfd) |  maps a page (page 0 never: mmap_min_addr)
 *   mon_base    +-----------------------------+
 *               | monitor region              |  TC, stubs, vCPU block, poll pages
 *   4 GiB       +-----------------------------+
 *               | host: popek (PIE), heap,    |
 *               | libs, `host` view of RAM    |
 */
#ifndef POPEK_MMU_H
#define POPEK_MMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGE_SIZE 4096u
#define PAGE_MASK (~(uint32_t)(PAGE_SIZE - 1))
#define GUEST_SPACE (1ull << 32)

struct guest_ram {
    int memfd;
    uint8_t *host;      /* whole RAM, mapped above 4 GiB */
    uint32_t size;      /* bytes, multiple of PAGE_SIZE */
    uint8_t *code_bits; /* one bit per page: translations exist from it */
};

/* Reserve the low 4 GiB (PROT_NONE) and create RAM.  -errno on failure. */
int guest_ram_init(struct guest_ram *ram, uint32_t size);
void guest_ram_destroy(struct guest_ram *ram);

static inline bool guest_ram_contains(const struct guest_ram *ram, uint64_t gpa, uint64_t len)
{
    return gpa < ram->size && len <= ram->size - gpa;
}

/* Host pointer for [gpa, gpa+len) or NULL when it is not all RAM. */
static inline void *guest_ram_ptr(const struct guest_ram *ram, uint64_t gpa, uint64_t len)
{
    return guest_ram_contains(ram, gpa, len) ? ram->host + gpa : NULL;
}

static inline bool guest_ram_is_code(const struct guest_ram *ram, uint32_t gpa)
{
    uint32_t pfn = gpa / PAGE_SIZE;
    return gpa < ram->size && (ram->code_bits[pfn / 8] >> (pfn % 8)) & 1;
}

static inline void guest_ram_set_code(struct guest_ram *ram, uint32_t gpa, bool code)
{
    uint32_t pfn = gpa / PAGE_SIZE;
    if (gpa >= ram->size)
        return;
    if (code)
        ram->code_bits[pfn / 8] |= (uint8_t)(1u << (pfn % 8));
    else
        ram->code_bits[pfn / 8] &= (uint8_t)~(1u << (pfn % 8));
}

/*
 * The shadow: which guest linear pages are currently mapped in the low 4 GiB.
 * While guest paging is off linear == physical, so a code page's only alias
 * is its own address.
 */
struct shadow {
    uint8_t *mapped; /* one bit per linear page */
    uint64_t hidden_faults;
};

int shadow_init(struct shadow *sh);
void shadow_destroy(struct shadow *sh);
/* Map guest frame gpa at linear (read-only if !writable or gpa holds code). */
int shadow_map(struct shadow *sh, struct guest_ram *ram, uint32_t linear, uint32_t gpa,
               bool writable);
/* Drop every mapping (back to the PROT_NONE reservation). */
void shadow_unmap_all(struct shadow *sh);
/* A page of RAM now holds translated code (or no longer does): make every
 * linear alias of it read-only (or writable again). */
void shadow_set_code(struct shadow *sh, struct guest_ram *ram, uint32_t gpa, bool code);

#endif
