/**
 * `gini attach NAME disk|nic …`, `gini detach NAME ID` and `gini forward NAME add|remove|list
 * RULE`: devices plugged into a VM and port forwards added while it runs, kept for its next start.
 *
 * A running QEMU VM changes live (the kernel's `qemu.attach`/`qemu.detach` over QMP into a spare
 * PCIe root port, `qemu.forward` through HMP's `hostfwd_add`), a libvirt VM through
 * `virsh attach-device/detach-device --live --config`, and a stopped VM only in its definition.
 * Either way the VM's saved definition (vm.json, start.sh, vm.xml) is written again, so `gini
 * start` has the change, and the change is recorded in `<vmdir>/attached.json`, from which
 * `gini up FILE` adds it to the definition the file makes (`on_pre_vm_start`), so that
 * converging to the file keeps what was attached: the VM file stays the user's, never edited.
 * Every step is an op: planned by `--dry-run`, journaled, undone in reverse when a later one fails.
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import {
  type CommandDefinition,
  type ContextKey,
  contextValue,
  type StageContext,
  type StageFn,
} from "../../workers/sdk.ts";
import type { Json } from "../../workers/protocol.ts";
import type { VmDefinition, VmDisk, VmNic } from "../qemu_setup/contracts.ts";
import {
  deviceXml,
  diskHotplug,
  hotplugPorts,
  nicHotplug,
  usbHotplug,
} from "../qemu_setup/hotplug.ts";
import { diskNodes, vmMac } from "../qemu_setup/names.ts";
import { parseSize } from "../qemu_setup/size.ts";
import { powerControl, type PowerState, record, savedDefinition, VM_COMMAND } from "./_vm.ts";
import { own } from "./_files.ts";
import { redefine, rewriteDefinition } from "./_redefine.ts";
import { type Attached, type Forward, parseRule, readAttached, sameRule } from "./_attached.ts";
import { usage } from "./_errors.ts";

/** `deploy.hotplug`: what an attach, detach or forward command did (in a dry run, would do). */
export type HotplugResult = {
  name: string;
  action: "attach" | "detach" | "forward";
  /** forward's verb (add, remove, list); attach's kind (disk, nic). */
  verb: string;
  state: PowerState;
  backend: "qemu" | "libvirt";
  /** The running VM changed too, not only its definition. */
  live: boolean;
  device: {
    kind: "disk" | "nic" | "usb";
    id: string;
    port: string | null;
    path: string | null;
    format: string | null;
    sizeBytes: number | null;
    readonly: boolean;
    mac: string | null;
    /** A host USB device's vendor:product. */
    host: string | null;
    /** Its image was made by this attach (and is kept by a detach). */
    created: boolean;
  } | null;
  forward: Forward | null;
  /** Every forward of the VM, and whether it comes from the VM file or a command. */
  forwards: (Forward & { from: "file" | "command" })[];
  warnings: string[];
};
export const HOTPLUG: ContextKey<HotplugResult> = "deploy.hotplug";

const ID = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
/** Ids QEMU's command line already uses (qemuArgv), besides the disks', NICs' and ports'. */
const FIXED_IDS = new Set([
  "agent-serial",
  "qga0",
  "qmp",
  "serial0",
  "rng0",
  "xhci",
  "ide",
  "chrtpm",
  "tpm0",
  "mem0",
  "vdagent",
  "ovmf-code",
  "ovmf-vars",
  "ovmf-vars-file",
]);

const attachedFile = (def: VmDefinition) => join(def.paths.dir, "attached.json");

/** The ids the VM's QEMU uses: a new device's may be none of them. */
function takenIds(def: VmDefinition): Set<string> {
  return new Set([
    ...FIXED_IDS,
    ...def.disks.flatMap((d) => [d.id, diskNodes(d).file]),
    ...def.nics.map((n) => n.id),
    ...def.usb.flatMap((u) => u.id ? [u.id] : []),
    ...hotplugPorts(def),
    ...Array.from({ length: 8 }, (_, i) => `sata${i}`),
  ]);
}

/** The id a command names, checked; the first free `hotdiskN`/`hotnicN` without one. */
function deviceId(
  def: VmDefinition,
  kind: "disk" | "nic" | "usb",
  given: Json | undefined,
): string {
  const taken = takenIds(def);
  if (typeof given !== "string" || given === "") {
    for (let i = 0;; i++) if (!taken.has(`hot${kind}${i}`)) return `hot${kind}${i}`;
  }
  if (!ID.test(given) || /^(disk|net)\d+$/.test(given) || given.endsWith("-file")) {
    throw usage(
      `Cannot use "${given}" as a device id (--id): expected a letter, then letters, digits, "-" and "_" (at most 32), not diskN or netN (the VM file's) nor ending in "-file"`,
      'Choose an id like "data"',
    );
  }
  if (taken.has(given)) {
    throw usage(
      `Cannot attach ${kind} "${given}" to VM "${def.name}": it has a device "${given}" already`,
      "Choose another id with --id (gini status NAME shows its disks)",
    );
  }
  return given;
}

type PciDevice = { qdev_id?: string; pci_bridge?: { devices?: PciDevice[] } };

/** The root ports a running QEMU VM has, and those of them that hold a device now. */
type LivePorts = { present: Set<string>; busy: Set<string>; ids: Set<string> };

/** The running VM's root ports (query-pci): one plugged by hand through QMP counts as busy. */
async function livePorts(ctx: StageContext, def: VmDefinition): Promise<LivePorts | null> {
  const buses = await ctx.op<{ devices?: PciDevice[] }[]>("qmp", {
    socket: def.paths.qmpSocket,
    command: "query-pci",
    timeoutMs: 10_000,
  });
  // A dry run of a change plans without asking QEMU anything it would not answer the same later.
  if (!Array.isArray(buses)) return null;
  const present = new Set<string>();
  const busy = new Set<string>();
  const ids = new Set<string>();
  for (const device of buses.flatMap((b) => b.devices ?? [])) {
    if (device.qdev_id) ids.add(device.qdev_id);
    if (!device.qdev_id || !device.pci_bridge) continue;
    present.add(device.qdev_id);
    if (device.pci_bridge.devices?.length) busy.add(device.qdev_id);
  }
  return { present, busy, ids };
}

/** The first spare port no device of the definition (nor of the running VM) sits on. */
function sparePort(def: VmDefinition, live: LivePorts | null): string {
  const ports = hotplugPorts(def);
  if (def.machine !== "q35") return ports[0]!;
  if (live && !ports.some((p) => live.present.has(p))) {
    throw usage(
      `Cannot attach a device to running VM "${def.name}": it was started without spare PCIe ports (it was made before Gini added them)`,
      `Stop it (gini stop ${def.name}) and start it again (gini up ${def.configFile} gives its definition four ports first, if it has none), then attach`,
    );
  }
  const used = new Set([
    ...(live?.busy ?? []),
    ...[...def.disks, ...def.nics].map((d) => d.hotplugPort).filter((p) => p !== undefined),
  ]);
  const free = ports.find((p) => !used.has(p) && (!live || live.present.has(p)));
  if (!free) {
    const holders = ports.map((port) =>
      `${port}: ${
        [...def.disks, ...def.nics].find((d) => d.hotplugPort === port)?.id ??
          "a device Gini did not plug"
      }`
    );
    throw usage(
      `Cannot attach a device to VM "${def.name}": no spare PCIe port is left (${
        holders.join(", ")
      })`,
      `Detach one first: gini detach ${def.name} ID`,
    );
  }
  return free;
}

/**
 * Writes the VM's definition again (vm.json, start.sh, vm.xml, each undone by restoring the old
 * file) and what was attached by command.
 */
async function persist(ctx: StageContext, def: VmDefinition, attached: Attached) {
  await rewriteDefinition(ctx, def);
  await ctx.op("fs.write", {
    path: attachedFile(def),
    content: JSON.stringify(attached, null, 2) + "\n",
    overwrite: true,
  });
}

/** `virsh attach-device` or `detach-device` of one device of `def` (live too when it runs). */
async function virshDevice(
  ctx: StageContext,
  def: VmDefinition,
  id: string,
  attach: boolean,
  running: boolean,
) {
  const file = join(def.paths.dir, `device-${id}.xml`);
  await ctx.op("fs.write", { path: file, content: deviceXml(def, id)!, overwrite: true });
  const virsh = (command: string) => [
    "virsh",
    "-c",
    def.libvirtUri,
    command,
    def.name,
    file,
    "--config",
    ...(running ? ["--live"] : []),
  ];
  await ctx.op("run", {
    argv: virsh(attach ? "attach-device" : "detach-device"),
    undo: [virsh(attach ? "detach-device" : "attach-device")],
    timeoutMs: 120_000,
  });
}

/** A disk's image: made with `--size` in the VM's folder, or an existing one (`--file`). */
async function diskImage(
  ctx: StageContext,
  def: VmDefinition,
  id: string,
  flags: Record<string, Json>,
): Promise<{ path: string; format: "qcow2" | "raw"; sizeBytes: number; create: boolean }> {
  const size = typeof flags.size === "string" ? flags.size : null;
  const file = typeof flags.file === "string" ? flags.file : null;
  if ((size === null) === (file === null)) {
    throw usage(
      `Cannot attach a disk to VM "${def.name}": give either --size (a new image) or --file (an existing one)`,
      `gini attach ${def.name} disk --size 1G, or gini attach ${def.name} disk --file PATH`,
    );
  }
  if (size !== null) {
    const bytes = parseSize(size);
    if (!bytes) {
      throw usage(
        `Cannot use "${size}" as a disk size (--size): expected a size like "512M", "8G" or "1T"`,
        "Give --size 1G",
      );
    }
    const format = flags.format === "raw" ? "raw" : "qcow2";
    const path = join(def.paths.dir, `${id}.${format === "qcow2" ? "qcow2" : "img"}`);
    if (await own.stat(path).then(() => true, () => false)) {
      throw usage(
        `Cannot make disk "${id}" of VM "${def.name}": ${path} exists (a disk detached before?)`,
        `Attach it as it is: gini attach ${def.name} disk --file ${path} --id ${id}`,
      );
    }
    await ctx.op("image.create", { path, format, sizeBytes: bytes });
    return { path, format, sizeBytes: bytes, create: true };
  }
  const info = await ctx.op<{ code: number; stdout: string; stderr?: string }>("run", {
    argv: ["qemu-img", "info", "--output=json", "-U", file!],
    allowFailure: true,
    timeoutMs: 30_000,
  });
  if (info.code !== 0) {
    throw usage(
      `Cannot attach "${file}" to VM "${def.name}" (--file): qemu-img cannot read it: ${
        (info.stderr ?? "").trim()
      }`,
      "Give the path of a qcow2 or raw disk image",
    );
  }
  const image = JSON.parse(info.stdout) as { format?: string; "virtual-size"?: number };
  if (image.format !== "qcow2" && image.format !== "raw") {
    throw usage(
      `Cannot attach "${file}" to VM "${def.name}" (--file): it is a ${image.format} image`,
      `Convert it: qemu-img convert -O qcow2 ${file} NEW.qcow2`,
    );
  }
  return {
    path: file!,
    format: image.format,
    sizeBytes: image["virtual-size"] ?? 0,
    create: false,
  };
}

/** A live QEMU VM's `qemu.attach`/`qemu.detach` arguments for a disk or NIC of `def`. */
function hotplugArgs(
  def: VmDefinition,
  device: VmDisk | VmNic,
  detachMs?: number,
): Record<string, Json> {
  const base = { name: def.name, socket: def.paths.qmpSocket, id: device.id };
  const timeout = detachMs ? { timeoutMs: detachMs } : {};
  if ("path" in device) {
    const { blockdevs, device: dev } = diskHotplug(device);
    return { ...base, path: device.path, blockdevs, device: dev, ...timeout };
  }
  const { netdev, device: dev } = nicHotplug(device);
  return { ...base, netdev, device: dev, ...timeout };
}

function describeDevice(device: VmDisk | VmNic, created: boolean): HotplugResult["device"] {
  const disk = "path" in device ? device : null;
  return {
    kind: disk ? "disk" : "nic",
    id: device.id,
    port: device.hotplugPort ?? null,
    path: disk?.path ?? null,
    format: disk?.format ?? null,
    sizeBytes: disk?.sizeBytes ?? null,
    readonly: disk?.readonly ?? false,
    mac: disk ? null : (device as VmNic).mac,
    host: null,
    created,
  };
}

/** Every forward of the VM, and where it comes from. */
function allForwards(def: VmDefinition, attached: Attached): HotplugResult["forwards"] {
  return def.nics.flatMap((nic) =>
    nic.forwards.map((f) => ({
      nic: nic.id,
      ...f,
      from: attached.nics.some((n) => n.id === nic.id) ||
          attached.forwards.added.some((a) => a.nic === nic.id && sameRule(a, f))
        ? "command" as const
        : "file" as const,
    }))
  );
}

async function attach(
  ctx: StageContext,
  def: VmDefinition,
  state: PowerState,
  kind: string,
  flags: Record<string, Json>,
): Promise<HotplugResult> {
  if (kind === "usb") return await attachUsb(ctx, def, state, flags);
  if (kind !== "disk" && kind !== "nic") {
    throw usage(
      `Cannot attach "${kind}" to VM "${def.name}": Gini attaches a disk, a nic or a usb device`,
      `gini attach ${def.name} disk --size 1G, gini attach ${def.name} nic, or gini attach ${def.name} usb --host VENDOR:PRODUCT`,
    );
  }
  const running = state !== "stopped";
  const id = deviceId(def, kind, flags.id);
  const live = running && def.backend === "qemu" ? await livePorts(ctx, def) : null;
  const port = sparePort(def, live);
  const attached = await readAttached(def.paths.dir);
  const warnings: string[] = [];
  let device: VmDisk | VmNic;
  let next: VmDefinition;
  let created = false;
  if (kind === "disk") {
    const image = await diskImage(ctx, def, id, flags);
    created = image.create;
    device = {
      id,
      name: id,
      backend: "file",
      path: image.path,
      format: image.format,
      sizeBytes: image.sizeBytes,
      bus: "virtio",
      backing: null,
      create: image.create,
      volumeGroup: null,
      logicalVolume: null,
      bootIndex: null,
      readonly: flags.readonly === true,
      cdrom: false,
      hotplugPort: port,
    };
    if (!image.path.startsWith(`${def.paths.dir}/`)) {
      warnings.push(
        `"${image.path}" is outside the VM's folder: it stays attached until the next gini up ${def.configFile}, which keeps only the disks the VM file names outside it; add [[disks]] path = "${image.path}" to the file to keep it there`,
      );
    }
    attached.disks.push(device);
    next = redefine(def, { disks: [...def.disks, device] });
  } else {
    device = {
      id,
      type: "user",
      model: "virtio",
      device: "virtio-net-pci",
      mac: await vmMac(def.name, 1000 + def.nics.length + attached.nics.length),
      bridge: null,
      interface: null,
      forwards: [],
      hotplugPort: port,
    };
    attached.nics.push(device);
    next = redefine(def, { nics: [...def.nics, device] });
  }
  if (def.backend === "libvirt") await virshDevice(ctx, next, id, true, running);
  else if (running) await ctx.op("qemu.attach", hotplugArgs(next, device));
  await persist(ctx, next, attached);
  await record(ctx, def, "attached", {
    kind,
    id,
    port,
    live: running,
    ...("path" in device ? { path: device.path, created } : { mac: device.mac }),
  });
  return {
    name: def.name,
    action: "attach",
    verb: kind,
    state,
    backend: def.backend,
    live: running,
    device: describeDevice(device, created),
    forward: null,
    forwards: allForwards(next, attached),
    warnings,
  };
}

type Usb = VmDefinition["usb"][number] & { id: string };

const HOST_USB = /^([0-9a-f]{4}):([0-9a-f]{4})$/i;

function usbResult(
  def: VmDefinition,
  action: "attach" | "detach",
  state: PowerState,
  usb: Usb,
  attached: Attached,
  next: VmDefinition,
): HotplugResult {
  return {
    name: def.name,
    action,
    verb: "usb",
    state,
    backend: def.backend,
    live: state !== "stopped",
    device: {
      kind: "usb",
      id: usb.id,
      port: null,
      path: null,
      format: null,
      sizeBytes: null,
      readonly: false,
      mac: null,
      host: `${usb.vendor}:${usb.product}`,
      created: false,
    },
    forward: null,
    forwards: allForwards(next, attached),
    warnings: [],
  };
}

/**
 * A host USB device (`--host VENDOR:PRODUCT`) on the VM's USB controller; a running VM without
 * one gets a qemu-xhci on a spare port first.
 */
async function attachUsb(
  ctx: StageContext,
  def: VmDefinition,
  state: PowerState,
  flags: Record<string, Json>,
): Promise<HotplugResult> {
  const m = typeof flags.host === "string" ? flags.host.match(HOST_USB) : null;
  if (!m) {
    throw usage(
      `Cannot attach a USB device to VM "${def.name}": expected --host VENDOR:PRODUCT, like --host 046d:c52b${
        typeof flags.host === "string" ? ` (not "${flags.host}")` : ""
      }`,
      "lsusb lists the host's devices with their IDs",
    );
  }
  const [vendor, product] = [m[1]!.toLowerCase(), m[2]!.toLowerCase()];
  if (def.usb.some((u) => u.vendor === vendor && u.product === product)) {
    throw usage(
      `Cannot attach USB device ${vendor}:${product} to VM "${def.name}": it has it already`,
      `See its devices: gini status ${def.name}`,
    );
  }
  const usb: Usb = { vendor, product, id: deviceId(def, "usb", flags.id) };
  const running = state !== "stopped";
  const attached = await readAttached(def.paths.dir);
  attached.usb.push(usb);
  const next = redefine(def, { usb: [...def.usb, usb] });
  if (def.backend === "libvirt") await virshDevice(ctx, next, usb.id, true, running);
  else if (running) {
    const live = await livePorts(ctx, def);
    const controllerPort = !live || live.ids.has("xhci") ? null : sparePort(def, live);
    const { controller, device } = usbHotplug(usb, controllerPort);
    await ctx.op("qemu.attach", {
      name: def.name,
      socket: def.paths.qmpSocket,
      id: usb.id,
      device,
      ...(controller ? { controller } : {}),
    });
  }
  await persist(ctx, next, attached);
  await record(ctx, def, "attached", {
    kind: "usb",
    id: usb.id,
    host: `${vendor}:${product}`,
    live: running,
  });
  return usbResult(def, "attach", state, usb, attached, next);
}

async function detachUsb(
  ctx: StageContext,
  def: VmDefinition,
  state: PowerState,
  id: string,
  attached: Attached,
): Promise<HotplugResult> {
  const usb = def.usb.find((u) => u.id === id) as Usb | undefined;
  if (!usb) {
    throw usage(
      `Cannot detach "${id}" from VM "${def.name}": its definition has no such USB device`,
      `See its devices: gini status ${def.name}`,
    );
  }
  const running = state !== "stopped";
  if (def.backend === "libvirt") await virshDevice(ctx, def, id, false, running);
  else if (running) {
    await ctx.op("qemu.detach", {
      name: def.name,
      socket: def.paths.qmpSocket,
      id,
      device: usbHotplug(usb, null).device,
    });
  }
  const after: Attached = { ...attached, usb: attached.usb.filter((u) => u.id !== id) };
  const next = redefine(def, { usb: def.usb.filter((u) => u.id !== id) });
  await persist(ctx, next, after);
  await record(ctx, def, "detached", {
    kind: "usb",
    id,
    host: `${usb.vendor}:${usb.product}`,
    live: running,
  });
  return usbResult(def, "detach", state, usb, after, next);
}

async function detach(
  ctx: StageContext,
  def: VmDefinition,
  state: PowerState,
  id: string,
  timeoutMs: number,
): Promise<HotplugResult> {
  const running = state !== "stopped";
  const attached = await readAttached(def.paths.dir);
  if (attached.usb.some((u) => u.id === id)) {
    return await detachUsb(ctx, def, state, id, attached);
  }
  const disk = def.disks.find((d) => d.id === id);
  const nic = def.nics.find((n) => n.id === id);
  const device = disk ?? nic;
  const byCommand = [...attached.disks, ...attached.nics].map((d) => d.id).concat(
    attached.usb.map((u) => u.id!),
  );
  if (!device || !byCommand.includes(id)) {
    throw usage(
      device
        ? `Cannot detach "${id}" from VM "${def.name}": it comes from the VM file`
        : `Cannot detach "${id}" from VM "${def.name}": it has no device attached by that id`,
      device
        ? `Remove it from ${def.configFile} and run gini up ${def.configFile} with the VM stopped`
        : byCommand.length
        ? `Attached: ${byCommand.join(", ")}`
        : `Nothing was attached to it (gini attach ${def.name} disk --size 1G)`,
    );
  }
  if (state === "paused") {
    throw usage(
      `Cannot detach "${id}" from VM "${def.name}" while it is paused: its guest must release the device`,
      `Resume it first: gini resume ${def.name}`,
    );
  }
  if (def.backend === "libvirt") await virshDevice(ctx, def, id, false, running);
  else if (running) await ctx.op("qemu.detach", hotplugArgs(def, device, timeoutMs));
  const next = redefine(
    def,
    disk
      ? { disks: def.disks.filter((d) => d !== disk) }
      : { nics: def.nics.filter((n) => n !== nic) },
  );
  const after: Attached = {
    ...attached,
    disks: attached.disks.filter((d) => d.id !== id),
    nics: attached.nics.filter((n) => n.id !== id),
    forwards: {
      added: attached.forwards.added.filter((f) => f.nic !== id),
      removed: attached.forwards.removed.filter((f) => f.nic !== id),
    },
  };
  await persist(ctx, next, after);
  await record(ctx, def, "detached", {
    kind: disk ? "disk" : "nic",
    id,
    live: running,
    ...(disk ? { path: disk.path } : {}),
  });
  return {
    name: def.name,
    action: "detach",
    verb: disk ? "disk" : "nic",
    state,
    backend: def.backend,
    live: running,
    device: describeDevice(device, false),
    forward: null,
    forwards: allForwards(next, after),
    warnings: disk?.create
      ? [`Its image ${disk.path} is kept (gini rm ${def.name} removes it with the VM)`]
      : [],
  };
}

async function forward(
  ctx: StageContext,
  def: VmDefinition,
  state: PowerState,
  verb: string,
  args: Record<string, Json>,
  flags: Record<string, Json>,
): Promise<HotplugResult> {
  const attached = await readAttached(def.paths.dir);
  const result: HotplugResult = {
    name: def.name,
    action: "forward",
    verb,
    state,
    backend: def.backend,
    live: false,
    device: null,
    forward: null,
    forwards: allForwards(def, attached),
    warnings: [],
  };
  if (verb === "list") return result;
  if (verb !== "add" && verb !== "remove") {
    throw usage(
      `Cannot "${verb}" a forward of VM "${def.name}": expected add, remove or list`,
      `gini forward ${def.name} add tcp:8080:80`,
    );
  }
  const rule = parseRule(args.rule);
  const users = def.nics.filter((n) => n.type === "user");
  const nic = typeof flags.nic === "string" ? def.nics.find((n) => n.id === flags.nic) : users[0];
  if (!nic || nic.type !== "user") {
    throw usage(
      typeof flags.nic === "string"
        ? `Cannot forward to NIC "${flags.nic}" of VM "${def.name}": ${
          nic ? "it is not on a user network" : "it has no such NIC"
        }`
        : `Cannot forward a port to VM "${def.name}": it has no user-network NIC`,
      users.length
        ? `Its user-network NICs: ${users.map((n) => n.id).join(", ")} (--nic)`
        : `Attach one: gini attach ${def.name} nic`,
    );
  }
  if (def.backend === "libvirt") {
    throw usage(
      `Cannot change the forwards of libvirt VM "${def.name}" by command yet`,
      `Add it to [[network.forwards]] in ${def.configFile} and run gini up ${def.configFile} with the VM stopped`,
    );
  }
  const running = state !== "stopped";
  const full: Forward = { nic: nic.id, ...rule };
  const existing = def.nics.flatMap((n) => n.forwards.map((f) => ({ nic: n.id, ...f })))
    .find((f) => sameRule(f, rule));
  let nics: VmNic[];
  if (verb === "add") {
    if (existing) {
      throw usage(
        `Cannot forward ${rule.protocol} ${rule.address}:${rule.host} to VM "${def.name}": it forwards it already (to guest port ${existing.guest} on ${existing.nic})`,
        `Remove it first: gini forward ${def.name} remove ${rule.protocol}:${rule.host}:${existing.guest}`,
      );
    }
    nics = def.nics.map((n) => n === nic ? { ...n, forwards: [...n.forwards, rule] } : n);
  } else {
    if (!existing) {
      throw usage(
        `Cannot remove forward ${rule.protocol} ${rule.address}:${rule.host} of VM "${def.name}": it has no such forward`,
        `See its forwards: gini forward ${def.name} list`,
      );
    }
    full.nic = existing.nic;
    full.guest = existing.guest;
    nics = def.nics.map((n) =>
      n.id === existing.nic ? { ...n, forwards: n.forwards.filter((f) => !sameRule(f, rule)) } : n
    );
  }
  // A NIC attached by command carries its forwards in attached.json; a forward of a NIC of the
  // VM file is recorded as added or removed (undoing the opposite record, if there is one).
  const ours = (f: Forward) => f.nic === full.nic && sameRule(f, rule);
  if (attached.nics.some((n) => n.id === full.nic)) {
    attached.nics = attached.nics.map((n) => nics.find((m) => m.id === n.id) ?? n);
  } else {
    const [undo, keep] = verb === "add"
      ? [attached.forwards.removed, attached.forwards.added]
      : [attached.forwards.added, attached.forwards.removed];
    if (undo.some(ours)) undo.splice(undo.findIndex(ours), 1);
    else keep.push(full);
  }
  if (running) {
    await ctx.op("qemu.forward", {
      name: def.name,
      socket: def.paths.qmpSocket,
      action: verb,
      netdev: full.nic,
      protocol: full.protocol,
      address: full.address,
      host: full.host,
      guest: full.guest,
    });
  }
  const next = redefine(def, { nics });
  await persist(ctx, next, attached);
  await record(ctx, def, verb === "add" ? "forwarded" : "unforwarded", { ...full, live: running });
  return { ...result, live: running, forward: full, forwards: allForwards(next, attached) };
}

/** The hotplug stage, by stage name. */
export const hotplugStages: Record<string, StageFn> = {
  /** `gini attach NAME disk|nic`, `gini detach NAME ID`, `gini forward NAME add|remove|list`. */
  hotplug: async (ctx) => {
    const command = ctx.get(VM_COMMAND)!;
    const action = command.path as HotplugResult["action"];
    const def = await savedDefinition(ctx, command.args.name as string);
    const state = await powerControl(ctx, def).state();
    const { args, flags } = command;
    const result = action === "attach"
      ? await attach(ctx, def, state, String(args.kind), flags)
      : action === "detach"
      ? await detach(
        ctx,
        def,
        state,
        String(args.id),
        typeof flags.timeout === "number" ? flags.timeout * 1000 : 60_000,
      )
      : await forward(ctx, def, state, String(args.action), args, flags);
    for (const warning of result.warnings) ctx.ui.warn(warning);
    ctx.set(HOTPLUG, result);
  },
};

const bytes = (n: number | null) =>
  n === null
    ? ""
    : n >= 1024 ** 3
    ? `${+(n / 1024 ** 3).toFixed(1)} GiB`
    : `${Math.round(n / 1024 ** 2)} MiB`;

/** What an attach, detach or forward did, in words. */
export function renderHotplug(r: HotplugResult, dryRun: boolean): string {
  const where = r.state === "stopped"
    ? "its definition (the next start has it)"
    : r.backend === "libvirt"
    ? `the ${r.state} VM (libvirt) and its definition`
    : `the ${r.state} VM and its definition`;
  if (r.action === "forward" && r.verb === "list") {
    if (!r.forwards.length) {
      return `VM "${r.name}" forwards no ports (gini forward ${r.name} add tcp:8080:80)`;
    }
    const rows = [
      ["PROTO", "HOST", "GUEST", "NIC", "FROM"],
      ...r.forwards.map((
        f,
      ) => [f.protocol, `${f.address}:${f.host}`, String(f.guest), f.nic, f.from]),
    ];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
    return rows.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join(
      "\n",
    );
  }
  if (r.action === "forward") {
    const f = r.forward!;
    const what = `${f.protocol} ${f.address}:${f.host} → guest port ${f.guest} (${f.nic})`;
    return `VM "${r.name}": ${
      r.verb === "add"
        ? (dryRun ? "would forward" : "forwards")
        : dryRun
        ? "would stop forwarding"
        : "stopped forwarding"
    } ${what}, in ${where}`;
  }
  const d = r.device!;
  const what = d.kind === "disk"
    ? `disk "${d.id}" (${d.path}, ${d.format}${d.sizeBytes ? ` ${bytes(d.sizeBytes)}` : ""}${
      d.readonly ? ", read-only" : ""
    })`
    : d.kind === "usb"
    ? `USB device "${d.id}" (${d.host})`
    : `NIC "${d.id}" (user network, ${d.mac})`;
  const verb = r.action === "attach"
    ? dryRun ? "would attach" : "attached"
    : dryRun
    ? "would detach"
    : "detached";
  const port = r.action === "attach" && d.port ? ` on ${d.port}` : "";
  return `VM "${r.name}": ${verb} ${what}${port}, in ${where}`;
}

/** deploy's hotplug commands. */
export const hotplugCommands: Record<string, CommandDefinition> = Object.fromEntries(
  ["attach", "detach", "forward"].map((path) => [path, {
    render(view) {
      const r = contextValue(view, HOTPLUG)!;
      return { text: renderHotplug(r, view.dryRun), data: r };
    },
  }]),
);
