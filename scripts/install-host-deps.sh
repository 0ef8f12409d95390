#!/usr/bin/env bash
# Installs the system packages Gini and its tests use. Idempotent: installs only what is missing.
# With --verify, installs nothing: checks the list against every program they run (see below).
set -euo pipefail

PACKAGES=(
  qemu-utils # qemu-img: VM disks (image.create; the plugins' create, convert and info runs) and the tests' images
  pciutils   # lspci: the baseline `deno task bench` compares gini check with
  cpio       # cpio: packs the tiny test guest's initramfs (scripts/build-tiny-guest.sh)
  qemu-system-x86 # qemu-system-x86_64: the VMs deploy starts, and the test guests booted under TCG
  ovmf       # no program: the UEFI firmware (OVMF_CODE/VARS) of VM definitions and the boot tests
  libvirt-clients # virsh virt-xml-validate: the libvirt backend, and checking the generated domain XML
  libvirt-daemon-system # libvirtd virtlogd: the daemons the libvirt backend test starts
  xorriso    # xorriso: writes the cloud-init seed ISO; the tests read it back
  debootstrap # debootstrap: the Debian roots of the end-to-end guest and the VFIO test (scripts/_debootstrap.sh)
  e2fsprogs  # mke2fs: mke2fs -d builds the end-to-end guest's disk without mounting; chattr: host_safety_test makes a file immutable so a rollback fails
  openssh-client # ssh ssh-keygen: gini ssh (the ssh.session op); a key for the test guests, and logging in through their port forward
  busybox-static # busybox: copied into fixture roots as their shell, where the VFIO tests chroot to run rebuild commands
  gdisk      # sgdisk: the OpenCore image's GPT, made without mounting
  dosfstools # mkfs.fat: --offset makes the FAT32 EFI system partition inside that image
  mtools     # mcopy mmd mdir mtype: the ESP's files, and the Windows answer-file image (mformat), written and read back without mounting
  p7zip-full # 7z: reads the user's Windows ISO (UDF only) and takes sources/install.wim out of it
  wimtools   # wiminfo wimlib-imagex: the tests build a WIM and check Gini's reading of its XML against wiminfo
  grub-efi-amd64-bin # grub-mkstandalone (grub-common, a dependency): a real EFI program the macOS image test boots under OVMF
  lvm2       # lvcreate lvremove lvs vgs pvcreate vgcreate vgremove pvremove: LVM-backed disks and the LVM tests
  swtpm      # swtpm: the TPM 2.0 emulator a VM with [tpm] starts beside QEMU
  swtpm-tools # swtpm_ioctl: stops a VM's swtpm when its deploy is undone
  libxml2-utils # xmllint: virt-xml-validate runs it (only a Recommends of libvirt-clients)
  genisoimage # genisoimage: the seed ISO's fallback when xorriso is absent
  mawk       # awk: the test image builders and bench_vfio.sh (Priority required, but not Essential)
  curl       # curl: the baseline the download benchmark compares with
  zsh        # zsh: completions_test checks `gini completions zsh` with zsh -n
  fish       # fish: completions_test checks `gini completions fish` and completes with it
  time       # /usr/bin/time: peak memory in the benchmarks
  virtinst   # virt-install: the baseline the plan benchmark compares with
  groff-base # groff: tests/docs_test.ts renders every man page gini docs writes (groff -ww -man -z: no warnings)
  man-db     # man: tests/docs_test.ts opens the man pages with man -l
  chromium   # chromium: tests/docs_test.ts opens gini docs' HTML index headless and checks the Mermaid diagram rendered
  python3-junitparser # no program (a python3 module; python3 comes with it): tests/plugin_kit_test.ts reads gini plugins test's JUnit report with a real JUnit reader
)

# --verify [--verbose]: checks that every program Gini, its tests and these scripts run comes from
# a package above, one they pull in, or an Essential one (scripts/verify_host_deps.ts).
if [ "${1:-}" = "--verify" ]; then
  shift
  cd "$(dirname "$0")/.."
  deno="$(bash scripts/deno.sh)"
  exec "$deno" run --allow-all --no-prompt scripts/verify_host_deps.ts "$@"
fi

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
