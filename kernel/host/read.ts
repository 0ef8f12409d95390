/**
 * Reads the kernel serves to plugins for paths Deno will not let a worker read
 * (anything under /proc, /sys and /dev needs `--allow-all` in a worker), within
 * the same read grant the worker has.
 *
 * @module
 */
import { basename, dirname, isAbsolute, join } from "../../workers/path.ts";
import type { Json } from "../../workers/protocol.ts";
import { concatBytes } from "../encoding.ts";
import { canonicalize, checkPath, checkProc, type Grants } from "../ops/broker.ts";

/** Largest file the kernel reads on a plugin's behalf. */
const READ_LIMIT = 16 * 1024 * 1024;

/** Performs a read a plugin asked for, after checking its grant. */
export async function serveRead(
  grants: Grants,
  kind: "text" | "dir" | "link" | "stat",
  path: string,
): Promise<Json> {
  // Links and stats describe the entry itself, so only its parent is resolved.
  const lexical = kind === "link" || kind === "stat";
  // What is opened is what was checked: the canonical path (so /proc/self cannot stand in
  // for /proc/<pid>), or for a link or a stat the entry in its canonical parent.
  const target = !isAbsolute(path)
    ? path
    : lexical
    ? join(canonicalize(dirname(path)), basename(path))
    : canonicalize(path);
  checkPath(grants, `read:${kind}`, lexical ? dirname(target) : target, "read");
  // A stat or link is checked on the entry itself too (checkPath saw only its folder).
  if (lexical) checkProc(grants, `read:${kind}`, path, target);
  switch (kind) {
    case "text": {
      const file = await Deno.open(target);
      try {
        const chunks: Uint8Array[] = [];
        let total = 0;
        for await (const chunk of file.readable) {
          total += chunk.byteLength;
          if (total > READ_LIMIT) {
            throw new Error(`Cannot read "${path}": larger than ${READ_LIMIT} bytes`);
          }
          chunks.push(chunk);
        }
        return new TextDecoder().decode(concatBytes(chunks));
      } finally {
        try {
          file.close();
        } catch { /* closed by the stream */ }
      }
    }
    case "dir": {
      const names: string[] = [];
      for await (const entry of Deno.readDir(target)) names.push(entry.name);
      return names.sort();
    }
    case "link":
      return await Deno.readLink(target);
    case "stat": {
      const info = await Deno.lstat(target);
      return {
        isFile: info.isFile,
        isDirectory: info.isDirectory,
        isSymlink: info.isSymlink,
        size: info.size,
        mode: info.mode,
      };
    }
  }
}
