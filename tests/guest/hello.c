/*
 * Runtime smoke test, the first kernel to get working on a new machine:
 * multiboot entry, COM1 output, printf conversions, one software interrupt
 * through the runtime's IDT, and exit through isa-debug-exit.
 */
#include "lib/guest.h"

void kmain(void)
{
    printf("hello from the guest\n");
    printf("printf: %x %08x %d %d %u %s %c %04x|%5d|%%\n", 0xABCDEFu, 0x1234u, -42, 0,
           4000000000u, "str", 'c', 0x12u, 17);
    printf("printf: int min %d, zero-padded negative %05d\n", (int32_t)0x80000000, -7);
    trap_expect(NULL);
    __asm__ volatile("int $0x30");
    printf("int 0x30: vector=%02x delivered=%u\n", trap_last.vector, trap_last.count);
}
