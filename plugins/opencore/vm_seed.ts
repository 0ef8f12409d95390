/**
 * A macOS VM's seed: the bytes its Mac identity and its recovery requests are derived from, the
 * same in `gini plan` and `gini up`, and different on every host and for every VM. It is an
 * HMAC-SHA256 keyed with the host's machine id (`/etc/machine-id`, under `--host-root` when
 * given) of Gini's data directory and the VM's name, so it reveals neither.
 *
 * @module
 */
import { createHash, createHmac } from "node:crypto";
import type { BaseContext } from "../../workers/sdk.ts";

/** Where systemd and D-Bus keep the host's machine id (32 hex digits). */
export const MACHINE_ID_FILES = ["/etc/machine-id", "/var/lib/dbus/machine-id"];

/** The host's machine id, or null when it has none (a container without systemd). */
export async function machineId(ctx: BaseContext): Promise<string | null> {
  for (const file of MACHINE_ID_FILES) {
    try {
      const id = (await ctx.host.readText(file)).trim();
      if (/^[0-9a-f]{32}$/i.test(id)) return id.toLowerCase();
    } catch { /* try the next one */ }
  }
  return null;
}

/** The seed of VM `name` for a host's machine id and Gini's data directory. */
export function vmSeed(machine: string, dataDir: string, name: string): Uint8Array {
  return new Uint8Array(
    createHmac("sha256", machine).update(`gini macos vm\0${dataDir}\0${name}`).digest(),
  );
}

/**
 * Unsigned 32-bit integers drawn from `seed` for one `purpose` (SHA-256 in counter mode), for
 * code that takes a random source (`newIdentity`).
 */
export function seededRandom(seed: Uint8Array, purpose: string): () => number {
  let counter = 0;
  let block = new Uint8Array();
  let at = 0;
  return () => {
    if (at + 4 > block.length) {
      block = new Uint8Array(
        createHash("sha256").update(seed).update(`\0${purpose}\0${counter++}`).digest(),
      );
      at = 0;
    }
    const value = new DataView(block.buffer, block.byteOffset + at, 4).getUint32(0);
    at += 4;
    return value;
  };
}

/** `length` upper-case hex digits drawn from `seed` for `purpose`. */
export function seededHex(seed: Uint8Array, purpose: string, length: number): string {
  const random = seededRandom(seed, purpose);
  return Array.from({ length }, () => "0123456789ABCDEF"[random() % 16]).join("");
}
