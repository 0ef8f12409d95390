/**
 * Kernel command lines: the arguments VFIO needs and adding them to a line
 * idempotently (an argument already there is kept, one with another value replaced).
 *
 * @module
 */

/** The keys Gini manages on the kernel command line. */
export const MANAGED_KEYS = ["intel_iommu", "amd_iommu", "iommu", "vfio-pci.ids", "rd.driver.pre"];

/** The arguments for a host: the IOMMU switch for its CPU vendor, pass-through mode, the IDs. */
export function vfioKernelArgs(cpuVendor: string, ids: string[], dracut: boolean): string[] {
  return [
    cpuVendor === "amd" ? "amd_iommu=on" : "intel_iommu=on",
    "iommu=pt",
    `vfio-pci.ids=${ids.join(",")}`,
    ...(dracut ? ["rd.driver.pre=vfio-pci"] : []),
  ];
}

const keyOf = (token: string) => token.split("=")[0]!;

/** `line` with `args` added; returns `line` itself when every argument is already there. */
export function withArgs(line: string, args: string[]): string {
  const tokens = line.trim().split(/\s+/).filter(Boolean);
  let changed = false;
  for (const arg of args) {
    const i = tokens.findIndex((t) => keyOf(t) === keyOf(arg));
    if (i === -1) {
      tokens.push(arg);
      changed = true;
    } else if (tokens[i] !== arg) {
      tokens[i] = arg;
      changed = true;
    }
  }
  return changed ? tokens.join(" ") : line;
}

/** The managed arguments a line carries. */
export function managedArgs(line: string): string[] {
  return line.trim().split(/\s+/).filter((t) => MANAGED_KEYS.includes(keyOf(t)));
}

/** The arguments of `wanted` that `line` lacks. */
export function missingArgs(line: string, wanted: string[]): string[] {
  const tokens = new Set(line.trim().split(/\s+/));
  return wanted.filter((a) => !tokens.has(a));
}
