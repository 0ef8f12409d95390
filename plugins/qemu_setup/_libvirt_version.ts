/**
 * The installed libvirt's version (`virsh --version`, the client library, which needs no
 * daemon), and what Gini gates on it: `<nvram format="qcow2">` exists since libvirt 9.2.0, and
 * libvirt snapshots a VM whose NVRAM is qcow2 since 10.9.0 (reverting and deleting: 10.10.0).
 *
 * @module
 */
import type { StageContext } from "../../workers/sdk.ts";

/** A version as [major, minor, micro]. */
export type Version = [number, number, number];

/** libvirt reads the `format` attribute of `<nvram>` since 9.2.0 (formatdomain: "Since 9.2.0"). */
export const NVRAM_FORMAT_SINCE: Version = [9, 2, 0];

/** "9.0.0" → [9, 0, 0]; null for anything else. */
export function parseVersion(text: string): Version | null {
  const m = text.trim().match(/(\d+)\.(\d+)\.(\d+)/);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/** Whether `v` is at least `since`. */
export function atLeast(v: Version, since: Version): boolean {
  for (let i = 0; i < 3; i++) if (v[i] !== since[i]) return v[i]! > since[i]!;
  return true;
}

/** The installed libvirt's version, or null without virsh (a read-only run: also in a plan). */
export async function libvirtVersion(ctx: StageContext): Promise<Version | null> {
  try {
    const out = await ctx.op<{ code: number; stdout: string }>("run", {
      argv: ["virsh", "--version"],
      allowFailure: true,
      probe: ctx.dryRun ? "use" : "store",
      timeoutMs: 10_000,
    });
    return out.code === 0 ? parseVersion(out.stdout) : null;
  } catch {
    return null;
  }
}

/** `9.0.0`. */
export const showVersion = (v: Version): string => v.join(".");
