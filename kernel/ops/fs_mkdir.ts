/**
 * `fs.mkdir`: creates a directory and any missing parents.
 *
 * @module
 */
import { dirname } from "../../workers/path.ts";
import { z } from "zod";
import { defineOp } from "./types.ts";

const FsMkdirArgs = z.strictObject({
  path: z.string().min(1),
  /** Permission bits only: never setuid, setgid or sticky. */
  mode: z.number().int().min(0).max(
    0o777,
    "expected permission bits up to 0o777 (no setuid, setgid or sticky)",
  )
    .optional(),
});
type FsMkdirArgs = z.infer<typeof FsMkdirArgs>;

/** The directories that do not exist yet, outermost first. */
async function missingDirs(path: string): Promise<string[]> {
  const missing: string[] = [];
  let current = path;
  for (;;) {
    try {
      await Deno.lstat(current);
      break;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      missing.unshift(current);
      const parent = dirname(current);
      if (parent === current) break;
      current = parent;
    }
  }
  return missing;
}

export const fsMkdir = defineOp<FsMkdirArgs>({
  kind: "fs.mkdir",
  schema: FsMkdirArgs,
  pathArgs: ["path"],
  describe: (a) => `Create directory "${a.path}"`,
  estimate: () => ({ bytes: 4096, seconds: 0.001 }),
  permission: (a) => [{ grant: "write", path: a.path }],
  capture: async (a) => ({ missing: await missingDirs(a.path) }),
  conflicts: () => [],
  async execute(a, _env, before) {
    const created = (before as { missing: string[] }).missing;
    await Deno.mkdir(a.path, {
      recursive: true,
      ...(a.mode === undefined ? {} : { mode: a.mode }),
    });
    return { path: a.path, created };
  },
  simulate: (a, before) => ({ path: a.path, created: (before as { missing: string[] }).missing }),
  inverse: (_a, before) =>
    (before as { missing: string[] }).missing.toReversed().map((path) => ({
      kind: "fs.remove",
      args: { path, onlyIfEmpty: true },
    })),
});
