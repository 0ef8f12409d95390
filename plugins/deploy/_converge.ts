/**
 * `gini up` of a VM that exists converges it: the saved definition and the new one are compared
 * key by key (disks and NICs by id), and each difference is applied on the stopped VM (at its next
 * start), made (a new disk), grown in place (`qemu-img resize`, undone by shrinking back), or
 * refused with the reason (shrinking a disk, moving it, changing the backend).
 *
 * @module
 */
import type { Json } from "../../workers/protocol.ts";
import type { VmDefinition, VmDisk } from "../qemu_setup/contracts.ts";
import type { VmChange } from "./contracts.ts";

/** Keys that follow from others (the argv) or from the host at plan time (warnings). */
const DERIVED = new Set(["argv", "warnings"]);

/** The definition as flat `key → value` pairs; arrays of things with an `id` are keyed by it. */
function flatten(value: Json, prefix: string, out: Map<string, Json>): void {
  if (Array.isArray(value)) {
    const keyed = value.every((v) =>
      v !== null && typeof v === "object" && !Array.isArray(v) && typeof v.id === "string"
    );
    if (!keyed || value.length === 0) {
      out.set(prefix, value);
      return;
    }
    for (const item of value as Record<string, Json>[]) {
      flatten(item, `${prefix}[${item.id}]`, out);
    }
    return;
  }
  if (value !== null && typeof value === "object") {
    for (const [key, v] of Object.entries(value)) {
      if (prefix === "" && DERIVED.has(key)) continue;
      flatten(v, prefix ? `${prefix}.${key}` : key, out);
    }
    return;
  }
  out.set(prefix, value);
}

const same = (a: Json | undefined, b: Json | undefined) => JSON.stringify(a) === JSON.stringify(b);

/** A disk's changes: made, grown, or refused (a shrink, a move, another format or backend). */
function diskChanges(old: VmDisk | undefined, next: VmDisk): VmChange[] {
  const key = `disks[${next.id}]`;
  if (!old) {
    return [{
      key,
      from: null,
      to: `${next.create ? "new " : ""}${next.format} ${next.path}`,
      how: next.create ? "create" : "apply",
    }];
  }
  const changes: VmChange[] = [];
  for (const field of ["backend", "path", "format", "volumeGroup", "logicalVolume"] as const) {
    if (old[field] === next[field] || !old.create) continue;
    changes.push({
      key: `${key}.${field}`,
      from: old[field],
      to: next[field],
      how: "refuse",
      why: "a disk Gini made cannot be moved or converted in place",
    });
  }
  if (old.sizeBytes !== next.sizeBytes && old.create && next.sizeBytes !== 0) {
    const shrink = next.sizeBytes < old.sizeBytes;
    changes.push({
      key: `${key}.sizeBytes`,
      from: old.sizeBytes,
      to: next.sizeBytes,
      how: shrink || old.backend === "lvm" ? "refuse" : "grow",
      ...(shrink
        ? { why: "shrinking a disk would cut off the guest's data" }
        : old.backend === "lvm"
        ? { why: "growing a logical volume in place is not supported yet (lvextend it by hand)" }
        : {}),
    });
  }
  return changes;
}

/** What changes from the saved definition `old` to `next`, key by key. */
export function compare(old: VmDefinition, next: VmDefinition): VmChange[] {
  const changes: VmChange[] = [];
  if (old.backend !== next.backend) {
    changes.push({
      key: "backend",
      from: old.backend,
      to: next.backend,
      how: "refuse",
      why: "a VM cannot move between QEMU and libvirt in place",
    });
  }
  const oldDisks = new Map(old.disks.map((d) => [d.id, d]));
  for (const disk of next.disks) changes.push(...diskChanges(oldDisks.get(disk.id), disk));
  for (const disk of old.disks) {
    if (next.disks.some((d) => d.id === disk.id)) continue;
    changes.push({
      key: `disks[${disk.id}]`,
      from: `${disk.format} ${disk.path}`,
      to: null,
      how: "apply",
      why: disk.create ? "detached; its image is kept (gini rm removes it)" : "detached",
    });
  }
  const before = new Map<string, Json>();
  const after = new Map<string, Json>();
  const strip = (def: VmDefinition) => ({ ...def, disks: [], backend: "" }) as unknown as Json;
  flatten(strip(old), "", before);
  flatten(strip(next), "", after);
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    if (same(before.get(key), after.get(key))) continue;
    changes.push({ key, from: before.get(key) ?? null, to: after.get(key) ?? null, how: "apply" });
  }
  return changes;
}

/** One change as a line of `gini plan`: `~ memory.bytes: 2147483648 → 4294967296`. */
export function changeLine(change: VmChange): string {
  const mark = { apply: "~", create: "+", grow: "~", refuse: "!" }[change.how];
  const show = (v: Json) => (v === null ? "(none)" : typeof v === "string" ? v : JSON.stringify(v));
  const what = change.from === null
    ? `${change.key}: ${show(change.to)}`
    : change.to === null
    ? `${change.key}: ${show(change.from)} removed`
    : `${change.key}: ${show(change.from)} → ${show(change.to)}`;
  return `  ${mark} ${what}${change.why ? ` (${change.why})` : ""}`;
}
