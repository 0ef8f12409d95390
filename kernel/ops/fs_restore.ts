/**
 * `fs.restore`: puts back the content a change replaced, from the recovery journal's backup
 * blob (saved, streamed, before the change ran). Only an inverse uses it. The file is first
 * checked: already restored is success; content neither Gini's nor the original is a conflict.
 *
 * @module
 */
import { z } from "zod";
import { ConflictError, GiniError } from "../errors.ts";
import { atomicCopy, blobPath, capturePath, pathContent, type PathState } from "./_fs.ts";
import { defineOp } from "./types.ts";

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const FsRestoreArgs = z.strictObject({
  path: z.string().min(1),
  /** The content to put back, by sha256: a blob in `<state-dir>/journal/blobs/`. */
  sha256: Sha256,
  mode: z.number().int().min(0).max(0o7777).optional(),
  /** What the change produced; anything else found there is somebody else's edit. */
  expect: z.union([Sha256, z.literal("absent")]).optional(),
});
type FsRestoreArgs = z.infer<typeof FsRestoreArgs>;

export const fsRestore = defineOp<FsRestoreArgs>({
  kind: "fs.restore",
  schema: FsRestoreArgs,
  pathArgs: ["path"],
  // It writes back bytes and modes (setuid included) captured from the host: a plugin asking
  // for it directly could make any saved content a setuid file.
  kernelOnly: true,
  describe: (a) => `Restore "${a.path}" (sha256 ${a.sha256.slice(0, 12)}…)`,
  estimate: () => ({ bytes: 0, seconds: 0.001 }),
  permission: (a) => [{ grant: "write", path: a.path }],
  capture: async (a) => await capturePath(a.path),
  conflicts(a, before) {
    const actual = pathContent(before as PathState);
    if (actual === a.sha256 || a.expect === undefined || actual === a.expect) return [];
    return [`"${a.path}" changed since Gini wrote it (found ${actual.slice(0, 12)}…)`];
  },
  async execute(a, env, before) {
    const actual = pathContent(before as PathState);
    if (actual === a.sha256) return { path: a.path, sha256: a.sha256, restored: false };
    if (a.expect !== undefined && actual !== a.expect) {
      throw new ConflictError(
        `Cannot restore "${a.path}": it changed since Gini wrote it (expected sha256 ${a.expect}, found ${actual})`,
        { hint: `Its earlier content is kept in ${blobPath(env.startup.dirs.state, a.sha256)}` },
      );
    }
    const blob = blobPath(env.startup.dirs.state, a.sha256);
    let copied: { sha256: string };
    try {
      copied = await atomicCopy(blob, a.path, a.mode ?? null);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new GiniError(
          "BACKUP_MISSING",
          `Cannot restore "${a.path}": its backup ${blob} is missing`,
          1,
          { hint: "The journal's blobs directory was cleaned; restore the file by hand" },
        );
      }
      throw error;
    }
    if (copied.sha256 !== a.sha256) {
      throw new GiniError(
        "BACKUP_CORRUPT",
        `Restored "${a.path}" from ${blob}, but its sha256 is ${copied.sha256}, not ${a.sha256}`,
        1,
        { hint: "The backup was damaged on disk; restore the file by hand" },
      );
    }
    return { path: a.path, sha256: a.sha256, restored: true };
  },
  simulate: (a) => ({ path: a.path, sha256: a.sha256, restored: true, simulated: true }),
  // Undoing a restore is not needed: recovery is rerun, and a restore is idempotent.
  inverse: () => null,
});
