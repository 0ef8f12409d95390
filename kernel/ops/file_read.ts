/**
 * `file.read`: reads a small text file that the user's request names (a cloud-config
 * next to the VM file). Only files inside the request file's folder, and only for
 * plugins whose manifest sets `[ops].request_files = true`. It changes nothing.
 *
 * @module
 */
import { z } from "zod";
import { defineOp } from "./types.ts";

/** Largest file `file.read` returns. */
const LIMIT = 1024 * 1024;

const FileReadArgs = z.strictObject({ path: z.string().min(1) });
type FileReadArgs = z.infer<typeof FileReadArgs>;

export const fileRead = defineOp<FileReadArgs>({
  kind: "file.read",
  schema: FileReadArgs,
  pathArgs: ["path"],
  describe: (a) => `Read "${a.path}"`,
  estimate: () => ({ bytes: 0, seconds: 0 }),
  permission: (a) => [{ grant: "request-file", path: a.path }],
  readOnly: () => true,
  capture: () => Promise.resolve(null),
  conflicts: () => [],
  async execute(a) {
    const info = await Deno.stat(a.path);
    if (info.size > LIMIT) throw new Error(`Cannot read "${a.path}": larger than ${LIMIT} bytes`);
    return { path: a.path, text: await Deno.readTextFile(a.path) };
  },
  simulate: () => ({ simulated: true }),
  inverse: () => [],
});
