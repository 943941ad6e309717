/*
 * Cache and TLB maintenance at CPL 0 with paging off: WBINVD, INVD and INVLPG
 * execute without faulting and change nothing visible.  INVD discards dirty
 * lines on real hardware, so it runs right after WBINVD with no store in
 * between.
 */
#include "lib/guest.h"

void kmain(void)
{
    static volatile uint32_t data = 0x600DCAFE;

    trap_expect(NULL);
    __asm__ volatile("wbinvd" : : : "memory");
    printf("wbinvd: exceptions=%u data=%08x\n", trap_last.count, data);
    __asm__ volatile("wbinvd\n\tinvd" : : : "memory");
    printf("wbinvd+invd: exceptions=%u data=%08x\n", trap_last.count, data);
    __asm__ volatile("invlpg (%0)" : : "r"(&data) : "memory");
    __asm__ volatile("invlpg (%0)" : : "r"(0xFFFFF000) : "memory");
    printf("invlpg with paging off: exceptions=%u data=%08x\n", trap_last.count, data);
    trap_disarm();
}
