/**
 * File helpers shared by the fs op kinds.
 *
 * @module
 */
import { dirname, join } from "../../workers/path.ts";

/** What a path was just before an op touched it. */
export type PathState =
  | { exists: false }
  | {
    exists: true;
    type: "file";
    sha256: string;
    size: number;
    mode: number | null;
  }
  | { exists: true; type: "dir" | "other"; mode: number | null };

/** What a captured path holds, in one word: "absent", a file's sha256, or "dir"/"other". */
export function pathContent(state: PathState): string {
  return !state.exists ? "absent" : state.type === "file" ? state.sha256 : state.type;
}

/** A file's bytes, or undefined when it does not exist. */
export async function readIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** The sha256 of bytes, as lowercase hex. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A streaming SHA-256 from `node:crypto`, loaded when a file is first hashed: it is several times
 * faster than Gini's own on large files, and loading it costs a run that hashes none about 20 ms.
 */
async function fileHash() {
  return (await import("node:crypto")).createHash("sha256");
}

/** The sha256 and size of a file, read in chunks (never the whole file in memory). */
export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const hash = await fileHash();
  let size = 0;
  // The stream closes the file when it ends or is cancelled.
  const file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: hash.digest("hex"), size };
}

/** Where the recovery journal keeps the content a change replaced, by sha256. */
export function blobPath(stateDir: string, sha256: string): string {
  return join(stateDir, "journal", "blobs", sha256);
}

/**
 * The name of the temporary file an atomic write makes beside its target (`.UUID.gini-tmp`);
 * `gini recover` removes those a crash left.
 */
export const GINI_TEMP_NAME =
  /^\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.gini-tmp$/;

/**
 * Puts a file at `path` so that readers see the old or the new content, never half: `fill`
 * writes a temporary file beside it, which is fsync'd, given `mode`, then renamed over `path`.
 */
async function replaceAtomically(
  path: string,
  mode: number | null | undefined,
  fill: (file: Deno.FsFile) => Promise<void>,
): Promise<void> {
  const tmp = `${dirname(path)}/.${crypto.randomUUID()}.gini-tmp`;
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true, mode: mode ?? 0o644 });
    try {
      await fill(file);
      await file.sync();
    } finally {
      file.close();
    }
    if (mode != null) await Deno.chmod(tmp, mode & 0o7777);
    await Deno.rename(tmp, path);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let written = 0;
  while (written < data.byteLength) written += await file.write(data.subarray(written));
}

/** Copies a file to `to`, streamed and atomically; returns the sha256 of what was copied. */
export async function atomicCopy(
  from: string,
  to: string,
  mode?: number | null,
): Promise<{ sha256: string; size: number }> {
  const hash = await fileHash();
  let size = 0;
  await replaceAtomically(to, mode, async (target) => {
    // The stream closes the source when it ends or is cancelled.
    const source = await Deno.open(from, { read: true });
    for await (const chunk of source.readable) {
      hash.update(chunk);
      size += chunk.byteLength;
      await writeAll(target, chunk);
    }
  });
  return { sha256: hash.digest("hex"), size };
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
    try {
      const { sha256, size } = await hashFile(path);
      return { exists: true, type: "file", sha256, size, mode: info.mode };
    } catch (error) {
      // Removed in between (QEMU deletes its pid file as it exits).
      if (error instanceof Deno.errors.NotFound) return { exists: false };
      throw error;
    }
  }
  return { exists: true, type: info.isDirectory ? "dir" : "other", mode: info.mode };
}

/** Writes a file atomically (see {@linkcode replaceAtomically}). */
export async function atomicWrite(
  path: string,
  data: Uint8Array,
  mode?: number | null,
): Promise<void> {
  await replaceAtomically(path, mode, (file) => writeAll(file, data));
}
