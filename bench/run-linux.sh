#!/usr/bin/env bash
# Linux benchmarks, in one run (see bench/README.md):
#  1. boot plus the CI workload (guest/initramfs/test-init), wall time, under
#     Popek and under qemu-system-i386 -accel tcg, same kernel, initramfs and
#     command line;
#  2. CPU-bound user work inside the guest (busybox sha256sum and gzip over
#     32 MiB in tmpfs, timed by the guest) against the same busybox binary
#     run natively on the host over the same data.
# Needs the images from scripts/fetch-guest.sh.  Usage:
#   bench/run-linux.sh [--popek PATH] [-n RUNS] [-r ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
popek=build/popek runs=3 rounds=2
while [ $# -gt 0 ]; do
    case $1 in
    --popek) popek=$2; shift 2 ;;
    -n) runs=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    *) echo "usage: $0 [--popek PATH] [-n RUNS] [-r ROUNDS]" >&2; exit 2 ;;
    esac
done
G=cache/guest
for f in vmlinuz test-initramfs.cpio.gz bench-initramfs.cpio.gz; do
    [ -f "$G/$f" ] || { echo "missing $G/$f: run scripts/fetch-guest.sh" >&2; exit 2; }
done
busybox=$(find cache/extract -path '*busybox*/bin/busybox' | head -1)
APPEND="console=ttyS0 panic=-1 quiet"
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
min() { tr ' ' '\n' | grep -v '^$' | sort -g | head -1; }

# 1. boot + workload, the two VMMs alternating (this machine's speed drifts:
# back-to-back blocks of runs would compare different machines)
declare -A boot boot_times
for ((r = 1; r <= runs; r++)); do
    for vmm in popek qemu; do
        a=$(now)
        if [ $vmm = popek ]; then
            "$popek" -kernel $G/vmlinuz -initrd $G/test-initramfs.cpio.gz -m 256 -nographic \
                -no-reboot -append "$APPEND" </dev/null >/tmp/bench-linux.$vmm 2>&1 || true
        else
            qemu-system-i386 -accel tcg -m 256 -display none -serial stdio -monitor none \
                -no-reboot -kernel $G/vmlinuz -initrd $G/test-initramfs.cpio.gz \
                -append "$APPEND" </dev/null >/tmp/bench-linux.$vmm 2>&1 || true
        fi
        b=$(now)
        grep -q 'POPEK-TEST: done' /tmp/bench-linux.$vmm || { echo "$vmm: workload failed" >&2; exit 1; }
        boot_times[$vmm]+=" $(elapsed "$a" "$b")"
    done
done
for vmm in popek qemu; do
    boot[$vmm]=$(echo "${boot_times[$vmm]}" | min)
done

# 2. CPU-bound user work, in rounds that alternate the guest (5 runs of each
# tool inside one boot) and the host (5 runs each), for the same reason.
data=$(mktemp)
trap 'rm -f "$data"' EXIT
for i in $(seq 16); do cat "$busybox"; done >"$data"
declare -A guest_times native_times guest native
for ((r = 1; r <= rounds; r++)); do
    out=$("$popek" -kernel $G/vmlinuz -initrd $G/bench-initramfs.cpio.gz -m 256 -nographic \
        -no-reboot -append "$APPEND" </dev/null 2>&1 | tr -d '\r')
    for w in sha256sum gzip; do
        t=$(echo "$out" | sed -n "s/^POPEK-BENCH: $w //p")
        [ -n "$t" ] || { echo "popek: $w did not report" >&2; exit 1; }
        guest_times[$w]+=" $t"
    done
    for w in sha256sum gzip; do
        for i in 1 2 3 4 5; do
            a=$(now)
            if [ $w = gzip ]; then
                "$busybox" gzip -c "$data" >/dev/null
            else
                "$busybox" sha256sum "$data" "$data" "$data" >/dev/null
            fi
            b=$(now)
            native_times[$w]+=" $(elapsed "$a" "$b")"
        done
    done
done
for w in sha256sum gzip; do
    guest[$w]=$(echo "${guest_times[$w]}" | min)
    native[$w]=$(echo "${native_times[$w]}" | min)
done

printf '%-28s %10s %10s %10s\n' "" popek qemu qemu/popek
printf '%-28s %9ss %9ss %10.2f\n' "boot + CI workload (wall)" "${boot[popek]}" "${boot[qemu]}" \
    "$(awk -v p="${boot[popek]}" -v q="${boot[qemu]}" 'BEGIN { print q / p }')"
echo
printf '%-28s %10s %10s %12s\n' "" popek native popek/native
for w in sha256sum gzip; do
    printf '%-28s %9ss %9ss %12.2f\n' "busybox $w, $([ $w = gzip ] && echo 32 || echo 3x32) MiB" "${guest[$w]}" "${native[$w]}" \
        "$(awk -v p="${guest[$w]}" -v n="${native[$w]}" 'BEGIN { print p / n }')"
done
echo "(minimum of $runs runs for boot, $rounds rounds of 5 for the user work; guest times from /proc/uptime, 10 ms resolution)"
