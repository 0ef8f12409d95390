/**
 * The device set of a VFIO configuration: the listed devices grown to their
 * whole IOMMU groups (bridges excepted), refused when a group holds something
 * unrelated or when the host would lose its display.
 *
 * @module
 */
import { UsageError } from "../../workers/sdk.ts";
import type { EnvironmentData, PciDevice } from "../env_check/contracts.ts";

/** One device of the set. */
export interface SetDevice {
  address: string;
  vendor: string;
  device: string;
  class: string;
  driver: string | null;
  iommuGroup: number | null;
  name: string;
  /** Why it is in the set: listed by the user, or brought by its group or slot. */
  reason: "listed" | "same group" | "same slot";
}

/** The set, the IDs for `vfio-pci.ids`, and what the user should know. */
export interface DeviceSet {
  devices: SetDevice[];
  ids: string[];
  groups: number[];
  warnings: string[];
}

const isBridge = (d: { class: string }) => d.class.startsWith("06");
const isDisplay = (d: { class: string }) => d.class.startsWith("03");
const slot = (address: string) => address.slice(0, -2);

/** "01:00.0" → "0000:01:00.0". */
export function normalizeAddress(address: string): string {
  const a = address.trim().toLowerCase();
  return /^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(a) ? `0000:${a}` : a;
}

function describe(d: PciDevice): string {
  return [d.vendorName, d.deviceName].filter(Boolean).join(" ") || `[${d.vendor}:${d.device}]`;
}

/** Why each chosen address is in the set. */
type Reasons = Map<string, SetDevice["reason"]>;

/** The listed devices, each found on the host and not a bridge. */
function chooseListed(wanted: string[], byAddress: Map<string, PciDevice>): Reasons {
  const chosen: Reasons = new Map();
  for (const address of wanted) {
    const device = byAddress.get(address);
    if (!device) {
      throw new UsageError(`Cannot find PCI device "${address}" on the host`, {
        hint: 'List the devices with "gini check --iommu"; addresses look like 0000:01:00.0',
      });
    }
    if (isBridge(device)) {
      throw new UsageError(`Cannot pass through "${address}": it is a bridge`, {
        hint: "Name the device behind it",
      });
    }
    chosen.set(address, "listed");
  }
  return chosen;
}

/** A card's other functions (HDMI audio, USB-C) go with it, even from another group. */
function addSlotMates(report: EnvironmentData, wanted: string[], chosen: Reasons): void {
  for (const address of wanted) {
    for (const d of report.pci) {
      if (slot(d.address) === slot(address) && !chosen.has(d.address) && !isBridge(d)) {
        chosen.set(d.address, "same slot");
      }
    }
  }
}

/**
 * Adds the rest of each chosen device's IOMMU group, refusing a group that holds a device of
 * another slot; returns the groups.
 */
function addGroupMates(
  report: EnvironmentData,
  byAddress: Map<string, PciDevice>,
  chosen: Reasons,
): Set<number> {
  const groups = new Set<number>();
  const slots = new Set([...chosen.keys()].map(slot));
  for (const address of [...chosen.keys()]) {
    const device = byAddress.get(address)!;
    // IOMMU off: the groups are unknown until it is on.
    if (device.iommuGroup === null) continue;
    groups.add(device.iommuGroup);
    const members = report.pci.filter((d) => d.iommuGroup === device.iommuGroup && !isBridge(d));
    const unrelated = members.filter((d) => !slots.has(slot(d.address)));
    if (unrelated.length) {
      throw new UsageError(
        `Cannot pass through "${address}": its IOMMU group ${device.iommuGroup} also holds ${
          unrelated.map((d) => `"${d.address}" (${describe(d)})`).join(", ")
        }`,
        {
          hint:
            "Every device of a group goes to the guest together. The group is shared because the PCIe port above it lacks ACS isolation: move the card to a slot wired to the CPU, or list those devices too if the host can spare them",
        },
      );
    }
    for (const d of members) if (!chosen.has(d.address)) chosen.set(d.address, "same group");
  }
  return groups;
}

/** Refuses, unless forced, a set that holds the boot display or every display of the host. */
function checkHostDisplay(
  report: EnvironmentData,
  byAddress: Map<string, PciDevice>,
  chosen: Reasons,
  devices: SetDevice[],
  force: boolean,
  warnings: string[],
): void {
  const bootVga = devices.find((d) => byAddress.get(d.address)!.bootVga === true);
  const displays = report.pci.filter(isDisplay);
  const onlyDisplay = displays.length > 0 &&
    displays.every((d) => chosen.has(d.address));
  if ((bootVga || onlyDisplay) && !force) {
    const what = bootVga
      ? `"${bootVga.address}" is the boot display`
      : "the host would have no display device left";
    throw new UsageError(`Cannot take these devices from the host: ${what}`, {
      hint:
        "Pass through another GPU, or add --force if you reach the host another way (ssh, serial)",
    });
  }
  if (bootVga || onlyDisplay) {
    warnings.push("--force: the host will lose its display once vfio-pci claims the GPU");
  }
}

/** Chooses the device set, or throws a UsageError that says why not and what to do. */
export function selectDevices(
  report: EnvironmentData,
  listed: string[],
  force: boolean,
): DeviceSet {
  if (listed.length === 0) {
    throw new UsageError("Cannot plan VFIO without devices", {
      hint: 'Name them with --device ADDRESS (see "gini check --iommu")',
    });
  }
  const warnings: string[] = [];
  const wanted = listed.map(normalizeAddress);
  const byAddress = new Map(report.pci.map((d) => [d.address, d]));
  const chosen = chooseListed(wanted, byAddress);
  addSlotMates(report, wanted, chosen);
  const groups = addGroupMates(report, byAddress, chosen);
  if (!report.iommu.enabled) {
    warnings.push(
      "The IOMMU is off: the groups are unknown until the host boots with the IOMMU on; check them then with gini check --iommu",
    );
  }
  const devices = [...chosen].map(([address, reason]) => {
    const d = byAddress.get(address)!;
    return {
      address,
      vendor: d.vendor,
      device: d.device,
      class: d.class,
      driver: d.driver,
      iommuGroup: d.iommuGroup,
      name: describe(d),
      reason,
    };
  }).sort((a, b) => a.address.localeCompare(b.address));
  checkHostDisplay(report, byAddress, chosen, devices, force, warnings);
  const ids = [...new Set(devices.map((d) => `${d.vendor}:${d.device}`))];
  const shared = ids.filter((id) =>
    report.pci.some((d) => `${d.vendor}:${d.device}` === id && !chosen.has(d.address))
  );
  for (const id of shared) {
    warnings.push(
      `Another device of the host has the same ID ${id}: vfio-pci.ids will claim it too at boot`,
    );
  }
  return { devices, ids, groups: [...groups].sort((a, b) => a - b), warnings };
}

/** The modules whose load should wait for vfio-pci, so it claims the devices first. */
export function softdeps(devices: SetDevice[]): string[] {
  const out: string[] = [];
  if (devices.some((d) => d.vendor === "10de")) out.push("nvidia", "nouveau");
  if (devices.some((d) => d.vendor === "1002")) out.push("amdgpu", "radeon");
  if (devices.some((d) => d.class.startsWith("0403"))) out.push("snd_hda_intel");
  for (const d of devices) {
    if (d.driver && d.driver !== "vfio-pci" && !out.includes(d.driver) && isDisplay(d)) {
      out.push(d.driver);
    }
  }
  return out;
}
