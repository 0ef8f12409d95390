/**
 * `qemu.attach` and `qemu.detach`: plug a disk, a user-network NIC or a host USB device into a
 * running VM, or unplug it, through QMP. One op carries the whole device, so each is the other's inverse and either
 * runs to its end or leaves the VM as it was: an attach whose `device_add` fails deletes the
 * block nodes it added; a detach asks the guest to release the device (`device_del`), waits until
 * QEMU has removed it, then deletes its nodes or its netdev.
 *
 * Unlike a bare `qmp` op, the image a disk's nodes open is an argument of its own (`path`),
 * which the broker checks against the plugin's grants; the nodes may open no other file, and a
 * NIC is QEMU's user network with port forwards only (no `guestfwd`, `smb` or `tftp`, which run
 * programs or share host folders); a host USB device (`usb-host`, with the `qemu-xhci` it needs
 * when the VM has none) is for plugins shipped with Gini only.
 *
 * @module
 */
import { z } from "zod";
import { ConflictError } from "../errors.ts";
import { qmpCommand } from "../host/qmp.ts";
import { argvCheckNeed } from "./broker.ts";
import { HEADERS_UNCHECKED } from "./argv.ts";
import { defineOp, type PermissionNeed } from "./types.ts";
import type { Json, OpRequest } from "../../workers/protocol.ts";

const ID = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/, 'expected a QEMU id like "data"');
const WORD = z.string().regex(/^[\w.:-]+$/, "expected a word without commas or spaces");
const BOOL = z.boolean();

/** A disk's protocol node: the image file it opens is `path`. */
const FileNode = z.strictObject({
  driver: z.enum(["file", "host_device"]),
  "node-name": ID,
  filename: z.string().min(1),
  aio: z.enum(["threads", "native", "io_uring"]).optional(),
  cache: z.strictObject({ direct: BOOL.optional(), "no-flush": BOOL.optional() }).optional(),
  discard: z.enum(["ignore", "unmap"]).optional(),
  "read-only": BOOL.optional(),
});

/** A disk's format node, over the protocol node (no backing file of its own choosing). */
const FormatNode = z.strictObject({
  driver: z.enum(["qcow2", "raw"]),
  "node-name": ID,
  file: ID,
  cache: z.strictObject({ direct: BOOL.optional(), "no-flush": BOOL.optional() }).optional(),
  discard: z.enum(["ignore", "unmap"]).optional(),
  "read-only": BOOL.optional(),
});

/** The guest-side device (`device_add`): a virtio disk or NIC on a port, or a host USB device. */
const Device = z.strictObject({
  driver: z.enum([
    "virtio-blk-pci",
    "virtio-net-pci",
    "e1000e",
    "e1000",
    "rtl8139",
    "vmxnet3",
    "usb-host",
  ]),
  id: ID,
  drive: ID.optional(),
  netdev: ID.optional(),
  mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i).optional(),
  bus: WORD.optional(),
  vendorid: z.number().int().min(0).max(0xffff).optional(),
  productid: z.number().int().min(0).max(0xffff).optional(),
});

/** The USB controller a host USB device needs, added first when the VM has none. */
const Controller = z.strictObject({
  driver: z.literal("qemu-xhci"),
  id: z.literal("xhci"),
  bus: WORD.optional(),
});

/** QEMU's user network, with host port forwards ("tcp:127.0.0.1:8080-:80") only. */
const Netdev = z.strictObject({
  type: z.literal("user"),
  id: ID,
  hostfwd: z.array(
    z.strictObject({ str: z.string().regex(/^(tcp|udp):[0-9.]*:\d{1,5}-:\d{1,5}$/) }),
  ).optional(),
});

const HotplugArgs = z.strictObject({
  /** The VM's name, for messages. */
  name: z.string().min(1),
  socket: z.string().min(1),
  /** The device's id (its nodes' and netdev's too). */
  id: ID,
  device: Device,
  /** A disk: the image its protocol node opens, and its two nodes (protocol, then format). */
  path: z.string().min(1).optional(),
  blockdevs: z.tuple([FileNode, FormatNode]).optional(),
  /** A NIC: its user network. */
  netdev: Netdev.optional(),
  /** A host USB device: the controller to add first if the VM has none. */
  controller: Controller.optional(),
  /** How long a detach waits for the guest to release the device. */
  timeoutMs: z.number().int().positive().max(600_000).optional(),
  /** Succeed when the VM is not running (used when undoing: its definition is undone apart). */
  ifRunning: z.boolean().optional(),
}).superRefine((a, ctx) => {
  const issue = (message: string, path: string[]) =>
    ctx.addIssue({ code: "custom", message, path });
  const usb = a.device.driver === "usb-host";
  if ([a.blockdevs, a.netdev, usb || undefined].filter((x) => x !== undefined).length !== 1) {
    issue("expected exactly one of blockdevs (a disk), netdev (a NIC) or a usb-host", ["device"]);
  }
  if (usb !== (a.device.vendorid !== undefined && a.device.productid !== undefined)) {
    issue("expected vendorid and productid with a usb-host, and only with it", ["device"]);
  }
  if (usb && a.device.bus !== "xhci.0") issue('expected a usb-host on "xhci.0"', ["device", "bus"]);
  if (a.controller && !usb) issue("expected a controller only for a usb-host", ["controller"]);
  if (a.device.id !== a.id) issue(`expected the device's id to be "${a.id}"`, ["device", "id"]);
  if (a.blockdevs) {
    const [file, format] = a.blockdevs;
    if (a.path === undefined || file.filename !== a.path) {
      issue("expected the protocol node to open path", ["blockdevs", "0", "filename"]);
    }
    if (format.file !== file["node-name"] || format["node-name"] !== a.id) {
      issue(`expected the format node "${a.id}" over the protocol node`, ["blockdevs", "1"]);
    }
    if (a.device.driver !== "virtio-blk-pci" || a.device.drive !== a.id) {
      issue(`expected a virtio-blk-pci device on drive "${a.id}"`, ["device"]);
    }
  }
  if (a.netdev) {
    if (a.netdev.id !== a.id || a.device.netdev !== a.id || a.device.driver === "virtio-blk-pci") {
      issue(`expected a NIC device on netdev "${a.id}"`, ["device"]);
    }
  }
});
type HotplugArgs = z.infer<typeof HotplugArgs>;

const qmp = (a: HotplugArgs, command: string, args?: Record<string, unknown>) =>
  qmpCommand(a.socket, command, args, 30_000);

const gone = (error: unknown) =>
  error instanceof Deno.errors.NotFound || error instanceof Deno.errors.ConnectionRefused;

/** The ids of the devices added with an id (`-device …,id=` and `device_add`). */
async function deviceIds(a: HotplugArgs): Promise<string[]> {
  const list = await qmp(a, "qom-list", { path: "/machine/peripheral" }) as { name: string }[];
  return list.filter((p) => p.name !== "type").map((p) => p.name);
}

/** What the broker checks: the QMP socket, and the image a disk opens (written unless read-only). */
function needs(a: HotplugArgs): PermissionNeed[] {
  const out: PermissionNeed[] = [{ grant: "write", path: a.socket }];
  // Handing a host's USB device to a guest is for plugins shipped with Gini.
  if (a.device.driver === "usb-host") {
    out.push(argvCheckNeed({
      program: "qemu-system-x86_64",
      unchecked: "it hands a device of the host (usb-host) to the guest",
    }));
  }
  if (a.path && a.blockdevs) {
    out.push({ grant: a.blockdevs[1]["read-only"] ? "read" : "write", path: a.path });
    // A qcow2 header may name a backing file QEMU then opens: as image.create, core plugins only.
    if (a.blockdevs[1].driver !== "raw") {
      out.push(argvCheckNeed({ program: "qemu-system-x86_64", unchecked: HEADERS_UNCHECKED }));
    }
  }
  return out;
}

const hex = (n: number | undefined) => (n ?? 0).toString(16).padStart(4, "0");
const what = (a: HotplugArgs) =>
  a.blockdevs
    ? `disk "${a.id}" (${a.path})`
    : a.netdev
    ? `NIC "${a.id}" (user network)`
    : `USB device "${a.id}" (${hex(a.device.vendorid)}:${hex(a.device.productid)})`;
const where = (a: HotplugArgs) => a.device.bus ? ` on "${a.device.bus}"` : "";

/** Whether the VM's monitor answers; the device ids when it does. */
async function live(a: HotplugArgs): Promise<string[] | null> {
  try {
    return await deviceIds(a);
  } catch (error) {
    if (gone(error)) return null;
    throw error;
  }
}

/** Deletes block nodes or a netdev that may not be there (an undo may run twice). */
async function release(a: HotplugArgs): Promise<void> {
  const quiet = async (command: string, args: Record<string, unknown>) => {
    try {
      await qmp(a, command, args);
    } catch (error) {
      if (!/not found|Cannot find|Failed to find|DeviceNotFound/i.test(String(error))) throw error;
    }
  };
  if (a.blockdevs) {
    await quiet("blockdev-del", { "node-name": a.blockdevs[1]["node-name"] });
    await quiet("blockdev-del", { "node-name": a.blockdevs[0]["node-name"] });
  }
  if (a.netdev) await quiet("netdev_del", { id: a.netdev.id });
}

async function attach(a: HotplugArgs): Promise<Json> {
  const ids = await live(a);
  if (ids === null) {
    if (a.ifRunning) return { notRunning: true };
    throw new ConflictError(`Cannot attach ${what(a)} to VM "${a.name}": it is not running`, {
      hint: `Start it (gini start ${a.name}), or attach to the stopped VM: its definition changes`,
    });
  }
  if (ids.includes(a.id)) {
    if (a.ifRunning) return { id: a.id, unchanged: true };
    throw new ConflictError(
      `Cannot attach ${what(a)} to VM "${a.name}": it has a device "${a.id}"`,
      {
        hint: "Choose another id with --id",
      },
    );
  }
  // A controller added for the device stays (removing one needs the guest): it is not the device.
  if (a.controller && !ids.includes(a.controller.id)) await qmp(a, "device_add", a.controller);
  try {
    if (a.blockdevs) { for (const node of a.blockdevs) await qmp(a, "blockdev-add", node); }
    if (a.netdev) await qmp(a, "netdev_add", a.netdev);
    await qmp(a, "device_add", a.device);
  } catch (error) {
    // The nodes or netdev added before the failure go again: the VM is as it was.
    await release(a).catch(() => {});
    throw error;
  }
  return { id: a.id, bus: a.device.bus ?? null };
}

async function detach(a: HotplugArgs, signal?: AbortSignal): Promise<Json> {
  const ids = await live(a);
  if (ids === null) {
    if (a.ifRunning) return { notRunning: true };
    throw new ConflictError(`Cannot detach ${what(a)} from VM "${a.name}": it is not running`, {
      hint: "A stopped VM's devices change with its definition",
    });
  }
  if (ids.includes(a.id)) {
    await qmp(a, "device_del", { id: a.id });
    // The guest is asked to let go (the PCIe attention button) and QEMU removes the device when
    // it has: DEVICE_DELETED, seen here as the id leaving /machine/peripheral.
    const timeoutMs = a.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    while ((await deviceIds(a)).includes(a.id)) {
      signal?.throwIfAborted();
      if (Date.now() > deadline) {
        throw new ConflictError(
          `Cannot detach ${what(a)} from VM "${a.name}": the guest did not release it within ${
            timeoutMs / 1000
          } s`,
          {
            hint:
              "The guest's OS must handle PCIe hotplug (Linux: pciehp); try again once it has booted, or stop the VM and detach it then",
          },
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  await release(a);
  return { id: a.id };
}

const undoWith = (kind: string, a: HotplugArgs): OpRequest[] => [{
  kind,
  args: { ...a, ifRunning: true } as unknown as Json,
}];

export const qemuAttach = defineOp<HotplugArgs>({
  kind: "qemu.attach",
  schema: HotplugArgs as z.ZodType<HotplugArgs>,
  pathArgs: ["socket", "path"],
  describe: (a) => `Plug ${what(a)} into running VM "${a.name}"${where(a)}`,
  estimate: () => ({ bytes: 0, seconds: 0.5 }),
  permission: needs,
  capture: () => Promise.resolve(null),
  conflicts: () => [],
  execute: (a) => attach(a),
  simulate: (a) => ({ id: a.id, bus: a.device.bus ?? null, simulated: true }),
  inverse: (a) => undoWith("qemu.detach", a),
});

export const qemuDetach = defineOp<HotplugArgs>({
  kind: "qemu.detach",
  schema: HotplugArgs as z.ZodType<HotplugArgs>,
  pathArgs: ["socket", "path"],
  describe: (a) => `Unplug ${what(a)} from running VM "${a.name}" (the guest releases it first)`,
  estimate: () => ({ bytes: 0, seconds: 5 }),
  permission: needs,
  capture: () => Promise.resolve(null),
  conflicts: () => [],
  execute: (a, env) => detach(a, env.signal),
  simulate: (a) => ({ id: a.id, simulated: true }),
  inverse: (a) => undoWith("qemu.attach", a),
});
