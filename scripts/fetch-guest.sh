#!/usr/bin/env bash
# Fetches the Linux guest Popek is built to boot and builds its initramfs
# images, on Debian 12 (as root, or through sudo).  Idempotent: a second run
# downloads, extracts and rebuilds only what changed.
#
#   cache/debs/                 the .deb files, as apt-get download names them
#   cache/extract/PKG_VERSION/  each package unpacked with dpkg-deb -x
#   cache/guest/vmlinuz         Debian's stock i386 kernel (linux-image-686)
#   cache/guest/config          that kernel's build configuration
#   cache/guest/initramfs.cpio.gz       busybox + guest/initramfs/init: a shell
#   cache/guest/test-initramfs.cpio.gz  busybox + guest/initramfs/test-init:
#                                       the CI workload, ends in "POPEK-TEST: done"
#   cache/guest/bench-initramfs.cpio.gz busybox + guest/initramfs/bench-init:
#                                       CPU-bound busybox work (bench/run-linux.sh)
#
# Usage: scripts/fetch-guest.sh [--fidelity PATH]
#   --fidelity PATH  put this static i386 program in the test image as
#                    /fidelity (default: build/tests/fidelity/fidelity if it
#                    exists; the test image skips that step without it)
#
# Each image is rebuilt only when a hash over its inputs (busybox, the init
# script, /fidelity, this script) differs from the one stored beside it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$ROOT/cache
DEBS=$CACHE/debs
EXTRACT=$CACHE/extract
GUEST=$CACHE/guest
STAGE=$CACHE/initramfs-stage
INITRAMFS_SRC=$ROOT/guest/initramfs
SELF=$ROOT/scripts/fetch-guest.sh

KERNEL_META="linux-image-686"
BUSYBOX_PKG="busybox-static"
ARCH=i386

say() { echo "fetch-guest: $*"; }
die() {
    echo "fetch-guest: error: $*" >&2
    exit 1
}

fidelity=
while (($#)); do
    case $1 in
    --fidelity)
        (($# >= 2)) || die "--fidelity needs a path"
        fidelity=$(realpath -e -- "$2") || die "--fidelity: no such file '$2'"
        shift 2
        ;;
    -h | --help)
        sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF"
        exit 0
        ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
done
if [ -z "$fidelity" ] && [ -x "$ROOT/build/tests/fidelity/fidelity" ]; then
    fidelity=$ROOT/build/tests/fidelity/fidelity
fi

# apt and mknod need root: rerun the whole script through sudo, then give the
# cache back to the user who asked for it.
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "must run as root (and sudo is not installed)"
    args=()
    [ -z "$fidelity" ] || args=(--fidelity "$fidelity")
    exec sudo -- "$SELF" "${args[@]}"
fi

for tool in apt-get apt-cache dpkg dpkg-deb sha256sum gzip find realpath; do
    command -v "$tool" >/dev/null ||
        die "'$tool' not found: this script needs Debian 12's apt and dpkg"
done

export DEBIAN_FRONTEND=noninteractive
# As root apt-get download would drop to the _apt user and warn that it
# cannot write into cache/debs; the download is checked by hash below anyway.
APT_OPTS=(-q -o APT::Sandbox::User=root)

# ---- package lists -------------------------------------------------------------

if ! dpkg --print-foreign-architectures | grep -qx "$ARCH"; then
    say "adding the $ARCH architecture to dpkg"
    dpkg --add-architecture "$ARCH"
fi

say "apt-get update"
apt_log=$(mktemp)
trap 'rm -f "$apt_log"' EXIT
if ! apt-get "${APT_OPTS[@]}" update >"$apt_log" 2>&1; then
    # One unreachable or half-synced suite (security, say) makes apt-get
    # update fail while the lists we need are fine: go on, and let the
    # look-ups below decide.
    say "warning: apt-get update reported errors:"
    grep -E '^(E|W):' "$apt_log" | sed 's/^/    /' >&2 || true
fi

# linux-image-686 is a metapackage: its Depends names the real, versioned
# kernel package (linux-image-6.1.0-NN-686), which is what holds vmlinuz.
kernel_pkg=$(apt-cache depends "$KERNEL_META:$ARCH" 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { sub(/:.*/, "", $2); print $2; exit }')
[ -n "$kernel_pkg" ] ||
    die "cannot resolve $KERNEL_META:$ARCH to a kernel package: the package lists" \
        "do not know it (is the Debian package registry reachable? see the apt-get" \
        "update output above)"
apt-cache show "$BUSYBOX_PKG:$ARCH" >/dev/null 2>&1 ||
    die "the package lists do not know $BUSYBOX_PKG:$ARCH (is the Debian package" \
        "registry reachable?)"

if ! command -v cpio >/dev/null; then
    say "installing cpio"
    apt-get "${APT_OPTS[@]}" install -y --no-install-recommends cpio >"$apt_log" 2>&1 || {
        cat "$apt_log" >&2
        die "cannot install the cpio package"
    }
fi

# ---- download ------------------------------------------------------------------

mkdir -p "$DEBS" "$EXTRACT" "$GUEST"

# Downloads package $1 (NAME:ARCH) into cache/debs unless a file with the
# archive's SHA-256 is already there; prints the .deb's path.
fetch_deb() {
    local pkg=$1 line file size hash empty
    # apt-get prints no URI for a file already in the directory, whatever its
    # content: ask from an empty one to learn the name, size and hash.
    empty=$(mktemp -d)
    line=$(cd "$empty" && apt-get "${APT_OPTS[@]}" download --print-uris "$pkg" 2>/dev/null |
        grep "^'" | head -n 1) || true
    rmdir "$empty"
    [ -n "$line" ] || die "apt-get cannot locate $pkg for download"
    read -r _ file size hash <<<"$line"
    hash=${hash#SHA256:}
    if [ -f "$DEBS/$file" ] && [ "$(sha256sum <"$DEBS/$file" | cut -d' ' -f1)" = "$hash" ]; then
        say "have $file ($size bytes)" >&2
    else
        say "downloading $pkg ($size bytes)" >&2
        rm -f "$DEBS/$file"
        (cd "$DEBS" && apt-get "${APT_OPTS[@]}" download "$pkg" >/dev/null) ||
            die "apt-get download $pkg failed (is the Debian package registry reachable?)"
        [ "$(sha256sum <"$DEBS/$file" | cut -d' ' -f1)" = "$hash" ] ||
            die "$DEBS/$file does not have the SHA-256 the package lists give"
    fi
    echo "$DEBS/$file"
}

# Unpacks a .deb once into cache/extract/NAME_VERSION; prints that directory.
extract_deb() {
    local deb=$1 dir
    # shellcheck disable=SC2016 # dpkg-deb's ${Field}s, not the shell's
    dir=$EXTRACT/$(dpkg-deb --show --showformat='${Package}_${Version}' "$deb" | tr ':' '_')
    if [ ! -f "$dir/.extracted" ]; then
        say "extracting $(basename "$deb")" >&2
        rm -rf "$dir"
        mkdir -p "$dir"
        dpkg-deb -x "$deb" "$dir" || die "dpkg-deb -x $deb failed"
        touch "$dir/.extracted"
    fi
    echo "$dir"
}

kernel_deb=$(fetch_deb "$kernel_pkg:$ARCH")
busybox_deb=$(fetch_deb "$BUSYBOX_PKG:$ARCH")
kernel_dir=$(extract_deb "$kernel_deb")
busybox_dir=$(extract_deb "$busybox_deb")

# ---- kernel --------------------------------------------------------------------

kernel_release=${kernel_pkg#linux-image-}
vmlinuz=$kernel_dir/boot/vmlinuz-$kernel_release
[ -f "$vmlinuz" ] || die "$kernel_pkg has no boot/vmlinuz-$kernel_release"
cmp -s "$vmlinuz" "$GUEST/vmlinuz" || cp "$vmlinuz" "$GUEST/vmlinuz"
cmp -s "$kernel_dir/boot/config-$kernel_release" "$GUEST/config" ||
    cp "$kernel_dir/boot/config-$kernel_release" "$GUEST/config"

# ---- initramfs images ----------------------------------------------------------

busybox=$busybox_dir/bin/busybox
[ -x "$busybox" ] || die "$BUSYBOX_PKG has no bin/busybox"
# The host runs i386 binaries, so busybox itself says which applets it has.
applets=$("$busybox" --list-full) ||
    die "cannot run the i386 busybox on this host to list its applets (no 32-bit binary support?)"

# build_initramfs OUTPUT INIT [FIDELITY]: busybox with one symlink per applet,
# INIT as /init, FIDELITY (if given) as /fidelity.
build_initramfs() {
    local out=$1 init=$2 fid=${3:-} stage inputs
    inputs=$({
        sha256sum <"$SELF"
        sha256sum <"$busybox"
        sha256sum <"$init"
        [ -z "$fid" ] || sha256sum <"$fid"
    } | sha256sum | cut -d' ' -f1)
    if [ -f "$out" ] && [ "$(cat "$out.inputs" 2>/dev/null)" = "$inputs" ]; then
        say "$(basename "$out") is up to date"
        return
    fi
    say "building $(basename "$out")"
    stage=$STAGE/$(basename "$out" .cpio.gz)
    rm -rf "$stage"
    mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc}
    chmod 1777 "$stage/tmp"
    cp "$busybox" "$stage/bin/busybox"
    local applet
    while read -r applet; do
        [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$stage/$applet"
    done <<<"$applets"
    # The kernel opens /dev/console for init's stdio before init can mount
    # devtmpfs.
    mknod -m 600 "$stage/dev/console" c 5 1
    install -m 755 "$init" "$stage/init"
    [ -z "$fid" ] || install -m 755 "$fid" "$stage/fidelity"
    # Same inputs, same bytes: fixed times, owners and order.
    find "$stage" -exec touch -h -d @0 {} +
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
        cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9 -n >"$out.tmp" ||
        die "building $out failed"
    mv "$out.tmp" "$out"
    echo "$inputs" >"$out.inputs"
    rm -rf "$stage"
}

build_initramfs "$GUEST/initramfs.cpio.gz" "$INITRAMFS_SRC/init"
if [ -n "$fidelity" ]; then
    say "test image includes /fidelity from $fidelity"
else
    say "no fidelity program given (--fidelity): the test image skips that step"
fi
build_initramfs "$GUEST/test-initramfs.cpio.gz" "$INITRAMFS_SRC/test-init" "$fidelity"
build_initramfs "$GUEST/bench-initramfs.cpio.gz" "$INITRAMFS_SRC/bench-init"
rmdir "$STAGE" 2>/dev/null || true

if [ -n "${SUDO_UID:-}" ]; then
    chown -R "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$CACHE"
fi

# ---- summary -------------------------------------------------------------------

pkg_line() {
    # shellcheck disable=SC2016 # dpkg-deb's ${Field}s, not the shell's
    dpkg-deb --show --showformat='${Package}:${Architecture} ${Version}' "$1"
    printf ' (%s bytes)\n' "$(stat -c %s "$1")"
}
say "done:"
echo "  kernel package    $(pkg_line "$kernel_deb")"
echo "  busybox package   $(pkg_line "$busybox_deb")"
for f in vmlinuz initramfs.cpio.gz test-initramfs.cpio.gz bench-initramfs.cpio.gz; do
    printf '  %-36s %9s bytes\n' "cache/guest/$f" "$(stat -c %s "$GUEST/$f")"
done
