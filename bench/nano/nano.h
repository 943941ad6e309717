/*
 * Memory layout of the nanobenchmark kernel, shared by nano.c and nano.S.
 * The runtime of tests/guest/lib owns everything below SCRATCH_ADDR (kernel,
 * GDT/IDT/TSS, both stacks); the page tables and the pages the benchmarks
 * fault on or remap live in its scratch area.  0-4 MiB is identity-mapped
 * with user access, so ring-3 code and its stack need nothing special.
 */
#ifndef NANO_H
#define NANO_H

#include "lib/guest.h"

#define NANO_PD       (SCRATCH_ADDR + 0x0000)
#define NANO_PT_LOW   (SCRATCH_ADDR + 0x1000)  /* 0-4 MiB, identity */
#define NANO_PT_TEST  (SCRATCH_ADDR + 0x2000)  /* 4-8 MiB: the pages below */
#define NANO_FRAMES   (SCRATCH_ADDR + 0x10000)

#define NANO_VA_PGFAULT 0x00400000  /* mapped by the #PF handler, unmapped by the loop */
#define NANO_VA_PTEMOD  0x00401000  /* its PTE is rewritten, the page never touched */
#define NANO_VA_INVLPG  0x00402000  /* its PTE is rewritten and INVLPG'd */

/* Address of the PTE that maps linear address va (4-8 MiB only). */
#define NANO_PTE(va)  (NANO_PT_TEST + (((va) >> 12) & 0x3FF) * 4)

#define NANO_PG_URW   (PTE_P | PTE_RW | PTE_US)

#define NANO_VEC_SYSCALL 0x80

#endif
