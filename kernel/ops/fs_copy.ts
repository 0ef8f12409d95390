/**
 * `fs.copy`: copies a file, streamed, to a new place.
 *
 * @module
 */
import { z } from "zod";
import { ConflictError } from "../errors.ts";
import { capturePath, type PathState } from "./_fs.ts";
import { overwriteConflicts, restorePath } from "./fs_write.ts";
import { defineOp } from "./types.ts";

const FsCopyArgs = z.strictObject({
  from: z.string().min(1),
  to: z.string().min(1),
  overwrite: z.boolean().optional(),
});
type FsCopyArgs = z.infer<typeof FsCopyArgs>;

type CopyCapture = { to: PathState; size: number };

export const fsCopy = defineOp<FsCopyArgs>({
  kind: "fs.copy",
  schema: FsCopyArgs,
  pathArgs: ["from", "to"],
  describe: (a) => `Copy "${a.from}" to "${a.to}"`,
  estimate: (_a, before) => {
    const bytes = (before as CopyCapture).size;
    return { bytes, seconds: 0.01 + bytes / (500 * 1024 * 1024) };
  },
  permission: (a) => [{ grant: "read", path: a.from }, { grant: "write", path: a.to }],
  capture: async (a) => {
    let size = 0;
    try {
      size = (await Deno.stat(a.from)).size;
    } catch { /* reported by execute */ }
    return { to: await capturePath(a.to), size } satisfies CopyCapture;
  },
  conflicts: (a, before) => overwriteConflicts(a.to, (before as CopyCapture).to, a.overwrite),
  async execute(a, _env, before) {
    const state = (before as CopyCapture).to;
    if (state.exists && !a.overwrite) {
      throw new ConflictError(`Cannot copy to "${a.to}": it exists`, {
        hint: "Remove it first, or ask for overwrite",
      });
    }
    await Deno.copyFile(a.from, a.to);
    const size = (await Deno.stat(a.to)).size;
    return { to: a.to, bytes: size };
  },
  simulate: (a, before) => ({ to: a.to, bytes: (before as CopyCapture).size, simulated: true }),
  inverse: (a, before) => restorePath(a.to, (before as CopyCapture).to),
});
