/*
 * Memory through FS and GS at CPL 3 (SDM vol. 3A 3.4): glibc's TLS lives at
 * GS (the stack protector's canary at %gs:0x14, TLS variables below the
 * thread pointer at negative offsets), and Popek keeps the guest's GS in the
 * host's FS at CPL 3, swapping only for FS, CS and offsets that wrap.  Each
 * access below reads a marker placed at base + offset (modulo 2^32):
 * constant and register offsets, positive and negative (wrapping past
 * 4 GiB), a string source, a push, a read-modify-write, FS and GS in turns,
 * CS; then the same through the same instructions after GS is reloaded with
 * another base.
 */
#include "lib/guest.h"

#define SEL_GS_A  (0x30 | 3)   /* base WIN, DPL 3 */
#define SEL_GS_B  (0x38 | 3)   /* base WIN + 0x200, DPL 3 */
#define SEL_FS_U  (0x40 | 3)   /* base WIN + 0x100, DPL 3 */
#define WIN       (SCRATCH_ADDR + 0x1000)

static volatile uint32_t *const mem = (volatile uint32_t *)SCRATCH_ADDR;
uint32_t out[16];

/* Ring 3, GS = arg, FS = SEL_FS_U. */
static TEST_FN uint32_t user_accesses(uint32_t arg)
{
    __asm__ volatile(
        "movw %w0, %%gs\n\t"
        "movw %w1, %%fs\n\t"
        "movl %%gs:0x14, %%eax\n\t"        "movl %%eax, out\n\t"
        "movl $0x18, %%ecx\n\t"
        "movl %%gs:(%%ecx), %%eax\n\t"     "movl %%eax, out+4\n\t"
        "movl %%gs:-4, %%eax\n\t"          "movl %%eax, out+8\n\t"
        "movl $-8, %%ecx\n\t"
        "movl %%gs:(%%ecx), %%eax\n\t"     "movl %%eax, out+12\n\t"
        "movl %%fs:0x14, %%eax\n\t"        "movl %%eax, out+16\n\t"
        "movl $0x18, %%ecx\n\t"
        "movl %%fs:(%%ecx), %%eax\n\t"     "movl %%eax, out+20\n\t"
        "movl %%gs:0x1c, %%eax\n\t"        "movl %%eax, out+24\n\t"
        "movl $0x10, %%esi\n\t"
        "movl $out+28, %%edi\n\t"
        "gs movsl\n\t"
        "pushl %%gs:0x20\n\t"              "popl out+32\n\t"
        "addl $1, %%gs:0x24\n\t"
        "movl %%gs:0x24, %%eax\n\t"        "movl %%eax, out+36\n\t"
        "movl %%cs:ret_marker, %%eax\n\t"  "movl %%eax, out+40\n\t"
        : : "r"(arg), "r"(SEL_FS_U) : "eax", "ecx", "esi", "edi", "memory", "cc");
    return 0;
}

__asm__(".data\nret_marker: .long 0xc5c5c5c5\n.text\n");

static void run(const char *what, uint16_t gs)
{
    memset(out, 0, sizeof out);
    user_run(user_accesses, gs, EFLAGS_FIXED, SEL_USER_DATA32);
    printf("%s:", what);
    for (unsigned i = 0; i < 11; i++)
        printf(" %08x", out[i]);
    printf("\n");
}

void kmain(void)
{
    user_init();
    for (unsigned i = 0; i < 0x800; i++)
        mem[i] = 0xA0000000 + i * 4;       /* the marker is its own address offset */
    gdt_set(SEL_GS_A >> 3, WIN, 0xFFFFF, ACC_DATA32 | DESC_DPL(3), DESC_G | DESC_DB);
    gdt_set(SEL_GS_B >> 3, WIN + 0x200, 0xFFFFF, ACC_DATA32 | DESC_DPL(3), DESC_G | DESC_DB);
    gdt_set(SEL_FS_U >> 3, WIN + 0x100, 0xFFFFF, ACC_DATA32 | DESC_DPL(3), DESC_G | DESC_DB);
    run("gs base win", SEL_GS_A);
    run("gs base win+200", SEL_GS_B);
    run("gs base win, again", SEL_GS_A);
}
