/**
 * `fs.remove`: removes a file, or a directory (empty, or with `recursive`).
 *
 * @module
 */
import { z } from "zod";
import { capturePath, type PathState } from "./_fs.ts";
import { restorePath } from "./fs_write.ts";
import { defineOp } from "./types.ts";

const FsRemoveArgs = z.strictObject({
  path: z.string().min(1),
  recursive: z.boolean().optional(),
  /** Leave a directory that is not empty (used by inverses of `fs.mkdir`). */
  onlyIfEmpty: z.boolean().optional(),
  /** Succeed when the path does not exist. */
  missingOk: z.boolean().optional(),
});
type FsRemoveArgs = z.infer<typeof FsRemoveArgs>;

export const fsRemove = defineOp<FsRemoveArgs>({
  kind: "fs.remove",
  schema: FsRemoveArgs,
  pathArgs: ["path"],
  describe: (a) => `Remove ${a.recursive ? "tree" : "path"} "${a.path}"`,
  estimate: () => ({ bytes: 0, seconds: 0.001 }),
  permission: (a) => [{ grant: "write", path: a.path }],
  capture: async (a) => await capturePath(a.path) as PathState,
  conflicts: (a, before) =>
    (before as PathState).exists || a.missingOk || a.onlyIfEmpty
      ? []
      : [`"${a.path}" does not exist`],
  async execute(a, _env, before) {
    const state = before as PathState;
    if (!state.exists) {
      if (a.missingOk || a.onlyIfEmpty) return { path: a.path, removed: false };
      throw new Deno.errors.NotFound(`Cannot remove "${a.path}": it does not exist`);
    }
    if (a.onlyIfEmpty && state.type === "dir") {
      for await (const _ of Deno.readDir(a.path)) return { path: a.path, removed: false };
    }
    try {
      await Deno.remove(a.path, { recursive: a.recursive ?? false });
    } catch (error) {
      if (a.missingOk && error instanceof Deno.errors.NotFound) {
        return { path: a.path, removed: false };
      }
      throw error;
    }
    return { path: a.path, removed: true };
  },
  simulate: (a, before) => ({
    path: a.path,
    removed: (before as PathState).exists,
    simulated: true,
  }),
  inverse(a, before) {
    const state = before as PathState;
    if (!state.exists) return [];
    if (state.type === "dir") {
      return a.recursive ? null : [{ kind: "fs.mkdir", args: { path: a.path } }];
    }
    return restorePath(a.path, state, "absent");
  },
});
