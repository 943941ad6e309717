/*
 * Stack segments (SDM vol. 3A, 6.2 and 3.4.5): with a 32-bit SS whose base is
 * SCRATCH_ADDR, PUSH/CALL/INT write at base+ESP and ESP stays an offset;
 * EBP- and ESP-based operands default to SS, a DS override does not; an INT
 * frame lands on SS:ESP and IRET pops it.  With a 16-bit SS (B=0) the stack
 * pointer is SP: ESP[31:16] is untouched and SP wraps at 64 KiB.
 */
#include "lib/guest.h"

#define SEL_STK32 0x18
#define SEL_STK16 0x20

extern uint32_t st_res[16];
extern char stack_seg_int_handler[];
void stack_seg_based(void);
void stack_seg_16(void);

void kmain(void)
{
    volatile uint32_t *scr = (volatile uint32_t *)SCRATCH_ADDR;

    gdt_set(SEL_STK32 >> 3, SCRATCH_ADDR, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    gdt_set(SEL_STK16 >> 3, SCRATCH_ADDR, 0xFFFF, ACC_DATA32, 0);
    idt_set_gate(0x43, SEL_CODE32, (uint32_t)stack_seg_int_handler, DESC_P | SYS_INT_GATE32);

    stack_seg_based();
    printf("ss base %08x, esp 1000: push 11223344 -> linear %08x = %08x\n", SCRATCH_ADDR,
           SCRATCH_ADDR + 0xFFC, scr[0xFFC / 4]);
    printf("call/pop on based stack: eip-label=%u, esp after=%08x\n", st_res[0], st_res[1]);
    printf("mov (ebp=10ff0) default ss: linear %08x = %08x, read back %08x\n",
           SCRATCH_ADDR + 0x10FF0, scr[0x10FF0 / 4], st_res[2]);
    printf("mov ds:4(ebp): flat 00010ff4 = %08x\n", *(volatile uint32_t *)0x10FF4);
    printf("(esp) on based stack = %08x\n", st_res[3]);
    printf("int 43 on based stack: handler esp=%08x frame eip=label+%u cs=%04x, esp after iret=%08x\n",
           st_res[5], st_res[6], st_res[7] & 0xFFFF, st_res[4]);
    printf("int frame at linear %08x: cs=%04x\n", SCRATCH_ADDR + st_res[5] + 4,
           scr[(st_res[5] + 4) / 4] & 0xFFFF);

    stack_seg_16();
    printf("16-bit ss, esp 12340010: push -> esp=%08x linear %08x = %08x, pop -> esp=%08x\n",
           st_res[8], SCRATCH_ADDR + 0xC, scr[0xC / 4], st_res[9]);
    printf("16-bit ss, esp abcd0000: push -> esp=%08x linear %08x = %08x, pop -> esp=%08x\n",
           st_res[10], SCRATCH_ADDR + 0xFFFC, scr[0xFFFC / 4], st_res[11]);
}
