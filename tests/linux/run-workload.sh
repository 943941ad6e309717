#!/usr/bin/env bash
# The Linux acceptance test: Debian 12's stock i386 kernel with the CI
# workload initramfs (guest/initramfs/test-init) under Popek.  Passes when
# every workload step reports ok, the run ends with "POPEK-TEST: done", the
# guest's reboot ends Popek with status 0 under -no-reboot, and the fidelity
# program printed in the guest exactly what it prints natively on the host.
#
# Usage: run-workload.sh POPEK KERNEL INITRD FIDELITY
set -u
popek=$1 kernel=$2 initrd=$3 fidelity=$4
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

timeout -k 5 600 "$popek" -kernel "$kernel" -initrd "$initrd" -m 256 -nographic -no-reboot \
    -append "console=ttyS0 panic=-1 quiet" </dev/null >"$out" 2>"$err"
status=$?
tr -d '\r' <"$out" >"$out.lf" && mv "$out.lf" "$out"
grep 'POPEK-TEST' "$out"
fail=0
if [ "$status" -ne 0 ]; then
    echo "FAIL: popek exited with status $status (want 0: the guest reboots under -no-reboot)"
    tail -5 "$err"
    fail=1
fi
for step in mount loop fork-exec spaces sha256 cpuinfo fidelity; do
    grep -q "^POPEK-TEST: step $step ok" "$out" || { echo "FAIL: step $step did not pass"; fail=1; }
done
grep -q '^POPEK-TEST: done$' "$out" || { echo "FAIL: no 'POPEK-TEST: done'"; fail=1; }
grep -q 'processor' "$out" || { echo "FAIL: /proc/cpuinfo was not printed"; fail=1; }
want=$("$fidelity" 2>&1 | sha256sum | cut -d' ' -f1)
got=$(sed -n 's/^POPEK-TEST: fidelity sha256 //p' "$out")
if [ "$got" != "$want" ]; then
    echo "FAIL: fidelity output differs from the native run ($got != $want)"
    diff <(sed -n '/fidelity begin/,/fidelity end/p' "$out" | sed '1d;$d' | grep -v '^\[') \
         <("$fidelity" 2>&1) | head -20
    fail=1
fi
[ "$fail" -eq 0 ] && echo "linux workload: all steps ok, fidelity matches native"
exit "$fail"
