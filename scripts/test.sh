#!/usr/bin/env bash
# Sets everything up and runs every test: Criterion unit tests, the guest
# kernels under Popek and under qemu-system-i386 (the reference machine), the
# command-line tests, and Debian's stock kernel booting the CI workload.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh -DPOPEK_QEMU_TESTS=ON
scripts/fetch-guest.sh --fidelity build/tests/fidelity/fidelity
cmake -S . -B build >/dev/null   # registers linux.workload now that the images exist
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 900
