#!/usr/bin/env bash
# Sets everything up and runs every test: Criterion unit tests, the guest
# kernels under Popek and under qemu-system-i386 (the reference machine), the
# command-line tests, and Debian's stock kernel booting the CI workload.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh -DPOPEK_QEMU_TESTS=ON
# The unit tests again under ASan/UBSan.  Whole VMs cannot run there: the
# sanitizers' shadow memory lives in the low 4 GiB, which is the guest's.
cmake -S . -B build-sanitize -DPOPEK_SANITIZE=ON >/dev/null
cmake --build build-sanitize -j"$(nproc)"
(cd build-sanitize && ctest --output-on-failure -j"$(nproc)" -R '^unit\.')
scripts/fetch-guest.sh --fidelity build/tests/fidelity/fidelity
cmake -S . -B build >/dev/null   # registers linux.workload now that the images exist
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 900
