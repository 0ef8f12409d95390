/**
 * Stable identifiers derived from a VM's name: the same VM keeps its UUID and MACs
 * across plans and rebuilds, different VMs get different ones.
 *
 * @module
 */
import type { VmDisk } from "./contracts.ts";

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** A version-4-shaped UUID derived from the VM name. */
export async function vmUuid(name: string): Promise<string> {
  const b = await digest(`gini-vm-uuid:${name}`);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = Array.from(b.subarray(0, 16), (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20, 32)
  }`;
}

/** A locally administered QEMU MAC (52:54:00:…) derived from the VM name and NIC index. */
export async function vmMac(name: string, index: number): Promise<string> {
  const b = await digest(`gini-vm-mac:${name}:${index}`);
  return ["52", "54", "00", ...Array.from(b.subarray(0, 3), (x) => x.toString(16).padStart(2, "0"))]
    .join(":");
}

/**
 * The node names of a disk: the format node devices and snapshots name (`snapshot-save`'s
 * devices, `qemu-io -d`), and the protocol node under it. Stable, from the disk's id.
 */
export function diskNodes(disk: Pick<VmDisk, "id">): { format: string; file: string } {
  return { format: disk.id, file: `${disk.id}-file` };
}

/** The node names of the UEFI code and variables (`-machine pflash0=…,pflash1=…`). */
export const FIRMWARE_NODES = { code: "ovmf-code", vars: "ovmf-vars", varsFile: "ovmf-vars-file" };

/**
 * The spare PCIe root ports every q35 VM gets for `gini attach` (as virt-install adds them),
 * by id. Their chassis numbers start at {@linkcode HOTPLUG_CHASSIS}, clear of libvirt's, which
 * numbers its own root ports' chassis from 1 by controller index.
 */
export const HOTPLUG_PORTS: readonly string[] = ["hotplug0", "hotplug1", "hotplug2", "hotplug3"];
export const HOTPLUG_CHASSIS = 0xe0;
