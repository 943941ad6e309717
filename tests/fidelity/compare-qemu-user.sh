#!/bin/sh
# Usage: compare-qemu-user.sh QEMU_I386 FIDELITY
# Runs the fidelity program natively and under qemu-i386, every case printed
# (-v) less QEMU's known gaps (-q), and fails on any difference.
set -eu
qemu=$1
prog=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$prog" -q -v >"$dir/native" || { echo "fidelity: native run failed ($?)"; exit 1; }
"$qemu" "$prog" -q -v >"$dir/qemu" || { echo "fidelity: qemu-i386 run failed ($?)"; exit 1; }
cases=$(grep -c '^  ' "$dir/native" || true)
if ! cmp -s "$dir/native" "$dir/qemu"; then
    diff -u "$dir/native" "$dir/qemu" | head -n 60
    echo "fidelity: qemu-i386 differs from native (first differences above; native is right)"
    exit 1
fi
echo "fidelity: native and qemu-i386 agree on $cases cases"
