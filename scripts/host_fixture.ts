/**
 * Writes a host tree shaped exactly like a real `/`: `/sys/devices/pci0000:00/…`
 * device directories with their attribute files, `iommu_group` and `driver`
 * symlinks with the kernel's relative targets, `/sys/bus/pci/devices` and
 * `/sys/kernel/iommu_groups/*\/devices` links, `/proc` files and `/etc/os-release`.
 * Used by `scripts/make-host-fixtures.ts` and the benchmarks.
 *
 * @module
 */
import { dirname, join, relative } from "node:path";

/** One PCI function of a fixture host. */
export interface FixtureDevice {
  address: string;
  /** Full class code, as sysfs shows it: "0x030000". */
  class: string;
  vendor: string;
  device: string;
  subsystem?: [string, string];
  revision?: string;
  driver?: string;
  group?: number;
  /** The bridge this device sits behind (its sysfs directory nests under the bridge's). */
  parent?: string;
  bootVga?: boolean;
}

/** A fixture host. */
export interface FixtureHost {
  osRelease: Record<string, string>;
  kernel: string;
  cmdline: string;
  cpu: {
    vendorId: string;
    family: number;
    model: number;
    name: string;
    cores: number;
    threads: number;
    flags: string[];
  };
  memTotalKiB: number;
  memAvailableKiB: number;
  modules: string[];
  moduleParams?: Record<string, string>;
  hugepages?: { sizeKiB: number; total: number; free: number }[];
  thp?: "always" | "madvise" | "never";
  acpiTable?: "DMAR" | "IVRS";
  iommuUnits?: string[];
  interruptRemapping?: boolean;
  devices: FixtureDevice[];
  dev?: string[];
  net?: { name: string; bridge?: boolean; mac: string }[];
  files?: Record<string, string>;
}

async function write(root: string, path: string, content: string | Uint8Array): Promise<void> {
  const full = join(root, path);
  await Deno.mkdir(dirname(full), { recursive: true });
  if (typeof content === "string") await Deno.writeTextFile(full, content);
  else await Deno.writeFile(full, content);
}

async function link(root: string, path: string, target: string): Promise<void> {
  const full = join(root, path);
  await Deno.mkdir(dirname(full), { recursive: true });
  await Deno.symlink(relative(dirname(full), join(root, target)), full);
}

function cpuinfo(cpu: FixtureHost["cpu"]): string {
  const perCore = cpu.threads / cpu.cores;
  return Array.from({ length: cpu.threads }, (_, i) =>
    [
      `processor\t: ${i}`,
      `vendor_id\t: ${cpu.vendorId}`,
      `cpu family\t: ${cpu.family}`,
      `model\t\t: ${cpu.model}`,
      `model name\t: ${cpu.name}`,
      `stepping\t: 2`,
      `physical id\t: 0`,
      `siblings\t: ${cpu.threads}`,
      `core id\t\t: ${Math.floor(i / perCore) % cpu.cores}`,
      `cpu cores\t: ${cpu.cores}`,
      `flags\t\t: ${cpu.flags.join(" ")}`,
      "",
    ].join("\n")).join("\n");
}

/** The sysfs directory of a device: nested under its parent bridges, as the kernel lays it out. */
function devicePath(devices: Map<string, FixtureDevice>, address: string): string {
  const d = devices.get(address)!;
  const parent = d.parent
    ? devicePath(devices, d.parent)
    : `sys/devices/pci${address.slice(0, 4)}:${address.slice(5, 7)}`;
  return `${parent}/${address}`;
}

/** Writes `host` into `root`. */
export async function writeHost(root: string, host: FixtureHost): Promise<void> {
  await write(
    root,
    "etc/os-release",
    Object.entries(host.osRelease).map(([k, v]) => `${k}="${v}"`).join("\n") + "\n",
  );
  await write(root, "proc/sys/kernel/osrelease", `${host.kernel}\n`);
  await write(root, "proc/cmdline", `${host.cmdline}\n`);
  await write(root, "proc/cpuinfo", cpuinfo(host.cpu));
  await write(root, "proc/self/status", "Name:\tgini\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n");
  await write(
    root,
    "proc/meminfo",
    [
      `MemTotal:       ${host.memTotalKiB} kB`,
      `MemFree:        ${Math.floor(host.memAvailableKiB / 2)} kB`,
      `MemAvailable:   ${host.memAvailableKiB} kB`,
      `HugePages_Total:       0`,
      "",
    ].join("\n"),
  );
  await write(
    root,
    "proc/modules",
    host.modules.map((m) => `${m} 16384 0 - Live 0x0000000000000000`).join("\n") + "\n",
  );
  await write(
    root,
    "proc/interrupts",
    `           CPU0\n  0:         36   IO-APIC    2-edge      timer\n 24:          0   ${
      host.interruptRemapping ? "IR-PCI-MSI" : "PCI-MSI"
    } 327680-edge      xhci_hcd\n`,
  );
  for (const [param, value] of Object.entries(host.moduleParams ?? {})) {
    await write(root, `sys/module/${param}`, `${value}\n`);
  }
  for (const h of host.hugepages ?? []) {
    await write(
      root,
      `sys/kernel/mm/hugepages/hugepages-${h.sizeKiB}kB/nr_hugepages`,
      `${h.total}\n`,
    );
    await write(
      root,
      `sys/kernel/mm/hugepages/hugepages-${h.sizeKiB}kB/free_hugepages`,
      `${h.free}\n`,
    );
  }
  const thp = host.thp ?? "madvise";
  await write(
    root,
    "sys/kernel/mm/transparent_hugepage/enabled",
    ["always", "madvise", "never"].map((m) => m === thp ? `[${m}]` : m).join(" ") + "\n",
  );
  if (host.acpiTable) {
    await write(root, `sys/firmware/acpi/tables/${host.acpiTable}`, host.acpiTable);
  }
  for (const unit of host.iommuUnits ?? []) {
    await link(root, `sys/class/iommu/${unit}`, `sys/devices/virtual/iommu/${unit}`);
  }
  for (const unit of host.iommuUnits ?? []) {
    await write(root, `sys/devices/virtual/iommu/${unit}/uevent`, "");
  }

  const devices = new Map(host.devices.map((d) => [d.address, d]));
  for (const d of host.devices) {
    const dir = devicePath(devices, d.address);
    await write(root, `${dir}/class`, `${d.class}\n`);
    await write(root, `${dir}/vendor`, `0x${d.vendor}\n`);
    await write(root, `${dir}/device`, `0x${d.device}\n`);
    const [sv, sd] = d.subsystem ?? [d.vendor, d.device];
    await write(root, `${dir}/subsystem_vendor`, `0x${sv}\n`);
    await write(root, `${dir}/subsystem_device`, `0x${sd}\n`);
    await write(root, `${dir}/revision`, `0x${d.revision ?? "00"}\n`);
    const up = (hex: string) => hex.toUpperCase();
    await write(
      root,
      `${dir}/uevent`,
      [
        ...(d.driver ? [`DRIVER=${d.driver}`] : []),
        `PCI_CLASS=${up(d.class.slice(2).replace(/^0+/, ""))}`,
        `PCI_ID=${up(d.vendor)}:${up(d.device)}`,
        `PCI_SUBSYS_ID=${up(sv)}:${up(sd)}`,
        `PCI_SLOT_NAME=${d.address}`,
        `MODALIAS=pci:v0000${up(d.vendor)}d0000${up(d.device)}sv0000${up(sv)}sd0000${up(sd)}bc${
          up(d.class.slice(2, 4))
        }sc${up(d.class.slice(4, 6))}i${up(d.class.slice(6, 8))}`,
        "",
      ].join("\n"),
    );
    if (d.class.startsWith("0x0300")) {
      await write(root, `${dir}/boot_vga`, d.bootVga ? "1\n" : "0\n");
    }
    await link(root, `sys/bus/pci/devices/${d.address}`, dir);
    // Empty until an override is set; the kernel shows it as "(null)".
    await write(root, `${dir}/driver_override`, "(null)\n");
    if (d.driver) {
      await link(root, `${dir}/driver`, `sys/bus/pci/drivers/${d.driver}`);
      await link(root, `sys/bus/pci/drivers/${d.driver}/${d.address}`, dir);
    }
    if (d.group !== undefined) {
      await link(root, `${dir}/iommu_group`, `sys/kernel/iommu_groups/${d.group}`);
      await link(root, `sys/kernel/iommu_groups/${d.group}/devices/${d.address}`, dir);
    }
  }
  // Every driver directory has the kernel's action files; vfio-pci's exists once its module is loaded.
  const drivers = new Set(host.devices.flatMap((d) => d.driver ? [d.driver] : []));
  if (host.modules.includes("vfio_pci")) drivers.add("vfio-pci");
  for (const driver of drivers) {
    for (const action of ["bind", "unbind", "new_id", "remove_id"]) {
      await write(root, `sys/bus/pci/drivers/${driver}/${action}`, "");
    }
  }
  await write(root, "sys/bus/pci/drivers_probe", "");
  for (const node of host.dev ?? []) await write(root, `dev/${node}`, "");
  for (const n of host.net ?? []) {
    await write(root, `sys/devices/virtual/net/${n.name}/address`, `${n.mac}\n`);
    if (n.bridge) await write(root, `sys/devices/virtual/net/${n.name}/bridge/stp_state`, "0\n");
    await link(root, `sys/class/net/${n.name}`, `sys/devices/virtual/net/${n.name}`);
  }
  for (const [path, content] of Object.entries(host.files ?? {})) await write(root, path, content);
}
