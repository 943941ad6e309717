/*
 * PUSHF/POPF and CLI/STI at CPL 0 (SDM vol. 2, POPF: at CPL 0 every flag
 * except RF, VIP, VIF and VM can be modified; VIP, VIF, VM and the reserved
 * bits are unaffected, RF is cleared).  Covers IF toggling through POPF, the
 * AC and ID toggles CPU detection code uses, IOPL and NT, and the 16-bit forms
 * (PUSHFW stores 2 bytes; POPFW leaves EFLAGS[31:16] alone).  TF is never set
 * here (single-stepping is in debug_trap.c).
 */
#include "lib/guest.h"

static uint32_t popf_pushf(uint32_t v)
{
    uint32_t r;
    __asm__ volatile("pushl %1\n\tpopfl\n\tpushfl\n\tpopl %0\n\t"
                     "pushl $2\n\tpopfl"
                     : "=r"(r) : "r"(v) : "cc", "memory");
    return r;
}

void kmain(void)
{
    uint32_t f, esp0, esp1;
    uint16_t w;

    /* Arithmetic flags at this point depend on compiled code: mask them. */
    printf("system flags at entry: %08x\n", read_eflags() & ~0x8D5u);
    printf("popf 00000000 -> %08x\n", popf_pushf(0));
    printf("popf arith 000008d5 -> %08x\n", popf_pushf(0x8D5));
    printf("popf df 00000400 -> %08x\n", popf_pushf(EFLAGS_DF | 2));

    /* Interrupts stay masked at the PICs, so IF=1 delivers nothing. */
    printf("popf if 00000202 -> %08x\n", popf_pushf(EFLAGS_IF | 2));
    __asm__ volatile("sti\n\tpushfl\n\tpopl %0\n\tcli" : "=r"(f));
    printf("sti -> if=%u\n", (f & EFLAGS_IF) ? 1 : 0);
    __asm__ volatile("sti\n\tcli\n\tpushfl\n\tpopl %0" : "=r"(f));
    printf("cli -> if=%u\n", (f & EFLAGS_IF) ? 1 : 0);
    __asm__ volatile("pushl $0x202\n\tpopfl\n\tcli\n\tpushfl\n\tpopl %0" : "=r"(f));
    printf("popf if=1 then cli -> %08x\n", f);
    __asm__ volatile("pushl $2\n\tpopfl\n\tsti\n\tpushfl\n\tpopl %0\n\tcli" : "=r"(f));
    printf("popf if=0 then sti -> %08x\n", f);

    /* CPU detection: a 486 can toggle AC, a CPUID-capable CPU can toggle ID. */
    printf("popf ac 00040002 -> %08x\n", popf_pushf(EFLAGS_AC | 2));
    printf("popf id 00200002 -> %08x\n", popf_pushf(EFLAGS_ID | 2));
    f = read_eflags();
    write_eflags(f ^ EFLAGS_ID);
    printf("id toggles: %u\n", ((read_eflags() ^ f) & EFLAGS_ID) ? 1 : 0);
    write_eflags(f);
    write_eflags(f ^ EFLAGS_AC);
    printf("ac toggles: %u\n", ((read_eflags() ^ f) & EFLAGS_AC) ? 1 : 0);
    write_eflags(f);

    printf("popf iopl=3 00003002 -> %08x\n", popf_pushf(EFLAGS_IOPL | 2));
    printf("popf nt 00004002 -> %08x\n", popf_pushf(EFLAGS_NT | 2));
    printf("popf rf|vm|vif|vip 001b0002 -> %08x\n",
           popf_pushf(EFLAGS_RF | EFLAGS_VM | EFLAGS_VIF | EFLAGS_VIP | 2));
    printf("popf reserved ffc0802a -> %08x\n", popf_pushf(0xFFC0802A));
    printf("popf all but tf fffffeff -> %08x\n", popf_pushf(0xFFFFFEFF));

    /* 16-bit forms. */
    __asm__ volatile("movl %%esp, %0\n\tpushfw\n\tmovl %%esp, %1\n\tpopw %2"
                     : "=&r"(esp0), "=&r"(esp1), "=r"(w) : : "memory");
    printf("pushfw: esp-=%u value=%04x\n", esp0 - esp1, w);
    __asm__ volatile("pushl $0x40002\n\tpopfl\n\t"
                     "pushw $0x08d7\n\tpopfw\n\t"
                     "pushfl\n\tpopl %0\n\t"
                     "pushl $2\n\tpopfl" : "=r"(f) : : "cc", "memory");
    printf("popfw 08d7 with ac set -> %08x\n", f);
    __asm__ volatile("pushw $0x0002\n\tmovl %%esp, %0\n\tpopfw\n\tmovl %%esp, %1"
                     : "=&r"(esp0), "=&r"(esp1) : : "cc", "memory");
    printf("popfw: esp+=%u\n", esp1 - esp0);
    __asm__ volatile("movl %%esp, %0\n\tpushfl\n\tmovl %%esp, %1\n\tpopfl"
                     : "=&r"(esp0), "=&r"(esp1) : : "memory");
    printf("pushfl: esp-=%u\n", esp0 - esp1);

    /* LAHF/SAHF and the flags CLC/STC/CMC/CLD/STD touch, for completeness. */
    __asm__ volatile("pushl $2\n\tpopfl\n\tstc\n\tstd\n\tpushfl\n\tpopl %0\n\tcld\n\tclc"
                     : "=r"(f) : : "cc", "memory");
    printf("stc+std -> %08x\n", f);
    __asm__ volatile("pushl $2\n\tpopfl\n\tmovb $0xd5, %%ah\n\tsahf\n\tpushfl\n\tpopl %0" : "=r"(f) : : "eax", "cc");
    printf("sahf d5 -> %08x\n", f);
}
