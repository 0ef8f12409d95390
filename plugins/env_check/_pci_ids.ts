/**
 * Names from the pci.ids database (the file lspci uses), looked up for just the
 * IDs a host has, in one pass over the file.
 *
 * @module
 */

/** Names found for a set of IDs. */
export interface PciNames {
  vendors: Map<string, string>;
  devices: Map<string, string>;
  classes: Map<string, string>;
}

/**
 * Scans pci.ids text. `wanted` holds vendor IDs ("10de") and vendor:device pairs ("10de:2484").
 * Classes ("0300") are always collected: the list is short.
 */
export function lookupPciNames(text: string, wanted: Set<string>): PciNames {
  const names: PciNames = { vendors: new Map(), devices: new Map(), classes: new Map() };
  let vendor: string | undefined;
  let inClasses = false;
  let classId: string | undefined;
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("C ")) {
      inClasses = true;
      classId = line.slice(2, 4);
      names.classes.set(classId, line.slice(6).trim());
      continue;
    }
    if (inClasses) {
      const sub = line.match(/^\t([0-9a-f]{2})\s+(.+)$/);
      if (sub && classId) names.classes.set(`${classId}${sub[1]}`, sub[2]!.trim());
      continue;
    }
    const vendorLine = line.match(/^([0-9a-f]{4})\s+(.+)$/);
    if (vendorLine) {
      vendor = wanted.has(vendorLine[1]!) ? vendorLine[1] : undefined;
      if (vendor) names.vendors.set(vendor, vendorLine[2]!.trim());
      continue;
    }
    if (!vendor) continue;
    const deviceLine = line.match(/^\t([0-9a-f]{4})\s+(.+)$/);
    if (deviceLine && wanted.has(`${vendor}:${deviceLine[1]}`)) {
      names.devices.set(`${vendor}:${deviceLine[1]}`, deviceLine[2]!.trim());
    }
  }
  return names;
}
