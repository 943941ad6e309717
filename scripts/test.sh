#!/usr/bin/env bash
# Sets everything up and runs every test: Criterion unit tests, the guest
# kernels under Popek, and the same kernels under qemu-system-i386 (the
# reference machine).  Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh -DPOPEK_QEMU_TESTS=ON
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 300
