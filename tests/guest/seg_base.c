/*
 * Data segments with a non-zero base (SDM vol. 3A, 3.4): linear = base +
 * offset, modulo 2^32.  Reads and writes through ES/FS/GS/DS with a base land
 * at base+offset in flat memory; string instructions use DS:ESI and ES:EDI;
 * LEA yields the offset, not the linear address; the descriptor is cached at
 * load time, so editing the GDT changes nothing until the selector is
 * reloaded; loading a descriptor whose accessed bit is clear sets it in the
 * GDT; a base near 4 GiB wraps around.
 */
#include "lib/guest.h"

#define SEL_WIN    0x18   /* base SCRATCH_ADDR, 4 GiB limit */
#define SEL_WRAP   0x20   /* base 0xFFF00000: offset 0x00400000 -> 0x00300000 */
#define SEL_NOACC  0x28   /* like SEL_WIN, accessed bit clear */
#define SEL_WIN2   0x30   /* base SCRATCH_ADDR + 0x100 */

static __attribute__((noinline)) uint32_t ret_42(void)
{
    return 0x42;
}

static volatile uint32_t *const flat = (volatile uint32_t *)SCRATCH_ADDR;

void kmain(void)
{
    uint32_t v, w;

    for (unsigned i = 0; i < 128; i++)
        flat[i] = 0xC0DE0000 + i;
    gdt_set(SEL_WIN >> 3, SCRATCH_ADDR, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    gdt_set(SEL_WRAP >> 3, 0xFFF00000, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    gdt_set(SEL_NOACC >> 3, SCRATCH_ADDR, 0xFFFFF, ACC_DATA32 & ~DESC_TYPE_A, DESC_G | DESC_DB);
    gdt_set(SEL_WIN2 >> 3, SCRATCH_ADDR + 0x100, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);

    __asm__ volatile("movw %w1, %%es\n\tmovl %%es:0x10, %0\n\tmovw %w2, %%es"
                     : "=r"(v) : "r"(SEL_WIN), "r"(SEL_DATA32));
    printf("es base %08x: es:10 = %08x (flat %08x = %08x)\n", SCRATCH_ADDR, v, SCRATCH_ADDR + 0x10,
           flat[4]);
    __asm__ volatile("movw %w0, %%fs\n\tmovl $0x12345678, %%fs:0x20\n\tmovw %w1, %%fs"
                     : : "r"(SEL_WIN), "r"(SEL_DATA32) : "memory");
    printf("fs:20 <- 12345678: flat %08x = %08x\n", SCRATCH_ADDR + 0x20, flat[8]);
    __asm__ volatile("movw %w1, %%gs\n\tmovl $8, %%ebx\n\tmovl %%gs:4(%%ebx,%%ebx,2), %0\n\t"
                     "movw %w2, %%gs"
                     : "=r"(v) : "r"(SEL_WIN), "r"(SEL_DATA32) : "ebx");
    printf("gs:4(ebx=8,ebx,2) = %08x (flat offset 1c)\n", v);
    __asm__ volatile("pushl %%ds\n\tmovw %w1, %%ds\n\tmovl 0x24, %0\n\tpopl %%ds"
                     : "=r"(v) : "r"(SEL_WIN) : "memory");
    printf("ds base %08x: ds:24 = %08x\n", SCRATCH_ADDR, v);

    /* Wrap-around: 0xFFF00000 + 0x00400010 = 0x00300010 (mod 2^32). */
    __asm__ volatile("movw %w1, %%es\n\tmovl %%es:0x00400010, %0\n\tmovw %w2, %%es"
                     : "=r"(v) : "r"(SEL_WRAP), "r"(SEL_DATA32));
    printf("es base fff00000: es:00400010 = %08x (wraps to %08x)\n", v, SCRATCH_ADDR + 0x10);

    /* LEA ignores the segment base; a memory operand does not. */
    __asm__ volatile("movw %w2, %%fs\n\tmovl $0x40, %%eax\n\tleal 4(%%eax), %0\n\t"
                     "movl %%fs:4(%%eax), %1\n\tmovw %w3, %%fs"
                     : "=&r"(v), "=&r"(w) : "r"(SEL_WIN), "r"(SEL_DATA32) : "eax");
    printf("lea 4(eax=40) = %08x, fs:4(eax=40) = %08x\n", v, w);

    /* MOVS: DS:ESI (override-able) to ES:EDI (never overridden). */
    __asm__ volatile("movw %w0, %%es\n\tmovw %w1, %%fs\n\t"
                     "movl $0x30, %%esi\n\tmovl $0x80, %%edi\n\tmovl $2, %%ecx\n\t"
                     "rep movsl %%fs:(%%esi), %%es:(%%edi)\n\t"
                     "movw %w2, %%es\n\tmovw %w2, %%fs"
                     : : "r"(SEL_WIN), "r"(SEL_WIN2), "r"(SEL_DATA32) : "esi", "edi", "ecx", "memory");
    printf("rep movsl fs(base+100):30 -> es(base):80: flat[80]=%08x flat[84]=%08x\n", flat[0x20],
           flat[0x21]);
    __asm__ volatile("movw %w1, %%es\n\tmovl $0x90, %%edi\n\tmovl $0xABCDEF01, %%eax\n\tstosl\n\t"
                     "movl %%edi, %0\n\tmovw %w2, %%es"
                     : "=r"(v) : "r"(SEL_WIN), "r"(SEL_DATA32) : "eax", "edi", "memory");
    printf("stosl es(base):90 -> flat[90]=%08x edi=%08x\n", flat[0x24], v);

    /* PUSH/POP with a based memory operand. */
    __asm__ volatile("movw %w1, %%gs\n\tpushl %%gs:0x0c\n\tpopl %%gs:0xa0\n\tmovl %%gs:0xa0, %0\n\t"
                     "movw %w2, %%gs"
                     : "=r"(v) : "r"(SEL_WIN), "r"(SEL_DATA32) : "memory");
    printf("push gs:0c / pop gs:a0: flat[a0]=%08x\n", flat[0x28]);

    /* XLAT uses DS:EBX (+AL). */
    ((volatile uint8_t *)SCRATCH_ADDR)[0xC5] = 0x5A;
    __asm__ volatile("pushl %%ds\n\tmovw %w1, %%ds\n\tmovl $0xc0, %%ebx\n\tmovl $5, %%eax\n\txlatb\n\t"
                     "popl %%ds"
                     : "=a"(v) : "r"(SEL_WIN) : "ebx", "memory");
    printf("xlat ds(base):c0+5 = %02x\n", v & 0xFF);

    /* Indirect CALL and JMP with the target in memory through GS and CS. */
    flat[0x38] = (uint32_t)ret_42;
    __asm__ volatile("movw %w1, %%gs\n\tcall *%%gs:0xe0\n\tmovw %w2, %%gs"
                     : "=a"(v) : "r"(SEL_WIN), "r"(SEL_DATA32) : "ecx", "edx", "memory");
    __asm__ volatile("movl $1, %0\n\tjmp *%%cs:1f\n\t.pushsection .data\n1: .long 2f\n\t"
                     ".popsection\n\tmovl $2, %0\n2:" : "=r"(w));
    printf("call *gs:e0 -> %x; jmp *cs:ptr skipped the fall-through: %u\n", v, w == 1);

    /* Segment descriptor cache: a loaded selector keeps its old base. */
    __asm__ volatile("movw %w0, %%fs" : : "r"(SEL_WIN));
    gdt_set(SEL_WIN >> 3, SCRATCH_ADDR + 0x20, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    __asm__ volatile("movl %%fs:0x00, %0" : "=r"(v));
    __asm__ volatile("movw %w1, %%fs\n\tmovl %%fs:0x00, %0" : "=r"(w) : "r"(SEL_WIN));
    __asm__ volatile("movw %w0, %%fs" : : "r"(SEL_DATA32));
    printf("gdt base changed to %08x: fs:0 before reload %08x, after reload %08x\n",
           SCRATCH_ADDR + 0x20, v, w);

    /* Accessed bit. */
    printf("accessed bit before load: %u\n", (unsigned)(gdt_get_raw(SEL_NOACC >> 3) >> 40) & 1);
    __asm__ volatile("movw %w0, %%gs\n\tmovw %w1, %%gs" : : "r"(SEL_NOACC), "r"(SEL_DATA32));
    printf("accessed bit after gs load: %u\n", (unsigned)(gdt_get_raw(SEL_NOACC >> 3) >> 40) & 1);

    /* Byte vs page granularity, as LSL reports the effective limit. */
    gdt_set(7, 0, 0x00FFF, ACC_DATA32, DESC_DB);
    gdt_set(8, 0, 0x00FFF, ACC_DATA32, DESC_G | DESC_DB);
    gdt_set(9, 0, 0x00000, ACC_DATA32, DESC_G | DESC_DB);
    uint32_t l1, l2, l3;
    __asm__ volatile("lsll %3, %0\n\tlsll %4, %1\n\tlsll %5, %2"
                     : "=&r"(l1), "=&r"(l2), "=&r"(l3) : "r"(0x38u), "r"(0x40u), "r"(0x48u) : "cc");
    printf("limit 00fff g=0: %08x, g=1: %08x; limit 0 g=1: %08x\n", l1, l2, l3);
}
