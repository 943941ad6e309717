#!/usr/bin/env bash
# CPU benchmark harness: runs the workloads of bench/cpu/work.c natively, under Popek
# and under QEMU TCG, checks that the three compute the same checksums and prints a
# cycle table. Needs only bash, awk (mawk is fine), coreutils and gcc -m32.
#
# Each platform runs the same code N times; the table keeps the minimum cycles per
# workload, the least disturbed run. All three read the host TSC (natively; Popek runs
# RDTSC untranslated; QEMU TCG returns host TSC ticks), so their cycles are comparable.
# That claim is checked: the "total" cycles of each run, converted to seconds with the
# TSC rate measured on the native run, must roughly match the run's wall time.
#
# A Popek that is missing, crashes, hangs (see --timeout) or prints garbage is reported
# as "popek: failed" and leaves its columns empty; wrong checksums from any platform, or
# a failing native or QEMU run, make the script exit non-zero.
set -u
export LC_ALL=C  # EPOCHREALTIME and awk number formats use '.' only in the C locale

usage() {
	cat <<EOF
usage: $0 [options]
       $0 --build DIR      build cpu-native and cpu-guest.elf into DIR and stop

  -n N             runs per platform, minimum taken (default \$BENCH_CPU_RUNS or 3)
  --popek PATH     popek binary (default \$POPEK; missing means "popek: failed")
  --qemu PATH      QEMU binary (default \$QEMU or qemu-system-i386)
  --native PATH    prebuilt native program (default: build into \$BENCH_CPU_DIR)
  --guest PATH     prebuilt multiboot kernel (default: build into \$BENCH_CPU_DIR)
  --timeout S      seconds before a run is killed (default 300)

BENCH_CPU_DIR defaults to \${TMPDIR:-/tmp}/popek-bench-cpu-\$(id -u); CC defaults to gcc.
EOF
}

src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cpu
sources=("$src_dir/work.c" "$src_dir/guest.S" "$src_dir/linux.S" "$src_dir/guest.ld")

# The one place the benchmark's compiler flags live; CMake builds through --build.
build() {
	local dir=$1 cc=${CC:-gcc}
	local flags=(-m32 -O2 -ffreestanding -fno-pic -fno-stack-protector -nostdlib -static
		-no-pie -fno-asynchronous-unwind-tables -Wall -Wextra -Werror)

	mkdir -p "$dir" &&
	"$cc" "${flags[@]}" -o "$dir/cpu-native" "$src_dir/linux.S" "$src_dir/work.c" &&
	"$cc" "${flags[@]}" -Wl,--build-id=none -T "$src_dir/guest.ld" \
		-o "$dir/cpu-guest.elf" "$src_dir/guest.S" "$src_dir/work.c"
}

# True if $1 is missing or older than a source file or this script (flags live here).
stale() {
	local f
	[[ -e $1 ]] || return 0
	for f in "${sources[@]}" "${BASH_SOURCE[0]}"; do
		[[ $f -nt $1 ]] && return 0
	done
	return 1
}

runs=${BENCH_CPU_RUNS:-3}
popek=${POPEK:-}
qemu=${QEMU:-qemu-system-i386}
native=
guest=
timeout_s=300
while (($#)); do
	case $1 in
	-h|--help) usage; exit 0;;
	--build|-n|--popek|--qemu|--native|--guest|--timeout)
		(($# >= 2)) || { usage >&2; exit 2; };;
	*) usage >&2; exit 2;;
	esac
	case $1 in
	--build) build "$2"; exit;;
	-n) runs=$2;;
	--popek) popek=$2;;
	--qemu) qemu=$2;;
	--native) native=$2;;
	--guest) guest=$2;;
	--timeout) timeout_s=$2;;
	esac
	shift 2
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "run-cpu.sh: bad run count '$runs'" >&2; exit 2; }

if [[ -z $native || -z $guest ]]; then
	out_dir=${BENCH_CPU_DIR:-${TMPDIR:-/tmp}/popek-bench-cpu-$(id -u)}
	if stale "$out_dir/cpu-native" || stale "$out_dir/cpu-guest.elf"; then
		echo "building into $out_dir"
		build "$out_dir" || { echo "run-cpu.sh: build failed" >&2; exit 1; }
	fi
	native=${native:-$out_dir/cpu-native}
	guest=${guest:-$out_dir/cpu-guest.elf}
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/run-cpu.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

# Result lines are "<name> <cycles> <checksum>"; anything else a platform prints
# (Popek diagnostics, a stray carriage return) is ignored.
result_lines() {
	awk '{ sub(/\r$/, "") } /^[a-z]+ [0-9]+ [0-9a-f]+$/ && length($3) == 8' "$1"
}

# run_platform NAME COMMAND...: runs N times, appends "name run wall <line>" records
# to $work/results; prints "NAME: failed (why)" and returns 1 at the first bad run.
run_platform() {
	local name=$1 i status start wall lines expect
	shift
	expect=0
	[[ -f $work/expected ]] && expect=$(awk 'END { print NR }' "$work/expected")
	for ((i = 1; i <= runs; i++)); do
		start=$EPOCHREALTIME
		timeout -k 5 "$timeout_s" "$@" < /dev/null > "$work/$name.$i.out" 2> "$work/$name.$i.err"
		status=$?
		wall=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
		result_lines "$work/$name.$i.out" > "$work/$name.$i.res"
		lines=$(awk 'END { print NR }' "$work/$name.$i.res")
		if ((status == 124 || status == 137)); then
			echo "$name: failed (killed after ${timeout_s} s, run $i)"
		elif [[ $name == native ]] && ((status != 0)); then
			echo "$name: failed (exit status $status, run $i)"
		elif ((status != 0 && status != 1)); then
			# isa-debug-exit turns the guest's final write of 0 into status 1.
			echo "$name: failed (exit status $status, run $i)"
		elif ! awk '$1 == "total" { found = 1 } END { exit !found }' "$work/$name.$i.res" ||
			{ ((expect > 0)) && ((lines != expect)); }; then
			echo "$name: failed (incomplete output: $lines result lines, run $i)"
		else
			echo "$name: run $i/$runs ok, $wall s wall"
			awk -v p="$name" -v r="$i" -v w="$wall" '{ print p, r, w, $0 }' \
				"$work/$name.$i.res" >> "$work/results"
			continue
		fi
		tail -n 5 "$work/$name.$i.err" | awk '{ print "  stderr: " $0 }'
		return 1
	done
}

ok=1
run_platform native "$native" || ok=0
[[ -s $work/native.1.res ]] && cp "$work/native.1.res" "$work/expected"
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

[[ -s $work/results ]] || { echo "run-cpu.sh: no results" >&2; exit 1; }

awk -v runs="$runs" '
function fmt_mc(c) { return c == "" ? "-" : sprintf("%.1f", c / 1e6) }
function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "" : a / b }
function fmt_r(r) { return r == "" ? "-" : sprintf("%.2f", r) }
{
	plat = $1; wall = $3; name = $4; cyc = $5 + 0; sum = $6
	if (name == "total") {
		if (!(plat in tot) || cyc < tot[plat]) tot[plat] = cyc
		if (!(plat in mwall) || wall < mwall[plat]) mwall[plat] = wall
		# TSC rate of the least disturbed native run.
		if (plat == "native" && (hz == "" || cyc / wall > hz)) hz = cyc / wall
		next
	}
	if (!(name in seen)) { seen[name] = 1; order[++n] = name }
	k = plat SUBSEP name
	if (!(k in best) || cyc < best[k]) best[k] = cyc
	if (!(name in ref)) ref[name] = sum
	else if (sum != ref[name]) {
		printf "CHECKSUM MISMATCH: %s %s run %s: %s, expected %s\n", plat, name, $2, sum, ref[name]
		bad[k] = 1; mismatch = 1
	}
}
END {
	printf "\n%-8s %11s %11s %11s %12s %11s %11s\n", "workload", "native", "popek", "qemu",
		"popek/native", "qemu/popek", "qemu/native"
	printf "%-8s %11s %11s %11s\n", "", "Mcycles", "Mcycles", "Mcycles"
	split("native popek qemu", plats, " ")
	for (i = 1; i <= n; i++) {
		w = order[i]
		for (j = 1; j <= 3; j++) {
			p = plats[j]; k = p SUBSEP w
			c[p] = (k in best) ? best[k] : ""
			s[p] = fmt_mc(c[p]) ((k in bad) ? "!" : "")
			if (c[p] != "") total[p] += c[p]
		}
		r1 = ratio(c["popek"], c["native"]); r2 = ratio(c["qemu"], c["popek"])
		r3 = ratio(c["qemu"], c["native"])
		if (r1 != "") { g1 += log(r1); n1++ }
		if (r2 != "") { g2 += log(r2); n2++ }
		if (r3 != "") { g3 += log(r3); n3++ }
		printf "%-8s %11s %11s %11s %12s %11s %11s\n", w, s["native"], s["popek"], s["qemu"],
			fmt_r(r1), fmt_r(r2), fmt_r(r3)
	}
	printf "%-8s %11s %11s %11s %12s %11s %11s\n", "sum", fmt_mc(total["native"]),
		fmt_mc(total["popek"]), fmt_mc(total["qemu"]),
		fmt_r(ratio(total["popek"], total["native"])), fmt_r(ratio(total["qemu"], total["popek"])),
		fmt_r(ratio(total["qemu"], total["native"]))
	printf "%-8s %11s %11s %11s %12s %11s %11s\n", "geomean", "", "", "",
		n1 ? fmt_r(exp(g1 / n1)) : "-", n2 ? fmt_r(exp(g2 / n2)) : "-", n3 ? fmt_r(exp(g3 / n3)) : "-"
	printf "(minimum of %d runs per platform; \"!\" marks a wrong checksum)\n", runs

	if (hz == "") exit mismatch
	printf "\ncycles vs wall time (TSC %.3f GHz, measured natively):\n", hz / 1e9
	for (j = 1; j <= 3; j++) {
		p = plats[j]
		if (!(p in tot)) continue
		t = tot[p] / hz; r = t / mwall[p]
		printf "  %-6s  %8.2f s by TSC, %8.2f s wall (%.2f)", p, t, mwall[p], r
		if (p == "native") { printf "  (reference)\n"; continue }
		# The wall clock also covers process start and guest boot, so it may be
		# somewhat longer. A TSC span longer than the wall clock, or far shorter,
		# means the TSC of this platform does not tick at the host rate (or its
		# start-up dwarfs the workloads): its cycles are then not comparable.
		if (r > 1.05 || r < 0.5) printf "  WARNING: TSC and wall clock disagree"
		printf "\n"
	}
	exit mismatch
}' "$work/results" || ok=0

((ok)) || exit 1
exit 0
