#!/bin/sh
# Run one guest test kernel and compare its serial output with a golden file.
#
#   run-guest.sh EXPECTED STATUS -- COMMAND [ARGS...]
#
# COMMAND is the whole emulator command line including the kernel, e.g.
#   run-guest.sh desc_tables.expected 1 -- popek -kernel desc_tables.elf -nographic -no-reboot
#   run-guest.sh desc_tables.expected 1 -- qemu-system-i386 -display none -serial stdio \
#       -monitor none -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel desc_tables.elf
# The emulator's stdout must be exactly the guest's serial output; its stderr
# is passed through.  STATUS is the expected exit status: 1 for a kernel that
# ends with exit_qemu(0), 0 for one that triple-faults under -no-reboot.
# GUEST_TIMEOUT (seconds, default 30) bounds the run (SIGTERM, then SIGKILL
# 5 s later); ctest additionally applies its own TIMEOUT property.
# Exits 0 on a match, 1 otherwise (printing a unified diff and/or the status).
set -u

if [ $# -lt 4 ] || [ "$3" != "--" ]; then
    echo "usage: $0 EXPECTED STATUS -- COMMAND [ARGS...]" >&2
    exit 2
fi
expected=$1
want_status=$2
shift 3

out=$(mktemp "${TMPDIR:-/tmp}/run-guest.XXXXXX") || exit 2
trap 'rm -f "$out"' EXIT INT TERM

# -k: an emulator stuck in a signal loop may ignore SIGTERM.
timeout -k 5 "${GUEST_TIMEOUT:-30}" "$@" </dev/null >"$out"
status=$?

ok=0
if ! diff -u --label expected --label actual "$expected" "$out"; then
    echo "run-guest: serial output differs from $expected" >&2
    ok=1
fi
if [ "$status" -ne "$want_status" ]; then
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        echo "run-guest: timed out after ${GUEST_TIMEOUT:-30} s" >&2
    fi
    echo "run-guest: exit status $status, expected $want_status" >&2
    ok=1
fi
exit $ok
