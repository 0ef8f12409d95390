/**
 * Names from the pci.ids database (the file lspci uses), looked up for just the
 * IDs a host has. The file is 1.3 MB: it is searched, not parsed.
 *
 * @module
 */

/** Names found for a set of IDs. */
export interface PciNames {
  vendors: Map<string, string>;
  devices: Map<string, string>;
  classes: Map<string, string>;
}

function lineAt(text: string, start: number): { line: string; next: number } {
  const end = text.indexOf("\n", start);
  return end < 0
    ? { line: text.slice(start), next: text.length }
    : { line: text.slice(start, end), next: end + 1 };
}

/**
 * Looks up `wanted`: vendor IDs ("10de") and vendor:device pairs ("10de:2484").
 * Classes ("0300") are always collected: their section is short.
 */
export function lookupPciNames(text: string, wanted: Set<string>): PciNames {
  const names: PciNames = { vendors: new Map(), devices: new Map(), classes: new Map() };
  for (const vendor of wanted) {
    if (vendor.includes(":")) continue;
    const at = text.startsWith(`${vendor}  `) ? 0 : text.indexOf(`\n${vendor}  `) + 1;
    if (at <= 0 && !text.startsWith(`${vendor}  `)) continue;
    let { line, next } = lineAt(text, at);
    names.vendors.set(vendor, line.slice(6).trim());
    // The vendor's devices follow as tab-indented lines; subsystems are indented twice.
    while (next < text.length && (text[next] === "\t" || text[next] === "#")) {
      ({ line, next } = lineAt(text, next));
      if (line[0] === "\t" && line[1] !== "\t") {
        const key = `${vendor}:${line.slice(1, 5)}`;
        if (wanted.has(key)) names.devices.set(key, line.slice(7).trim());
      }
    }
  }
  let pos = text.indexOf("\nC ");
  let classId: string | undefined;
  while (pos >= 0 && pos < text.length) {
    const { line, next } = lineAt(text, pos === 0 ? 0 : pos + (text[pos] === "\n" ? 1 : 0));
    pos = next;
    if (line.startsWith("C ")) {
      classId = line.slice(2, 4);
      names.classes.set(classId, line.slice(6).trim());
    } else if (classId && line[0] === "\t" && line[1] !== "\t") {
      names.classes.set(`${classId}${line.slice(1, 3)}`, line.slice(5).trim());
    }
  }
  return names;
}
