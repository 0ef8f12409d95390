/**
 * The PASS/WARN/FAIL lines of `gini check`, each non-pass with the command or
 * file change that fixes it on the detected distribution.
 *
 * @module
 */
import type { Check, EnvironmentData } from "./contracts.ts";

type Report = Omit<EnvironmentData, "checks">;
type Family = "debian" | "fedora" | "arch" | "suse" | "other";

/** The distribution family, from os-release ID and ID_LIKE. */
export function distroFamily(os: { id: string; idLike: string[] }): Family {
  const ids = [os.id, ...os.idLike];
  if (ids.some((i) => ["debian", "ubuntu"].includes(i))) return "debian";
  if (ids.some((i) => ["fedora", "rhel", "centos"].includes(i))) return "fedora";
  if (ids.some((i) => i === "arch")) return "arch";
  if (ids.some((i) => i.startsWith("suse") || i.startsWith("opensuse"))) return "suse";
  return "other";
}

const PACKAGES: Record<string, Record<Family, string>> = {
  qemu: {
    debian: "qemu-system-x86",
    fedora: "qemu-kvm",
    arch: "qemu-base",
    suse: "qemu-x86",
    other: "QEMU",
  },
  qemuImg: {
    debian: "qemu-utils",
    fedora: "qemu-img",
    arch: "qemu-img",
    suse: "qemu-tools",
    other: "qemu-img",
  },
  ovmf: {
    debian: "ovmf",
    fedora: "edk2-ovmf",
    arch: "edk2-ovmf",
    suse: "qemu-ovmf-x86_64",
    other: "OVMF (EDK II)",
  },
  swtpm: { debian: "swtpm", fedora: "swtpm", arch: "swtpm", suse: "swtpm", other: "swtpm" },
  iso: {
    debian: "xorriso",
    fedora: "xorriso",
    arch: "libisoburn",
    suse: "xorriso",
    other: "xorriso",
  },
};

function install(family: Family, what: keyof typeof PACKAGES): string {
  const pkg = PACKAGES[what]![family];
  switch (family) {
    case "debian":
      return `sudo apt-get install ${pkg}`;
    case "fedora":
      return `sudo dnf install ${pkg}`;
    case "arch":
      return `sudo pacman -S ${pkg}`;
    case "suse":
      return `sudo zypper install ${pkg}`;
    default:
      return `Install ${pkg} with your package manager`;
  }
}

function kernelArgs(family: Family, args: string): string {
  switch (family) {
    case "debian":
      return `Add "${args}" to GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub, run "sudo update-grub" and reboot (or let "gini vfio apply" do it)`;
    case "fedora":
      return `Run "sudo grubby --update-kernel=ALL --args='${args}'" and reboot (or let "gini vfio apply" do it)`;
    case "arch":
      return `Add "${args}" to your boot loader's kernel command line (GRUB: /etc/default/grub then "sudo grub-mkconfig -o /boot/grub/grub.cfg"; systemd-boot: the options line in /boot/loader/entries/) and reboot`;
    default:
      return `Add "${args}" to the kernel command line in your boot loader and reboot`;
  }
}

const GIB = 1024 ** 3;

/** Computes every check from a report. */
export function computeChecks(report: Report): Check[] {
  const checks: Check[] = [];
  const family = distroFamily(report.os);
  const add = (id: string, status: Check["status"], title: string, detail: string, hint?: string) =>
    checks.push({ id, status, title, detail, ...(status !== "PASS" && hint ? { hint } : {}) });
  const intel = report.cpu.vendor === "intel";
  const hw = intel ? "vmx" : "svm";
  const probed = !report.notChecked.includes("programs");

  const hasHw = report.cpu.flags.includes("vmx") || report.cpu.flags.includes("svm");
  add(
    "cpu.virtualization",
    hasHw ? "PASS" : "WARN",
    "Hardware virtualisation (vmx/svm)",
    hasHw
      ? `the CPU offers ${report.cpu.flags.includes("vmx") ? "vmx" : "svm"}`
      : "the CPU offers neither vmx nor svm; guests will run under TCG, many times slower",
    `Enable ${
      intel ? "Intel VT-x" : report.cpu.vendor === "amd" ? "AMD-V (SVM)" : "virtualisation"
    } in the firmware setup; inside a VM, enable nested virtualisation on its host`,
  );
  add(
    "kvm.device",
    report.kvm.present ? "PASS" : "WARN",
    "KVM device /dev/kvm",
    report.kvm.present ? "present" : "missing",
    hasHw
      ? `Load the module: sudo modprobe ${intel ? "kvm_intel" : "kvm_amd"}`
      : "It appears once hardware virtualisation is enabled",
  );
  if (report.kvm.present) {
    add(
      "kvm.access",
      report.kvm.accessible ? "PASS" : "FAIL",
      "KVM device is accessible",
      report.kvm.accessible ? "this user can open /dev/kvm" : "this user cannot open /dev/kvm",
      'Add yourself to the kvm group: sudo usermod -aG kvm "$USER", then log in again',
    );
  }
  add(
    "kvm.usable",
    report.kvm.usable ? "PASS" : "WARN",
    "KVM acceleration usable",
    report.kvm.usable
      ? `guests will use KVM (${report.kvm.reason})`
      : `guests will use TCG: ${report.kvm.reason}`,
    hasHw
      ? `Load the module: sudo modprobe ${intel ? "kvm_intel" : "kvm_amd"}`
      : `Enable ${hw} in the firmware setup`,
  );
  if (report.kvm.module) {
    add(
      "kvm.nested",
      report.kvm.nested ? "PASS" : "WARN",
      "Nested virtualisation",
      report.kvm.nested ? "enabled" : "disabled: guests cannot run their own VMs",
      `echo "options ${report.kvm.module} nested=1" | sudo tee /etc/modprobe.d/kvm-nested.conf, then reload ${report.kvm.module}`,
    );
  }

  add(
    "iommu.firmware",
    report.iommu.acpiTable ? "PASS" : "WARN",
    "IOMMU in firmware (ACPI DMAR/IVRS)",
    report.iommu.acpiTable
      ? `ACPI ${report.iommu.acpiTable} table present`
      : "no ACPI DMAR or IVRS table: PCI passthrough is not possible",
    `Enable ${intel ? "VT-d" : "AMD-Vi/IOMMU"} in the firmware setup`,
  );
  const wantsArg = intel ? "intel_iommu=on" : "amd_iommu=on";
  add(
    "iommu.enabled",
    report.iommu.enabled ? "PASS" : "WARN",
    "IOMMU enabled in the kernel",
    report.iommu.enabled
      ? `${report.iommu.groups.length} IOMMU groups${
        report.iommu.cmdline.length ? ` (${report.iommu.cmdline.join(" ")})` : ""
      }`
      : "no IOMMU groups: PCI passthrough is not possible",
    report.iommu.acpiTable
      ? kernelArgs(family, `${wantsArg} iommu=pt`)
      : `Enable ${intel ? "VT-d" : "the IOMMU"} in firmware first`,
  );
  if (report.iommu.enabled) {
    add(
      "iommu.interrupt-remapping",
      report.iommu.interruptRemapping ? "PASS" : "WARN",
      "IOMMU interrupt remapping",
      report.iommu.interruptRemapping === null
        ? "unknown (/proc/interrupts unreadable)"
        : report.iommu.interruptRemapping
        ? "enabled"
        : "not enabled",
      "Without it, passthrough needs vfio_iommu_type1.allow_unsafe_interrupts=1 (less safe); check the firmware's VT-d/IOMMU options",
    );
  }
  for (const gpu of report.gpus) {
    const group = report.iommu.groups.find((g) => g.id === gpu.iommuGroup);
    const slot = gpu.address.slice(0, -2);
    const unrelated = group?.devices.filter((d) =>
      d.address.slice(0, -2) !== slot && !d.class.startsWith("06")
    ) ?? [];
    const label = `GPU ${gpu.address} (${gpu.name}${gpu.bootVga ? ", boot display" : ""})`;
    if (!group) {
      add(
        `gpu.${gpu.address}`,
        "WARN",
        label,
        "not in any IOMMU group",
        "Enable the IOMMU (see above) to pass it through",
      );
    } else if (unrelated.length) {
      add(
        `gpu.${gpu.address}`,
        "WARN",
        label,
        `IOMMU group ${group.id} also holds ${
          unrelated.map((d) => `"${d.address}" [${d.vendor}:${d.device}]`).join(", ")
        }, which would have to be passed through with it`,
        "Move the card to a slot wired to the CPU, update the firmware, or use an ACS override kernel (less isolation)",
      );
    } else {
      add(
        `gpu.${gpu.address}`,
        "PASS",
        label,
        `IOMMU group ${group.id} holds only the card${
          gpu.companions.length ? ` and its functions ${gpu.companions.join(", ")}` : ""
        }`,
      );
    }
  }
  const vfio = report.modules.vfio_pci ?? false;
  add(
    "modules.vfio",
    vfio ? "PASS" : "WARN",
    "VFIO modules",
    vfio ? "vfio-pci loaded" : "vfio-pci not loaded (needed only for passthrough)",
    '"gini vfio apply" configures them to load at boot; now: sudo modprobe vfio-pci',
  );
  const huge = report.hugepages.filter((h) => h.total > 0);
  add(
    "memory.hugepages",
    huge.length ? "PASS" : "WARN",
    "Huge pages",
    huge.length
      ? huge.map((h) => `${h.total} × ${h.sizeBytes / 1024 ** 2} MiB (${h.free} free)`).join(", ")
      : `none reserved; ${
        (report.memory.totalBytes / GIB).toFixed(1)
      } GiB RAM, transparent huge pages ${report.transparentHugepages}`,
    "Optional: reserve them with vm.nr_hugepages in /etc/sysctl.d/ for VMs that set hugepages = true",
  );
  add(
    "devices.vhost-net",
    report.devices.vhostNet ? "PASS" : "WARN",
    "/dev/vhost-net",
    report.devices.vhostNet ? "present" : "missing: virtio networking will be slower",
    "sudo modprobe vhost_net",
  );
  add(
    "devices.tun",
    report.devices.tun ? "PASS" : "WARN",
    "/dev/net/tun",
    report.devices.tun ? "present" : "missing: tap and bridged networking will not work",
    "sudo modprobe tun",
  );
  add(
    "firmware.ovmf",
    report.firmware.ovmf.length ? "PASS" : "WARN",
    "UEFI firmware (OVMF)",
    report.firmware.ovmf.length
      ? report.firmware.ovmf.map((f) => f.code).join(", ")
      : "not found: UEFI, Windows and macOS guests need it",
    install(family, "ovmf"),
  );
  if (probed) {
    const program = (
      id: string,
      key: string,
      title: string,
      level: "FAIL" | "WARN",
      pkg: keyof typeof PACKAGES,
      why: string,
    ) => {
      const version = report.programs[key] ?? null;
      add(
        id,
        version ? "PASS" : level,
        title,
        version ? `version ${version}` : `not installed: ${why}`,
        install(family, pkg),
      );
    };
    program(
      "programs.qemu",
      "qemu-system-x86_64",
      "QEMU (qemu-system-x86_64)",
      "FAIL",
      "qemu",
      "no VM can run",
    );
    program(
      "programs.qemu-img",
      "qemu-img",
      "qemu-img",
      "FAIL",
      "qemuImg",
      "disks cannot be created",
    );
    program(
      "programs.swtpm",
      "swtpm",
      "swtpm (TPM for Windows 11)",
      "WARN",
      "swtpm",
      "Windows 11 guests need a TPM",
    );
    const iso = report.programs.xorriso ?? report.programs.genisoimage ?? null;
    add(
      "programs.iso",
      iso ? "PASS" : "WARN",
      "ISO builder (xorriso or genisoimage)",
      iso ? `version ${iso}` : "not installed: cloud-init seeds cannot be built",
      install(family, "iso"),
    );
  }
  return checks;
}
