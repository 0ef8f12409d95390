/**
 * What deploy needs of qemu-setup to plug devices into a running VM and keep them in its
 * definition (`gini attach`, `gini detach`, `gini forward`): the spare ports, a device's QMP
 * arguments (the same options as its `-blockdev`, `-netdev` and `-device` on the command line),
 * its libvirt element, and the definition's argv and domain XML made again after a change.
 *
 * @example
 * ```ts
 * const def = { ...old, disks: [...old.disks, disk] };
 * const next = { ...def, argv: qemuArgv(def) };
 * ```
 *
 * @module
 */
import type { VmDefinition, VmDisk, VmNic } from "./contracts.ts";
import { diskNodeOptions, qemuArgv } from "./_qemu_args.ts";
import { deviceXml, libvirtXml } from "./_libvirt_xml.ts";
import { HOTPLUG_PORTS } from "./names.ts";

export { deviceXml, HOTPLUG_PORTS, libvirtXml, qemuArgv };

type JsonObject = { [key: string]: string | number | boolean | JsonObject | JsonObject[] };

/** `cache.direct=on` as QMP takes it: `{ cache: { direct: true } }`. */
function nested(options: Record<string, string | boolean>): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(options)) {
    const [head, tail] = key.split(".", 2) as [string, string | undefined];
    if (tail === undefined) out[head] = value;
    else out[head] = { ...(out[head] as JsonObject | undefined), [tail]: value };
  }
  return out;
}

/** The ports a device can be plugged into: q35's spare root ports, or pc's own PCI bus. */
export function hotplugPorts(def: Pick<VmDefinition, "machine">): readonly string[] {
  return def.machine === "q35" ? HOTPLUG_PORTS : ["pci.0"];
}

/** A disk on a port, as QMP adds it: its two `blockdev-add`s, then its `device_add`. */
export function diskHotplug(disk: VmDisk): { blockdevs: JsonObject[]; device: JsonObject } {
  return {
    blockdevs: diskNodeOptions(disk).map(nested),
    device: {
      driver: "virtio-blk-pci",
      id: disk.id,
      drive: disk.id,
      ...(disk.hotplugPort ? { bus: disk.hotplugPort } : {}),
    },
  };
}

/** A user-network NIC on a port, as QMP adds it: its `netdev_add`, then its `device_add`. */
export function nicHotplug(nic: VmNic): { netdev: JsonObject; device: JsonObject } {
  return {
    netdev: {
      type: "user",
      id: nic.id,
      ...(nic.forwards.length
        ? {
          hostfwd: nic.forwards.map((f) => ({
            str: `${f.protocol}:${f.address}:${f.host}-:${f.guest}`,
          })),
        }
        : {}),
    },
    device: {
      driver: nic.device,
      id: nic.id,
      netdev: nic.id,
      mac: nic.mac,
      ...(nic.hotplugPort ? { bus: nic.hotplugPort } : {}),
    },
  };
}

/**
 * A host USB device as QMP adds it: the USB controller first when the VM has none (`qemu-xhci`,
 * on a spare port), then its `usb-host` on the controller's bus.
 */
export function usbHotplug(
  usb: VmDefinition["usb"][number] & { id: string },
  controllerPort: string | null,
): { controller: JsonObject | null; device: JsonObject } {
  return {
    controller: controllerPort === null ? null : {
      driver: "qemu-xhci",
      id: "xhci",
      ...(controllerPort === "pci.0" ? {} : { bus: controllerPort }),
    },
    device: {
      driver: "usb-host",
      id: usb.id,
      bus: "xhci.0",
      vendorid: Number.parseInt(usb.vendor, 16),
      productid: Number.parseInt(usb.product, 16),
    },
  };
}
