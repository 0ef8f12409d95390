#!/usr/bin/env bash
# Builds (once, cached outside the repo) a tiny guest for direct kernel boot: Debian's kernel and a
# busybox initramfs whose init prints a marker on the serial console and then waits. With
# "gini.tick" on the kernel command line it prints, every second, a counter and the block devices
# it sees ("tick 7 blocks: vda vdb"; virtio-blk is loaded for it): a guest that keeps running
# (migration) and sees disks come and go (hotplug). With "gini.panic" its kernel panics two seconds
# after booting, its pvpanic driver loaded (crash detection).
# Prints the directory holding vmlinuz and initrd.img.
#
#   dir="$(bash scripts/build-tiny-guest.sh)"
set -euo pipefail
# Only the path goes to stdout (the caller reads it); everything the build prints goes to stderr.
exec 3>&1 1>&2
cache="${GINI_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gini-test}/tiny-guest"
find_kernel() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
kernel_pkg="$(find_kernel)"
if [ -z "$kernel_pkg" ]; then
  apt-get update -qq >&2 || true
  kernel_pkg="$(find_kernel)"
fi
if [ -z "$kernel_pkg" ]; then
  echo "build-tiny-guest: cannot find the kernel package behind linux-image-amd64 (run apt-get update)" >&2
  exit 1
fi
# The suffix is the init's version: a changed init is a new build.
out="$cache/$kernel_pkg-tick4"
if [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ]; then
  echo "$out" >&3
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download -qq "$kernel_pkg" busybox-static >&2
dpkg-deb -x linux-image-*.deb kernel
dpkg-deb -x busybox-static_*.deb busybox

mkdir -p root/bin root/dev root/proc root/sys
cp busybox/bin/busybox root/bin/busybox
for applet in sh echo cat mount sleep poweroff uname insmod; do ln -s busybox "root/bin/$applet"; done
# virtio-blk and what it needs, in load order (Debian builds them as modules).
mkdir -p root/modules
for module in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk pvpanic pvpanic-mmio; do
  find kernel/lib/modules -name "$module.ko" -exec cp {} root/modules/ \;
  [ -s "root/modules/$module.ko" ] || { echo "build-tiny-guest: $module.ko is not in $kernel_pkg" >&2; exit 1; }
done
cat >root/init <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sys sysfs /sys 2>/dev/null || mount -t sysfs sysfs /sys
echo "GINI-TINY-GUEST-BOOTED kernel=$(uname -r)"
case "$(cat /proc/cmdline)" in
*gini.tick*)
  for module in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
    insmod "/modules/$module.ko"
  done
  i=0
  while true; do
    blocks=""
    for b in /sys/block/*; do blocks="$blocks ${b##*/}"; done
    echo "tick $i blocks:$blocks"
    i=$((i + 1))
    sleep 1
  done
  ;;
*gini.panic*)
  # The guest's kernel panics a moment after booting; with the pvpanic device (its driver loaded
  # here, as udev loads it in a full guest) QEMU hears of it (GUEST_PANICKED).
  insmod /modules/pvpanic.ko
  insmod /modules/pvpanic-mmio.ko
  sleep 2
  echo "GINI-TINY-GUEST-PANICS"
  echo c >/proc/sysrq-trigger
  ;;
esac
while true; do sleep 3600; done
INIT
chmod +x root/init
(cd root && find . | cpio -o -H newc --quiet | gzip -9) >initrd.img

mkdir -p "$out"
cp kernel/boot/vmlinuz-* "$out/vmlinuz"
cp initrd.img "$out/initrd.img"
echo "$out" >&3
