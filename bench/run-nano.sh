#!/usr/bin/env bash
# Nanobenchmark harness: runs bench/nano (one multiboot kernel timing single privileged
# operations, see bench/nano/README.md) under Popek and under QEMU TCG and prints their
# cycles per operation beside the native and binary-translation figures Adams and Agesen
# measured for VMware in 2006. Needs only bash, awk (mawk is fine), coreutils, gcc -m32
# and qemu-system-i386.
#
# The kernel itself repeats every loop and keeps the fastest; with -n N each platform is
# also run N times and the table keeps the minimum per benchmark. A Popek that is
# missing, crashes, hangs (see --timeout) or prints an incomplete set of results is
# reported as "popek: failed" and leaves its column empty; a failing QEMU run makes the
# script exit non-zero.
set -u
export LC_ALL=C

usage() {
	cat <<EOF
usage: $0 [options]
       $0 --build DIR      build nano.elf into DIR and stop

  -n N             runs per platform, minimum taken (default \$BENCH_NANO_RUNS or 1)
  --popek PATH     popek binary (default \$POPEK; missing means "popek: failed")
  --qemu PATH      QEMU binary (default \$QEMU or qemu-system-i386)
  --guest PATH     prebuilt kernel (default: build into \$BENCH_NANO_DIR)
  --timeout S      seconds before a run is killed (default 120)

BENCH_NANO_DIR defaults to \${TMPDIR:-/tmp}/popek-bench-nano-\$(id -u); CC defaults to gcc.
EOF
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
nano_dir=$root/bench/nano
lib_dir=$root/tests/guest/lib
# The kernel runs on the guest-test runtime (GDT/IDT/TSS, serial, user_run).
lib_sources=("$lib_dir/crt0.S" "$lib_dir/isr.S" "$lib_dir/rt.c" "$lib_dir/desc.c")
sources=("${lib_sources[@]}" "$nano_dir/nano.S" "$nano_dir/nano.c")
inputs=("${sources[@]}" "$nano_dir/nano.h" "$lib_dir/guest.h" "$lib_dir/link.ld")

# The one place the kernel's compiler flags live; CMake builds through --build.
build() {
	local dir=$1 cc=${CC:-gcc}
	local flags=(-m32 -march=i686 -mgeneral-regs-only -ffreestanding -fno-pic
		-fno-stack-protector -fno-asynchronous-unwind-tables -nostdlib -static -no-pie -O2
		-Wall -Wextra -Werror -Wl,--build-id=none -Wl,-n -Wl,--no-warn-rwx-segments)

	mkdir -p "$dir" &&
	"$cc" "${flags[@]}" -T "$lib_dir/link.ld" -I"$root/tests/guest" -I"$nano_dir" \
		-o "$dir/nano.elf" "${sources[@]}"
}

# True if $1 is missing or older than an input or this script (flags live here).
stale() {
	local f
	[[ -e $1 ]] || return 0
	for f in "${inputs[@]}" "${BASH_SOURCE[0]}"; do
		[[ $f -nt $1 ]] && return 0
	done
	return 1
}

runs=${BENCH_NANO_RUNS:-1}
popek=${POPEK:-}
qemu=${QEMU:-qemu-system-i386}
guest=
timeout_s=120
while (($#)); do
	case $1 in
	-h|--help) usage; exit 0;;
	--build|-n|--popek|--qemu|--guest|--timeout)
		(($# >= 2)) || { usage >&2; exit 2; };;
	*) usage >&2; exit 2;;
	esac
	case $1 in
	--build) build "$2"; exit;;
	-n) runs=$2;;
	--popek) popek=$2;;
	--qemu) qemu=$2;;
	--guest) guest=$2;;
	--timeout) timeout_s=$2;;
	esac
	shift 2
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "run-nano.sh: bad run count '$runs'" >&2; exit 2; }

if [[ -z $guest ]]; then
	out_dir=${BENCH_NANO_DIR:-${TMPDIR:-/tmp}/popek-bench-nano-$(id -u)}
	if stale "$out_dir/nano.elf"; then
		echo "building into $out_dir"
		build "$out_dir" || { echo "run-nano.sh: build failed" >&2; exit 1; }
	fi
	guest=$out_dir/nano.elf
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/run-nano.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

# The benchmarks the kernel prints, in table order, with the 2006 figures (cycles on
# a 3.8 GHz Pentium 4 672: native, VMware's software VMM; "-" where the paper has no
# such benchmark or we could not check its number).
benchmarks='
syscall        -     -
in             3209  214
in_device      -     -
cr3write       -     -
callret        11    51
pgfault        1093  3927
divzero        889   3223
ptemod         1     391
ptemod_invlpg  -     -
'
expect=$(awk 'NF { n++ } END { print n }' <<<"$benchmarks")

# Result lines are "<name> <cycles>.<tenth>"; anything else (the kernel's header,
# Popek diagnostics, a stray carriage return) is ignored.
result_lines() {
	awk '{ sub(/\r$/, "") } /^[a-z0-9_]+ [0-9]+\.[0-9]$/' "$1"
}

# run_platform NAME COMMAND...: runs N times, appends "name run bench cycles" records
# to $work/results; prints "NAME: failed (why)" and returns 1 at the first bad run.
run_platform() {
	local name=$1 i status lines
	shift
	for ((i = 1; i <= runs; i++)); do
		timeout -k 5 "$timeout_s" "$@" < /dev/null > "$work/$name.$i.out" 2> "$work/$name.$i.err"
		status=$?
		result_lines "$work/$name.$i.out" > "$work/$name.$i.res"
		lines=$(awk 'END { print NR }' "$work/$name.$i.res")
		if ((status == 124 || status == 137)); then
			echo "$name: failed (killed after ${timeout_s} s, run $i)"
		elif ((status != 0 && status != 1)); then
			# isa-debug-exit turns the guest's final write of 0 into status 1.
			echo "$name: failed (exit status $status, run $i)"
		elif ((lines != expect)); then
			echo "$name: failed (incomplete output: $lines of $expect results, run $i)"
		else
			echo "$name: run $i/$runs ok"
			awk -v p="$name" -v r="$i" '{ print p, r, $0 }' "$work/$name.$i.res" >> "$work/results"
			continue
		fi
		tail -n 5 "$work/$name.$i.err" | awk '{ print "  stderr: " $0 }'
		return 1
	done
}

ok=1
if [[ -z $popek ]]; then
	echo "popek: failed (no binary: set POPEK or pass --popek)"
elif [[ ! -x $popek ]]; then
	echo "popek: failed (not executable: $popek)"
else
	run_platform popek "$popek" -kernel "$guest" -nographic -no-reboot
fi
# -display none -serial stdio -monitor none: the serial port is all QEMU prints.
run_platform qemu "$qemu" -accel tcg -m 128 -display none -serial stdio -monitor none \
	-no-reboot -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$guest" || ok=0

[[ -s $work/results ]] || { echo "run-nano.sh: no results" >&2; exit 1; }

printf '%s\n' "$benchmarks" | awk -v runs="$runs" -v results="$work/results" '
function fmt(c) { return c == "" ? "-" : c }
function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.2f", a / b) }
BEGIN {
	while ((getline line < results) > 0) {
		split(line, f, " ")
		k = f[1] SUBSEP f[3]
		if (!(k in best) || f[4] + 0 < best[k] + 0) best[k] = f[4]
	}
}
NF {
	name = $1
	po = ("popek" SUBSEP name) in best ? best["popek" SUBSEP name] : ""
	qe = ("qemu" SUBSEP name) in best ? best["qemu" SUBSEP name] : ""
	row[++n] = sprintf("%-14s %8s %8s %10s %10s %11s", name, $2, $3, fmt(po), fmt(qe), ratio(qe, po))
}
END {
	printf "\n%-14s %17s %10s %10s %11s\n", "benchmark", "VMware 2006 (P4)", "popek", "qemu",
		"qemu/popek"
	printf "%-14s %8s %8s %10s %10s\n", "", "native", "BT", "cycles", "cycles"
	for (i = 1; i <= n; i++) print row[i]
	printf "(cycles per operation; popek and qemu: minimum of %d run(s) of the kernel, which\n", runs
	printf " itself keeps the fastest of 5 loops; 2006 figures from Adams and Agesen, ASPLOS 2006)\n"
}'

((ok)) || exit 1
exit 0
