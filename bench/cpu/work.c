/*
 * CPU-bound benchmark workloads, one source built twice:
 *
 *   cpu-guest.elf   multiboot v1 kernel (guest.S: header, stack, COM1, isa-debug-exit)
 *   cpu-native      static 32-bit Linux program (linux.S: _start, write(2), exit(2))
 *
 * The same machine code therefore runs natively on the host, under Popek and under
 * QEMU TCG, and bench/run-cpu.sh compares the three. Each workload stresses one thing
 * a binary translator has to get right and fast:
 *
 *   alu     a long dependency chain of 32- and 64-bit integer arithmetic (adc/sbb,
 *           mul, shld/shrd, rotates): ident-translated code, flags live across blocks
 *   sieve   byte sieve of Eratosthenes over 8 MiB: stores all over guest RAM
 *   copy    a C copy loop between two 4 MiB arrays, every word depending on the last
 *   movs    rep movsl of 4 MiB: string instructions, run natively by a translator
 *   call    direct calls of tiny out-of-line functions: call/ret, every ret being an
 *           indirect branch the translator has to look up
 *   icall   calls through a function pointer table: indirect calls with 8 targets
 *   fib     naive recursive Fibonacci: deep call/ret nesting
 *   interp  a switch-dispatched bytecode interpreter: one indirect jmp per bytecode
 *
 * Every workload is timed with RDTSC. Under QEMU TCG, RDTSC reads the host TSC, and
 * Popek executes it natively, so the cycle counts of the three runs are comparable
 * (run-cpu.sh cross-checks that against wall time). CPUID, the textbook serialising
 * instruction, is avoided because a monitor traps and emulates it, which would add its
 * own cost to every measurement; LFENCE before RDTSC waits for earlier instructions to
 * finish and LFENCE after it keeps later ones from starting early.
 *
 * Output, one line per workload and a final total (the span from the first workload's
 * start to the last one's end, output included):
 *
 *   <name> <cycles, decimal> <checksum, 8 hex digits>
 *
 * The checksums depend only on the computation, so they must agree across platforms;
 * they also keep the compiler from deleting the work. Sizes below were chosen for about
 * 0.3 s per workload natively on the project machines (2.7 GHz Xeon).
 *
 * No libc and no libgcc: 64-bit division is done with DIVL by hand (u64_to_dec) and
 * the big arrays are static, because the guest has no allocator.
 */
#include <stdint.h>

/* Provided by the platform start-up file (guest.S or linux.S). */
void bench_write(const char *buf, uint32_t len);
int bench_main(void);

#define ALU_ITERS 75000000u

#define SIEVE_N (8u << 20)
#define SIEVE_PASSES 5u

#define COPY_WORDS ((4u << 20) / 4u)
#define COPY_PASSES 500u
#define MOVS_PASSES 1000u

#define CALL_ITERS 160000000u
#define ICALL_ITERS 150000000u
#define FIB_N 40u
#define INTERP_ITERS 15000000u

static uint8_t sieve_map[SIEVE_N];

/*
 * Both copy arrays live in one buffer, the destination a page and a bit past the end
 * of the source. Exactly 4 MiB apart, src[i] and dst[i] would share a set of QEMU's
 * direct-mapped softmmu TLB and thrash it (measured: copy 12 times slower under TCG),
 * and share their low 12 address bits, which can make Intel CPUs falsely forward
 * stores to loads ("4K aliasing"). Neither is what these workloads are meant to measure.
 */
#define COPY_GAP_WORDS ((4096u + 256u) / 4u)
static uint32_t copy_buf[2 * COPY_WORDS + COPY_GAP_WORDS];
static uint32_t *const copy_src = copy_buf;
static uint32_t *const copy_dst = copy_buf + COPY_WORDS + COPY_GAP_WORDS;

static inline uint64_t tsc_read(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence\n\trdtsc\n\tlfence" : "=a"(lo), "=d"(hi) : : "memory");
	return (uint64_t)hi << 32 | lo;
}

/* Mixes a workload result into a checksum word (MurmurHash3's 32-bit finaliser). */
static uint32_t mix32(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

static uint32_t work_alu(void)
{
	uint32_t a = 1, b = 0x12345678u;
	uint64_t c = 0x0123456789abcdefull;

	for (uint32_t i = 0; i < ALU_ITERS; i++) {
		a = a * 0x9e3779b1u + i;
		a ^= a >> 15;
		b = ((b << 7) | (b >> 25)) + (a ^ i);
		c += (uint64_t)a * b;    /* MUL, then ADD/ADC */
		c ^= c << 13;            /* SHLD */
		c -= c >> 7 | 1;         /* SHRD, then SUB/SBB */
		if ((int32_t)a < 0)
			b = ~b;
	}
	return a ^ b ^ (uint32_t)c ^ (uint32_t)(c >> 32);
}

static uint32_t work_sieve(void)
{
	uint32_t sum = 0;

	for (uint32_t pass = 0; pass < SIEVE_PASSES; pass++) {
		/* A byte store loop rather than memset, which does not exist here. */
		for (uint32_t i = 0; i < SIEVE_N; i++)
			sieve_map[i] = (uint8_t)(1 + pass);
		for (uint32_t p = 2; p * p < SIEVE_N; p++) {
			if (sieve_map[p] == 0)
				continue;
			for (uint32_t m = p * p; m < SIEVE_N; m += p)
				sieve_map[m] = 0;
		}
		uint32_t primes = 0, last = 0;
		for (uint32_t i = 2; i < SIEVE_N; i++) {
			if (sieve_map[i]) {
				primes++;
				last = i;
			}
		}
		sum = mix32(sum + primes) ^ last;
	}
	return sum;
}

static void copy_fill(void)
{
	for (uint32_t i = 0; i < COPY_WORDS; i++)
		copy_src[i] = i * 0x01000193u;
}

static uint32_t work_copy(void)
{
	uint32_t *src = copy_src, *dst = copy_dst;
	uint32_t acc = 0;

	copy_fill();
	for (uint32_t pass = 0; pass < COPY_PASSES; pass++) {
		/* A running sum makes every word, and every pass, depend on the last. */
		for (uint32_t i = 0; i < COPY_WORDS; i++) {
			acc += src[i];
			dst[i] = src[i] ^ acc;
		}
		uint32_t *t = src;
		src = dst;
		dst = t;
	}
	return mix32(acc);
}

static uint32_t work_movs(void)
{
	uint32_t acc = 0;

	copy_fill();
	for (uint32_t pass = 0; pass < MOVS_PASSES; pass++) {
		const uint32_t *src = copy_src;
		uint32_t *dst = copy_dst;
		uint32_t n = COPY_WORDS;

		__asm__ volatile("rep movsl"
				 : "+S"(src), "+D"(dst), "+c"(n)
				 :
				 : "memory");
		/* Change the source a little, sample the copy: each pass differs. */
		uint32_t at = (pass * 4099u) % COPY_WORDS;
		copy_src[at] += pass;
		acc = mix32(acc ^ copy_dst[at] ^ copy_dst[COPY_WORDS - 1 - at]);
	}
	return acc;
}

/* noipa: keep the functions out of line and their calls unspecialised. */
__attribute__((noipa)) static uint32_t call_mix(uint32_t x, uint32_t y)
{
	return (x ^ y) + (x >> 3);
}

__attribute__((noipa)) static uint32_t call_step(uint32_t x)
{
	return x * 5u + 1u;
}

static uint32_t work_call(void)
{
	uint32_t acc = 7;

	for (uint32_t i = 0; i < CALL_ITERS; i++) {
		acc = call_mix(acc, i);
		acc = call_step(acc);
	}
	return acc;
}

__attribute__((noipa)) static uint32_t op_add(uint32_t x, uint32_t y) { return x + y; }
__attribute__((noipa)) static uint32_t op_sub(uint32_t x, uint32_t y) { return x - y; }
__attribute__((noipa)) static uint32_t op_xor(uint32_t x, uint32_t y) { return x ^ y; }
__attribute__((noipa)) static uint32_t op_mul(uint32_t x, uint32_t y) { return x * (y | 1u); }
__attribute__((noipa)) static uint32_t op_rol(uint32_t x, uint32_t y) { return x << (y & 31) | x >> (-y & 31); }
__attribute__((noipa)) static uint32_t op_shr(uint32_t x, uint32_t y) { return x + (y >> 3); }
__attribute__((noipa)) static uint32_t op_or(uint32_t x, uint32_t y) { return (x | y) - y; }
__attribute__((noipa)) static uint32_t op_neg(uint32_t x, uint32_t y) { return ~x + y; }

/* Not const: the compiler must not resolve the indirect calls at build time. */
static uint32_t (*icall_table[8])(uint32_t, uint32_t) = {
	op_add, op_sub, op_xor, op_mul, op_rol, op_shr, op_or, op_neg,
};

static uint32_t work_icall(void)
{
	uint32_t acc = 3;

	/*
	 * The target follows the loop counter, not the data: the host branch
	 * predictor learns the pattern, so the measurement shows what indirect
	 * branches cost a translator rather than what mispredictions cost the CPU.
	 */
	for (uint32_t i = 0; i < ICALL_ITERS; i++)
		acc = icall_table[(i ^ (i >> 3)) & 7](acc, i);
	return acc;
}

__attribute__((noipa)) static uint32_t fib(uint32_t n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static uint32_t work_fib(void)
{
	return fib(FIB_N);
}

/* Interpreter for a small register bytecode; one instruction is 8 bytes. */
enum vm_op {
	VM_HALT, VM_LI, VM_MOV, VM_ADD, VM_ADDI, VM_SUB, VM_MUL, VM_XOR,
	VM_AND, VM_ANDI, VM_SHRI, VM_SHLI, VM_JNZ, VM_JZ, VM_LD, VM_ST,
};

struct vm_insn {
	uint8_t op, a, b, c; /* destination, then sources */
	int32_t imm;         /* immediate, or branch displacement in instructions */
};

#define VM_MEM_WORDS 64u

/*
 * A linear congruential generator whose output drives a histogram in VM memory.
 * Not const, like icall_table, so the interpreter cannot be specialised.
 */
static struct vm_insn vm_program[] = {
	{ VM_LI,   0, 0, 0, (int32_t)INTERP_ITERS }, /* r0: loop counter */
	{ VM_LI,   1, 0, 0, 1 },                     /* r1: LCG state */
	{ VM_LI,   2, 0, 0, 1103515245 },            /* r2: LCG multiplier */
	{ VM_LI,   6, 0, 0, 0 },                     /* r6: running sum */
	/* loop: */
	{ VM_MUL,  1, 1, 2, 0 },
	{ VM_ADDI, 1, 1, 0, 12345 },
	{ VM_SHRI, 3, 1, 0, 16 },
	{ VM_ANDI, 4, 3, 0, VM_MEM_WORDS - 1 },
	{ VM_LD,   5, 4, 0, 0 },
	{ VM_ADDI, 5, 5, 0, 1 },
	{ VM_ST,   0, 4, 5, 0 },
	{ VM_XOR,  6, 6, 3, 0 },
	{ VM_ANDI, 7, 3, 0, 3 },
	{ VM_JZ,   0, 7, 0, 2 },                     /* skip the next one 1 in 4 */
	{ VM_SHLI, 6, 6, 0, 1 },
	{ VM_ADD,  6, 6, 5, 0 },
	{ VM_ADDI, 0, 0, 0, -1 },
	{ VM_JNZ,  0, 0, 0, -13 },                   /* to loop */
	{ VM_MOV,  0, 6, 0, 0 },
	{ VM_HALT, 0, 0, 0, 0 },
};

__attribute__((noipa)) static uint32_t vm_run(const struct vm_insn *pc, uint32_t *mem)
{
	uint32_t r[8] = { 0 };

	for (;;) {
		const struct vm_insn *in = pc++;

		switch ((enum vm_op)in->op) {
		case VM_HALT: return r[0];
		case VM_LI:   r[in->a] = (uint32_t)in->imm; break;
		case VM_MOV:  r[in->a] = r[in->b]; break;
		case VM_ADD:  r[in->a] = r[in->b] + r[in->c]; break;
		case VM_ADDI: r[in->a] = r[in->b] + (uint32_t)in->imm; break;
		case VM_SUB:  r[in->a] = r[in->b] - r[in->c]; break;
		case VM_MUL:  r[in->a] = r[in->b] * r[in->c]; break;
		case VM_XOR:  r[in->a] = r[in->b] ^ r[in->c]; break;
		case VM_AND:  r[in->a] = r[in->b] & r[in->c]; break;
		case VM_ANDI: r[in->a] = r[in->b] & (uint32_t)in->imm; break;
		case VM_SHRI: r[in->a] = r[in->b] >> (in->imm & 31); break;
		case VM_SHLI: r[in->a] = r[in->b] << (in->imm & 31); break;
		case VM_JNZ:  if (r[in->a] != 0) pc += in->imm - 1; break;
		case VM_JZ:   if (r[in->b] == 0) pc += in->imm - 1; break;
		case VM_LD:   r[in->a] = mem[r[in->b] % VM_MEM_WORDS]; break;
		case VM_ST:   mem[r[in->b] % VM_MEM_WORDS] = r[in->c]; break;
		default:      return 0xdeadbeefu;
		}
	}
}

static uint32_t work_interp(void)
{
	uint32_t mem[VM_MEM_WORDS] = { 0 };
	uint32_t sum = vm_run(vm_program, mem);

	for (uint32_t i = 0; i < VM_MEM_WORDS; i++)
		sum = mix32(sum ^ mem[i]);
	return sum;
}

static const struct workload {
	const char *name;
	uint32_t (*run)(void);
} workloads[] = {
	{ "alu", work_alu },
	{ "sieve", work_sieve },
	{ "copy", work_copy },
	{ "movs", work_movs },
	{ "call", work_call },
	{ "icall", work_icall },
	{ "fib", work_fib },
	{ "interp", work_interp },
};

/* Decimal digits of v into out (no terminator); returns the length. */
static uint32_t u64_to_dec(uint64_t v, char *out)
{
	char rev[20];
	uint32_t n = 0;

	do {
		/* Long division by 10 in two 32-bit steps, without __udivdi3. */
		uint32_t hi = (uint32_t)(v >> 32), lo = (uint32_t)v;
		uint32_t qhi = hi / 10u, rem = hi % 10u, qlo;

		__asm__("divl %4" : "=a"(qlo), "=d"(rem) : "a"(lo), "d"(rem), "rm"(10u));
		v = (uint64_t)qhi << 32 | qlo;
		rev[n++] = (char)('0' + rem);
	} while (v != 0);
	for (uint32_t i = 0; i < n; i++)
		out[i] = rev[n - 1 - i];
	return n;
}

static void report(const char *name, uint64_t cycles, uint32_t checksum)
{
	static const char hex[] = "0123456789abcdef";
	char line[64];
	uint32_t n = 0;

	while (*name != '\0')
		line[n++] = *name++;
	line[n++] = ' ';
	n += u64_to_dec(cycles, line + n);
	line[n++] = ' ';
	for (int shift = 28; shift >= 0; shift -= 4)
		line[n++] = hex[(checksum >> shift) & 15];
	line[n++] = '\n';
	bench_write(line, n);
}

/*
 * Writes to every page of [p, p + len) before any timing, so that first-touch page
 * faults (host demand paging natively, hidden faults under Popek) stay out of the
 * measurements: this benchmark is about translated code, not memory setup.
 */
static void prefault(void *p, uint32_t len)
{
	volatile uint8_t *b = p;

	for (uint32_t i = 0; i < len; i += 4096)
		b[i] = 0;
	b[len - 1] = 0;
}

int bench_main(void)
{
	uint32_t total_sum = 0;

	prefault(sieve_map, sizeof(sieve_map));
	prefault(copy_buf, sizeof(copy_buf));
	uint64_t start = tsc_read();
	for (uint32_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
		uint64_t t0 = tsc_read();
		uint32_t sum = workloads[i].run();
		uint64_t t1 = tsc_read();

		report(workloads[i].name, t1 - t0, sum);
		total_sum = mix32(total_sum ^ sum);
	}
	report("total", tsc_read() - start, total_sum);
	return 0;
}
