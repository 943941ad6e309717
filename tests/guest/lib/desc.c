/*
 * Descriptor tables, PIC masking and the trap dispatcher.
 *
 * The GDT, IDT, TSS and LDT sit at fixed addresses (guest.h) so that what SGDT
 * or SIDT report is the same whatever the code size.  rt_init() builds:
 *
 *   GDT  0x00 null
 *        0x08 flat 32-bit ring-0 code (SEL_CODE32)
 *        0x10 flat 32-bit ring-0 data (SEL_DATA32)
 *        0x18 .. (GDT_ENTRIES-1)*8 null, for tests to fill
 *   IDT  every vector -> its isr.S stub, present 32-bit interrupt gate
 *
 * user_init() adds, on request, what ring 3 needs: the SYSENTER-shaped block
 * of flat segments at 0x60-0x7b (guest.h), a TSS at 0x80 whose I/O bitmap
 * follows the 104-byte TSS and covers ports 0-3ff, and the DPL-3 gate through
 * which user_run() (isr.S) returns to ring 0.
 *
 * Interrupt gates keep IF clear in handlers; the PICs are reprogrammed and
 * fully masked because under QEMU the BIOS leaves the PIT ticking into IRQ0,
 * which would otherwise land on vector 8 (#DF) at the first STI.
 */
#include "guest.h"

#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_CMD  0xA0
#define PIC2_DATA 0xA1
#define ICW1_INIT_ICW4 0x11
#define ICW4_8086      0x01

static uint64_t *const gdt = (uint64_t *)GDT_ADDR;
static uint64_t *const ldt = (uint64_t *)LDT_ADDR;
static uint64_t *const idt = (uint64_t *)IDT_ADDR;

extern char isr_stubs[];

static trap_handler_fn trap_handlers[IDT_ENTRIES];
volatile struct trap_record trap_last;
static volatile int trap_armed;
static volatile uint32_t trap_resume;

static uint64_t desc_make(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
    uint64_t d = (limit & 0xFFFF) | ((uint64_t)(base & 0xFFFFFF) << 16);
    d |= (uint64_t)access << 40;
    d |= (uint64_t)((limit >> 16) & 0xF) << 48;
    d |= (uint64_t)(flags & 0xF) << 52;
    d |= (uint64_t)(base >> 24) << 56;
    return d;
}

void gdt_set(unsigned index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
    gdt[index] = desc_make(base, limit, access, flags);
}

void ldt_set(unsigned index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
    ldt[index] = desc_make(base, limit, access, flags);
}

uint64_t gdt_get_raw(unsigned index)
{
    return ((volatile uint64_t *)gdt)[index];
}

void gdt_set_raw(unsigned index, uint64_t desc)
{
    gdt[index] = desc;
}

void gdt_load(unsigned entries)
{
    struct dtr d = { (uint16_t)(entries * 8 - 1), GDT_ADDR };
    __asm__ volatile(
        "lgdt %0\n\t"
        "ljmp %1, $1f\n"
        "1:\n\t"
        "movl %2, %%eax\n\t"
        "movl %%eax, %%ds\n\t"
        "movl %%eax, %%es\n\t"
        "movl %%eax, %%fs\n\t"
        "movl %%eax, %%gs\n\t"
        "movl %%eax, %%ss"
        : : "m"(d), "i"(SEL_CODE32), "i"(SEL_DATA32) : "eax", "memory");
}

uint32_t isr_stub(unsigned vec)
{
    return (uint32_t)isr_stubs + vec * ISR_STUB_SIZE;
}

void idt_set_gate(unsigned vec, uint16_t sel, uint32_t offset, uint8_t type_attr)
{
    idt[vec] = (offset & 0xFFFF) | ((uint64_t)sel << 16) |
               ((uint64_t)type_attr << 40) | ((uint64_t)(offset >> 16) << 48);
}

void idt_reset_gate(unsigned vec)
{
    idt_set_gate(vec, SEL_CODE32, isr_stub(vec), DESC_P | SYS_INT_GATE32);
}

void idt_load(uint32_t base, uint16_t limit)
{
    struct dtr d = { limit, base };
    __asm__ volatile("lidt %0" : : "m"(d) : "memory");
}

static void pic_mask_all(void)
{
    /* Remap to vectors 0x20-0x2F, away from the exceptions, then mask. */
    outb(PIC1_CMD, ICW1_INIT_ICW4);
    outb(PIC2_CMD, ICW1_INIT_ICW4);
    outb(PIC1_DATA, 0x20);
    outb(PIC2_DATA, 0x28);
    outb(PIC1_DATA, 0x04);   /* slave on IRQ2 */
    outb(PIC2_DATA, 0x02);
    outb(PIC1_DATA, ICW4_8086);
    outb(PIC2_DATA, ICW4_8086);
    outb(PIC1_DATA, 0xFF);
    outb(PIC2_DATA, 0xFF);
}

void rt_init(void)
{
    memset(gdt, 0, GDT_ENTRIES * 8);
    gdt_set(SEL_CODE32 >> 3, 0, 0xFFFFF, ACC_CODE32, DESC_G | DESC_DB);
    gdt_set(SEL_DATA32 >> 3, 0, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    gdt_load(GDT_ENTRIES);
    for (unsigned v = 0; v < IDT_ENTRIES; v++)
        idt_reset_gate(v);
    idt_load(IDT_ADDR, IDT_ENTRIES * 8 - 1);
    pic_mask_all();
    serial_init();
}

/* ---- ring 3 ----------------------------------------------------------------- */

/* The bitmap covers ports 0-3ff; the CPU reads two bytes for every check
 * (SDM vol. 1, 19.5.2), so one more all-ones byte ends it inside the limit. */
#define TSS_IOMAP_PORTS 0x400
#define TSS_IOMAP_BYTES (TSS_IOMAP_PORTS / 8 + 1)

extern char user_return[];

void user_init(void)
{
    struct tss32 *tss = (struct tss32 *)TSS_ADDR;
    uint8_t *iomap = (uint8_t *)(tss + 1);

    gdt_set(SEL_SYS_CODE32 >> 3, 0, 0xFFFFF, ACC_CODE32, DESC_G | DESC_DB);
    gdt_set(SEL_SYS_DATA32 >> 3, 0, 0xFFFFF, ACC_DATA32, DESC_G | DESC_DB);
    gdt_set(SEL_USER_CODE32 >> 3, 0, 0xFFFFF, ACC_CODE32 | DESC_DPL(3), DESC_G | DESC_DB);
    gdt_set(SEL_USER_DATA32 >> 3, 0, 0xFFFFF, ACC_DATA32 | DESC_DPL(3), DESC_G | DESC_DB);
    memset(tss, 0, sizeof *tss);
    tss->ss0 = SEL_DATA32;
    tss->esp0 = STACK_TOP;
    tss->iomap_base = sizeof *tss;
    memset(iomap, 0xFF, TSS_IOMAP_BYTES);
    /* Available (not busy) again, so that a second LTR does not fault. */
    gdt_set(SEL_USER_TSS >> 3, TSS_ADDR, sizeof *tss + TSS_IOMAP_BYTES - 1,
            DESC_P | SYS_TSS32_AVAIL, 0);
    __asm__ volatile("ltr %w0" : : "r"(SEL_USER_TSS) : "memory");
    idt_set_gate(VEC_USER_RETURN, SEL_CODE32, (uint32_t)user_return,
                 DESC_P | DESC_DPL(3) | SYS_INT_GATE32);
}

void tss_io_permit(uint16_t port, int allow)
{
    uint8_t *iomap = (uint8_t *)((struct tss32 *)TSS_ADDR + 1);

    if (port >= TSS_IOMAP_PORTS)
        return;
    if (allow)
        iomap[port / 8] &= (uint8_t)~(1u << (port % 8));
    else
        iomap[port / 8] |= (uint8_t)(1u << (port % 8));
}

/* ---- traps ------------------------------------------------------------------ */

static const char *const vector_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
    "#DF", "vec9", "#TS", "#NP", "#SS", "#GP", "#PF", "vec15",
    "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "vec22", "vec23",
    "vec24", "vec25", "vec26", "vec27", "vec28", "vec29", "vec30", "vec31",
};

const char *vector_name(unsigned vec)
{
    return vec < 32 ? vector_names[vec] : "int";
}

int vector_has_error_code(unsigned vec)
{
    return vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 ||
           vec == 29 || vec == 30;
}

void trap_set_handler(unsigned vec, trap_handler_fn fn)
{
    trap_handlers[vec] = fn;
}

void trap_expect(const void *resume)
{
    trap_last.count = 0;
    trap_resume = (uint32_t)resume;
    trap_armed = 1;
}

void trap_disarm(void)
{
    trap_armed = 0;
}

__attribute__((noipa)) uint32_t probe_load(uint32_t linear)
{
    uint32_t v = 0xDEADDEAD;
    trap_expect(probe_load_resume);
    __asm__ volatile(".globl probe_load_at, probe_load_resume\n"
                     "probe_load_at: movl (%1), %0\nprobe_load_resume:"
                     : "+r"(v) : "r"(linear) : "memory");
    return v;
}

void trap_print(const char *name, const void *fault_label)
{
    trap_armed = 0;
    if (!trap_last.count) {
        printf("%s: no exception\n", name);
        return;
    }
    printf("%s: %s", name, vector_name(trap_last.vector));
    if (trap_last.vector >= 32)
        printf(" %02x", trap_last.vector);
    if (vector_has_error_code(trap_last.vector))
        printf(" err=%04x", trap_last.error);
    if (trap_last.vector == VEC_PF)
        printf(" cr2=%08x", trap_last.cr2);
    int32_t delta = (int32_t)(trap_last.eip - (uint32_t)fault_label);
    printf(" eip=fault%c%d", delta < 0 ? '-' : '+', delta < 0 ? -delta : delta);
    if (trap_last.cs & 3)
        printf(" cpl=%u", trap_last.cs & 3);
    printf("\n");
}

void trap_dispatch(struct trap_frame *f)
{
    if (trap_handlers[f->vector]) {
        trap_handlers[f->vector](f);
        return;
    }
    if (trap_armed) {
        trap_armed = 0;
        trap_last.count++;
        trap_last.vector = f->vector;
        trap_last.error = f->error;
        trap_last.eip = f->eip;
        trap_last.cs = f->cs & 0xFFFF;
        trap_last.eflags = f->eflags;
        if (f->vector == VEC_PF)
            trap_last.cr2 = cr2_read();
        if (trap_resume)
            f->eip = trap_resume;
        return;
    }
    printf("UNEXPECTED %s vec=%02x err=%08x cs:eip=%04x:%08x eflags=%08x\n",
           vector_name(f->vector), f->vector, f->error, f->cs & 0xFFFF, f->eip, f->eflags);
    exit_qemu(0x7F);
}
