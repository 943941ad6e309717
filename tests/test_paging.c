/*
 * The guest page walker, paging_walk(), against the SDM (vol. 3A): 32-bit
 * paging (4.3), access rights (4.6), #PF error codes (4.7) and accessed and
 * dirty flags (4.8).
 *
 * Each test writes a page directory and page tables by hand into a fake
 * guest RAM (calloc'd, no memfd: the walker only reads `host`), walks one
 * linear address and checks the result, the error code and what the walk
 * left in the entries.  Entries are built from raw SDM bit values, not from
 * the walker's own constants, so a wrong constant in mmu.h shows too.
 *
 *   0x001000  page directory (CR3)
 *   0x002000  page table for linear 0x00400000-0x007fffff (PDE 1)
 *   0x003000  a second page table, for the AND-of-levels tests
 *   0x345000  the 4 KiB frame most tests map
 *   0x800000  a 4 MiB frame, and with CR4.PSE=0 a page table
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "popek/mmu.h"

#define RAM_SIZE (16u << 20)

/* Paging-structure entry bits (SDM vol. 3A, tables 4-4 to 4-6). */
#define P 0x001u
#define RW 0x002u
#define US 0x004u
#define A 0x020u
#define D 0x040u
#define PS 0x080u
#define G 0x100u

/* #PF error code bits (SDM vol. 3A, figure 4-12). */
#define EC_P 0x1u
#define EC_W 0x2u
#define EC_U 0x4u
#define EC_RSVD 0x8u

#define PD 0x1000u
#define PT 0x2000u
#define PT2 0x3000u
#define FRAME 0x345000u
#define LIN 0x00401abcu /* PDE 1, PTE 1, offset 0xabc */
#define LARGE_FRAME 0x800000u
#define LARGE_LIN 0x00523456u /* PDE 1, offset 0x123456 in the 4 MiB page */

/* The four kinds of access, in error-code bit order. */
static const uint32_t accesses[] = {0, EC_W, EC_U, EC_W | EC_U};

static struct guest_ram ram;
static struct walk w;
static uint32_t err;

static void setup(void)
{
    ram.host = calloc(1, RAM_SIZE);
    ram.code_bits = calloc(1, RAM_SIZE / PAGE_SIZE / 8);
    cr_assert(ram.host && ram.code_bits);
    ram.size = RAM_SIZE;
    ram.memfd = -1;
}

static void teardown(void)
{
    free(ram.host);
    free(ram.code_bits);
}

TestSuite(paging, .init = setup, .fini = teardown);

static uint32_t *pde(uint32_t lin)
{
    return (uint32_t *)(ram.host + PD + (lin >> 22) * 4);
}

static uint32_t *pte(uint32_t table, uint32_t lin)
{
    return (uint32_t *)(ram.host + table + ((lin >> 12) & 0x3ff) * 4);
}

/* PDE -> PT -> FRAME for LIN, with the given flags at each level. */
static void map4k(uint32_t pde_flags, uint32_t pte_flags)
{
    *pde(LIN) = PT | pde_flags;
    *pte(PT, LIN) = FRAME | pte_flags;
}

/* Walks with CR3 = PD; `err` is poisoned first, so a success that wrote it
 * or a failure that did not both show. */
static bool walk_mode(bool pse, bool pge, bool wp, uint32_t lin, uint32_t access)
{
    struct paging_mode m = {.cr3 = PD, .pse = pse, .pge = pge, .wp = wp};
    err = 0xdeadbeef;
    return paging_walk(&ram, &m, lin, access, &w, &err);
}

static bool walk(uint32_t lin, uint32_t access)
{
    return walk_mode(false, false, true, lin, access);
}

static bool walk_pse(uint32_t lin, uint32_t access)
{
    return walk_mode(true, false, true, lin, access);
}

/* ---- 4 KiB pages ---------------------------------------------------------- */

Test(paging, translates_4k_page_and_keeps_offset)
{
    map4k(P | RW | US, P | RW | US);
    cr_assert(walk(LIN, 0));
    cr_expect_eq(w.gpa, FRAME | 0xabc);
    cr_expect(w.writable);
    cr_expect(w.user);
    cr_expect_not(w.global);
    cr_expect_not(w.large);
    cr_expect_not(w.dirty);

    cr_assert(walk(LIN & PAGE_MASK, 0));
    cr_expect_eq(w.gpa, FRAME);
    cr_assert(walk(LIN | 0xfff, 0));
    cr_expect_eq(w.gpa, FRAME | 0xfff);
}

Test(paging, cr3_low_bits_are_not_part_of_the_address)
{
    map4k(P | RW | US, P | RW | US);
    struct paging_mode m = {.cr3 = PD | 0x18 /* PCD, PWT */, .wp = true};
    cr_assert(paging_walk(&ram, &m, LIN, 0, &w, &err));
    cr_expect_eq(w.gpa, FRAME | 0xabc);
}

Test(paging, pte_flag_bits_are_not_part_of_the_address)
{
    /* Bits 11:0 of the PTE are flags (and ignored bits), never frame bits. */
    *pde(LIN) = PT | P | RW | US | 0xe00;
    *pte(PT, LIN) = FRAME | P | RW | US | 0xe00;
    cr_assert(walk(LIN, 0));
    cr_expect_eq(w.gpa, FRAME | 0xabc);
}

Test(paging, not_present_pde)
{
    /* Everything else valid: only the PDE's P bit is missing. */
    map4k(RW | US, P | RW | US);
    for (size_t i = 0; i < sizeof(accesses) / sizeof(accesses[0]); i++) {
        cr_expect_not(walk(LIN, accesses[i]), "access %u", accesses[i]);
        cr_expect_eq(err, accesses[i], "access %u: error code %#x", accesses[i], err);
    }
}

Test(paging, not_present_pte)
{
    map4k(P | RW | US, RW | US);
    for (size_t i = 0; i < sizeof(accesses) / sizeof(accesses[0]); i++) {
        cr_expect_not(walk(LIN, accesses[i]), "access %u", accesses[i]);
        cr_expect_eq(err, accesses[i], "access %u: error code %#x", accesses[i], err);
    }
}

Test(paging, empty_directory_is_not_present)
{
    cr_expect_not(walk(LIN, EC_W | EC_U));
    cr_expect_eq(err, EC_W | EC_U);
}

Test(paging, user_access_to_supervisor_pde_faults)
{
    map4k(P | RW, P | RW | US);
    cr_expect_not(walk(LIN, EC_U));
    cr_expect_eq(err, EC_P | EC_U);
    cr_expect_not(walk(LIN, EC_U | EC_W));
    cr_expect_eq(err, EC_P | EC_W | EC_U);
    /* The supervisor may. */
    cr_expect(walk(LIN, 0));
    cr_expect(walk(LIN, EC_W));
    cr_expect_not(w.user);
}

Test(paging, user_access_to_supervisor_pte_faults)
{
    map4k(P | RW | US, P | RW);
    cr_expect_not(walk(LIN, EC_U));
    cr_expect_eq(err, EC_P | EC_U);
    cr_expect_not(walk(LIN, EC_U | EC_W));
    cr_expect_eq(err, EC_P | EC_W | EC_U);
    cr_expect(walk(LIN, EC_W));
    cr_expect_not(w.user);
}

Test(paging, user_write_to_read_only_page_faults)
{
    /* Read-only at the PTE level, then at the PDE level. */
    map4k(P | RW | US, P | US);
    cr_expect(walk(LIN, EC_U));
    cr_expect_not(walk(LIN, EC_U | EC_W));
    cr_expect_eq(err, EC_P | EC_W | EC_U);

    map4k(P | US, P | RW | US);
    cr_expect(walk(LIN, EC_U));
    cr_expect_not(walk(LIN, EC_U | EC_W));
    cr_expect_eq(err, EC_P | EC_W | EC_U);
}

Test(paging, user_write_faults_even_with_wp_clear)
{
    /* CR0.WP only concerns supervisor writes (SDM 4.6.1). */
    map4k(P | RW | US, P | US);
    cr_expect_not(walk_mode(false, false, false, LIN, EC_U | EC_W));
    cr_expect_eq(err, EC_P | EC_W | EC_U);
}

Test(paging, supervisor_write_to_read_only_page_faults_with_wp)
{
    map4k(P | US, P | US);
    cr_expect_not(walk_mode(false, false, true, LIN, EC_W));
    cr_expect_eq(err, EC_P | EC_W);
    map4k(P | RW, P);
    cr_expect_not(walk_mode(false, false, true, LIN, EC_W));
    cr_expect_eq(err, EC_P | EC_W);
}

Test(paging, supervisor_write_to_read_only_page_allowed_without_wp)
{
    map4k(P | US, P | US);
    cr_assert(walk_mode(false, false, false, LIN, EC_W));
    cr_expect_eq(w.gpa, FRAME | 0xabc);
    cr_expect_not(w.writable, "the page itself stays read-only");
    cr_expect(w.dirty);
    cr_expect(*pte(PT, LIN) & D);
}

Test(paging, effective_rights_are_the_and_of_both_levels)
{
    /* Every combination of R/W and U/S in the PDE and in the PTE. */
    for (uint32_t pd_bits = 0; pd_bits < 4; pd_bits++) {
        for (uint32_t pt_bits = 0; pt_bits < 4; pt_bits++) {
            uint32_t pd_flags = P | pd_bits << 1, pt_flags = P | pt_bits << 1;
            map4k(pd_flags, pt_flags);
            cr_assert(walk(LIN, 0), "PDE %#x PTE %#x", pd_flags, pt_flags);
            cr_expect_eq(w.writable, (pd_flags & pt_flags & RW) != 0, "PDE %#x PTE %#x", pd_flags,
                         pt_flags);
            cr_expect_eq(w.user, (pd_flags & pt_flags & US) != 0, "PDE %#x PTE %#x", pd_flags,
                         pt_flags);
            bool user_write_ok = (pd_flags & pt_flags & (RW | US)) == (RW | US);
            cr_expect_eq(walk(LIN, EC_U | EC_W), user_write_ok, "PDE %#x PTE %#x", pd_flags,
                         pt_flags);
            if (!user_write_ok)
                cr_expect_eq(err, EC_P | EC_W | EC_U);
        }
    }
}

Test(paging, rights_of_one_table_do_not_leak_to_another)
{
    /* Two PDEs with different rights: each page gets its own PDE's. */
    uint32_t lin2 = LIN + (4u << 20);
    *pde(LIN) = PT | P | RW | US;
    *pte(PT, LIN) = FRAME | P | RW | US;
    *pde(lin2) = PT2 | P;
    *pte(PT2, lin2) = (FRAME + PAGE_SIZE) | P | RW | US;
    cr_expect(walk(LIN, EC_U | EC_W));
    cr_expect_not(walk(lin2, EC_U));
    cr_expect_eq(err, EC_P | EC_U);
    cr_assert(walk(lin2, 0));
    cr_expect_eq(w.gpa, (FRAME + PAGE_SIZE) | 0xabc);
}

/* ---- accessed and dirty flags --------------------------------------------- */

Test(paging, read_sets_accessed_in_both_levels_not_dirty)
{
    map4k(P | RW | US, P | RW | US);
    cr_assert(walk(LIN, EC_U));
    cr_expect_eq(*pde(LIN), PT | P | RW | US | A);
    cr_expect_eq(*pte(PT, LIN), FRAME | P | RW | US | A);
    cr_expect_not(w.dirty);
}

Test(paging, write_sets_dirty_in_the_pte_only)
{
    map4k(P | RW | US, P | RW | US);
    cr_assert(walk(LIN, EC_U | EC_W));
    /* D is ignored in a PDE that references a page table: the CPU leaves it. */
    cr_expect_eq(*pde(LIN), PT | P | RW | US | A);
    cr_expect_eq(*pte(PT, LIN), FRAME | P | RW | US | A | D);
    cr_expect(w.dirty);
}

Test(paging, dirty_reported_from_an_earlier_write)
{
    map4k(P | RW | US, P | RW | US | A | D);
    cr_assert(walk(LIN, 0));
    cr_expect(w.dirty);
}

Test(paging, faulting_walk_sets_no_accessed_or_dirty_bit)
{
    /* Protection faults at either level, a not-present PTE, in turn. */
    static const uint32_t cases[][3] = {
        /* PDE flags, PTE flags, access */
        {P | RW, P | RW | US, EC_U},
        {P | RW | US, P | US, EC_U | EC_W},
        {P | RW | US, P | US, EC_W},
        {P | RW | US, RW | US, EC_W},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        map4k(cases[i][0], cases[i][1]);
        cr_expect_not(walk(LIN, cases[i][2]), "case %zu", i);
        cr_expect_eq(*pde(LIN), PT | cases[i][0], "case %zu: PDE %#x", i, *pde(LIN));
        cr_expect_eq(*pte(PT, LIN), FRAME | cases[i][1], "case %zu: PTE %#x", i, *pte(PT, LIN));
    }
}

/* ---- 4 MiB pages ------------------------------------------------------------ */

Test(paging, pse_maps_a_4m_page)
{
    *pde(LARGE_LIN) = LARGE_FRAME | P | RW | US | PS;
    cr_assert(walk_pse(LARGE_LIN, 0));
    cr_expect_eq(w.gpa, LARGE_FRAME | 0x123456);
    cr_expect(w.large);
    cr_expect(w.writable);
    cr_expect(w.user);
    cr_expect_not(w.global);
    cr_assert(walk_pse(LARGE_LIN | 0x3fffff, 0));
    cr_expect_eq(w.gpa, LARGE_FRAME | 0x3fffff);
}

Test(paging, without_pse_ps_is_ignored_and_the_pde_points_to_a_page_table)
{
    /* CR4.PSE=0: the same PDE references a page table at LARGE_FRAME. */
    *pde(LARGE_LIN) = LARGE_FRAME | P | RW | US | PS;
    *pte(LARGE_FRAME, LARGE_LIN) = FRAME | P | RW | US;
    cr_assert(walk(LARGE_LIN, 0));
    cr_expect_eq(w.gpa, FRAME | 0x456);
    cr_expect_not(w.large);
    cr_expect_eq(*pte(LARGE_FRAME, LARGE_LIN), FRAME | P | RW | US | A);
}

Test(paging, without_pse_bits_21_13_are_address_bits)
{
    /* Reserved only in a 4 MiB PDE: here they place the page table. */
    uint32_t table = 0x3fe000u;
    *pde(LARGE_LIN) = table | P | RW | US | PS;
    *pte(table, LARGE_LIN) = FRAME | P | RW | US;
    cr_assert(walk(LARGE_LIN, 0));
    cr_expect_eq(w.gpa, FRAME | 0x456);
}

Test(paging, pse_4k_pages_still_work)
{
    map4k(P | RW | US, P | RW | US);
    cr_assert(walk_pse(LIN, 0));
    cr_expect_eq(w.gpa, FRAME | 0xabc);
    cr_expect_not(w.large);
}

Test(paging, large_page_rights)
{
    *pde(LARGE_LIN) = LARGE_FRAME | P | PS;
    cr_expect_not(walk_pse(LARGE_LIN, EC_U));
    cr_expect_eq(err, EC_P | EC_U);
    cr_expect_not(walk_pse(LARGE_LIN, EC_W));
    cr_expect_eq(err, EC_P | EC_W);
    cr_expect(walk_mode(true, false, false, LARGE_LIN, EC_W));
    *pde(LARGE_LIN) = LARGE_FRAME | P | US | PS;
    cr_expect_not(walk_pse(LARGE_LIN, EC_U | EC_W));
    cr_expect_eq(err, EC_P | EC_W | EC_U);
    *pde(LARGE_LIN) = LARGE_FRAME | RW | US | PS;
    cr_expect_not(walk_pse(LARGE_LIN, EC_U | EC_W));
    cr_expect_eq(err, EC_W | EC_U);
}

Test(paging, large_page_accessed_and_dirty_in_the_pde)
{
    *pde(LARGE_LIN) = LARGE_FRAME | P | RW | US | PS;
    cr_assert(walk_pse(LARGE_LIN, EC_U));
    cr_expect_eq(*pde(LARGE_LIN), LARGE_FRAME | P | RW | US | PS | A);
    cr_expect_not(w.dirty);
    cr_assert(walk_pse(LARGE_LIN, EC_U | EC_W));
    cr_expect_eq(*pde(LARGE_LIN), LARGE_FRAME | P | RW | US | PS | A | D);
    cr_expect(w.dirty);
    /* Nothing was written where a page table would be. */
    cr_expect_eq(*pte(LARGE_FRAME, LARGE_LIN), 0);
}

Test(paging, large_page_fault_sets_no_accessed_bit)
{
    *pde(LARGE_LIN) = LARGE_FRAME | P | US | PS;
    cr_expect_not(walk_pse(LARGE_LIN, EC_W | EC_U));
    cr_expect_eq(*pde(LARGE_LIN), LARGE_FRAME | P | US | PS);
}

Test(paging, large_page_reserved_bits_21_13)
{
    /* Without PSE-36, bits 21:13 of a 4 MiB PDE are reserved (SDM table 4-4). */
    for (unsigned bit = 13; bit <= 21; bit++) {
        for (size_t i = 0; i < sizeof(accesses) / sizeof(accesses[0]); i++) {
            uint32_t entry = LARGE_FRAME | (1u << bit) | P | RW | US | PS;
            *pde(LARGE_LIN) = entry;
            cr_expect_not(walk_pse(LARGE_LIN, accesses[i]), "bit %u access %u", bit, accesses[i]);
            cr_expect_eq(err, EC_RSVD | EC_P | accesses[i], "bit %u access %u: error code %#x",
                         bit, accesses[i], err);
            cr_expect_eq(*pde(LARGE_LIN), entry, "bit %u: A or D set by a faulting walk", bit);
        }
    }
}

Test(paging, large_page_reserved_bits_beat_rights_but_not_presence)
{
    /* A reserved-bit violation is reported even where the rights would
     * also refuse the access, and not at all in a not-present entry. */
    *pde(LARGE_LIN) = LARGE_FRAME | (1u << 13) | P | PS;
    cr_expect_not(walk_pse(LARGE_LIN, EC_U | EC_W));
    cr_expect_eq(err, EC_RSVD | EC_P | EC_W | EC_U);
    *pde(LARGE_LIN) = LARGE_FRAME | (1u << 13) | RW | US | PS;
    cr_expect_not(walk_pse(LARGE_LIN, EC_U));
    cr_expect_eq(err, EC_U);
}

Test(paging, large_page_pat_bit_12_is_not_reserved)
{
    *pde(LARGE_LIN) = LARGE_FRAME | (1u << 12) | P | RW | US | PS;
    cr_assert(walk_pse(LARGE_LIN, 0));
    cr_expect_eq(w.gpa, LARGE_FRAME | 0x123456);
}

/* ---- global pages ------------------------------------------------------------ */

Test(paging, global_4k_page_only_with_pge)
{
    map4k(P | RW | US, P | RW | US | G);
    cr_assert(walk_mode(false, true, true, LIN, 0));
    cr_expect(w.global);
    cr_assert(walk_mode(false, false, true, LIN, 0));
    cr_expect_not(w.global);
}

Test(paging, global_bit_of_a_pde_referencing_a_table_is_ignored)
{
    map4k(P | RW | US | G, P | RW | US);
    cr_assert(walk_mode(true, true, true, LIN, 0));
    cr_expect_not(w.global);
}

Test(paging, global_4m_page_only_with_pge)
{
    *pde(LARGE_LIN) = LARGE_FRAME | P | RW | US | PS | G;
    cr_assert(walk_mode(true, true, true, LARGE_LIN, 0));
    cr_expect(w.global);
    cr_expect(w.large);
    cr_assert(walk_mode(true, false, true, LARGE_LIN, 0));
    cr_expect_not(w.global);
}

/* ---- tables outside RAM ------------------------------------------------------ */

Test(paging, directory_outside_ram_reads_as_not_present)
{
    struct paging_mode m = {.cr3 = RAM_SIZE, .wp = true};
    for (size_t i = 0; i < sizeof(accesses) / sizeof(accesses[0]); i++) {
        err = 0xdeadbeef;
        cr_expect_not(paging_walk(&ram, &m, LIN, accesses[i], &w, &err));
        cr_expect_eq(err, accesses[i]);
    }
    m.cr3 = 0xfffff000u; /* the last PDE ends exactly at 4 GiB */
    cr_expect_not(paging_walk(&ram, &m, 0xffffffffu, EC_W, &w, &err));
    cr_expect_eq(err, EC_W);
}

Test(paging, page_table_outside_ram_reads_as_not_present)
{
    *pde(LIN) = RAM_SIZE | P | RW | US;
    for (size_t i = 0; i < sizeof(accesses) / sizeof(accesses[0]); i++) {
        cr_expect_not(walk(LIN, accesses[i]));
        cr_expect_eq(err, accesses[i]);
    }
    cr_expect_eq(*pde(LIN), RAM_SIZE | P | RW | US, "A set by a faulting walk");
    /* The highest page table: its last PTE ends exactly at 4 GiB. */
    *pde(LIN) = 0xfffff000u | P | RW | US;
    cr_expect_not(walk(0x007ff000u, EC_U));
    cr_expect_eq(err, EC_U);
}

Test(paging, page_table_in_the_last_page_of_ram)
{
    uint32_t table = RAM_SIZE - PAGE_SIZE, lin = 0x007ff123u; /* PTE 1023 */
    *pde(lin) = table | P | RW | US;
    *pte(table, lin) = FRAME | P | RW | US;
    cr_assert(walk(lin, 0));
    cr_expect_eq(w.gpa, FRAME | 0x123);
}

Test(paging, frame_outside_ram_still_translates)
{
    /* A page may map MMIO: what lies at the frame is the caller's business. */
    map4k(P | RW | US, P | RW | US);
    *pte(PT, LIN) = 0xfebff000u | P | RW | US;
    cr_assert(walk(LIN, EC_W));
    cr_expect_eq(w.gpa, 0xfebffabcu);
    *pde(LARGE_LIN) = 0xfec00000u | P | RW | US | PS;
    cr_assert(walk_pse(LARGE_LIN, 0));
    cr_expect_eq(w.gpa, 0xfed23456u);
}
