#!/usr/bin/env bash
# Bad kernel files for the cli.* tests, made at test time from a real guest
# kernel so that they follow whatever the guest build produces, and bad Linux
# inputs built around a synthetic bzImage, so that they need no downloaded
# kernel.
#
#   make-inputs.sh OUTDIR KERNEL
#
# KERNEL must be a Multiboot ELF32 kernel whose header lies in its first KiB
# (every tests/guest kernel).  Writes into OUTDIR:
#   empty.elf          an empty file
#   notes.txt          a text file (no ELF magic, no multiboot header)
#   kernel.d/          a directory
#   truncated.elf      the first KiB of KERNEL: header intact, segment data cut
#   bad-phdr.elf       KERNEL with p_filesz of its first PT_LOAD set to 0xffffffff
#   bad-checksum.elf   KERNEL with the multiboot checksum zeroed
#   linux.bzImage      a valid but minimal i386 bzImage (see below) that needs
#                      guest RAM up to 20 MiB; never booted, only refused
#   truncated.bzImage  its first 2 KiB: setup header intact, kernel cut
#   x86_64.bzImage     linux.bzImage marked as a 64-bit kernel (XLF_KERNEL_64)
#   big.initrd         a sparse 33 MiB file: more than -m 32 gives, and with
#                      -m 36 it cannot lie above the kernel's 20 MiB
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

# Overwrites the $3-byte word of file $1 at offset $2 with $4, little-endian.
put() {
    local i esc=
    for ((i = 0; i < $3; i++)); do
        esc+=$(printf '\\0%03o' $(($4 >> 8 * i & 255)))
    done
    printf '%b' "$esc" | dd of="$1" bs=1 seek=$(($2)) conv=notrunc status=none
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
put "$out/bad-phdr.elf" $((load + PHDR_FILESZ)) 4 0xffffffff
cp "$kernel" "$out/bad-checksum.elf"
put "$out/bad-checksum.elf" $((mb_off + 8)) 4 0

# A minimal bzImage: the boot sector and one setup sector, then 4 KiB of
# protected-mode "kernel" (zeros), with a setup header of protocol 2.15 that
# passes every check of src/monitor/linuxboot.c.  Like Debian's kernel it is
# relocatable, aligned and preferring 16 MiB; init_size says the decompressor
# needs 4 MiB from there, so it needs guest RAM up to 20 MiB.  Offsets from
# Documentation/arch/x86/boot.rst.
BZ_SETUP_SECTS=1
BZ_PM_SIZE=4096
BZ_HDR_END=0x26c # the jump at 0x200 gives the header's end: 0x202 + 0x6a
bz=$out/linux.bzImage
head -c $(((BZ_SETUP_SECTS + 1) * 512 + BZ_PM_SIZE)) /dev/zero >"$bz"
put "$bz" 0x1f1 1 $BZ_SETUP_SECTS       # setup_sects
put "$bz" 0x1f4 4 $((BZ_PM_SIZE / 16))  # syssize, 16-byte units
put "$bz" 0x1fe 2 0xaa55                # boot_flag
put "$bz" 0x200 2 $((0xeb | (BZ_HDR_END - 0x202) << 8)) # jump: jmp short past the header
put "$bz" 0x202 4 0x53726448            # header: "HdrS"
put "$bz" 0x206 2 0x020f                # version 2.15
put "$bz" 0x211 1 0x01                  # loadflags: LOADED_HIGH
put "$bz" 0x214 4 0x100000              # code32_start
put "$bz" 0x22c 4 0x7fffffff            # initrd_addr_max
put "$bz" 0x230 4 0x1000000             # kernel_alignment: 16 MiB
put "$bz" 0x234 1 1                     # relocatable_kernel
put "$bz" 0x238 4 2047                  # cmdline_size
put "$bz" 0x258 4 0x1000000             # pref_address (low half): 16 MiB
put "$bz" 0x260 4 0x400000              # init_size: 4 MiB
head -c 2048 "$bz" >"$out/truncated.bzImage"
cp "$bz" "$out/x86_64.bzImage"
put "$out/x86_64.bzImage" 0x236 2 0x1   # xloadflags: XLF_KERNEL_64
rm -f "$out/big.initrd"
truncate -s 33M "$out/big.initrd"
