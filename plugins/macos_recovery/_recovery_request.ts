/**
 * The RecoveryImage request to Apple's recovery server (as OpenCorePkg's macrecovery sends it)
 * and the parsing of its answer.
 *
 * @module
 */
import type { MacRelease } from "../opencore/releases.ts";
import { seededHex } from "../opencore/vm_seed.ts";

const HEX = "0123456789ABCDEF";
const randomHex = (n: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => HEX[b % 16]).join("");

/**
 * The RecoveryImage request's body. `cid` (a client id), `k` and `fg` are opaque to the server
 * (macrecovery draws them at random): they are derived from the VM's seed, so that the plan shows
 * the request the deploy sends; random on a host without a machine id.
 */
export function recoveryBody(release: MacRelease, seed: Uint8Array | null): string {
  const hex = (purpose: string, n: number) =>
    seed ? seededHex(seed, `recovery ${purpose}`, n) : randomHex(n);
  return [
    `cid=${hex("cid", 16)}`,
    `sn=${release.mlb}`,
    `bid=${release.boardId}`,
    `k=${hex("k", 64)}`,
    `fg=${hex("fg", 64)}`,
    `os=${release.os}`,
  ].join("\n");
}

/** The answer of the RecoveryImage request, as "KEY: value" lines. */
export function parseImageInfo(text: string): Record<string, string> {
  const info: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf(": ");
    if (at > 0) info[line.slice(0, at).trim()] = line.slice(at + 2).trim();
  }
  return info;
}
