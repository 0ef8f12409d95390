/**
 * What was attached to a VM by command rather than by its file (`<vmdir>/attached.json`), and
 * how `gini up FILE` adds it to the definition the file makes; the forward rules `gini forward`
 * reads. Plain functions, without the worker's SDK.
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import type { Json } from "../../workers/protocol.ts";
import type { EventHandler } from "../../workers/sdk.ts";
import type { VmDefinition, VmDisk, VmNic } from "../qemu_setup/contracts.ts";
import { own } from "./_files.ts";
import { usage } from "./_errors.ts";

/** One port forward, on the NIC whose user network carries it. */
export type Forward = {
  nic: string;
  protocol: "tcp" | "udp";
  address: string;
  host: number;
  guest: number;
};

/**
 * `<vmdir>/attached.json`: what was attached, detached or forwarded by command rather than by
 * the VM file, which `gini up FILE` keeps.
 */
export type Attached = {
  disks: VmDisk[];
  nics: VmNic[];
  /** Host USB devices, each with its id. */
  usb: VmDefinition["usb"];
  forwards: { added: Forward[]; removed: Forward[] };
};

/** What was attached to the VM by command (nothing for a VM without attached.json). */
export async function readAttached(dir: string): Promise<Attached> {
  try {
    const read = JSON.parse(await own.readText(join(dir, "attached.json"))) as Partial<Attached>;
    return {
      disks: read.disks ?? [],
      nics: read.nics ?? [],
      usb: read.usb ?? [],
      forwards: { added: read.forwards?.added ?? [], removed: read.forwards?.removed ?? [] },
    };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { disks: [], nics: [], usb: [], forwards: { added: [], removed: [] } };
    }
    throw error;
  }
}

export const sameRule = (a: Omit<Forward, "guest" | "nic">, b: Omit<Forward, "guest" | "nic">) =>
  a.protocol === b.protocol && a.address === b.address && a.host === b.host;

/**
 * The definition a VM file makes, with what was attached by command: attached disks (those in
 * the VM's folder: a patch may not name a file outside it, see the README), NICs and host USB
 * devices the file does not have, and the forwards added and removed at runtime. Null when
 * nothing changes.
 */
export function withAttached(
  def: Omit<VmDefinition, "argv">,
  attached: Attached,
): { disks: VmDisk[]; nics: VmNic[]; usb: VmDefinition["usb"]; skipped: VmDisk[] } | null {
  const inside = (path: string) => path.startsWith(`${def.paths.dir}/`);
  const disks = [...def.disks];
  const skipped: VmDisk[] = [];
  for (const disk of attached.disks) {
    if (disks.some((d) => d.id === disk.id || d.path === disk.path)) continue;
    if (inside(disk.path)) disks.push(disk);
    else skipped.push(disk);
  }
  const nics = [
    ...def.nics,
    ...attached.nics.filter((n) => !def.nics.some((d) => d.id === n.id)),
  ].map((nic) => {
    const kept = nic.forwards.filter((f) =>
      !attached.forwards.removed.some((r) => r.nic === nic.id && sameRule(r, f))
    );
    const added = attached.forwards.added.filter((f) =>
      f.nic === nic.id && !kept.some((k) => sameRule(k, f))
    ).map(({ protocol, address, host, guest }) => ({ protocol, address, host, guest }));
    return { ...nic, forwards: [...kept, ...added] };
  });
  const usb = [
    ...def.usb,
    ...attached.usb.filter((u) =>
      !def.usb.some((d) => d.id === u.id || (d.vendor === u.vendor && d.product === u.product))
    ),
  ];
  const same = JSON.stringify([def.disks, def.nics, def.usb]) ===
    JSON.stringify([disks, nics, usb]);
  return same && !skipped.length ? null : { disks, nics, usb, skipped };
}

const RULE = /^(tcp|udp):(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d{1,5}):(\d{1,5})$/;

/** A forward rule: `tcp:8080:80`, `udp:127.0.0.1:5353:53`. */
export function parseRule(text: Json | undefined): Omit<Forward, "nic"> {
  const m = typeof text === "string" ? text.match(RULE) : null;
  const host = Number(m?.[3]);
  const guest = Number(m?.[4]);
  if (!m || host < 1 || host > 65535 || guest < 1 || guest > 65535) {
    throw usage(
      `Cannot use ${
        typeof text === "string" ? `"${text}"` : "nothing"
      } as a forward (RULE): expected tcp|udp:HOST:GUEST with ports 1-65535, like "tcp:8080:80" (or tcp:ADDRESS:HOST:GUEST)`,
      "gini forward NAME add tcp:8080:80 forwards host port 8080 to the guest's port 80",
    );
  }
  return { protocol: m[1] as "tcp" | "udp", address: m[2] ?? "127.0.0.1", host, guest };
}

/** `on_pre_vm_start`: `gini up FILE` keeps what was attached to the VM by command. */
export const keepAttached: EventHandler = async (payload, ctx) => {
  const def = (payload as { definition: Omit<VmDefinition, "argv"> }).definition;
  const attached = await readAttached(def.paths.dir);
  const merged = withAttached(def, attached);
  if (!merged) return;
  for (const disk of merged.skipped) {
    ctx.ui.warn(
      `VM "${def.name}": disk "${disk.id}" (${disk.path}) was attached by command and is outside the VM's folder: add it to ${def.configFile} ([[disks]] path = "${disk.path}") to keep it`,
    );
  }
  return {
    patch: { disks: merged.disks, nics: merged.nics, usb: merged.usb } as unknown as Json,
  };
};
