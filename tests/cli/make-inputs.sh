#!/usr/bin/env bash
# Bad kernel files for the cli.* tests, made at test time from a real guest
# kernel so that they follow whatever the guest build produces.
#
#   make-inputs.sh OUTDIR KERNEL
#
# KERNEL must be a Multiboot ELF32 kernel whose header lies in its first KiB
# (every tests/guest kernel).  Writes into OUTDIR:
#   empty.elf         an empty file
#   notes.txt         a text file (no ELF magic, no multiboot header)
#   kernel.d/         a directory
#   truncated.elf     the first KiB of KERNEL: header intact, segment data cut
#   bad-phdr.elf      KERNEL with p_filesz of its first PT_LOAD set to 0xffffffff
#   bad-checksum.elf  KERNEL with the multiboot checksum zeroed
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 OUTDIR KERNEL" >&2
    exit 2
fi
out=$1
kernel=$2

MULTIBOOT_MAGIC=1badb002
MULTIBOOT_SEARCH=8192
TRUNCATE_AT=1024
PT_LOAD=1
PHDR_FILESZ=16 # offset of p_filesz in an Elf32_Phdr

die() {
    echo "make-inputs: $*" >&2
    exit 1
}

# Unsigned little-endian 32-bit word of file $1 at offset $2 (decimal).
get32() {
    od -An -tu4 -j "$2" -N 4 "$1" | tr -d ' '
}

# Overwrites the 32-bit word of file $1 at offset $2 with $3, little-endian.
put32() {
    local v=$3
    printf '%b' "$(printf '\\0%03o' $((v & 255)) $((v >> 8 & 255)) $((v >> 16 & 255)) \
        $((v >> 24 & 255)))" |
        dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

[ -f "$kernel" ] || die "no kernel '$kernel' (build the guest kernels first)"
[ "$(head -c 4 "$kernel" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || die "'$kernel' is not ELF"

# The multiboot header: the magic on a 4-byte boundary in the first 8 KiB.
line=$(head -c $MULTIBOOT_SEARCH "$kernel" | od -An -v -tx4 -w4 | grep -n -m1 " $MULTIBOOT_MAGIC\$") ||
    die "no multiboot header in '$kernel'"
mb_off=$(((${line%%:*} - 1) * 4))
[ $((mb_off + 12)) -le $TRUNCATE_AT ] || die "multiboot header of '$kernel' is past $TRUNCATE_AT bytes"

# The first PT_LOAD program header.
phoff=$(get32 "$kernel" 28)
phnum=$(($(get32 "$kernel" 44) & 0xffff))
load=
for ((i = 0; i < phnum; i++)); do
    if [ "$(get32 "$kernel" $((phoff + i * 32)))" -eq $PT_LOAD ]; then
        load=$((phoff + i * 32))
        break
    fi
done
[ -n "$load" ] || die "'$kernel' has no PT_LOAD segment"

mkdir -p "$out/kernel.d"
: >"$out/empty.elf"
printf 'This is a text file, not a kernel.\n' >"$out/notes.txt"
head -c $TRUNCATE_AT "$kernel" >"$out/truncated.elf"
cp "$kernel" "$out/bad-phdr.elf"
put32 "$out/bad-phdr.elf" $((load + PHDR_FILESZ)) 0xffffffff
cp "$kernel" "$out/bad-checksum.elf"
put32 "$out/bad-checksum.elf" $((mb_off + 8)) 0
