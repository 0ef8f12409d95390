/**
 * From a checked VM file and the host report to the parts of a VM definition,
 * refusing what the host cannot do with errors that point into the file.
 *
 * @module
 */
import { isAbsolute, join, resolve } from "../../workers/path.ts";
import { ConfigError, didYouMean, type UserVmRequest } from "../../workers/sdk.ts";
import { locateKey } from "../../workers/sdk_toml.ts";
import type { EnvironmentData } from "../env_check/contracts.ts";
import type { GuestBaseImage } from "../linux_setup/contracts.ts";
import type { RecoveryImage } from "../macos_recovery/contracts.ts";
import type { WindowsMedia } from "../windows_setup/contracts.ts";
import type { VmDefinition, VmDisk, VmNic } from "./contracts.ts";
import { DiskSchema, parseSize, type VmConfig } from "./vm_schema.ts";
import { vmMac } from "./names.ts";
import { macosDisks, type MacosPlan, macosVarsTemplate, planMacos } from "./_macos.ts";

/**
 * The VM file: where it is and what it says, and for a VM file a command generated from its
 * flags (create-vm), the flag each key came from, so that an error names the flag the user typed.
 */
export type Source = Pick<UserVmRequest, "file" | "text" | "flags">;

/** A ConfigError pointing at `path` in the VM file, or at the flag it was generated from. */
export function configError(
  source: Source,
  path: (string | number)[],
  message: string,
  hint: string,
): ConfigError {
  const key = path.join(".");
  const flag = source.flags?.[key];
  if (flag) {
    return new ConfigError(message, {
      location: { flag },
      hint: hint.replaceAll(key, flag),
    });
  }
  return new ConfigError(message, {
    location: { file: source.file, key, ...locateKey(source.text, path) },
    hint,
  });
}

/** A path from the VM file, relative to the file's directory. */
export function fromFile(source: Source, path: string): string {
  return isAbsolute(path) ? path : resolve(source.file, "..", path);
}

const GIB = 1024 ** 3;

/** Warns of more vCPUs or memory than the host has free; refuses more memory than it has. */
function checkCpuMemory(
  config: VmConfig,
  host: EnvironmentData,
  source: Source,
  warnings: string[],
): void {
  const vcpus = config.cpu.cores * config.cpu.threads * config.cpu.sockets;
  // QEMU runs more vCPUs than host threads (they share them, each slower); like virt-install,
  // say so rather than refuse.
  if (host.cpu.threads > 0 && vcpus > host.cpu.threads) {
    warnings.push(
      `"${config.name}" gets ${vcpus} vCPUs on a host with ${host.cpu.threads} threads: they will share them and run slower (${
        source.flags?.["cpu.cores"] ?? "cpu.cores"
      } ${host.cpu.threads} avoids it)`,
    );
  }
  const memory = parseSize(config.memory.size)!;
  if (host.memory.totalBytes > 0 && memory > host.memory.totalBytes) {
    throw configError(
      source,
      ["memory", "size"],
      `Cannot give "${config.name}" ${config.memory.size} of memory: the host has ${
        (host.memory.totalBytes / GIB).toFixed(1)
      } GiB`,
      "Lower memory.size",
    );
  }
  if (memory > host.memory.availableBytes) {
    warnings.push(
      `memory.size ${config.memory.size} is more than the ${
        (host.memory.availableBytes / GIB).toFixed(1)
      } GiB now available`,
    );
  }
  if (config.memory.hugepages) {
    const free = host.hugepages.reduce((n, h) => n + h.free * h.sizeBytes, 0);
    if (free < memory) {
      throw configError(
        source,
        ["memory", "hugepages"],
        `Cannot back ${config.memory.size} with huge pages: ${
          (free / GIB).toFixed(1)
        } GiB of huge pages are free`,
        `Reserve more (vm.nr_hugepages) or set hugepages = false`,
      );
    }
  }
}

/** KVM when asked for or, with accel = "auto", when usable; TCG otherwise. */
function chooseAccel(
  config: VmConfig,
  host: EnvironmentData,
  source: Source,
  warnings: string[],
): "kvm" | "tcg" {
  if (config.accel === "kvm" && !host.kvm.usable) {
    throw configError(
      source,
      ["accel"],
      `Cannot use KVM: ${host.kvm.reason}`,
      'Set accel = "auto" to fall back to TCG, or run "gini check"',
    );
  }
  if (config.accel === "tcg") return "tcg";
  if (!host.kvm.usable) {
    warnings.push(
      `KVM is not usable (${host.kvm.reason}); "${config.name}" will run under TCG, much slower`,
    );
  }
  return host.kvm.usable ? "kvm" : "tcg";
}

/** Refuses UEFI, Secure Boot or a TPM the host has no firmware or swtpm for. */
function checkFirmware(config: VmConfig, host: EnvironmentData, source: Source): void {
  if (config.firmware.type === "uefi" && !config.firmware.code && host.firmware.ovmf.length === 0) {
    throw configError(
      source,
      ["firmware", "type"],
      "Cannot boot with UEFI: no OVMF firmware found on the host",
      'Install OVMF (see "gini check"), or set firmware.code',
    );
  }
  if (
    config.firmware.secure_boot && !config.firmware.code &&
    !host.firmware.ovmf.some((f) => f.secureBoot)
  ) {
    throw configError(
      source,
      ["firmware", "secure_boot"],
      "Cannot enable Secure Boot: no Secure Boot OVMF build found",
      "Install your distribution's OVMF package with Secure Boot builds",
    );
  }
  if (config.tpm.enabled && host.programs.swtpm === null) {
    throw configError(
      source,
      ["tpm", "enabled"],
      "Cannot add a TPM: swtpm is not installed",
      "Install swtpm",
    );
  }
}

/** Checks the request against the host; returns the accelerator and warnings. */
export function validateRequest(config: VmConfig, host: EnvironmentData, source: Source) {
  const warnings: string[] = [];
  checkCpuMemory(config, host, source, warnings);
  const accel = chooseAccel(config, host, source, warnings);
  checkFirmware(config, host, source);
  // Enlightened VMCS (hv-evmcs) is Intel's only.
  const intel = host.cpu.vendor === "intel";
  if (config.guest !== "macos") return { accel, warnings, macos: null, intel };
  if (!config.firmware.code && host.firmware.ovmf.length === 0) {
    throw configError(
      source,
      ["guest"],
      "Cannot boot macOS: no OVMF firmware found on the host",
      'Install OVMF (see "gini check"), or set firmware.code',
    );
  }
  const macos = planMacos(config, host, source, accel);
  return { accel, warnings: [...warnings, ...macos.warnings], macos: macos.plan, intel };
}

/** The CPU and memory part. */
export function defineCpuRam(
  config: VmConfig,
  accel: "kvm" | "tcg",
  macos: MacosPlan | null = null,
) {
  const { cores, threads, sockets } = config.cpu;
  const { model, features } = macos?.cpu ?? config.cpu;
  return {
    cpu: { model, features, sockets, cores, threads, vcpus: cores * threads * sockets },
    memory: { bytes: parseSize(config.memory.size)!, hugepages: config.memory.hugepages },
    accel,
  };
}

/** What `qemu-img info` said of an image, or null when it could not read it. */
export type Probe = (path: string) => Promise<{ format: string; virtualSize: number } | null>;

/** What defining the disks reads: the VM file, the host, the VM's folder and the image prober. */
interface DiskInputs {
  config: VmConfig;
  host: EnvironmentData;
  source: Source;
  dir: string;
  probe: Probe;
}

/** A [[disks]] table, or the root disk made up for a cloud image. */
type DiskConfig = VmConfig["disks"][number] | ReturnType<typeof DiskSchema.parse>;
type ConfigPath = (string | number)[];

/** The image a disk is layered over, if any, and the disk's size, at least the image's. */
async function diskBacking(
  source: Source,
  probe: Probe,
  d: DiskConfig,
  key: ConfigPath,
  base: GuestBaseImage | null,
): Promise<{ backing: VmDisk["backing"]; size: number }> {
  const size = d.size ? parseSize(d.size)! : 0;
  if (base && !d.backing && !d.path && d.backend === "file") {
    return {
      backing: { path: base.path, format: base.format },
      size: Math.max(size, base.virtualSize ?? 0),
    };
  }
  if (!d.backing) return { backing: null, size };
  const path = fromFile(source, d.backing);
  const info = await probe(path);
  if (!info) {
    throw configError(
      source,
      [...key, "backing"],
      `Cannot use backing image "${path}": it does not exist or is not a disk image`,
      "Check the path (relative paths start at the VM file's folder), or download it first",
    );
  }
  if (d.format !== "qcow2") {
    throw configError(
      source,
      [...key, "format"],
      "Cannot layer a raw disk over a backing image",
      'Use format = "qcow2" with backing',
    );
  }
  return { backing: { path, format: info.format }, size: Math.max(size, info.virtualSize) };
}

/** The logical volume of an LVM disk, checked against the host's volume groups. */
function lvmVolume(inputs: DiskInputs, d: DiskConfig, key: ConfigPath, size: number): string {
  const { config, host, source } = inputs;
  if (!d.volume_group) {
    throw configError(
      source,
      [...key, "volume_group"],
      `Cannot put disk "${d.name}" on LVM without a volume group`,
      'Add volume_group = "vg0"',
    );
  }
  const vg = host.lvm?.volumeGroups.find((v) => v.name === d.volume_group);
  if (host.lvm && !vg) {
    throw configError(
      source,
      [...key, "volume_group"],
      `Cannot find volume group "${d.volume_group}"`,
      didYouMean(d.volume_group, host.lvm.volumeGroups.map((v) => v.name)) ??
        `Volume groups here: ${host.lvm.volumeGroups.map((v) => v.name).join(", ") || "none"}`,
    );
  }
  if (vg && size > vg.freeBytes) {
    throw configError(
      source,
      [...key, "size"],
      `Cannot create ${d.size} in "${vg.name}": it has ${(vg.freeBytes / GIB).toFixed(1)} GiB free`,
      "Lower the size or free space in the volume group",
    );
  }
  return `gini-${config.name}-${d.name}`;
}

/** Where a disk lives: an existing image, a new logical volume, or a new file in the VM's folder. */
async function diskPlace(
  inputs: DiskInputs,
  d: DiskConfig,
  key: ConfigPath,
  size: number,
): Promise<{ path: string; create: boolean; logicalVolume: string | null; size: number }> {
  const { source, dir, probe } = inputs;
  if (d.path) {
    const path = fromFile(source, d.path);
    const info = await probe(path);
    if (!info) {
      throw configError(
        source,
        [...key, "path"],
        `Cannot use disk "${path}": it does not exist or is not a disk image`,
        "Check the path, or remove it to create a new disk",
      );
    }
    return { path, create: false, logicalVolume: null, size: info.virtualSize };
  }
  if (d.backend === "lvm") {
    const logicalVolume = lvmVolume(inputs, d, key, size);
    return { path: `/dev/${d.volume_group}/${logicalVolume}`, create: true, logicalVolume, size };
  }
  const path = join(dir, `${d.name}.${d.format === "qcow2" ? "qcow2" : "img"}`);
  return { path, create: true, logicalVolume: null, size };
}

/** The disks the VM file lists; `first` is how many disks come before them. */
async function defineDisks(
  inputs: DiskInputs,
  base: GuestBaseImage | null,
  macos: MacosPlan | null,
  first: number,
): Promise<VmDisk[]> {
  const { config, source } = inputs;
  const disks: VmDisk[] = [];
  const names = new Set<string>();
  // A cloud image with no disk listed gets a 20 GiB root disk over it.
  const requested = base && config.disks.length === 0
    ? [DiskSchema.parse({ name: "root", size: "20G" })]
    : config.disks;
  for (const [i, d] of requested.entries()) {
    const key = ["disks", i];
    if (names.has(d.name)) {
      throw configError(
        source,
        [...key, "name"],
        `Cannot have two disks named "${d.name}"`,
        "Give each [[disks]] a unique name",
      );
    }
    names.add(d.name);
    const { backing, size } = await diskBacking(
      source,
      inputs.probe,
      d,
      key,
      i === 0 ? base : null,
    );
    const place = await diskPlace(inputs, d, key, size);
    if (place.create && place.size === 0) {
      throw configError(
        source,
        [...key, "size"],
        `Cannot create disk "${d.name}" without a size`,
        'Add size = "20G", or a backing image',
      );
    }
    disks.push({
      id: `disk${i}`,
      name: d.name,
      backend: d.backend,
      path: place.path,
      format: d.format,
      sizeBytes: place.size,
      // Releases before Big Sur have no virtio-blk driver.
      bus: macos?.release.disk === "sata" && d.bus === "virtio" ? "sata" : d.bus,
      backing,
      create: place.create,
      volumeGroup: d.volume_group ?? null,
      logicalVolume: place.logicalVolume,
      bootIndex: d.boot_order ?? (i === 0 && first === 0 && !config.boot?.kernel ? 1 : null),
      readonly: d.readonly,
      cdrom: d.cdrom,
    });
  }
  return disks;
}

/** The cloud-init seed linux-setup writes beside the VM, kept so that restarts work. */
function seedDisk(index: number, dir: string): VmDisk {
  return {
    id: `disk${index}`,
    name: "cidata",
    backend: "file",
    path: join(dir, "seed.iso"),
    format: "raw",
    sizeBytes: 0,
    bus: "sata",
    backing: null,
    create: false,
    volumeGroup: null,
    logicalVolume: null,
    bootIndex: null,
    readonly: true,
    cdrom: true,
  };
}

/**
 * A Windows installation's media until it is done: the installation ISO on SATA (booted from when
 * the system disk has nothing to boot yet), and the answer-file image as a removable USB disk,
 * where Setup looks for autounattend.xml and `$WinPEDriver$`.
 */
function windowsMediaDisks(index: number, media: WindowsMedia): VmDisk[] {
  const common = {
    backend: "file",
    format: "raw",
    sizeBytes: 0,
    backing: null,
    create: false,
    volumeGroup: null,
    logicalVolume: null,
    readonly: true,
    installMedia: true,
  } as const;
  return [
    {
      ...common,
      id: `disk${index}`,
      name: "windows-installer",
      path: media.installer,
      bus: "sata",
      bootIndex: 2,
      cdrom: true,
    },
    {
      ...common,
      id: `disk${index + 1}`,
      name: "windows-unattend",
      path: media.unattend,
      bus: "usb",
      bootIndex: null,
      cdrom: false,
    },
  ];
}

/** What deploy sees through: the media to detach, the boot prompt, the done marker. */
export function windowsInstall(
  disks: VmDisk[],
  media: WindowsMedia | null,
): VmDefinition["install"] {
  if (!media || media.installed) return undefined;
  return {
    media: disks.filter((d) => d.installMedia).map((d) => d.id),
    prompt: media.prompt,
    done: media.done,
    record: media.record,
    timeoutMs: media.timeoutMinutes * 60_000,
  };
}

/** BIOS, or UEFI with the OVMF build the VM file names or the host's that fits. */
function defineFirmware(
  config: VmConfig,
  host: EnvironmentData,
  source: Source,
  dir: string,
  macos: MacosPlan | null,
): VmDefinition["firmware"] {
  if (config.firmware.type !== "uefi" && !macos) {
    return {
      type: "bios",
      secureBoot: false,
      code: null,
      varsTemplate: null,
      vars: null,
      varsFormat: "raw",
    };
  }
  const found =
    host.firmware.ovmf.find((f) => f.secureBoot === config.firmware.secure_boot && f.vars) ??
      host.firmware.ovmf.find((f) => f.vars);
  const code = config.firmware.code ? fromFile(source, config.firmware.code) : found?.code ?? null;
  const varsTemplate = macos
    // Written by opencore:compile from the host's template, with the resolution set.
    ? macosVarsTemplate(dir, macos.resolution)
    : config.firmware.vars
    ? fromFile(source, config.firmware.vars)
    : found?.vars ?? null;
  if (!code || !varsTemplate) {
    throw configError(
      source,
      ["firmware"],
      "Cannot find OVMF code and vars files",
      "Set firmware.code and firmware.vars",
    );
  }
  return {
    type: "uefi",
    secureBoot: config.firmware.secure_boot,
    code,
    varsTemplate,
    // qcow2, made from the raw template by deploy: snapshots include the variables.
    vars: join(dir, "OVMF_VARS.qcow2"),
    varsFormat: "qcow2",
  };
}

/** Direct kernel boot, when [boot] names a kernel that exists. */
async function defineKernelBoot(
  config: VmConfig,
  source: Source,
  probe: Probe,
): Promise<VmDefinition["kernelBoot"]> {
  if (!config.boot?.kernel) {
    if (config.boot?.initrd || config.boot?.cmdline) {
      throw configError(
        source,
        ["boot"],
        "Cannot use boot.initrd or boot.cmdline without boot.kernel",
        "Add boot.kernel",
      );
    }
    return null;
  }
  const kernel = fromFile(source, config.boot.kernel);
  if (!(await probe(kernel))) {
    throw configError(
      source,
      ["boot", "kernel"],
      `Cannot boot "${kernel}": the file does not exist`,
      "Check the path",
    );
  }
  const initrd = config.boot.initrd ? fromFile(source, config.boot.initrd) : null;
  if (initrd && !(await probe(initrd))) {
    throw configError(
      source,
      ["boot", "initrd"],
      `Cannot use initrd "${initrd}": the file does not exist`,
      "Check the path",
    );
  }
  return { kernel, initrd, cmdline: config.boot.cmdline ?? null };
}

/** Disks, firmware and direct kernel boot. */
export async function defineStorage(
  config: VmConfig,
  host: EnvironmentData,
  source: Source,
  dir: string,
  probe: Probe,
  base: GuestBaseImage | null = null,
  macos: { plan: MacosPlan; recovery: RecoveryImage | null } | null = null,
  windows: WindowsMedia | null = null,
): Promise<Pick<VmDefinition, "disks" | "firmware" | "kernelBoot">> {
  // A macOS guest boots OpenCore from its own disk, with the recovery image next to it.
  const disks: VmDisk[] = macos ? macosDisks(dir, macos.recovery) : [];
  const first = disks.length;
  const inputs: DiskInputs = { config, host, source, dir, probe };
  disks.push(...await defineDisks(inputs, base, macos?.plan ?? null, first));
  if (config.linux) disks.push(seedDisk(disks.length, dir));
  if (windows && !windows.installed) disks.push(...windowsMediaDisks(disks.length, windows));
  const firmware = defineFirmware(config, host, source, dir, macos?.plan ?? null);
  const kernelBoot = await defineKernelBoot(config, source, probe);
  if (!disks.slice(first).some((d) => d.name !== "cidata" || !d.cdrom) && !kernelBoot) {
    throw configError(
      source,
      ["disks"],
      `Cannot boot "${config.name}": it has no disk and no kernel`,
      "Add a [[disks]] table or [boot] kernel",
    );
  }
  return { disks, firmware, kernelBoot };
}

const NIC_DEVICES: Record<string, string> = {
  virtio: "virtio-net-pci",
  e1000e: "e1000e",
  e1000: "e1000",
  vmxnet3: "vmxnet3",
  rtl8139: "rtl8139",
};

/** Network interfaces. */
export async function defineNetworking(
  config: VmConfig,
  host: EnvironmentData,
  source: Source,
): Promise<VmNic[]> {
  const nics: VmNic[] = [];
  const ports = new Set<string>();
  for (const [i, n] of config.network.entries()) {
    if (n.type === "none") continue;
    const key = ["network", i];
    if (n.type === "bridge") {
      if (!n.bridge) {
        throw configError(
          source,
          [...key, "bridge"],
          "Cannot attach to a bridge without its name",
          'Add bridge = "br0"',
        );
      }
      const bridges = host.network.interfaces.filter((x) => x.bridge).map((x) => x.name);
      if (!bridges.includes(n.bridge)) {
        throw configError(
          source,
          [...key, "bridge"],
          `Cannot find bridge "${n.bridge}" on the host`,
          didYouMean(n.bridge, bridges) ?? `Bridges here: ${bridges.join(", ") || "none"}`,
        );
      }
    }
    if ((n.type === "tap" || n.type === "macvtap") && !n.interface) {
      throw configError(
        source,
        [...key, "interface"],
        `Cannot use ${n.type} without a host interface`,
        'Add interface = "tap0"',
      );
    }
    if (n.forwards.length && n.type !== "user") {
      throw configError(
        source,
        [...key, "forwards"],
        "Cannot forward ports on a non-user network",
        'Use type = "user" or remove forwards',
      );
    }
    for (const [j, f] of n.forwards.entries()) {
      const id = `${f.protocol}:${f.address}:${f.host}`;
      if (ports.has(id)) {
        throw configError(
          source,
          [...key, "forwards", j, "host"],
          `Cannot forward host port ${f.host}/${f.protocol} twice`,
          "Use another host port",
        );
      }
      ports.add(id);
    }
    nics.push({
      id: `net${i}`,
      type: n.type,
      model: n.model,
      device: NIC_DEVICES[n.model]!,
      mac: n.mac?.toLowerCase() ?? await vmMac(config.name, i),
      bridge: n.bridge ?? null,
      interface: n.interface ?? null,
      forwards: n.forwards.map((f) => ({
        protocol: f.protocol,
        address: f.address,
        host: f.host,
        guest: f.guest,
      })),
    });
  }
  return nics;
}

/** The VM side of passthrough: each device with its whole IOMMU group (bridges excepted). */
export function configureVfio(config: VmConfig, host: EnvironmentData, source: Source) {
  const force = config.passthrough_force;
  const usb = config.usb.map((u) => {
    const [vendor, product] = u.toLowerCase().split(":") as [string, string];
    return { vendor, product };
  });
  const wanted = config.passthrough.map((a) => a.length === 7 ? `0000:${a}` : a);
  const passthrough: VmDefinition["passthrough"] = [];
  for (const [i, address] of wanted.entries()) {
    const device = host.pci.find((d) => d.address === address);
    if (!device) {
      throw configError(
        source,
        ["passthrough", i],
        `Cannot pass through "${address}": no such PCI device on the host`,
        'List the host\'s devices with "gini check --iommu"',
      );
    }
    if (device.iommuGroup === null) {
      throw configError(
        source,
        ["passthrough", i],
        `Cannot pass through "${address}": it is in no IOMMU group`,
        'Enable the IOMMU (see "gini check")',
      );
    }
    const gpu = host.gpus.find((g) => g.address === address);
    if (gpu?.bootVga && !force) {
      throw configError(
        source,
        ["passthrough", i],
        `Cannot pass through "${address}": it is the boot display`,
        "Pass through another GPU, or set passthrough_force = true if you have another way in",
      );
    }
    const group = host.iommu.groups.find((g) => g.id === device.iommuGroup)!;
    for (const member of group.devices) {
      if (member.class.startsWith("0604") || member.class.startsWith("0600")) continue;
      if (!wanted.includes(member.address)) {
        throw configError(
          source,
          ["passthrough", i],
          `Cannot pass through "${address}": its IOMMU group ${group.id} also holds "${member.address}" [${member.vendor}:${member.device}], which is not listed`,
          `Add "${member.address}" to passthrough, or enable ACS override`,
        );
      }
    }
    passthrough.push({
      address,
      vendor: device.vendor,
      device: device.device,
      // The card's first function carries multifunction=on when its other functions come along.
      multifunction: address.endsWith(".0") &&
        host.pci.some((d) =>
          d.address !== address && d.address.slice(0, -2) === address.slice(0, -2) &&
          wanted.includes(d.address)
        ),
    });
  }
  return { usb, passthrough };
}
