/*
 * Debug exceptions from breakpoints and single-step (SDM vol. 3B, 18.2-18.3).
 *   DR0-DR3 hold any linear address; DR6/DR7 reserved bits are not printed
 *   (DR6 B0-B3/BD/BS/BT and DR7 enables/RW/LEN/GD only).
 *   DR4/DR5 alias DR6/DR7 when CR4.DE=0 and are #UD when CR4.DE=1.
 *   #DB: data write breakpoint (trap, EIP after the write, DR6.B0), data
 *   read/write breakpoint on a read, instruction breakpoint (fault, EIP of the
 *   instruction, DR6.B1), single-step (TF set by POPF traps after the
 *   instruction following the POPF, DR6.BS).  General detect and INT1 are in
 *   debug_gd_int1.c (QEMU gets both wrong).
 */
#include "lib/guest.h"

#define DR6_SHOWN 0x0000E00F
#define DR7_SHOWN 0xFFFF23FF

static uint32_t rd_dr6(void) { uint32_t v; __asm__ volatile("movl %%dr6, %0" : "=r"(v)); return v; }
static uint32_t rd_dr7(void) { uint32_t v; __asm__ volatile("movl %%dr7, %0" : "=r"(v)); return v; }
static void wr_dr6(uint32_t v) { __asm__ volatile("movl %0, %%dr6" : : "r"(v)); }
static void wr_dr7(uint32_t v) { __asm__ volatile("movl %0, %%dr7" : : "r"(v)); }

static volatile uint32_t watched;
static uint32_t db_dr6, db_dr7, db_eip, db_count;

/* #DB handler: record, turn breakpoints and single-stepping off, resume. */
static void db_handler(struct trap_frame *f)
{
    db_dr6 = rd_dr6();
    db_dr7 = rd_dr7();
    db_eip = f->eip;
    db_count++;
    wr_dr7(0);
    f->eflags &= ~EFLAGS_TF;
}

static void db_reset(void)
{
    db_count = 0;
    db_eip = 0;
    wr_dr6(0);
}

static void db_report(const char *name, const void *label)
{
    if (!db_count) {
        printf("%s: no #DB\n", name);
        return;
    }
    printf("%s: #DB count=%u eip=label%c%d dr6=%08x\n", name, db_count,
           db_eip >= (uint32_t)label ? '+' : '-',
           db_eip >= (uint32_t)label ? (int)(db_eip - (uint32_t)label) : (int)((uint32_t)label - db_eip),
           db_dr6 & DR6_SHOWN);
}


void kmain(void)
{
    trap_set_handler(VEC_DB, db_handler);

    /* Data write breakpoint, 4 bytes: a trap after the writing instruction. */
    extern char w_at[];
    db_reset();
    __asm__ volatile("movl %0, %%dr0" : : "r"(&watched));
    wr_dr7(0x000D0001);
    __asm__ volatile("w_at: movl $1, (%0)\n\tnop" : : "r"(&watched) : "memory");
    db_report("write breakpoint", w_at);
    printf("write breakpoint: value written=%u\n", watched);

    /* A read does not match a write-only breakpoint but matches RW=11. */
    extern char r1_at[], r2_at[];
    db_reset();
    wr_dr7(0x000D0001);
    __asm__ volatile("r1_at: movl (%0), %%eax\n\tnop" : : "r"(&watched) : "eax", "memory");
    wr_dr7(0);
    db_report("read vs write-only breakpoint", r1_at);
    db_reset();
    wr_dr7(0x000F0001);
    __asm__ volatile("r2_at: movl (%0), %%eax\n\tnop" : : "r"(&watched) : "eax", "memory");
    db_report("read vs read/write breakpoint", r2_at);

    /* Instruction breakpoint in DR1: a fault before the instruction runs. */
    extern char x_at[];
    uint32_t ran = 0;
    db_reset();
    __asm__ volatile("movl $x_at, %%eax\n\tmovl %%eax, %%dr1" : : : "eax");
    wr_dr7(0x00000004);
    __asm__ volatile("nop\nx_at: incl %0" : "+r"(ran) : : "memory", "cc");
    db_report("instruction breakpoint", x_at);
    printf("instruction breakpoint: instruction ran once=%u\n", ran == 1);

    /* Single step: POPF sets TF, the next instruction runs, then #DB. */
    extern char ss_next[];
    db_reset();
    __asm__ volatile("pushl $0x102\n\tpopfl\n\tnop\nss_next: nop\n\tpushl $2\n\tpopfl" : : : "memory", "cc");
    db_report("single step after popf", ss_next);

    trap_set_handler(VEC_DB, NULL);
    wr_dr7(0);
}
