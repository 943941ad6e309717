/*
 * A triple fault: with an empty IDT (limit 0) the #GP from a bad DS load
 * cannot be delivered (#GP), which makes a #DF, which cannot be delivered
 * either, so the processor shuts down (SDM vol. 3A, 6.15 "Interrupt 8").
 * The PC turns shutdown into a reset; under -no-reboot the emulator exits
 * with status 0 instead.  Nothing may be printed after the first line.
 */
#include "lib/guest.h"

void kmain(void)
{
    printf("triple fault: about to load an empty IDT and fault\n");
    idt_load(IDT_ADDR, 0);
    __asm__ volatile("movw %w0, %%ds" : : "r"(0x00F8) : "memory");
    printf("triple fault: still running\n");
}
