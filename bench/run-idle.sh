#!/usr/bin/env bash
# Host CPU time of an idle guest: bench/idle/idle.c halts for 1000 ticks of a
# 100 Hz PIT (10 s).  Prints the share of one core Popek used (target < 2%).
# Usage: bench/run-idle.sh POPEK IDLE_KERNEL
set -euo pipefail
if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -f "$2" ]; then
    echo "usage: $0 POPEK IDLE_KERNEL   (e.g. build/popek build/bench/idle.elf)" >&2
    exit 2
fi
popek=$1 kernel=$2
out=$( { /usr/bin/time -f '%e %U %S' "$popek" -kernel "$kernel" -nographic -no-reboot >/dev/null; } 2>&1 || true)
read -r wall user sys <<<"$(echo "$out" | tail -1)"
if ! awk -v w="$wall" 'BEGIN { exit !(w + 0 > 0) }'; then
    echo "popek did not run: $out" >&2
    exit 1
fi
awk -v w="$wall" -v u="$user" -v s="$sys" 'BEGIN {
    printf "idle guest, 100 Hz timer, %.1f s: %.2f s user + %.2f s sys = %.2f%% of one core\n",
           w, u, s, (u + s) / w * 100 }'
