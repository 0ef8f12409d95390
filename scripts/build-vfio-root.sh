#!/usr/bin/env bash
# Builds (once, cached outside the repo) a Debian bookworm system root with initramfs-tools,
# a kernel and GRUB's tools, for the VFIO test that runs the real update-initramfs and
# grub-mkconfig through chroot. Kept as a tar (numeric owners) so each test unpacks a fresh copy.
# Prints the path of the tar.
set -euo pipefail
# Only the path goes to stdout (the caller reads it); everything the build prints goes to stderr.
exec 3>&1 1>&2
cache="${GINI_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gini-test}/vfio-root"
if [ -s "$cache/root.tar" ]; then
  echo "$cache/root.tar" >&3
  exit 0
fi
. "$(dirname "$0")/_debootstrap.sh" ""
echo "deb $mirror bookworm main" >"$root/etc/apt/sources.list"
mount -t proc proc "$root/proc"
in_root apt-get update -qq >&2
# grub-pc-bin and grub2-common: GRUB's modules and grub-mkconfig without grub-pc's postinst, which
# would install GRUB onto a disk.
in_root apt-get install -y -qq --no-install-recommends \
  linux-image-amd64 initramfs-tools zstd grub-pc-bin grub2-common >&2
umount -l "$root/proc"
# What grub-pc's postinst would write: Debian's /etc/default/grub.
cp "$root/usr/share/grub/default/grub" "$root/etc/default/grub"
in_root apt-get clean
rm -rf "$root/var/lib/apt/lists"/*
mkdir -p "$cache"
tar -C "$root" --numeric-owner -cf "$cache/root.tar.tmp" .
mv "$cache/root.tar.tmp" "$cache/root.tar"
echo "$cache/root.tar" >&3
