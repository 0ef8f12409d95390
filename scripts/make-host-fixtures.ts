/**
 * Regenerates the fixture host roots under tests/fixtures/hosts/ and their pci.ids
 * excerpt (taken from this machine's /usr/share/misc/pci.ids, the real database).
 *
 * @example
 * ```sh
 * deno run --allow-all scripts/make-host-fixtures.ts
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { fromFileUrl } from "../kernel/url.ts";
import { type FixtureDevice, type FixtureHost, writeHost } from "./host_fixture.ts";

const OUT = fromFileUrl(new URL("../tests/fixtures/hosts/", import.meta.url));
const DISTRO_OUT = fromFileUrl(new URL("../tests/fixtures/distros/", import.meta.url));

const INTEL_FLAGS =
  "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc nonstop_tsc cpuid aperfmperf pni pclmulqdq monitor ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand lahf_lm abm 3dnowprefetch vmx ept vpid flexpriority fsgsbase bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt sha_ni xsaveopt xsavec umip pku waitpkg gfni vaes vpclmulqdq rdpid movdiri movdir64b md_clear serialize arch_lbr flush_l1d arch_capabilities"
    .split(" ");
const AMD_FLAGS =
  "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl nonstop_tsc cpuid extd_apicid aperfmperf pni pclmulqdq monitor ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand lahf_lm cmp_legacy svm extapic cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw ibs skinit wdt tce topoext perfctr_core perfctr_nb bpext perfctr_llc mwaitx cpb cat_l3 cdp_l3 hw_pstate ssbd mba ibrs ibpb stibp vmmcall fsgsbase bmi1 avx2 smep bmi2 erms invpcid cqm rdt_a rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc cqm_mbm_total cqm_mbm_local clzero irperf xsaveerptr rdpru wbnoinvd arat npt lbrv svm_lock nrip_save tsc_scale vmcb_clean flushbyasid decodeassists pausefilter pfthreshold avic v_vmsave_vmload vgif v_spec_ctrl umip pku ospke vaes vpclmulqdq rdpid overflow_recov succor smca fsrm"
    .split(" ");

const DEBIAN = {
  PRETTY_NAME: "Debian GNU/Linux 12 (bookworm)",
  NAME: "Debian GNU/Linux",
  VERSION_ID: "12",
  VERSION: "12 (bookworm)",
  ID: "debian",
};
const OVMF_DEBIAN = {
  "usr/share/OVMF/OVMF_CODE_4M.fd": "",
  "usr/share/OVMF/OVMF_VARS_4M.fd": "",
  "usr/share/OVMF/OVMF_CODE_4M.secboot.fd": "",
  "usr/share/OVMF/OVMF_VARS_4M.ms.fd": "",
};

const bridge = (
  address: string,
  device: string,
  group: number | undefined,
  vendor = "8086",
  parent?: string,
): FixtureDevice => ({
  address,
  class: "0x060400",
  vendor,
  device,
  driver: "pcieport",
  ...(group === undefined ? {} : { group }),
  ...(parent ? { parent } : {}),
});

/** Intel desktop, NVIDIA RTX 3070 with its HDMI audio in one group behind the CPU root port. */
const intelNvidia = (iommu: boolean): FixtureHost => {
  const g = (n: number) => iommu ? n : undefined;
  const dev = (d: FixtureDevice): FixtureDevice => {
    const { group, ...rest } = d;
    return iommu && group !== undefined ? d : rest;
  };
  return {
    osRelease: iommu
      ? DEBIAN
      : { NAME: "Arch Linux", PRETTY_NAME: "Arch Linux", ID: "arch", BUILD_ID: "rolling" },
    kernel: iommu ? "6.1.0-18-amd64" : "6.7.4-arch1-1",
    cmdline: iommu
      ? "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=6f0e1c6a-3d1b-4d8e-9f59-2a1c3e0b7d11 ro quiet intel_iommu=on iommu=pt"
      : "initrd=\\initramfs-linux.img root=UUID=0a4c5d2e-9b8f-4f1a-8e7d-6c5b4a392817 rw quiet",
    cpu: {
      vendorId: "GenuineIntel",
      family: 6,
      model: 151,
      name: "12th Gen Intel(R) Core(TM) i7-12700K",
      cores: 12,
      threads: 20,
      flags: INTEL_FLAGS,
    },
    memTotalKiB: 32_736_512,
    memAvailableKiB: 28_112_004,
    modules: [
      "nvidia_drm",
      "nvidia_modeset",
      "nvidia",
      "i915",
      "snd_hda_intel",
      "kvm_intel",
      "kvm",
      "vhost_net",
      "tun",
      "nvme",
      "ahci",
    ],
    moduleParams: { "kvm_intel/parameters/nested": "Y", "kvm/parameters/ignore_msrs": "N" },
    hugepages: [{ sizeKiB: 2048, total: 0, free: 0 }, { sizeKiB: 1048576, total: 0, free: 0 }],
    thp: "madvise",
    acpiTable: "DMAR",
    ...(iommu ? { iommuUnits: ["dmar0", "dmar1"], interruptRemapping: true } : {}),
    devices: [
      dev(
        {
          address: "0000:00:00.0",
          class: "0x060000",
          vendor: "8086",
          device: "4668",
          revision: "02",
          group: g(0),
        } as FixtureDevice,
      ),
      dev(
        {
          address: "0000:00:02.0",
          class: "0x030000",
          vendor: "8086",
          device: "4680",
          subsystem: ["1462", "7d25"],
          revision: "0c",
          driver: "i915",
          group: g(3),
          bootVga: true,
        } as FixtureDevice,
      ),
      dev(bridge("0000:00:01.0", "460d", g(1))),
      dev(
        {
          address: "0000:01:00.0",
          class: "0x030000",
          vendor: "10de",
          device: "2484",
          subsystem: ["1462", "3909"],
          revision: "a1",
          driver: "nvidia",
          group: g(1),
          parent: "0000:00:01.0",
          bootVga: false,
        } as FixtureDevice,
      ),
      dev(
        {
          address: "0000:01:00.1",
          class: "0x040300",
          vendor: "10de",
          device: "228b",
          subsystem: ["1462", "3909"],
          revision: "a1",
          driver: "snd_hda_intel",
          group: g(1),
          parent: "0000:00:01.0",
        } as FixtureDevice,
      ),
      dev(bridge("0000:00:06.0", "464d", g(2))),
      dev(
        {
          address: "0000:02:00.0",
          class: "0x010802",
          vendor: "144d",
          device: "a80a",
          driver: "nvme",
          group: g(2),
          parent: "0000:00:06.0",
        } as FixtureDevice,
      ),
      dev(
        {
          address: "0000:00:14.0",
          class: "0x0c0330",
          vendor: "8086",
          device: "7ae0",
          revision: "11",
          driver: "xhci_hcd",
          group: g(5),
        } as FixtureDevice,
      ),
      dev(
        {
          address: "0000:00:17.0",
          class: "0x010601",
          vendor: "8086",
          device: "7ae2",
          revision: "11",
          driver: "ahci",
          group: g(6),
        } as FixtureDevice,
      ),
      dev(
        {
          address: "0000:00:1f.0",
          class: "0x060100",
          vendor: "8086",
          device: "7a84",
          revision: "11",
          group: g(10),
        } as FixtureDevice,
      ),
      dev(
        {
          address: "0000:00:1f.3",
          class: "0x040300",
          vendor: "8086",
          device: "7ad0",
          revision: "11",
          driver: "snd_hda_intel",
          group: g(10),
        } as FixtureDevice,
      ),
      dev(
        {
          address: "0000:00:1f.4",
          class: "0x0c0500",
          vendor: "8086",
          device: "7aa3",
          revision: "11",
          driver: "i801_smbus",
          group: g(10),
        } as FixtureDevice,
      ),
    ],
    dev: ["kvm", "vhost-net", "net/tun"],
    net: [{ name: "lo", mac: "00:00:00:00:00:00" }, { name: "enp5s0", mac: "04:7c:16:aa:bb:cc" }, {
      name: "br0",
      bridge: true,
      mac: "04:7c:16:aa:bb:cc",
    }],
    files: iommu
      ? OVMF_DEBIAN
      : { "usr/share/edk2/x64/OVMF_CODE.4m.fd": "", "usr/share/edk2/x64/OVMF_VARS.4m.fd": "" },
  };
};

const HOSTS: Record<string, FixtureHost> = {
  "intel-nvidia": intelNvidia(true),
  "iommu-off": intelNvidia(false),
  "amd-amd": {
    osRelease: {
      NAME: "Fedora Linux",
      VERSION: "39 (Workstation Edition)",
      ID: "fedora",
      VERSION_ID: "39",
      PRETTY_NAME: "Fedora Linux 39 (Workstation Edition)",
    },
    kernel: "6.7.5-200.fc39.x86_64",
    cmdline:
      "BOOT_IMAGE=(hd0,gpt2)/vmlinuz-6.7.5-200.fc39.x86_64 root=UUID=1b2c3d4e-5f60-4718-9a0b-c1d2e3f40516 ro rhgb quiet",
    cpu: {
      vendorId: "AuthenticAMD",
      family: 25,
      model: 33,
      name: "AMD Ryzen 9 5950X 16-Core Processor",
      cores: 16,
      threads: 32,
      flags: AMD_FLAGS,
    },
    memTotalKiB: 65_781_248,
    memAvailableKiB: 60_220_144,
    modules: [
      "amdgpu",
      "snd_hda_intel",
      "kvm_amd",
      "kvm",
      "vfio_pci",
      "vfio_pci_core",
      "vfio_iommu_type1",
      "vfio",
      "tun",
    ],
    moduleParams: { "kvm_amd/parameters/nested": "1", "kvm/parameters/ignore_msrs": "Y" },
    hugepages: [{ sizeKiB: 2048, total: 0, free: 0 }, { sizeKiB: 1048576, total: 8, free: 8 }],
    thp: "always",
    acpiTable: "IVRS",
    iommuUnits: ["ivhd0"],
    interruptRemapping: true,
    devices: [
      { address: "0000:00:00.0", class: "0x060000", vendor: "1022", device: "1480", group: 0 },
      { address: "0000:00:00.2", class: "0x080600", vendor: "1022", device: "1481", group: 1 },
      bridge("0000:00:03.1", "1483", 7, "1022"),
      bridge("0000:09:00.0", "1478", 18, "1002", "0000:00:03.1"),
      bridge("0000:0a:00.0", "1479", 19, "1002", "0000:09:00.0"),
      {
        address: "0000:0b:00.0",
        class: "0x030000",
        vendor: "1002",
        device: "73bf",
        subsystem: ["1da2", "e438"],
        revision: "c1",
        driver: "amdgpu",
        group: 20,
        parent: "0000:0a:00.0",
        bootVga: true,
      },
      {
        address: "0000:0b:00.1",
        class: "0x040300",
        vendor: "1002",
        device: "ab28",
        subsystem: ["1da2", "e438"],
        driver: "snd_hda_intel",
        group: 21,
        parent: "0000:0a:00.0",
      },
      {
        address: "0000:00:14.0",
        class: "0x0c0500",
        vendor: "1022",
        device: "790b",
        revision: "61",
        driver: "piix4_smbus",
        group: 13,
      },
      {
        address: "0000:00:14.3",
        class: "0x060100",
        vendor: "1022",
        device: "790e",
        revision: "51",
        group: 13,
      },
    ],
    dev: ["kvm", "net/tun"],
    net: [{ name: "lo", mac: "00:00:00:00:00:00" }, { name: "enp7s0", mac: "a8:a1:59:01:02:03" }, {
      name: "virbr0",
      bridge: true,
      mac: "52:54:00:12:34:56",
    }],
    files: {
      "usr/share/edk2/ovmf/OVMF_CODE.fd": "",
      "usr/share/edk2/ovmf/OVMF_VARS.fd": "",
      "usr/share/edk2/ovmf/OVMF_CODE.secboot.fd": "",
      "usr/share/edk2/ovmf/OVMF_VARS.secboot.fd": "",
    },
  },
  "laptop-hybrid": {
    osRelease: {
      PRETTY_NAME: "Ubuntu 22.04.4 LTS",
      NAME: "Ubuntu",
      VERSION_ID: "22.04",
      ID: "ubuntu",
      ID_LIKE: "debian",
    },
    kernel: "6.5.0-21-generic",
    cmdline:
      "BOOT_IMAGE=/boot/vmlinuz-6.5.0-21-generic root=UUID=9e8d7c6b-5a49-4382-b1a0-f9e8d7c6b5a4 ro quiet splash intel_iommu=on",
    cpu: {
      vendorId: "GenuineIntel",
      family: 6,
      model: 141,
      name: "11th Gen Intel(R) Core(TM) i7-11800H @ 2.30GHz",
      cores: 8,
      threads: 16,
      flags: INTEL_FLAGS,
    },
    memTotalKiB: 16_164_224,
    memAvailableKiB: 11_002_112,
    modules: ["i915", "nvidia", "kvm_intel", "kvm", "vhost_net", "tun"],
    moduleParams: { "kvm_intel/parameters/nested": "N", "kvm/parameters/ignore_msrs": "N" },
    hugepages: [{ sizeKiB: 2048, total: 0, free: 0 }, { sizeKiB: 1048576, total: 0, free: 0 }],
    acpiTable: "DMAR",
    iommuUnits: ["dmar0", "dmar1"],
    interruptRemapping: true,
    devices: [
      {
        address: "0000:00:00.0",
        class: "0x060000",
        vendor: "8086",
        device: "9a36",
        revision: "05",
        group: 1,
      },
      bridge("0000:00:01.0", "9a09", 2),
      {
        address: "0000:00:02.0",
        class: "0x030000",
        vendor: "8086",
        device: "9a60",
        subsystem: ["1043", "16c2"],
        revision: "01",
        driver: "i915",
        group: 0,
        bootVga: true,
      },
      {
        address: "0000:01:00.0",
        class: "0x030200",
        vendor: "10de",
        device: "25a2",
        subsystem: ["1043", "16c2"],
        revision: "a1",
        driver: "nvidia",
        group: 2,
        parent: "0000:00:01.0",
      },
      {
        address: "0000:00:14.0",
        class: "0x0c0330",
        vendor: "8086",
        device: "43ed",
        revision: "11",
        driver: "xhci_hcd",
        group: 5,
      },
      {
        address: "0000:00:1f.3",
        class: "0x040380",
        vendor: "8086",
        device: "43c8",
        revision: "11",
        driver: "snd_hda_intel",
        group: 9,
      },
    ],
    dev: ["kvm", "vhost-net", "net/tun"],
    net: [{ name: "lo", mac: "00:00:00:00:00:00" }, {
      name: "wlp0s20f3",
      mac: "dc:21:48:aa:bb:cc",
    }],
    files: OVMF_DEBIAN,
  },
  "shared-group": {
    osRelease: DEBIAN,
    kernel: "6.1.0-18-amd64",
    cmdline:
      "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=3a2b1c0d-9e8f-4a7b-8c6d-5e4f3a2b1c0d ro quiet amd_iommu=on iommu=pt",
    cpu: {
      vendorId: "AuthenticAMD",
      family: 23,
      model: 113,
      name: "AMD Ryzen 7 3700X 8-Core Processor",
      cores: 8,
      threads: 16,
      flags: AMD_FLAGS,
    },
    memTotalKiB: 32_823_124,
    memAvailableKiB: 30_011_288,
    modules: [
      "nouveau",
      "snd_hda_intel",
      "kvm_amd",
      "kvm",
      "r8169",
      "xhci_pci",
      "ahci",
      "tun",
      "vhost_net",
    ],
    moduleParams: { "kvm_amd/parameters/nested": "1", "kvm/parameters/ignore_msrs": "N" },
    hugepages: [{ sizeKiB: 2048, total: 1024, free: 1024 }, {
      sizeKiB: 1048576,
      total: 0,
      free: 0,
    }],
    acpiTable: "IVRS",
    iommuUnits: ["ivhd0"],
    interruptRemapping: false,
    devices: [
      { address: "0000:00:00.0", class: "0x060000", vendor: "1022", device: "1480", group: 0 },
      bridge("0000:00:01.2", "1483", 15, "1022"),
      {
        address: "0000:03:00.0",
        class: "0x0c0330",
        vendor: "1022",
        device: "43d5",
        revision: "01",
        driver: "xhci_hcd",
        group: 15,
        parent: "0000:00:01.2",
      },
      {
        address: "0000:03:00.1",
        class: "0x010601",
        vendor: "1022",
        device: "43c8",
        revision: "01",
        driver: "ahci",
        group: 15,
        parent: "0000:00:01.2",
      },
      bridge("0000:03:00.2", "43c6", 15, "1022", "0000:00:01.2"),
      bridge("0000:04:04.0", "43c7", 15, "1022", "0000:03:00.2"),
      bridge("0000:04:09.0", "43c7", 15, "1022", "0000:03:00.2"),
      {
        address: "0000:05:00.0",
        class: "0x020000",
        vendor: "10ec",
        device: "8168",
        revision: "15",
        driver: "r8169",
        group: 15,
        parent: "0000:04:04.0",
      },
      {
        address: "0000:07:00.0",
        class: "0x030000",
        vendor: "10de",
        device: "1b80",
        subsystem: ["3842", "6183"],
        revision: "a1",
        driver: "nouveau",
        group: 15,
        parent: "0000:04:09.0",
        bootVga: false,
      },
      {
        address: "0000:07:00.1",
        class: "0x040300",
        vendor: "10de",
        device: "10f0",
        revision: "a1",
        driver: "snd_hda_intel",
        group: 15,
        parent: "0000:04:09.0",
      },
      bridge("0000:00:03.1", "1483", 16, "1022"),
      {
        address: "0000:08:00.0",
        class: "0x030000",
        vendor: "1002",
        device: "67df",
        revision: "e7",
        driver: "amdgpu",
        group: 17,
        parent: "0000:00:03.1",
        bootVga: true,
      },
    ],
    dev: ["kvm", "vhost-net", "net/tun"],
    net: [{ name: "lo", mac: "00:00:00:00:00:00" }, { name: "enp5s0", mac: "70:85:c2:11:22:33" }],
    files: OVMF_DEBIAN,
  },
};

// ---------------------------------------------------------------------------------------------
// Distribution roots for the VFIO tests: the intel-nvidia (or amd-amd) hardware with the boot
// configuration files each distribution ships, unedited.

const ARCH = { NAME: "Arch Linux", PRETTY_NAME: "Arch Linux", ID: "arch", BUILD_ID: "rolling" };
const ARCH_KERNEL = "6.7.4-arch1-1";
const ARCH_UUID = "0a4c5d2e-9b8f-4f1a-8e7d-6c5b4a392817";

const GRUB_CFG_HEADER = `#
# DO NOT EDIT THIS FILE
#
# It is automatically generated by grub-mkconfig using templates
# from /etc/grub.d and settings from /etc/default/grub
#
`;

const MKINITCPIO_CONF = `# vim:set ft=sh
# MODULES
# The following modules are loaded before any boot hooks are
# run.  Advanced users may wish to specify all system modules
# in this array.  For instance:
#     MODULES=(usbhid xhci_hcd)
MODULES=()

# BINARIES
# This setting includes any additional binaries a given user may
# wish into the CPIO image.  This is run last, so it may be used to
# override the actual binaries included by a given hook
# BINARIES are dependency parsed, so you may safely ignore libraries
BINARIES=()

# FILES
# This setting is similar to BINARIES above, however, files are added
# as-is and are not parsed in any way.  This is useful for config files.
FILES=()

# HOOKS
# This is the most important setting in this file.  The HOOKS control the
# modules and scripts added to the image, and what happens at boot time.
HOOKS=(base udev autodetect microcode modconf kms keyboard keymap consolefont block filesystems fsck)

# COMPRESSION
# Use this to compress the initramfs image. By default, zstd compression
# is used for Linux ≥ 5.9 and gzip compression is used for Linux < 5.9.
#COMPRESSION="zstd"
`;

const linuxPreset = (uki: boolean) =>
  `# mkinitcpio preset file for the 'linux' package

#ALL_config="/etc/mkinitcpio.conf"
ALL_kver="/boot/vmlinuz-linux"

PRESETS=('default' 'fallback')

#default_config="/etc/mkinitcpio.conf"
${uki ? "#" : ""}default_image="/boot/initramfs-linux.img"
${uki ? "" : "#"}default_uki="/efi/EFI/Linux/arch-linux.efi"
#default_options="--splash=/usr/share/systemd/bootctl/splash-arch.bmp"

#fallback_config="/etc/mkinitcpio.conf"
${uki ? "#" : ""}fallback_image="/boot/initramfs-linux-fallback.img"
${uki ? "" : "#"}fallback_uki="/efi/EFI/Linux/arch-linux-fallback.efi"
fallback_options="-S autodetect"
`;

const INITRAMFS_TOOLS = {
  "etc/initramfs-tools/initramfs.conf": `#
# initramfs.conf
# Configuration file for mkinitramfs(8). See initramfs.conf(5).
#
# Note that configuration options from this file can be overridden
# by config files in the /etc/initramfs-tools/conf.d directory.

#
# MODULES: [ most | netboot | dep | list ]
#
# most - Add most filesystem and all harddrive drivers.
#
# dep - Try and guess which modules to load.
#
# netboot - Add the base modules, network modules, but skip block devices.
#
# list - Only include modules from the 'additional modules' list
#

MODULES=most

#
# BUSYBOX: [ y | n | auto ]
#
# Use busybox shell and utilities.  If set to n, klibc utilities will be used.
# If set to auto (or unset), busybox will be used if installed and klibc will
# be used otherwise.
#

BUSYBOX=auto

#
# COMPRESS: [ gzip | bzip2 | lz4 | lzma | lzop | xz | zstd ]
#

COMPRESS=zstd
`,
  "etc/initramfs-tools/modules": `# List of modules that you want to include in your initramfs.
# They will be loaded at boot time in the order below.
#
# Syntax:  module_name [args ...]
#
# You must run update-initramfs(8) to effect this change.
#
# Examples:
#
# raid1
# sd_mod
`,
};

const intel = intelNvidia(true);
const amd = HOSTS["amd-amd"]!;

const DISTROS: Record<string, FixtureHost> = {
  "debian-grub": {
    ...intel,
    files: {
      ...intel.files,
      ...INITRAMFS_TOOLS,
      "etc/default/grub": `# If you change this file, run 'update-grub' afterwards to update
# /boot/grub/grub.cfg.
# For full documentation of the options in this file, see:
#   info -f grub -n 'Simple configuration'

GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=\`lsb_release -i -s 2> /dev/null || echo Debian\`
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX=""

# If your computer has multiple operating systems installed, then you
# probably want to run os-prober. However, if your computer is a host
# for guest OSes installed via LVM or raw disk devices, running
# os-prober can cause damage to those guest OSes as it mounts
# filesystems to look for things.
#GRUB_DISABLE_OS_PROBER=false

# Uncomment to enable BadRAM filtering, modify to suit your needs
# This works with Linux (no patch required) and with any kernel that obtains
# the memory map information from GRUB (GNU Mach, kernel of FreeBSD ...)
#GRUB_BADRAM="0x01234567,0xfefefefe,0x89abcdef,0xefefefef"

# Uncomment to disable graphical terminal
#GRUB_TERMINAL=console

# Uncomment if you don't want GRUB to pass "root=UUID=xxx" parameter to Linux
#GRUB_DISABLE_LINUX_UUID=true

# Uncomment to disable generation of recovery mode menu entries
#GRUB_DISABLE_RECOVERY="true"
`,
      "boot/grub/grub.cfg": `${GRUB_CFG_HEADER}
### BEGIN /etc/grub.d/10_linux ###
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os {
	linux	/boot/vmlinuz-6.1.0-18-amd64 root=UUID=6f0e1c6a-3d1b-4d8e-9f59-2a1c3e0b7d11 ro  quiet
	initrd	/boot/initrd.img-6.1.0-18-amd64
}
### END /etc/grub.d/10_linux ###
`,
      "boot/vmlinuz-6.1.0-18-amd64": "",
      "boot/initrd.img-6.1.0-18-amd64": "",
    },
  },
  "fedora-dracut-bls": {
    ...amd,
    files: {
      ...amd.files,
      "etc/dracut.conf": `# PUT YOUR CONFIG IN separate files
# in /etc/dracut.conf.d named "<name>.conf"
# SEE man dracut.conf(5) for options
`,
      "etc/default/grub": `GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR="$(sed 's, release .*$,,g' /etc/system-release)"
GRUB_DEFAULT=saved
GRUB_DISABLE_SUBMENU=true
GRUB_TERMINAL_OUTPUT="console"
GRUB_CMDLINE_LINUX="rhgb quiet"
GRUB_DISABLE_RECOVERY="true"
GRUB_ENABLE_BLSCFG=true
`,
      "boot/loader/entries/2f8c3e1d4b5a46978a1b2c3d4e5f6071-6.7.5-200.fc39.x86_64.conf":
        `title Fedora Linux (6.7.5-200.fc39.x86_64) 39 (Workstation Edition)
version 6.7.5-200.fc39.x86_64
linux /vmlinuz-6.7.5-200.fc39.x86_64
initrd /initramfs-6.7.5-200.fc39.x86_64.img $tuned_initrd
options root=UUID=1b2c3d4e-5f60-4718-9a0b-c1d2e3f40516 ro rhgb quiet $tuned_params
grub_users $grub_users
grub_arg --unrestricted
grub_class fedora
`,
      "boot/loader/entries/2f8c3e1d4b5a46978a1b2c3d4e5f6071-0-rescue.conf":
        `title Fedora Linux (0-rescue-2f8c3e1d4b5a46978a1b2c3d4e5f6071) 39 (Workstation Edition)
version 0-rescue-2f8c3e1d4b5a46978a1b2c3d4e5f6071
linux /vmlinuz-0-rescue-2f8c3e1d4b5a46978a1b2c3d4e5f6071
initrd /initramfs-0-rescue-2f8c3e1d4b5a46978a1b2c3d4e5f6071.img
options root=UUID=1b2c3d4e-5f60-4718-9a0b-c1d2e3f40516 ro rhgb quiet
grub_users $grub_users
grub_arg --unrestricted
grub_class fedora
`,
      "boot/grub2/grub.cfg": `${GRUB_CFG_HEADER}
### BEGIN /etc/grub.d/10_linux ###
insmod part_gpt
insmod ext2
blscfg
### END /etc/grub.d/10_linux ###
`,
      "boot/grub2/grubenv": `# GRUB Environment Block
saved_entry=2f8c3e1d4b5a46978a1b2c3d4e5f6071-6.7.5-200.fc39.x86_64
boot_success=1
`,
    },
  },
  "arch-systemd-boot": {
    ...intel,
    osRelease: ARCH,
    kernel: ARCH_KERNEL,
    cmdline: `initrd=\\initramfs-linux.img root=UUID=${ARCH_UUID} rw quiet`,
    files: {
      "usr/share/edk2/x64/OVMF_CODE.4m.fd": "",
      "usr/share/edk2/x64/OVMF_VARS.4m.fd": "",
      "etc/mkinitcpio.conf": MKINITCPIO_CONF,
      "etc/mkinitcpio.d/linux.preset": linuxPreset(false),
      "boot/loader/loader.conf": "default arch.conf\ntimeout 4\nconsole-mode max\neditor no\n",
      "boot/loader/entries/arch.conf": `title   Arch Linux
linux   /vmlinuz-linux
initrd  /initramfs-linux.img
options root=UUID=${ARCH_UUID} rw quiet
`,
      "boot/loader/entries/arch-fallback.conf": `title   Arch Linux (fallback initramfs)
linux   /vmlinuz-linux
initrd  /initramfs-linux-fallback.img
options root=UUID=${ARCH_UUID} rw
`,
    },
  },
  "arch-booster-limine": {
    ...intel,
    osRelease: ARCH,
    kernel: ARCH_KERNEL,
    cmdline: `root=UUID=${ARCH_UUID} rw quiet`,
    files: {
      "usr/share/edk2/x64/OVMF_CODE.4m.fd": "",
      "usr/share/edk2/x64/OVMF_VARS.4m.fd": "",
      "etc/booster.yaml": "compression: zstd\nmount_timeout: 0s\n",
      "boot/booster-linux.img": "",
      "boot/limine.conf": `timeout: 3

/Arch Linux
    protocol: linux
    path: boot():/vmlinuz-linux
    cmdline: root=UUID=${ARCH_UUID} rw quiet
    module_path: boot():/booster-linux.img
`,
    },
  },
  "popos-kernelstub": {
    ...intel,
    osRelease: {
      NAME: "Pop!_OS",
      VERSION: "22.04 LTS",
      ID: "pop",
      ID_LIKE: "ubuntu debian",
      PRETTY_NAME: "Pop!_OS 22.04 LTS",
      VERSION_ID: "22.04",
    },
    kernel: "6.6.10-76060610-generic",
    cmdline:
      "initrd=\\EFI\\Pop_OS-5d3f2a1b-6c7d-4e8f-9a0b-1c2d3e4f5a6b\\initrd.img root=UUID=5d3f2a1b-6c7d-4e8f-9a0b-1c2d3e4f5a6b ro quiet loglevel=0 systemd.show_status=false splash",
    files: {
      ...intel.files,
      ...INITRAMFS_TOOLS,
      "etc/kernelstub/configuration": JSON.stringify(
        {
          default: {
            kernel_options: ["quiet", "splash"],
            esp_path: "/boot/efi",
            setup_loader: false,
            manage_mode: false,
            force_update: false,
            live_mode: false,
            config_rev: 3,
          },
          user: {
            kernel_options: ["quiet", "loglevel=0", "systemd.show_status=false", "splash"],
            esp_path: "/boot/efi",
            setup_loader: true,
            manage_mode: true,
            force_update: false,
            live_mode: false,
            config_rev: 3,
          },
        },
        null,
        2,
      ),
      "boot/efi/loader/loader.conf": "default Pop_OS-current\n",
      "boot/efi/loader/entries/Pop_OS-current.conf": `title Pop!_OS
linux /EFI/Pop_OS-5d3f2a1b-6c7d-4e8f-9a0b-1c2d3e4f5a6b/vmlinuz.efi
initrd /EFI/Pop_OS-5d3f2a1b-6c7d-4e8f-9a0b-1c2d3e4f5a6b/initrd.img
options root=UUID=5d3f2a1b-6c7d-4e8f-9a0b-1c2d3e4f5a6b ro quiet loglevel=0 systemd.show_status=false splash
`,
    },
  },
  "arch-uki": {
    ...intel,
    osRelease: ARCH,
    kernel: ARCH_KERNEL,
    cmdline: `root=UUID=${ARCH_UUID} rw quiet`,
    files: {
      "usr/share/edk2/x64/OVMF_CODE.4m.fd": "",
      "usr/share/edk2/x64/OVMF_VARS.4m.fd": "",
      "etc/kernel/cmdline": `root=UUID=${ARCH_UUID} rw quiet\n`,
      "etc/mkinitcpio.conf": MKINITCPIO_CONF,
      "etc/mkinitcpio.d/linux.preset": linuxPreset(true),
      "efi/loader/loader.conf": "timeout 3\neditor no\n",
      "efi/EFI/Linux/arch-linux.efi": "",
    },
  },
  "arch-refind": {
    ...intel,
    osRelease: ARCH,
    kernel: ARCH_KERNEL,
    cmdline: `root=PARTUUID=${ARCH_UUID} rw add_efi_memmap`,
    files: {
      "usr/share/edk2/x64/OVMF_CODE.4m.fd": "",
      "usr/share/edk2/x64/OVMF_VARS.4m.fd": "",
      "etc/mkinitcpio.conf": MKINITCPIO_CONF,
      "etc/mkinitcpio.d/linux.preset": linuxPreset(false),
      "boot/refind_linux.conf":
        `"Boot using default options"     "root=PARTUUID=${ARCH_UUID} rw add_efi_memmap"
"Boot using fallback initramfs"  "root=PARTUUID=${ARCH_UUID} rw add_efi_memmap initrd=\\boot\\initramfs-linux-fallback.img"
"Boot to terminal"               "root=PARTUUID=${ARCH_UUID} rw add_efi_memmap systemd.unit=multi-user.target"
`,
      "boot/efi/EFI/refind/refind.conf": `timeout 20
use_nvram false
scanfor internal,external,optical,manual
`,
    },
  },
};

/** The lines of pci.ids that name the given vendors and devices, plus the class table. */
export function pciIdsExcerpt(database: string, devices: FixtureDevice[]): string {
  const vendors = new Set(devices.map((d) => d.vendor));
  const pairs = new Set(devices.map((d) => `${d.vendor}:${d.device}`));
  const out = [
    "# Excerpt of pci.ids (https://pci-ids.ucw.cz/), the database lspci uses, for Gini's fixtures",
  ];
  let vendor: string | undefined;
  let classes = false;
  for (const line of database.split("\n")) {
    if (line.startsWith("C ")) classes = true;
    if (classes) {
      if (!line.startsWith("#") && !line.startsWith("\t\t")) out.push(line);
      continue;
    }
    const v = line.match(/^([0-9a-f]{4})\s/);
    if (v) {
      vendor = vendors.has(v[1]!) ? v[1] : undefined;
      if (vendor) out.push(line);
      continue;
    }
    const d = line.match(/^\t([0-9a-f]{4})\s/);
    if (vendor && d && pairs.has(`${vendor}:${d[1]}`)) out.push(line);
  }
  return out.join("\n") + "\n";
}

if (import.meta.main) {
  const database = await Deno.readTextFile("/usr/share/misc/pci.ids");
  const all = [
    ...Object.entries(HOSTS).map(([name, host]) => [join(OUT, name), host] as const),
    ...Object.entries(DISTROS).map(([name, host]) => [join(DISTRO_OUT, name), host] as const),
  ];
  for (const [root, host] of all) {
    const name = root.slice(root.lastIndexOf("/") + 1);
    await Deno.remove(root, { recursive: true }).catch(() => {});
    await writeHost(root, host);
    const excerpt = pciIdsExcerpt(database, host.devices);
    await Deno.mkdir(join(root, "usr/share/misc"), { recursive: true });
    await Deno.writeTextFile(join(root, "usr/share/misc/pci.ids"), excerpt);
    const missing = host.devices.filter((d) => !excerpt.includes(`\t${d.device}  `)).map((d) =>
      `${d.vendor}:${d.device}`
    );
    // deno-lint-ignore no-console
    console.log(
      `${name}: ${host.devices.length} devices${
        missing.length ? `; not in pci.ids: ${missing.join(", ")}` : ""
      }`,
    );
  }
}
