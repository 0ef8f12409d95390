/**
 * Gini's own files — the VM folders under the data directory — read with the worker's own read
 * permission (`{data}/vms`). They are not host paths: `--host-root` (which `ctx.host` reads
 * under) does not apply to them.
 *
 * @module
 */

/** Reads of the VM folders, as `ctx.host` offers them for the host. */
export const own = {
  readText: (path: string): Promise<string> => Deno.readTextFile(path),
  readBytes: (path: string): Promise<Uint8Array> => Deno.readFile(path),
  readDir: async (path: string): Promise<string[]> =>
    (await Array.fromAsync(Deno.readDir(path))).map((e) => e.name),
  stat: (path: string): Promise<Deno.FileInfo> => Deno.stat(path),
};
