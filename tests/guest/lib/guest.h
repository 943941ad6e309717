/*
 * Freestanding runtime for Popek's guest test kernels.
 *
 * Every test kernel is a multiboot v1 ELF32 image linked at 1 MiB.  crt0.S
 * gets control from the loader in flat 32-bit protected mode with paging off,
 * rt_init() installs the runtime's own GDT and IDT (the multiboot spec says the
 * loader's GDT may be invalid), remaps the PICs to VEC_IRQ0 (0x20) and 0x28
 * with every line masked, sets up COM1, then kmain()
 * runs the tests and prints one line per observation.  Returning from kmain()
 * ends the run through isa-debug-exit with code 0 (process status 1).
 *
 * Everything a test might print the address of lives at a fixed physical
 * address that does not depend on code size, so golden files stay valid when
 * the compiler or the runtime changes:
 *
 *   0x00100000  kernel image (.multiboot, .text, .rodata, .data, .bss)
 *   0x00200000  GDT   (GDT_ENTRIES descriptors)
 *   0x00201000  IDT   (256 gates)
 *   0x00202000  TSS   (for LTR tests)
 *   0x00203000  LDT   (for LLDT tests)
 *   0x00270000  stack (grows down from STACK_TOP)
 *   0x00280000  ring-3 stack of user_run() (grows down from USER_STACK_TOP)
 *   0x00300000  scratch memory for tests (copied code, segment windows,
 *               page tables)
 */
#ifndef GUEST_H
#define GUEST_H

#define GDT_ADDR     0x00200000
#define GDT_ENTRIES  32
#define IDT_ADDR     0x00201000
#define IDT_ENTRIES  256
#define TSS_ADDR     0x00202000
#define LDT_ADDR     0x00203000
#define STACK_TOP    0x00280000
#define USER_STACK_TOP 0x00290000
#define SCRATCH_ADDR 0x00300000

/* Selectors of the runtime's flat ring-0 segments. */
#define SEL_CODE32   0x08
#define SEL_DATA32   0x10

/*
 * Ring-3 support (user_init): four flat segments laid out as SYSENTER/SYSEXIT
 * need them (SDM vol. 2, SYSENTER: SS = IA32_SYSENTER_CS + 8, SYSEXIT: CS =
 * +16, SS = +24, RPL 3), at Linux's i386 GDT indices 12-15, and a TSS at 16.
 * Interrupt gates keep using SEL_CODE32; SEL_SYS_CODE32 is what a test puts
 * in IA32_SYSENTER_CS.
 */
#define SEL_SYS_CODE32  0x60
#define SEL_SYS_DATA32  0x68
#define SEL_USER_CODE32 0x73
#define SEL_USER_DATA32 0x7B
#define SEL_USER_TSS    0x80

/* The gate user_run() code leaves ring 3 through (DPL 3). */
#define VEC_USER_RETURN 0xFE

/* Size of one interrupt entry stub in isr.S; stub n is at isr_stubs + n*16. */
#define ISR_STUB_SIZE 16

#define DEBUG_EXIT_PORT 0xF4

/* 32-bit paging entries (SDM vol. 3A, 4.3, tables 4-4 to 4-6). */
#define PTE_P    0x001
#define PTE_RW   0x002
#define PTE_US   0x004
#define PTE_PWT  0x008
#define PTE_PCD  0x010
#define PTE_A    0x020
#define PTE_D    0x040
#define PTE_PS   0x080 /* PDE only, with CR4.PSE: maps a 4 MiB page */
#define PTE_G    0x100

#ifndef __ASSEMBLER__

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- descriptors (Intel SDM vol. 3A, 3.4.5 and 6.11) ---------------------- */

/* Access byte: P, DPL, S and the 4-bit type. */
#define DESC_P            0x80
#define DESC_DPL(n)       ((n) << 5)
#define DESC_S            0x10
#define DESC_TYPE_CODE    0x08
#define DESC_TYPE_CONFORM 0x04 /* code */
#define DESC_TYPE_READ    0x02 /* code */
#define DESC_TYPE_EXPDOWN 0x04 /* data */
#define DESC_TYPE_WRITE   0x02 /* data */
#define DESC_TYPE_A       0x01

/* System descriptor and gate types (S = 0). */
#define SYS_TSS16_AVAIL  0x1
#define SYS_LDT          0x2
#define SYS_CALL_GATE16  0x4
#define SYS_TASK_GATE    0x5
#define SYS_INT_GATE16   0x6
#define SYS_TSS32_AVAIL  0x9
#define SYS_TSS32_BUSY   0xB
#define SYS_CALL_GATE32  0xC
#define SYS_INT_GATE32   0xE
#define SYS_TRAP_GATE32  0xF

/* Flags nibble (bits 23:20 of the high dword). */
#define DESC_G    0x8
#define DESC_DB   0x4
#define DESC_AVL  0x1

/* Common access bytes; the accessed bit is preset so that loading a selector
 * never makes the CPU write the GDT behind a test's back. */
#define ACC_CODE32  (DESC_P | DESC_S | DESC_TYPE_CODE | DESC_TYPE_READ | DESC_TYPE_A)
#define ACC_DATA32  (DESC_P | DESC_S | DESC_TYPE_WRITE | DESC_TYPE_A)

/* EFLAGS bits. */
#define EFLAGS_CF   0x00000001
#define EFLAGS_FIXED 0x00000002
#define EFLAGS_PF   0x00000004
#define EFLAGS_AF   0x00000010
#define EFLAGS_ZF   0x00000040
#define EFLAGS_SF   0x00000080
#define EFLAGS_TF   0x00000100
#define EFLAGS_IF   0x00000200
#define EFLAGS_DF   0x00000400
#define EFLAGS_OF   0x00000800
#define EFLAGS_IOPL 0x00003000
#define EFLAGS_NT   0x00004000
#define EFLAGS_RF   0x00010000
#define EFLAGS_VM   0x00020000
#define EFLAGS_AC   0x00040000
#define EFLAGS_VIF  0x00080000
#define EFLAGS_VIP  0x00100000
#define EFLAGS_ID   0x00200000

/* Control register bits. */
#define CR0_PE  0x00000001
#define CR0_MP  0x00000002
#define CR0_EM  0x00000004
#define CR0_TS  0x00000008
#define CR0_ET  0x00000010
#define CR0_NE  0x00000020
#define CR0_WP  0x00010000
#define CR0_AM  0x00040000
#define CR0_NW  0x20000000
#define CR0_CD  0x40000000
#define CR0_PG  0x80000000

#define CR4_VME  0x00000001
#define CR4_PVI  0x00000002
#define CR4_TSD  0x00000004
#define CR4_DE   0x00000008
#define CR4_PSE  0x00000010
#define CR4_PAE  0x00000020
#define CR4_PGE  0x00000080
#define CR4_OSFXSR 0x00000200
#define CR4_VMXE 0x00002000

/* Exception vectors. */
#define VEC_DE 0
#define VEC_DB 1
#define VEC_BP 3
#define VEC_OF 4
#define VEC_BR 5
#define VEC_UD 6
#define VEC_NM 7
#define VEC_DF 8
#define VEC_TS 10
#define VEC_NP 11
#define VEC_SS 12
#define VEC_GP 13
#define VEC_PF 14

/* A test function whose inline asm defines labels: it must exist exactly once. */
#define TEST_FN __attribute__((noipa))

struct dtr {
    uint16_t limit;
    uint32_t base;
} __attribute__((packed));

/* A far pointer as m16:32 operand of indirect far JMP/CALL. */
struct farptr {
    uint32_t offset;
    uint16_t sel;
} __attribute__((packed));

/* 32-bit TSS (SDM vol. 3A, 8.2.1). */
struct tss32 {
    uint32_t link, esp0, ss0, esp1, ss1, esp2, ss2, cr3;
    uint32_t eip, eflags, eax, ecx, edx, ebx, esp, ebp, esi, edi;
    uint32_t es, cs, ss, ds, fs, gs, ldt;
    uint16_t trap, iomap_base;
};

/* Fill GDT entry `index` (selector index*8) / an LDT entry. */
void gdt_set(unsigned index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags);
void ldt_set(unsigned index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags);
/* Raw 64-bit descriptor access for tests that look at what the CPU wrote. */
uint64_t gdt_get_raw(unsigned index);
void gdt_set_raw(unsigned index, uint64_t desc);
/* Load the GDT with `entries` descriptors and reload every segment register. */
void gdt_load(unsigned entries);

/* IDT gate `vec` -> sel:offset with access byte `type_attr`
 * (e.g. DESC_P | SYS_INT_GATE32). */
void idt_set_gate(unsigned vec, uint16_t sel, uint32_t offset, uint8_t type_attr);
/* Point gate `vec` back at its runtime stub, as a present interrupt gate. */
void idt_reset_gate(unsigned vec);
void idt_load(uint32_t base, uint16_t limit);
/* Address of the runtime's entry stub for `vec`. */
uint32_t isr_stub(unsigned vec);

/* ---- traps ------------------------------------------------------------------ */

/* What isr.S saves, lowest address first. */
struct trap_frame {
    uint32_t gs, fs, es, ds;
    uint32_t edi, esi, ebp, esp_pusha, ebx, edx, ecx, eax;
    uint32_t vector, error;
    /* pushed by the CPU */
    uint32_t eip, cs, eflags;
    /* pushed by the CPU only on a privilege change, i.e. when (cs & 3) != 0 */
    uint32_t esp, ss;
};

typedef void (*trap_handler_fn)(struct trap_frame *f);

/* A per-vector C handler; NULL restores the default behaviour. */
void trap_set_handler(unsigned vec, trap_handler_fn fn);

/* What the default handler recorded about the last trap. */
struct trap_record {
    uint32_t count;
    uint32_t vector, error, eip, cs, eflags;
    uint32_t cr2; /* #PF only */
};
extern volatile struct trap_record trap_last;

/*
 * Arm the default handler for one trap: it records the trap in trap_last and
 * resumes at `resume` (same CS), or at the saved EIP when `resume` is NULL
 * (traps such as INT n).  An unexpected trap prints a line and ends the run
 * with exit code 0x7f.
 */
void trap_expect(const void *resume);
/* Forget an armed expectation that did not fire. */
void trap_disarm(void);
/* Print "NAME: #GP err=0010 eip=fault+0" (or "NAME: no exception") and disarm;
 * a #PF adds "cr2=...", a trap taken at CPL 1-3 ends in " cpl=N". */
void trap_print(const char *name, const void *fault_label);
/* A 32-bit load from `linear` with a trap armed: a fault resumes after it and
 * the load gives 0xDEADDEAD.  The load is at probe_load_at (for trap_print). */
uint32_t probe_load(uint32_t linear);
extern char probe_load_at[], probe_load_resume[];
const char *vector_name(unsigned vec);
int vector_has_error_code(unsigned vec);

/* ---- ring 3 ----------------------------------------------------------------- */

/*
 * Install the user segments, a TSS (SS0 = SEL_DATA32, ESP0 set by user_run,
 * an I/O permission bitmap for ports 0-3ff that denies every port) and the
 * VEC_USER_RETURN gate, then LTR.  May be called again; it resets the bitmap.
 */
void user_init(void);
/* Allow (1) or deny (0) a port in the TSS I/O bitmap (ports 0-3ff). */
void tss_io_permit(uint16_t port, int allow);

typedef uint32_t (*user_fn)(uint32_t arg);
/*
 * Run fn(arg) at CPL 3 on the user stack and return its result.  IRET enters
 * ring 3 with `eflags` and with DS/ES/FS/GS = `data_sel` (a DPL-0 selector
 * there is nulled by IRET); fn returns through INT VEC_USER_RETURN.  A trap
 * taken in ring 3 is handled on the ring-0 stack below user_run's frame
 * (TSS.ESP0) and may resume ring-3 code.  user_init() must have run.
 */
uint32_t user_run(user_fn fn, uint32_t arg, uint32_t eflags, uint32_t data_sel);

static inline uint32_t user_call(user_fn fn, uint32_t arg)
{
    return user_run(fn, arg, EFLAGS_FIXED, SEL_USER_DATA32);
}

/* ---- paging and other privileged registers -------------------------------------- */

static inline uint32_t cr0_read(void) { uint32_t v; __asm__ volatile("movl %%cr0, %0" : "=r"(v)); return v; }
static inline uint32_t cr2_read(void) { uint32_t v; __asm__ volatile("movl %%cr2, %0" : "=r"(v)); return v; }
static inline uint32_t cr3_read(void) { uint32_t v; __asm__ volatile("movl %%cr3, %0" : "=r"(v)); return v; }
static inline uint32_t cr4_read(void) { uint32_t v; __asm__ volatile("movl %%cr4, %0" : "=r"(v)); return v; }
static inline void cr0_write(uint32_t v) { __asm__ volatile("movl %0, %%cr0" : : "r"(v) : "memory"); }
static inline void cr3_write(uint32_t v) { __asm__ volatile("movl %0, %%cr3" : : "r"(v) : "memory"); }
static inline void cr4_write(uint32_t v) { __asm__ volatile("movl %0, %%cr4" : : "r"(v) : "memory"); }
static inline void invlpg(uint32_t linear)
{
    __asm__ volatile("invlpg (%0)" : : "r"(linear) : "memory");
}

static inline uint64_t msr_read(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

static inline void msr_write(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

/*
 * Page directory `pd` with one page table `pt` identity-mapping 0-4 MiB (the
 * kernel, the runtime's tables, both stacks and the scratch area) with 4 KiB
 * pages and entry flags `flags`; every other directory entry is not present.
 */
static inline void paging_map_low(volatile uint32_t *pd, volatile uint32_t *pt, uint32_t flags)
{
    for (uint32_t i = 0; i < 1024; i++) {
        pt[i] = (i << 12) | flags;
        pd[i] = 0;
    }
    pd[0] = (uint32_t)pt | flags;
}

/* ---- I/O ports ---------------------------------------------------------------- */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b, uint32_t *c,
                         uint32_t *d)
{
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}

static inline uint32_t read_eflags(void)
{
    uint32_t f;
    __asm__ volatile("pushfl; popl %0" : "=r"(f));
    return f;
}

static inline void write_eflags(uint32_t f)
{
    __asm__ volatile("pushl %0; popfl" : : "r"(f) : "memory", "cc");
}

/* ---- output and exit ---------------------------------------------------------- */

void serial_init(void);
void serial_putc(char c);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
void exit_qemu(uint32_t code) __attribute__((noreturn));

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* Each kernel provides this; returning ends the run with exit code 0. */
void kmain(void);

/* Entry points called from crt0.S and isr.S. */
/* 8259A PIC pair and 8254 PIT ports and commands (kernels that drive them). */
#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_CMD  0xA0
#define PIC2_DATA 0xA1
#define PIC_ICW1_INIT 0x10
#define PIC_ICW1_IC4  0x01
#define PIC_ICW4_8086 0x01
#define PIC_OCW2_EOI  0x20
#define PIC_OCW3_READ_IRR 0x0A
#define PIC_OCW3_READ_ISR 0x0B
#define PIT_CH0  0x40
#define PIT_MODE 0x43
#define PIT_SEL_CH0   0x00
#define PIT_RW_LOHI   0x30
#define PIT_MODE2     0x04
#define PIT_LATCH_CH0 0x00
#define PIT_HZ        1193182
#define VEC_IRQ0 0x20

void rt_init(void);
void trap_dispatch(struct trap_frame *f);

#endif /* __ASSEMBLER__ */
#endif /* GUEST_H */
