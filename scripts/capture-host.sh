#!/usr/bin/env bash
# Copies what `gini check` reads from this host — attributes and symlinks, not whole trees — into
# a directory shaped like /, so that `gini check --host-root DIR` can read it elsewhere (attach it
# to a bug report as a tarball). It reads only; it needs no root, though root sees more.
#
#   scripts/capture-host.sh ./my-host && tar czf my-host.tar.gz my-host
set -euo pipefail
out="${1:?usage: capture-host.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

copy_file() { # copy one readable file's content (sysfs files report size 4096, so cat, not cp)
  local src="$1"
  [ -f "$src" ] && [ -r "$src" ] || return 0
  mkdir -p "$out$(dirname "$src")"
  cat "$src" >"$out$src" 2>/dev/null || rm -f "$out$src"
}
copy_link() { # recreate a symlink with the same (relative) target
  local src="$1"
  [ -L "$src" ] || return 0
  mkdir -p "$out$(dirname "$src")"
  ln -sfn "$(readlink "$src")" "$out$src"
}
mark() { # an empty file standing for a device node or a large file whose presence is what matters
  [ -e "$1" ] || return 0
  mkdir -p "$out$(dirname "$1")"
  : >"$out$1"
}

for f in /etc/os-release /usr/lib/os-release /proc/cpuinfo /proc/meminfo /proc/cmdline /proc/modules \
  /proc/interrupts /proc/sys/kernel/osrelease /sys/kernel/mm/transparent_hugepage/enabled \
  /usr/share/misc/pci.ids /usr/share/hwdata/pci.ids "/lib/modules/$(uname -r)/modules.builtin"; do
  copy_file "$f"
done
mkdir -p "$out/proc/self"
grep -E '^(Name|Uid|Gid):' /proc/self/status >"$out/proc/self/status"

for dir in /sys/kernel/mm/hugepages/hugepages-*; do
  [ -d "$dir" ] || continue
  copy_file "$dir/nr_hugepages"
  copy_file "$dir/free_hugepages"
done
for param in /sys/module/kvm/parameters/ignore_msrs /sys/module/kvm_intel/parameters/nested /sys/module/kvm_amd/parameters/nested; do
  copy_file "$param"
done
for table in /sys/firmware/acpi/tables/DMAR /sys/firmware/acpi/tables/IVRS; do mark "$table"; done

for unit in /sys/class/iommu/*; do
  [ -L "$unit" ] || continue
  copy_link "$unit"
  mkdir -p "$out$(readlink -f "$unit")"
done

for dev in /sys/bus/pci/devices/*; do
  [ -L "$dev" ] || continue
  copy_link "$dev"
  real="$(readlink -f "$dev")"
  mkdir -p "$out$real"
  for attr in uevent class vendor device subsystem_vendor subsystem_device revision boot_vga; do copy_file "$real/$attr"; done
  copy_link "$real/driver"
  copy_link "$real/iommu_group"
  if [ -L "$real/driver" ]; then mkdir -p "$out$(readlink -f "$real/driver")"; fi
done
for member in /sys/kernel/iommu_groups/*/devices/*; do copy_link "$member"; done

for iface in /sys/class/net/*; do
  [ -L "$iface" ] || continue
  copy_link "$iface"
  real="$(readlink -f "$iface")"
  copy_file "$real/address"
  if [ -d "$real/bridge" ]; then mkdir -p "$out$real/bridge"; fi
done

for node in /dev/kvm /dev/vhost-net /dev/net/tun; do mark "$node"; done
for fw in /usr/share/OVMF/* /usr/share/edk2/ovmf/* /usr/share/edk2/x64/* /usr/share/edk2-ovmf/x64/* /usr/share/qemu/ovmf-x86_64-*; do
  case "$fw" in *.fd | *.bin) mark "$fw" ;; esac
done
echo "captured $(find "$out" | wc -l) entries into $out"
