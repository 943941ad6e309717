/*
 * Instructions that fault again and again at one place behave the same every
 * time (Popek gives such a site a page check after a few faults, dbt.h: the
 * access is tested against the shadow's state and a missing page costs a
 * callout instead of a host signal; nothing of that may show).  Each
 * scenario runs one instruction ROUNDS times:
 *   - a read of a page the #PF handler makes present, made not present again
 *     (INVLPG) after each round: one #PF a round, err 0000, CR2 the address;
 *     the value is the frame's;
 *   - the same with a write (err 0002): it lands and sets A and D;
 *   - a write to a read-only page (err 0003) the handler makes writable, made
 *     read-only again after each round;
 *   - at CPL 3, a read of a supervisor page (err 0005) the handler makes
 *     user, made supervisor again after each round;
 *   - a page made not present after each access, of another kind each round
 *     (MOV, MOVZX, ADD and CMP on memory, a 16-bit store): values, flags and
 *     D (Popek ends up emulating the access the handler's IRET returns to,
 *     leaving the page unmapped: emulate.c, pf_retry_map); a write whose
 *     page comes back read-only faults again (err 0003); a page other
 *     instructions use after the retried one;
 *   - present pages nothing touched yet (no #PF): a read through
 *     base + index*4 + displacement of a fresh page each round, and a write
 *     to an absolute address (the moffs form) whose PTE gets a fresh frame
 *     (INVLPG) each round: values, A and D bits;
 *   - the read site with DS based at 4 KiB: it reads base + offset, and a
 *     not-present page faults with CR2 = base + offset;
 *   - the read site with a flat DS limited to 16 MiB, through which the site
 *     has not run yet: one past the limit, on a page no PDE maps, is a #GP
 *     (segment checks come before paging), not a #PF; inside it, a present
 *     page nothing touched yet reads as it should.
 * QEMU's TCG does not check data segment limits (it gives the #PF there), so
 * there is no qemu.page_check; every line before that one is QEMU's too.
 */
#include "lib/guest.h"

#define PD       ((volatile uint32_t *)(SCRATCH_ADDR + 0x0000))
#define PT_LOW   ((volatile uint32_t *)(SCRATCH_ADDR + 0x1000))
#define PT_TEST  ((volatile uint32_t *)(SCRATCH_ADDR + 0x2000)) /* PD[1]: 0x00400000- */
#define FRAME(n) (SCRATCH_ADDR + 0x10000 + (n) * 0x1000)
#define VA(n)    (0x00400000 + (n) * 0x1000)
#define SEL_BASED   0x18   /* data, base 4 KiB, 4 GiB */
#define SEL_LIMITED 0x20   /* data, base 0, 16 MiB */
#define ROUNDS 6

#define PG_URW (PTE_P | PTE_RW | PTE_US)

/* What the #PF handler adds to the PTE; FIX_STEPWISE: P if it lacks it, else R/W. */
enum pf_fix { FIX_PRESENT = PTE_P, FIX_WRITABLE = PTE_RW, FIX_USER = PTE_US, FIX_STEPWISE = 0x100 };

static volatile uint32_t pf_count, pf_cr2, pf_error, pf_fix;
static volatile uint32_t pf_bad; /* a fault the scenario did not expect */

/* #PF: note it and give the PTE the missing bit, so the access retries. */
static void fix_fault(struct trap_frame *f)
{
    uint32_t cr2 = cr2_read();
    if (pf_count && (cr2 != pf_cr2 || f->error != pf_error))
        pf_bad++;
    pf_count++;
    pf_cr2 = cr2;
    pf_error = f->error;
    if (pf_count > 3 * ROUNDS || (cr2 >> 22) != 1) {
        printf("UNEXPECTED #PF cr2=%08x err=%04x\n", cr2, f->error);
        exit_qemu(0x7F);
    }
    volatile uint32_t *pte = &PT_TEST[(cr2 >> 12) & 0x3FF];
    if (pf_fix == FIX_STEPWISE)
        *pte |= (*pte & PTE_P) ? PTE_RW : PTE_P;
    else
        *pte |= pf_fix;
}

static uint32_t frame_tag(uint32_t v) { return v >> 16 == 0xF00D ? v & 0xFF : 0xFFFFFFFF; }

extern char site_read_at[], site_read_resume[];

/* The read site: one instruction, run with DS = ds. */
static TEST_FN uint32_t site_read(uint32_t addr, uint32_t ds)
{
    uint32_t v = 0xDEADDEAD;
    __asm__ volatile("movw %w2, %%ds\n"
                     "site_read_at: movl (%1), %0\n"
                     "site_read_resume: movw %w3, %%ds"
                     : "+r"(v)
                     : "r"(addr), "r"(ds), "r"(SEL_DATA32)
                     : "memory");
    return v;
}

static TEST_FN void site_write(uint32_t addr, uint32_t v)
{
    __asm__ volatile("movl %1, (%0)" : : "r"(addr), "r"(v) : "memory");
}

static TEST_FN uint32_t site_index(uint32_t base, uint32_t i)
{
    uint32_t v;
    __asm__ volatile("movl 0x10(%1,%2,4), %0" : "=r"(v) : "r"(base), "r"(i) : "memory");
    return v;
}

static TEST_FN void site_absolute(uint32_t v)
{
    __asm__ volatile("movl %0, 0x00440000" : : "a"(v) : "memory");
}

static TEST_FN uint32_t user_read(uint32_t addr)
{
    uint32_t v;
    __asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(addr) : "memory");
    return v;
}

static void start(enum pf_fix fix)
{
    pf_count = pf_bad = 0;
    pf_fix = fix;
}

static TEST_FN void toggled(void)
{
    uint32_t ok = 0;
    start(FIX_PRESENT);
    for (unsigned r = 0; r < ROUNDS; r++) {
        ok += frame_tag(site_read(VA(0), SEL_DATA32)) == 0;
        PT_TEST[0] &= ~PTE_P;
        invlpg(VA(0));
    }
    printf("read, not present each round: faults=%u cr2=%08x err=%04x others=%u reads ok=%u\n",
           pf_count, pf_cr2, pf_error, pf_bad, ok);

    ok = 0;
    start(FIX_PRESENT);
    for (unsigned r = 0; r < ROUNDS; r++) {
        site_write(VA(1) + 8, 0x1000 + r);
        ok += *(volatile uint32_t *)(FRAME(1) + 8) == 0x1000 + r &&
              (PT_TEST[1] & (PTE_A | PTE_D)) == (PTE_A | PTE_D);
        PT_TEST[1] &= ~(PTE_P | PTE_A | PTE_D);
        invlpg(VA(1));
    }
    printf("write, not present each round: faults=%u cr2=%08x err=%04x others=%u landed with A,D=%u\n",
           pf_count, pf_cr2, pf_error, pf_bad, ok);

    ok = 0;
    start(FIX_WRITABLE);
    for (unsigned r = 0; r < ROUNDS; r++) {
        site_write(VA(2) + 12, 0x2000 + r);
        ok += *(volatile uint32_t *)(FRAME(2) + 12) == 0x2000 + r;
        PT_TEST[2] &= ~PTE_RW;
        invlpg(VA(2));
    }
    printf("write, read-only each round: faults=%u cr2=%08x err=%04x others=%u landed=%u\n",
           pf_count, pf_cr2, pf_error, pf_bad, ok);

    ok = 0;
    start(FIX_USER);
    for (unsigned r = 0; r < ROUNDS; r++) {
        ok += frame_tag(user_call(user_read, VA(3) + 4)) == 3;
        PT_TEST[3] &= ~PTE_US;
        invlpg(VA(3));
    }
    printf("cpl 3 read, supervisor each round: faults=%u cr2=%08x err=%04x others=%u reads ok=%u\n",
           pf_count, pf_cr2, pf_error, pf_bad, ok);
}

/* A page made not present after every access, and the instruction the
 * handler's IRET returns to of another kind each round (Popek emulates it,
 * leaving the page unmapped, once the page has been through that a few
 * times: emulate.c, pf_retry_map). */
static TEST_FN void retried_kinds(void)
{
    volatile uint32_t *frame = (volatile uint32_t *)FRAME(6);
    uint32_t va = VA(6), ok = 0, v;
    uint8_t z;
    start(FIX_PRESENT);
    for (unsigned r = 0; r < 3 * ROUNDS; r++) {
        frame[0] = 0x11223344;
        switch (r % 5) {
        case 0:
            __asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(va) : "memory");
            ok += v == 0x11223344;
            break;
        case 1:
            __asm__ volatile("movzbl 1(%1), %0" : "=r"(v) : "r"(va) : "memory");
            ok += v == 0x33;
            break;
        case 2:
            __asm__ volatile("addl %1, (%0)" : : "r"(va), "r"(0x01010101u) : "memory", "cc");
            ok += frame[0] == 0x12233445 && (PT_TEST[6] & PTE_D);
            break;
        case 3:
            __asm__ volatile("cmpl $0x11223344, (%1)\n\tsete %0" : "=q"(z) : "r"(va) : "memory", "cc");
            ok += z == 1 && !(PT_TEST[6] & PTE_D);
            break;
        default:
            __asm__ volatile("movw $0x5566, 2(%0)" : : "r"(va) : "memory");
            ok += frame[0] == 0x55663344 && (PT_TEST[6] & PTE_D);
            break;
        }
        PT_TEST[6] &= ~(PTE_P | PTE_D);
        invlpg(va);
    }
    printf("%u rounds of five kinds on a page not present each round: faults=%u ok=%u\n",
           3 * ROUNDS, pf_count, ok);

    /* The retried write faults again: the page came back read-only. */
    PT_TEST[7] &= ~(PTE_P | PTE_RW);
    start(FIX_STEPWISE);
    for (unsigned r = 0; r < ROUNDS; r++) {
        site_write(VA(7) + 16, 0x4000 + r);
        ok = *(volatile uint32_t *)(FRAME(7) + 16) == 0x4000 + r;
        PT_TEST[7] &= ~(PTE_P | PTE_RW);
        invlpg(VA(7));
    }
    printf("write, not present and then read-only each round: faults=%u last err=%04x landed=%u\n",
           pf_count, pf_error, ok);

    /* After the retried read, other instructions use the page too. */
    start(FIX_PRESENT);
    ok = 0;
    for (unsigned r = 0; r < ROUNDS; r++) {
        PT_TEST[8] &= ~PTE_P;
        invlpg(VA(8));
        ok += frame_tag(site_read(VA(8), SEL_DATA32)) == 8;
        for (unsigned i = 1; i < 4; i++)
            ok += frame_tag(*(volatile uint32_t *)(VA(8) + 0x400 * i)) == 8;
        *(volatile uint32_t *)(VA(8) + 0xffc) = 0xF00D0008;
    }
    printf("read, not present each round, then more accesses: faults=%u ok=%u\n", pf_count, ok);
}

static TEST_FN void fresh_pages(void)
{
    uint32_t ok = 0;
    start(FIX_PRESENT);
    for (unsigned r = 0; r < ROUNDS; r++)
        ok += frame_tag(site_index(VA(16 + r) - 0x10 - 4 * 0x8000, 0x8000)) == 16 + r &&
              (PT_TEST[16 + r] & (PTE_A | PTE_D)) == PTE_A;
    printf("read via base+index*4+disp, a fresh page each round: faults=%u ok with A=%u\n",
           pf_count, ok);

    ok = 0;
    for (unsigned r = 0; r < ROUNDS; r++) {
        PT_TEST[0x40] = FRAME(24 + r) | PG_URW;
        invlpg(0x00440000);
        site_absolute(0x3000 + r);
        ok += *(volatile uint32_t *)FRAME(24 + r) == 0x3000 + r &&
              (PT_TEST[0x40] & (PTE_A | PTE_D)) == (PTE_A | PTE_D);
    }
    printf("write to an absolute address, a fresh frame each round: faults=%u landed with A,D=%u\n",
           pf_count, ok);
}

static TEST_FN void other_segments(void)
{
    /* DS based at 4 KiB: VA(n) - 0x1000 is VA(n). */
    start(FIX_PRESENT);
    printf("ds base 1000: reads frame %u\n", frame_tag(site_read(VA(4) - 0x1000, SEL_BASED)));
    PT_TEST[5] &= ~PTE_P;
    printf("ds base 1000, not present: reads frame %u", frame_tag(site_read(VA(5) - 0x1000, SEL_BASED)));
    printf(" faults=%u cr2=%08x err=%04x\n", pf_count, pf_cr2, pf_error);

    /* DS limited to 16 MiB: past the limit is a #GP, whatever paging says. */
    trap_expect(site_read_resume);
    site_read(0x01001000, SEL_LIMITED);
    trap_print("ds limit 16 MiB, read at 01001000", site_read_at);
    printf("ds limit 16 MiB: reads frame %u, faults=%u\n",
           frame_tag(site_read(VA(30), SEL_LIMITED)), pf_count);
}

void kmain(void)
{
    paging_map_low(PD, PT_LOW, PG_URW);
    memset((void *)PT_TEST, 0, 4096);
    PD[1] = (uint32_t)PT_TEST | PG_URW;
    PT_TEST[0] = FRAME(0) | PTE_RW | PTE_US;             /* not present */
    PT_TEST[1] = FRAME(1) | PTE_RW | PTE_US;             /* not present */
    PT_TEST[2] = FRAME(2) | PTE_P | PTE_US;              /* read-only */
    PT_TEST[3] = FRAME(3) | PTE_P | PTE_RW;              /* supervisor */
    for (uint32_t n = 4; n < 32; n++)
        PT_TEST[n] = FRAME(n) | PG_URW;
    PT_TEST[5] &= ~PTE_P;
    for (uint32_t n = 0; n < 32; n++)
        for (uint32_t i = 0; i < 1024; i++)
            ((volatile uint32_t *)FRAME(n))[i] = 0xF00D0000 | n;
    gdt_set(SEL_BASED >> 3, 0x1000, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    gdt_set(SEL_LIMITED >> 3, 0, 0xFFF, ACC_DATA32, DESC_G | DESC_DB);
    user_init();
    trap_set_handler(VEC_PF, fix_fault);
    cr3_write((uint32_t)PD);
    cr0_write(cr0_read() | CR0_PG | CR0_WP);

    toggled();
    retried_kinds();
    fresh_pages();
    other_segments();
}
