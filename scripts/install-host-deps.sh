#!/usr/bin/env bash
# Installs the system packages Gini's tests use. Idempotent: installs only what is missing.
set -euo pipefail

PACKAGES=(
  qemu-utils # qemu-img: read-only run ops in the op engine and env-check tests
  pciutils   # lspci: the baseline `deno task bench` compares gini check with
  cpio       # the tiny test guest's initramfs (scripts/build-tiny-guest.sh)
  qemu-system-x86 # booting test guests under TCG
  ovmf       # UEFI firmware for VM definition tests
  libvirt-clients # virt-xml-validate for the generated domain XML
  libvirt-daemon-system # libvirtd and virtlogd for the libvirt backend test
  xorriso    # the cloud-init seed ISO
  debootstrap # the Debian cloud guest of the end-to-end test (scripts/build-test-guest.sh)
  e2fsprogs  # mke2fs -d builds that guest's disk without mounting
  openssh-client # ssh into the guest through its port forward
  busybox-static # a shell inside fixture roots, where the VFIO tests chroot to run rebuild commands
  gdisk      # sgdisk: the OpenCore image's GPT, made without mounting
  dosfstools # mkfs.fat --offset: the FAT32 EFI system partition inside that image
  mtools     # mcopy/mmd/mdir/mtype: the ESP's files, without mounting
  grub-efi-amd64-bin # grub-mkstandalone: a real EFI program the macOS image test boots under OVMF
  lvm2       # pvcreate vgcreate lvcreate lvremove lvs vgs lvm: LVM-backed disks and the LVM tests
  swtpm      # swtpm: the TPM 2.0 emulator a VM with [tpm] starts beside QEMU
  swtpm-tools # swtpm_setup swtpm_ioctl: TPM state set-up and stopping swtpm
  libxml2-utils # xmllint: virt-xml-validate runs it (only a Recommends of libvirt-clients)
  genisoimage # genisoimage: the seed ISO's fallback when xorriso is absent
  curl       # curl: the baseline the download benchmark compares with
  time       # /usr/bin/time: peak memory in the benchmarks
  virtinst   # virt-install: the baseline the plan benchmark compares with
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "host dependencies: all ${#PACKAGES[@]} present"
  exit 0
fi
echo "host dependencies: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
