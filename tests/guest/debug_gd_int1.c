/*
 * Debug exceptions QEMU does not model (SDM vol. 3B, 18.2.4 and 18.3.1.2;
 * vol. 2 "INT n/INTO/INT3/INT1"):
 *   General detect: with DR7.GD=1 any MOV to/from a debug register is a #DB
 *   fault (saved EIP = the MOV) with DR6.BD set; the processor clears GD on
 *   entry to the handler so the handler can use the debug registers.
 *   INT1 (F1, ICEBP) raises a #DB trap: saved EIP after the F1 byte.
 *
 * qemu-mismatch: QEMU 7.2 ignores DR7.GD and raises #UD for F1, so this
 * golden file is the SDM's answer.
 */
#include "lib/guest.h"

static uint32_t db_dr6, db_dr7, db_eip, db_count;

static void db_handler(struct trap_frame *f)
{
    __asm__ volatile("movl %%dr6, %0\n\tmovl %%dr7, %1" : "=r"(db_dr6), "=r"(db_dr7));
    __asm__ volatile("movl %0, %%dr7" : : "r"(0));
    db_eip = f->eip;
    db_count++;
}

void kmain(void)
{
    extern char gd_at[];
    __asm__ volatile("movl %0, %%dr6" : : "r"(0));
    trap_set_handler(VEC_DB, db_handler);
    __asm__ volatile("movl %0, %%dr7" : : "r"(0x00002000));
    __asm__ volatile("gd_at: movl %%dr0, %%eax" : : : "eax", "memory");
    printf("general detect: #DB count=%u eip=label+%u dr6.bd=%u dr7.gd in handler=%u\n", db_count,
           db_eip - (uint32_t)gd_at, (db_dr6 >> 13) & 1, (db_dr7 >> 13) & 1);
    trap_set_handler(VEC_DB, NULL);

    extern char icebp_at[];
    trap_expect(NULL);
    __asm__ volatile("icebp_at: .byte 0xf1" : : : "memory");
    trap_print("int1 (f1)", icebp_at);
}
