/*
 * Code segment limit checks (SDM vol. 3A, 5.3; vol. 2 JMP/CALL: "#GP(0) If
 * the target offset in destination operand is beyond the new code segment
 * limit").  Code segment 0x18 has base SCRATCH_ADDR and byte limit 0xfff:
 *   far JMP/CALL/RET/IRET to an offset beyond the limit fault with #GP(0)
 *   before the transfer (saved CS:EIP = the far transfer itself);
 *   executing up to the limit works, fetching the next instruction beyond it
 *   is #GP(0) with CS:EIP = that instruction, and so is an instruction that
 *   straddles the limit.
 *
 * qemu-mismatch: QEMU 7.2 checks the limit on far JMP but reports #GP with
 * the selector as error code on far CALL, and does not check it on far RET,
 * IRET or instruction fetch at all (the guest runs off into memory and hangs),
 * so this golden file is the SDM's answer.
 */
#include "lib/guest.h"

#define SEL_SMALL 0x18

static uint32_t gp_cs, gp_eip, gp_err, gp_count;
static uint32_t resume_at;

/* Record the #GP and go back to flat code at resume_at. */
static void gp_handler(struct trap_frame *f)
{
    gp_cs = f->cs & 0xFFFF;
    gp_eip = f->eip;
    gp_err = f->error;
    gp_count++;
    f->cs = SEL_CODE32;
    f->eip = resume_at;
}

static void report(const char *name, const void *flat_label)
{
    if (!gp_count) {
        printf("%s: no exception\n", name);
        return;
    }
    if (gp_cs == SEL_CODE32)
        printf("%s: #GP err=%04x cs=%04x eip=fault+%d\n", name, gp_err, gp_cs,
               (int)(gp_eip - (uint32_t)flat_label));
    else
        printf("%s: #GP err=%04x cs=%04x eip=%08x\n", name, gp_err, gp_cs, gp_eip);
    gp_count = 0;
}

void kmain(void)
{
    volatile uint8_t *code = (volatile uint8_t *)SCRATCH_ADDR;

    gdt_set(SEL_SMALL >> 3, SCRATCH_ADDR, 0x00FFF, ACC_CODE32, DESC_DB);
    trap_set_handler(VEC_GP, gp_handler);

    extern char j1_at[], j1_res[];
    resume_at = (uint32_t)j1_res;
    __asm__ volatile("j1_at: ljmp %0, $0x1000\nj1_res:" : : "i"(SEL_SMALL) : "memory");
    report("ljmp 0018:00001000", j1_at);

    extern char c1_at[], c1_res[];
    resume_at = (uint32_t)c1_res;
    __asm__ volatile("movl %%esp, %%ebx\nc1_at: lcall %0, $0x2000\nc1_res:\n\tmovl %%ebx, %%esp"
                     : : "i"(SEL_SMALL) : "ebx", "memory");
    report("lcall 0018:00002000", c1_at);

    extern char r1_at[], r1_res[];
    resume_at = (uint32_t)r1_res;
    __asm__ volatile("movl %%esp, %%ebx\n\tpushl %0\n\tpushl $0x1000\nr1_at: lret\nr1_res:\n\t"
                     "movl %%ebx, %%esp"
                     : : "i"(SEL_SMALL) : "ebx", "memory");
    report("lret to 0018:00001000", r1_at);

    extern char i1_at[], i1_res[];
    resume_at = (uint32_t)i1_res;
    __asm__ volatile("movl %%esp, %%ebx\n\tpushl $2\n\tpushl %0\n\tpushl $0x1000\ni1_at: iret\n"
                     "i1_res:\n\tmovl %%ebx, %%esp"
                     : : "i"(SEL_SMALL) : "ebx", "memory");
    report("iret to 0018:00001000", i1_at);

    /* Execute nops up to the limit: 0xffc..0xfff are nops, 0x1000 is beyond. */
    extern char e1_res[];
    code[0xFFC] = 0x90;
    code[0xFFD] = 0x90;
    code[0xFFE] = 0x90;
    code[0xFFF] = 0x90;
    resume_at = (uint32_t)e1_res;
    __asm__ volatile("ljmp %0, $0xffc\ne1_res:" : : "i"(SEL_SMALL) : "memory");
    report("nops at 0018:0ffc-0fff then fall off the limit", 0);

    /* mov $imm32, %eax at 0xffd: its last byte is at 0x1001. */
    extern char e2_res[];
    code[0xFFD] = 0xB8;
    resume_at = (uint32_t)e2_res;
    __asm__ volatile("ljmp %0, $0xffd\ne2_res:" : : "i"(SEL_SMALL) : "eax", "memory");
    report("5-byte instruction at 0018:0ffd straddling the limit", 0);

    trap_set_handler(VEC_GP, NULL);
}
