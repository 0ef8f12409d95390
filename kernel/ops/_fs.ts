/**
 * File helpers shared by the fs op kinds.
 *
 * @module
 */
import { dirname } from "node:path";
import { encodeBase64 } from "../encoding.ts";

/** What a path was just before an op touched it. */
export type PathState =
  | { exists: false }
  | {
    exists: true;
    type: "file";
    sha256: string;
    size: number;
    mode: number | null;
    contentBase64: string | null;
  }
  | { exists: true; type: "dir" | "other"; mode: number | null };

/** Files larger than this are captured by hash only (the recovery journal streams them). */
export const INLINE_CAPTURE_LIMIT = 16 * 1024 * 1024;

/** The sha256 of bytes, as lowercase hex. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Reads the state of a path without following a final symlink. */
export async function capturePath(path: string): Promise<PathState> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { exists: false };
    throw error;
  }
  if (info.isFile) {
    const data = await Deno.readFile(path);
    return {
      exists: true,
      type: "file",
      sha256: await sha256Hex(data),
      size: data.byteLength,
      mode: info.mode,
      contentBase64: data.byteLength <= INLINE_CAPTURE_LIMIT ? encodeBase64(data) : null,
    };
  }
  return { exists: true, type: info.isDirectory ? "dir" : "other", mode: info.mode };
}

/**
 * Writes a file so that readers see the old or the new content, never half: a temporary
 * file in the same directory, fsync'd, then renamed over the target.
 */
export async function atomicWrite(
  path: string,
  data: Uint8Array,
  mode?: number | null,
): Promise<void> {
  const tmp = `${dirname(path)}/.${crypto.randomUUID()}.gini-tmp`;
  const file = await Deno.open(tmp, { write: true, createNew: true, mode: mode ?? 0o644 });
  try {
    let written = 0;
    while (written < data.byteLength) written += await file.write(data.subarray(written));
    await file.sync();
  } finally {
    file.close();
  }
  try {
    if (mode != null) await Deno.chmod(tmp, mode & 0o7777);
    await Deno.rename(tmp, path);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
}
