/**
 * What env-check reads from a host tree. Each gatherer is a plain function over a
 * {@linkcode TolerantReader}, so it runs the same on `/` and on a fixture root.
 *
 * @module
 */
import { posix } from "../../workers/path.ts";
import { basenameOf, type TolerantReader } from "./_reader.ts";
import { lookupPciNames } from "./_pci_ids.ts";
import type { PciDevice } from "./contracts.ts";

/** Parses `KEY=value` lines of os-release. */
export function parseOsRelease(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = line.match(/^([A-Z0-9_]+)=(.*)$/);
    if (!match) continue;
    fields[match[1]!] = match[2]!.trim().replace(/^(["'])(.*)\1$/, "$2");
  }
  return fields;
}

export async function gatherOs(r: TolerantReader) {
  const release = parseOsRelease(
    (await r.text("/etc/os-release")) ?? (await r.text("/usr/lib/os-release", true)) ?? "",
  );
  return {
    id: release.ID ?? "unknown",
    idLike: (release.ID_LIKE ?? "").split(/\s+/).filter(Boolean),
    name: release.NAME ?? "unknown",
    version: release.VERSION_ID ?? "",
    prettyName: release.PRETTY_NAME ?? release.NAME ?? "unknown",
    kernel: (await r.attr("/proc/sys/kernel/osrelease")) ?? "unknown",
    cmdline: (await r.attr("/proc/cmdline")) ?? "",
  };
}

const YES = new Set(["Y", "y", "1"]);

/** Parses /proc/cpuinfo into vendor, model, topology and flags. */
export function parseCpuinfo(text: string) {
  const blocks = text.split(/\n\s*\n/).filter((b) => /^processor\s*:/m.test(b));
  const field = (block: string, name: string) =>
    block.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, "m"))?.[1]?.trim();
  const first = blocks[0] ?? "";
  const vendorId = field(first, "vendor_id") ?? "";
  const packages = new Set(blocks.map((b) => field(b, "physical id") ?? "0"));
  const cores = new Set(
    blocks.map((b) =>
      `${field(b, "physical id") ?? "0"}:${field(b, "core id") ?? field(b, "processor")}`
    ),
  );
  return {
    vendor: vendorId === "GenuineIntel"
      ? "intel" as const
      : vendorId === "AuthenticAMD"
      ? "amd" as const
      : vendorId
      ? "other" as const
      : "unknown" as const,
    vendorId,
    model: field(first, "model name") ?? "unknown",
    sockets: blocks.length ? packages.size : 0,
    cores: blocks.length ? cores.size : 0,
    threads: blocks.length,
    flags: (field(first, "flags") ?? "").split(/\s+/).filter(Boolean).sort(),
  };
}

export async function gatherCpu(r: TolerantReader) {
  const cpuinfo = await r.text("/proc/cpuinfo", true);
  const cpu = parseCpuinfo(cpuinfo ?? "");
  if (cpuinfo !== undefined && cpu.threads === 0) {
    r.warnings.push('Cannot parse "/proc/cpuinfo": no processor entries');
  } else if (cpuinfo !== undefined && cpu.flags.length === 0) {
    r.warnings.push('Cannot find CPU flags in "/proc/cpuinfo": the file looks truncated');
  }
  const kvmNode = await r.stat("/dev/kvm");
  const modules = new Set(
    ((await r.text("/proc/modules")) ?? "").split("\n").map((l) => l.split(" ")[0]!).filter(
      Boolean,
    ),
  );
  const hardware = cpu.flags.includes("vmx") ? "vmx" : cpu.flags.includes("svm") ? "svm" : null;
  const module = modules.has("kvm_intel") ? "kvm_intel" : modules.has("kvm_amd") ? "kvm_amd" : null;
  const param = async (path: string) => {
    const value = await r.attr(path);
    return value === undefined ? null : YES.has(value);
  };
  const nested = module ? await param(`/sys/module/${module}/parameters/nested`) : null;
  const ignoreMsrs = await param("/sys/module/kvm/parameters/ignore_msrs");
  const uid = await userId(r);
  const present = kvmNode !== undefined;
  const accessible = present && (uid === 0 || ((kvmNode.mode ?? 0) & 0o006) === 0o006);
  const usable = present && accessible && hardware !== null;
  const reason = !present
    ? "/dev/kvm does not exist"
    : hardware === null
    ? "/dev/kvm exists but the CPU reports neither vmx nor svm (virtualisation is off in firmware, or this is a VM without nested virtualisation)"
    : !accessible
    ? "/dev/kvm exists but this user cannot open it"
    : `hardware virtualisation (${hardware}) available`;
  return {
    cpu,
    kvm: { present, accessible, usable, module, nested, ignoreMsrs, reason },
    accel: usable ? "kvm" as const : "tcg" as const,
  };
}

/**
 * The user Gini runs as. On this host it is the process's own (the kernel serves no
 * /proc/self); a fixture tree under --host-root says it in its proc/self/status.
 */
async function userId(r: TolerantReader): Promise<number> {
  if (r.host.root === "/") return Deno.uid() ?? NaN;
  const status = (await r.text("/proc/self/status")) ?? "";
  return Number(status.match(/^Uid:\s+(\d+)/m)?.[1] ?? NaN);
}

/** Parses /proc/meminfo values in bytes. */
export function parseMeminfo(text: string): Record<string, number> {
  const values: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = line.match(/^(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?$/);
    if (match) values[match[1]!] = Number(match[2]) * (line.endsWith("kB") ? 1024 : 1);
  }
  return values;
}

export async function gatherMemory(r: TolerantReader) {
  const meminfo = parseMeminfo((await r.text("/proc/meminfo", true)) ?? "");
  const hugepages = [];
  for (const name of await r.dir("/sys/kernel/mm/hugepages")) {
    const size = name.match(/^hugepages-(\d+)kB$/);
    if (!size) continue;
    const total = Number(await r.attr(`/sys/kernel/mm/hugepages/${name}/nr_hugepages`));
    const free = Number(await r.attr(`/sys/kernel/mm/hugepages/${name}/free_hugepages`));
    hugepages.push({
      sizeBytes: Number(size[1]) * 1024,
      total: Number.isFinite(total) ? total : 0,
      free: Number.isFinite(free) ? free : 0,
    });
  }
  hugepages.sort((a, b) => a.sizeBytes - b.sizeBytes);
  const thp = (await r.attr("/sys/kernel/mm/transparent_hugepage/enabled"))?.match(/\[(\w+)\]/)
    ?.[1];
  return {
    memory: {
      totalBytes: meminfo.MemTotal ?? 0,
      availableBytes: meminfo.MemAvailable ?? meminfo.MemFree ?? 0,
    },
    hugepages,
    transparentHugepages: (["always", "madvise", "never"] as const).find((m) => m === thp) ??
      "unknown" as const,
  };
}

const GPU_CLASSES = new Set(["0300", "0302", "0380"]);

/** The fields of a PCI device's uevent file, as 0x-prefixed hex like the attribute files. */
export function parseUevent(text: string | undefined) {
  if (!text) return undefined;
  const fields: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) fields[line.slice(0, at)] = line.slice(at + 1);
  }
  const id = fields.PCI_ID?.match(/^([0-9A-Fa-f]{4}):([0-9A-Fa-f]{4})$/);
  const subsys = fields.PCI_SUBSYS_ID?.match(/^([0-9A-Fa-f]{4}):([0-9A-Fa-f]{4})$/);
  if (!fields.PCI_CLASS || !/^[0-9A-Fa-f]{1,6}$/.test(fields.PCI_CLASS) || !id) return undefined;
  return {
    class: `0x${fields.PCI_CLASS.toLowerCase().padStart(6, "0")}`,
    vendor: `0x${id[1]!.toLowerCase()}`,
    device: `0x${id[2]!.toLowerCase()}`,
    subsystemVendor: subsys ? `0x${subsys[1]!.toLowerCase()}` : undefined,
    subsystemDevice: subsys ? `0x${subsys[2]!.toLowerCase()}` : undefined,
    driver: fields.DRIVER,
  };
}
const PCI_IDS_PATHS = [
  "/usr/share/misc/pci.ids",
  "/usr/share/hwdata/pci.ids",
  "/usr/share/pci.ids",
];

function hexId(value: string | undefined, digits: number): string | null {
  const match = value?.match(/^0x([0-9a-fA-F]+)$/);
  return match ? match[1]!.toLowerCase().padStart(digits, "0").slice(-digits) : null;
}

/** One PCI device's attributes; null, with a warning, when they are missing or malformed. */
async function readPciDevice(r: TolerantReader, address: string): Promise<PciDevice | null> {
  // Read through the device's real directory: one symlink resolved instead of one per attribute.
  const target = await r.link(`/sys/bus/pci/devices/${address}`);
  const base = target
    ? posix.normalize(posix.join("/sys/bus/pci/devices", target))
    : `/sys/bus/pci/devices/${address}`;
  // uevent carries class, IDs, subsystem and driver in one read; older trees fall back to attributes.
  const uevent = parseUevent(await r.text(`${base}/uevent`));
  const [revision, groupLink] = await Promise.all([
    r.attr(`${base}/revision`),
    r.link(`${base}/iommu_group`),
  ]);
  const fromAttrs = uevent ? undefined : await Promise.all([
    r.attr(`${base}/class`),
    r.attr(`${base}/vendor`),
    r.attr(`${base}/device`),
    r.attr(`${base}/subsystem_vendor`),
    r.attr(`${base}/subsystem_device`),
    r.link(`${base}/driver`),
  ]);
  const [classRaw, vendorRaw, deviceRaw, subVendorRaw, subDeviceRaw] = uevent
    ? [uevent.class, uevent.vendor, uevent.device, uevent.subsystemVendor, uevent.subsystemDevice]
    : fromAttrs!;
  const driverLink = uevent
    ? (uevent.driver ? `drivers/${uevent.driver}` : undefined)
    : fromAttrs![5];
  const bootVga = classRaw?.startsWith("0x0300") ? await r.attr(`${base}/boot_vga`) : undefined;
  const classCode = hexId(classRaw, 6);
  const vendor = hexId(vendorRaw, 4);
  const device = hexId(deviceRaw, 4);
  if (!classCode || !vendor || !device) {
    r.warnings.push(
      `Cannot read PCI device "${address}": its class, vendor or device attribute is missing or malformed`,
    );
    return null;
  }
  const group = Number(basenameOf(groupLink));
  return {
    address,
    class: classCode.slice(0, 4),
    progIf: classCode.slice(4),
    vendor,
    device,
    subsystemVendor: hexId(subVendorRaw, 4),
    subsystemDevice: hexId(subDeviceRaw, 4),
    revision: hexId(revision, 2),
    driver: basenameOf(driverLink),
    iommuGroup: groupLink !== undefined && Number.isInteger(group) ? group : null,
    bootVga: bootVga === undefined ? null : bootVga === "1",
    className: null,
    vendorName: null,
    deviceName: null,
  };
}

/** Fills in the class, vendor and device names from the first pci.ids found. */
async function nameDevices(r: TolerantReader, devices: PciDevice[]): Promise<void> {
  const wanted = new Set(devices.flatMap((d) => [d.vendor, `${d.vendor}:${d.device}`]));
  for (const path of PCI_IDS_PATHS) {
    const text = devices.length ? await r.text(path) : undefined;
    if (text === undefined) continue;
    const names = lookupPciNames(text, wanted);
    for (const d of devices) {
      d.className = names.classes.get(d.class) ?? names.classes.get(d.class.slice(0, 2)) ?? null;
      d.vendorName = names.vendors.get(d.vendor) ?? null;
      d.deviceName = names.devices.get(`${d.vendor}:${d.device}`) ?? null;
    }
    break;
  }
}

/** The display controllers, each with the other functions of its slot. */
function gpusOf(devices: PciDevice[]) {
  const slot = (address: string) => address.slice(0, -2);
  return devices.filter((d) => GPU_CLASSES.has(d.class)).map((d) => ({
    address: d.address,
    vendor: d.vendor,
    device: d.device,
    class: d.class,
    bootVga: d.bootVga ?? false,
    driver: d.driver,
    iommuGroup: d.iommuGroup,
    name: [d.vendorName, d.deviceName].filter(Boolean).join(" ") || `${d.vendor}:${d.device}`,
    companions: devices.filter((o) =>
      o.address !== d.address && slot(o.address) === slot(d.address)
    ).map((o) => o.address),
  }));
}

/** The host's PCI devices, named from pci.ids, and its GPUs. */
export async function gatherPci(r: TolerantReader) {
  const devices: PciDevice[] = [];
  for (const address of await r.dir("/sys/bus/pci/devices")) {
    if (!/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(address)) continue;
    const device = await readPciDevice(r, address);
    if (device) devices.push(device);
  }
  await nameDevices(r, devices);
  return { devices, gpus: gpusOf(devices) };
}

const IOMMU_FLAGS =
  /^(intel_iommu|amd_iommu|iommu|vfio-pci\.ids|vfio_iommu_type1\.allow_unsafe_interrupts|pcie_acs_override)(=|$)/;

export async function gatherIommu(r: TolerantReader, devices: PciDevice[], cmdline: string) {
  const acpiTable = (await r.exists("/sys/firmware/acpi/tables/DMAR"))
    ? "DMAR" as const
    : (await r.exists("/sys/firmware/acpi/tables/IVRS"))
    ? "IVRS" as const
    : null;
  const units = await r.dir("/sys/class/iommu");
  const byAddress = new Map(devices.map((d) => [d.address, d]));
  const groups = [];
  for (const name of await r.dir("/sys/kernel/iommu_groups")) {
    const id = Number(name);
    if (!Number.isInteger(id)) continue;
    const members = [];
    for (const address of await r.dir(`/sys/kernel/iommu_groups/${name}/devices`)) {
      const d = byAddress.get(address);
      if (!d) {
        r.warnings.push(`IOMMU group ${id} lists "${address}", which is not among the PCI devices`);
        continue;
      }
      members.push({
        address,
        vendor: d.vendor,
        device: d.device,
        class: d.class,
        driver: d.driver,
      });
    }
    groups.push({ id, devices: members });
  }
  groups.sort((a, b) => a.id - b.id);
  const interrupts = (await r.text("/proc/interrupts")) ?? "";
  return {
    enabled: groups.length > 0,
    acpiTable,
    units,
    cmdline: cmdline.split(/\s+/).filter((arg) => IOMMU_FLAGS.test(arg)),
    interruptRemapping: interrupts ? /\bIR-(PCI|IO-APIC)/.test(interrupts) : null,
    groups,
  };
}

const WATCHED_MODULES = [
  "kvm",
  "kvm_intel",
  "kvm_amd",
  "vfio",
  "vfio_pci",
  "vfio_iommu_type1",
  "vhost_net",
  "tun",
];

/** Where distributions put OVMF, with the matching vars template. */
export const OVMF_CANDIDATES: { code: string; vars: string; secureBoot: boolean }[] = [
  {
    code: "/usr/share/OVMF/OVMF_CODE_4M.fd",
    vars: "/usr/share/OVMF/OVMF_VARS_4M.fd",
    secureBoot: false,
  },
  {
    code: "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
    vars: "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
    secureBoot: true,
  },
  { code: "/usr/share/OVMF/OVMF_CODE.fd", vars: "/usr/share/OVMF/OVMF_VARS.fd", secureBoot: false },
  {
    code: "/usr/share/OVMF/OVMF_CODE.secboot.fd",
    vars: "/usr/share/OVMF/OVMF_VARS.ms.fd",
    secureBoot: true,
  },
  {
    code: "/usr/share/edk2/ovmf/OVMF_CODE.fd",
    vars: "/usr/share/edk2/ovmf/OVMF_VARS.fd",
    secureBoot: false,
  },
  {
    code: "/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd",
    vars: "/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd",
    secureBoot: true,
  },
  {
    code: "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
    vars: "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
    secureBoot: false,
  },
  {
    code: "/usr/share/edk2/x64/OVMF_CODE.secboot.4m.fd",
    vars: "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
    secureBoot: true,
  },
  {
    code: "/usr/share/edk2-ovmf/x64/OVMF_CODE.fd",
    vars: "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd",
    secureBoot: false,
  },
  {
    code: "/usr/share/qemu/ovmf-x86_64-code.bin",
    vars: "/usr/share/qemu/ovmf-x86_64-vars.bin",
    secureBoot: false,
  },
];

export async function gatherHostFiles(r: TolerantReader) {
  const loaded = new Set(
    ((await r.text("/proc/modules")) ?? "").split("\n").map((l) => l.split(" ")[0]!),
  );
  const builtin = new Set(
    ((await r.text(
      `/lib/modules/${(await r.attr("/proc/sys/kernel/osrelease")) ?? ""}/modules.builtin`,
    )) ?? "")
      .split("\n").map((l) => l.split("/").at(-1)!.replace(/\.ko$/, "").replaceAll("-", "_")),
  );
  const modules = Object.fromEntries(
    WATCHED_MODULES.map((m) => [m, loaded.has(m) || builtin.has(m)]),
  );
  const ovmf = [];
  for (const c of OVMF_CANDIDATES) {
    if (await r.exists(c.code)) {
      ovmf.push({
        code: c.code,
        vars: (await r.exists(c.vars)) ? c.vars : null,
        secureBoot: c.secureBoot,
      });
    }
  }
  const interfaces = [];
  for (const name of await r.dir("/sys/class/net")) {
    interfaces.push({
      name,
      bridge: await r.exists(`/sys/class/net/${name}/bridge`),
      mac: (await r.attr(`/sys/class/net/${name}/address`)) ?? null,
    });
  }
  return {
    modules,
    devices: {
      kvm: await r.exists("/dev/kvm"),
      vhostNet: await r.exists("/dev/vhost-net"),
      tun: await r.exists("/dev/net/tun"),
    },
    firmware: { ovmf },
    network: { interfaces },
  };
}

/** The first line of a program's version output, reduced to its version when one is found. */
export function parseVersion(output: string): string {
  const first = output.split("\n").find((l) => l.trim()) ?? "";
  return first.match(/(\d+\.\d+(?:\.\d+)?(?:[-+~][\w.+~-]+)?)/)?.[1] ?? first.trim();
}
