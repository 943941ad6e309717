#!/usr/bin/env bash
# The main job: sets everything up (packages, build, Debian's i386 kernel and
# a busybox initramfs, cached in cache/) and boots it under Popek to an
# interactive shell on this terminal.  Ctrl-A X quits, as with QEMU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/fetch-guest.sh
exec build/popek -kernel cache/guest/vmlinuz -initrd cache/guest/initramfs.cpio.gz \
    -append "console=ttyS0 quiet" -m 256 -nographic "$@"
