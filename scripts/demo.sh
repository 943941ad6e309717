#!/usr/bin/env bash
# Sets everything up and runs the demo guest: the CPU benchmark kernel under
# Popek, with translation statistics, then natively and under QEMU TCG for
# comparison (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== the benchmark guest kernel under Popek =="
build/popek -kernel build/bench/cpu-guest.elf -nographic -no-reboot --stats || [ $? -eq 1 ]
echo
echo "== the same work natively, under Popek and under QEMU TCG =="
bench/run-cpu.sh --native build/bench/cpu-native --guest build/bench/cpu-guest.elf \
    --popek build/popek -n 1
