/*
 * Segment limit and type checks on data accesses (SDM vol. 3A, 5.3 and 5.4):
 * an access whose last byte lies beyond an expand-up segment's effective
 * limit (limit, or limit*4096+0xFFF with G=1), or at/below an expand-down
 * segment's limit or above its upper bound (0xFFFFFFFF with B=1, 0xFFFF with
 * B=0), is #GP(0); so is a write to a read-only data segment or, through a
 * CS override, to a code segment, and any access through a null selector.
 * The faulting instruction does not complete (saved EIP = the instruction).
 *
 * qemu-mismatch: QEMU's TCG does not check data segment limits, write
 * permission or null selectors on memory accesses in protected mode, so this
 * golden file is the SDM's answer.
 */
#include "lib/guest.h"

#define SEL_BYTE   0x18   /* expand-up, limit 0x00fff, G=0 */
#define SEL_PAGE   0x20   /* expand-up, limit 0x00000, G=1 -> 0xfff */
#define SEL_DOWN32 0x28   /* expand-down, limit 0x00fff, B=1 */
#define SEL_DOWN16 0x30   /* expand-down, limit 0x00fff, B=0 */
#define SEL_RO     0x38   /* read-only, 4 GiB */

static TEST_FN void rd32(const char *name, uint16_t sel, uint32_t off)
{
    extern char rd32_at[], rd32_resume[];
    trap_expect(rd32_resume);
    __asm__ volatile("movw %w0, %%fs\nrd32_at: movl %%fs:(%1), %%eax\nrd32_resume:\n\tmovw %w2, %%fs"
                     : : "r"(sel), "r"(off), "r"(SEL_DATA32) : "eax", "memory");
    trap_print(name, rd32_at);
}

static TEST_FN void rd8(const char *name, uint16_t sel, uint32_t off)
{
    extern char rd8_at[], rd8_resume[];
    trap_expect(rd8_resume);
    __asm__ volatile("movw %w0, %%fs\nrd8_at: movb %%fs:(%1), %%al\nrd8_resume:\n\tmovw %w2, %%fs"
                     : : "r"(sel), "r"(off), "r"(SEL_DATA32) : "eax", "memory");
    trap_print(name, rd8_at);
}

static TEST_FN void wr32(const char *name, uint16_t sel, uint32_t off)
{
    extern char wr32_at[], wr32_resume[];
    trap_expect(wr32_resume);
    __asm__ volatile("movw %w0, %%fs\nwr32_at: movl $0x5a5a5a5a, %%fs:(%1)\nwr32_resume:\n\tmovw %w2, %%fs"
                     : : "r"(sel), "r"(off), "r"(SEL_DATA32) : "memory");
    trap_print(name, wr32_at);
}

static TEST_FN void wr_cs(void)
{
    extern char wcs_at[], wcs_resume[];
    static volatile uint32_t target;
    trap_expect(wcs_resume);
    __asm__ volatile("wcs_at: movl $1, %%cs:(%0)\nwcs_resume:" : : "r"(&target) : "memory");
    trap_print("write via cs override", wcs_at);
    printf("write via cs override: memory unchanged=%u\n", target == 0);
}

static TEST_FN void null_es(void)
{
    extern char nes_at[], nes_resume[];
    trap_expect(nes_resume);
    __asm__ volatile("movw %w0, %%es\nnes_at: movl %%es:(%1), %%eax\nnes_resume:\n\tmovw %w2, %%es"
                     : : "r"(0), "r"(SCRATCH_ADDR), "r"(SEL_DATA32) : "eax", "memory");
    trap_print("read via null es", nes_at);
}

static TEST_FN void movs_limit(void)
{
    extern char movs_at[], movs_resume[];
    uint32_t ecx;
    /* REP MOVSB into a 0xfff-limit ES: iterations run until the first byte
     * beyond the limit faults, with ECX/EDI describing the remaining work. */
    trap_expect(movs_resume);
    __asm__ volatile("movw %w1, %%es\n\tmovl $0xffc, %%edi\n\tmovl %2, %%esi\n\tmovl $8, %%ecx\n"
                     "movs_at: rep movsb\nmovs_resume:\n\t"
                     "movw %w3, %%es\n\tmovl %%ecx, %0"
                     : "=r"(ecx) : "r"(SEL_BYTE), "r"(SCRATCH_ADDR + 0x2000), "r"(SEL_DATA32)
                     : "ecx", "esi", "edi", "memory");
    trap_print("rep movsb 8 bytes to es:ffc (limit fff)", movs_at);
    printf("rep movsb: ecx left=%u\n", ecx);
}

void kmain(void)
{
    gdt_set(SEL_BYTE >> 3, SCRATCH_ADDR, 0x00FFF, ACC_DATA32, DESC_DB);
    gdt_set(SEL_PAGE >> 3, SCRATCH_ADDR, 0x00000, ACC_DATA32, DESC_G | DESC_DB);
    gdt_set(SEL_DOWN32 >> 3, SCRATCH_ADDR, 0x00FFF, ACC_DATA32 | DESC_TYPE_EXPDOWN, DESC_DB);
    gdt_set(SEL_DOWN16 >> 3, SCRATCH_ADDR, 0x00FFF, ACC_DATA32 | DESC_TYPE_EXPDOWN, 0);
    gdt_set(SEL_RO >> 3, SCRATCH_ADDR, 0xFFFFF, DESC_P | DESC_S | DESC_TYPE_A, DESC_G | DESC_DB);

    rd8("byte-gran fff: read8 at fff", SEL_BYTE, 0xFFF);
    rd32("byte-gran fff: read32 at ffc", SEL_BYTE, 0xFFC);
    rd32("byte-gran fff: read32 at ffd", SEL_BYTE, 0xFFD);
    rd8("byte-gran fff: read8 at 1000", SEL_BYTE, 0x1000);
    wr32("byte-gran fff: write32 at 1000", SEL_BYTE, 0x1000);
    rd8("byte-gran fff: read8 at ffffffff", SEL_BYTE, 0xFFFFFFFF);
    rd8("page-gran 0: read8 at fff", SEL_PAGE, 0xFFF);
    rd8("page-gran 0: read8 at 1000", SEL_PAGE, 0x1000);
    rd8("expand-down b=1 fff: read8 at 1000", SEL_DOWN32, 0x1000);
    rd8("expand-down b=1 fff: read8 at fff", SEL_DOWN32, 0xFFF);
    rd8("expand-down b=1 fff: read8 at 0", SEL_DOWN32, 0);
    rd32("expand-down b=1 fff: read32 at fffffffc", SEL_DOWN32, 0xFFFFFFFC);
    rd8("expand-down b=0 fff: read8 at ffff", SEL_DOWN16, 0xFFFF);
    rd8("expand-down b=0 fff: read8 at 10000", SEL_DOWN16, 0x10000);
    rd32("read-only: read32 at 0", SEL_RO, 0);
    wr32("read-only: write32 at 0", SEL_RO, 0);
    printf("read-only: memory unchanged=%u\n", *(volatile uint32_t *)SCRATCH_ADDR != 0x5A5A5A5A);
    wr_cs();
    null_es();
    movs_limit();
}
