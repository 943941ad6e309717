/*
 * Memory-mapped I/O: guest physical addresses that are not RAM.  Popek never
 * maps them; every access faults and its monitor emulates the instruction
 * against the MMIO bus.  An unclaimed address in the PCI hole (0xE0000000)
 * behaves as on a PC, a master abort: reads return all ones, writes vanish.
 * Checks the emulated forms: MOV (r/m, imm, moffs), MOVZX/MOVSX, and the
 * flags of CMP/TEST/AND/OR/ADD/SUB/XOR with a memory operand, through a
 * flat data segment with paging off.  Every flags line was checked by hand
 * against the SDM.  QEMU 7.2 reads unassigned memory as zeros (not what a PC
 * does), hence qemu-mismatch.
 */
#include "lib/guest.h"

#define HOLE 0xE0000000u

void kmain(void)
{
    volatile uint32_t *p32 = (volatile uint32_t *)HOLE;
    volatile uint16_t *p16 = (volatile uint16_t *)HOLE;
    volatile uint8_t *p8 = (volatile uint8_t *)HOLE;
    uint32_t v;

    printf("mov32 read: %08x\n", *p32);
    printf("mov16 read: %04x, mov8 read: %02x\n", *p16, *p8);
    __asm__ volatile("movzbl (%1), %0" : "=r"(v) : "r"(HOLE));
    printf("movzbl: %08x\n", v);
    __asm__ volatile("movsbl (%1), %0" : "=r"(v) : "r"(HOLE));
    printf("movsbl: %08x\n", v);
    __asm__ volatile("movzwl (%1), %0" : "=r"(v) : "r"(HOLE + 2));
    printf("movzwl: %08x\n", v);
    __asm__ volatile("movl %1, %%eax\n\tmovl 0xE0000010, %%eax\n\tmovl %%eax, %0"
                     : "=r"(v) : "i"(0x12345678) : "eax");
    printf("moffs read: %08x\n", v);
    *p32 = 0x12345678;
    __asm__ volatile("movl $0x5a5a5a5a, (%0)" : : "r"(HOLE + 4) : "memory");
    printf("after writes: %08x %08x\n", p32[0], p32[1]);

    uint32_t f;
    __asm__ volatile("cmpl $-1, (%1)\n\tpushfl\n\tpopl %0" : "=r"(f) : "r"(HOLE) : "cc");
    printf("cmpl $-1: flags %03x\n", f & 0x8d5);
    __asm__ volatile("cmpl $1, (%1)\n\tpushfl\n\tpopl %0" : "=r"(f) : "r"(HOLE) : "cc");
    printf("cmpl $1: flags %03x\n", f & 0x8d5);
    __asm__ volatile("testb $0x80, (%1)\n\tpushfl\n\tpopl %0" : "=r"(f) : "r"(HOLE) : "cc");
    printf("testb $0x80: flags %03x\n", f & 0x8d5);
    __asm__ volatile("andl $0x0f, (%1)\n\tpushfl\n\tpopl %0" : "=r"(f) : "r"(HOLE) : "cc", "memory");
    printf("andl $0x0f: flags %03x\n", f & 0x8d5);
    __asm__ volatile("orw $1, (%1)\n\tpushfl\n\tpopl %0" : "=r"(f) : "r"(HOLE) : "cc", "memory");
    printf("orw $1: flags %03x\n", f & 0x8d5);
    __asm__ volatile("addb $1, (%1)\n\tpushfl\n\tpopl %0" : "=r"(f) : "r"(HOLE) : "cc", "memory");
    printf("addb $1: flags %03x\n", f & 0x8d5);
    __asm__ volatile("subl $2, (%1)\n\tpushfl\n\tpopl %0" : "=r"(f) : "r"(HOLE) : "cc", "memory");
    printf("subl $2: flags %03x\n", f & 0x8d5);
    v = 0x0f0f0f0f;
    __asm__ volatile("xorl (%2), %0\n\tpushfl\n\tpopl %1" : "+r"(v), "=r"(f) : "r"(HOLE) : "cc");
    printf("xorl into reg: %08x flags %03x\n", v, f & 0x8d5);
    exit_qemu(0);
}
