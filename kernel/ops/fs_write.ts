/**
 * `fs.write`: creates or replaces a file atomically.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { ConflictError } from "../errors.ts";
import { decodeBase64 } from "../encoding.ts";
import { atomicWrite, capturePath, type PathState, sha256Hex } from "./_fs.ts";
import { defineOp, formatBytes } from "./types.ts";
import type { OpRequest } from "../../workers/protocol.ts";

const FsWriteArgs = z.strictObject({
  path: z.string().min(1),
  content: z.string().optional(),
  contentBase64: z.string().optional(),
  /** Permission bits only: never setuid, setgid or sticky. */
  mode: z.number().int().min(0).max(
    0o777,
    "expected permission bits up to 0o777 (no setuid, setgid or sticky)",
  )
    .optional(),
  /** Replace an existing file; without it an existing file is a conflict. */
  overwrite: z.boolean().optional(),
  /** Where the content comes from (a file in a downloaded archive), for the plan. */
  source: z.string().max(300).optional(),
}).refine((a) => (a.content === undefined) !== (a.contentBase64 === undefined), {
  message: "expected exactly one of content or contentBase64",
});
type FsWriteArgs = z.infer<typeof FsWriteArgs>;

/** The bytes an `fs.write` carries. */
export function writeBytes(
  args: { content?: string | undefined; contentBase64?: string | undefined },
): Uint8Array {
  return args.content !== undefined
    ? new TextEncoder().encode(args.content)
    : decodeBase64(args.contentBase64 ?? "");
}

/**
 * The op that puts a path back as it was captured; shared by the kinds that replace files. The
 * old content comes back from the journal's backup blob, saved (streamed) before the op runs.
 */
export function restorePath(
  path: string,
  before: PathState,
  produced?: Uint8Array | "absent",
): OpRequest[] | null {
  if (!before.exists) return [{ kind: "fs.remove", args: { path } }];
  if (before.type !== "file") return null;
  return [{
    kind: "fs.restore",
    args: {
      path,
      sha256: before.sha256,
      ...(produced === undefined ? {} : {
        expect: produced === "absent"
          ? "absent"
          : createHash("sha256").update(produced).digest("hex"),
      }),
      ...(before.mode === null ? {} : { mode: before.mode & 0o7777 }),
    },
  }];
}

/** The conflict of replacing what exists at a path. */
export function overwriteConflicts(
  path: string,
  before: PathState,
  overwrite: boolean | undefined,
): string[] {
  if (!before.exists) return [];
  if (before.type !== "file") return [`"${path}" exists and is not a file`];
  return overwrite ? [] : [`"${path}" exists and would be overwritten`];
}

export const fsWrite = defineOp<FsWriteArgs>({
  kind: "fs.write",
  schema: FsWriteArgs as z.ZodType<FsWriteArgs>,
  pathArgs: ["path"],
  describe: (a) => {
    const size = writeBytes(a).byteLength;
    // In a plan, content from a download not made yet is empty: say where it comes from instead.
    const what = a.source
      ? size ? `${formatBytes(size)} from ${a.source}` : `from ${a.source}`
      : formatBytes(size);
    return `Create file "${a.path}" (${what})`;
  },
  estimate: (a) => ({ bytes: writeBytes(a).byteLength, seconds: 0.001 }),
  permission: (a) => [{ grant: "write", path: a.path }],
  capture: async (a) => await capturePath(a.path) as PathState,
  conflicts: (a, before) => overwriteConflicts(a.path, before as PathState, a.overwrite),
  async execute(a, _env, before) {
    const state = before as PathState;
    if (state.exists && (state.type !== "file" || !a.overwrite)) {
      throw new ConflictError(`Cannot write "${a.path}": it exists`, {
        hint: "Remove it first, or ask for overwrite",
      });
    }
    const data = writeBytes(a);
    await atomicWrite(a.path, data, a.mode ?? (state.exists ? state.mode : null));
    return { path: a.path, bytes: data.byteLength, sha256: await sha256Hex(data) };
  },
  simulate: (a) => ({ path: a.path, bytes: writeBytes(a).byteLength, sha256: "", simulated: true }),
  inverse: (a, before) => restorePath(a.path, before as PathState, writeBytes(a)),
});
