#!/usr/bin/env bash
# Fetches (once, cached outside the repo) Debian's Microsoft-signed shim and the GRUB Debian signs
# for it, the boot programs the Secure Boot tests start under OVMF with Microsoft's keys enrolled.
# They are taken out of the packages with dpkg-deb, not installed: shim-signed's scripts would run
# grub-install on an EFI host. Prints the directory holding shimx64.efi and grubx64.efi.
#
#   dir="$(bash scripts/build-secureboot-media.sh)"
set -euo pipefail
# Only the path goes to stdout (the caller reads it); everything the build prints goes to stderr.
exec 3>&1 1>&2
cache="${GINI_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gini-test}/secureboot"
version() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}'; }
shim="$(version shim-signed)"
grub="$(version grub-efi-amd64-signed)"
if [ -z "$shim" ] || [ "$shim" = "(none)" ] || [ -z "$grub" ] || [ "$grub" = "(none)" ]; then
  apt-get update -qq >&2 || true
  shim="$(version shim-signed)"
  grub="$(version grub-efi-amd64-signed)"
fi
if [ -z "$shim" ] || [ "$shim" = "(none)" ] || [ -z "$grub" ] || [ "$grub" = "(none)" ]; then
  echo "build-secureboot-media: apt knows no shim-signed or grub-efi-amd64-signed (run apt-get update)" >&2
  exit 1
fi
out="$cache/shim-${shim//[^A-Za-z0-9.+-]/_}-grub-${grub//[^A-Za-z0-9.+-]/_}"
if [ -s "$out/shimx64.efi" ] && [ -s "$out/grubx64.efi" ]; then
  echo "$out" >&3
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
# apt checks the packages against the archive's signed index as it downloads them.
apt-get download -qq "shim-signed=$shim" "grub-efi-amd64-signed=$grub" >&2
dpkg-deb -x shim-signed_*.deb root
dpkg-deb -x grub-efi-amd64-signed_*.deb root
mkdir -p "$out.tmp"
cp root/usr/lib/shim/shimx64.efi.signed "$out.tmp/shimx64.efi"
cp root/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed "$out.tmp/grubx64.efi"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out" >&3
