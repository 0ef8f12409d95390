/**
 * `sysfs.write`: writes one value to a sysfs file (`driver_override`, a driver's
 * `unbind`/`bind`, `drivers_probe`). Attributes are read first and written back by
 * the inverse; action files (`bind`, `unbind`, `drivers_probe`, `new_id`,
 * `remove_id`) read as nothing, so the plugin names what undoes them (`undo`): the
 * previous driver's `bind` for an `unbind`.
 *
 * @module
 */
import { basename } from "../../workers/path.ts";
import { z } from "zod";
import type { OpRequest } from "../../workers/protocol.ts";
import { defineOp } from "./types.ts";

const ACTION_FILES = new Set(["bind", "unbind", "drivers_probe", "new_id", "remove_id", "remove"]);

const Write = z.strictObject({
  path: z.string().min(1),
  value: z.string().max(4096),
});

const SysfsWriteArgs = Write.extend({
  /** Writes that undo this one, in order; required for action files, which cannot be read back. */
  undo: z.array(Write).optional(),
});
type SysfsWriteArgs = z.infer<typeof SysfsWriteArgs>;

/** Whether a sysfs file is an action (write-only trigger) rather than an attribute. */
export function isActionFile(path: string): boolean {
  return ACTION_FILES.has(basename(path));
}

/**
 * The value that puts an attribute back: the kernel shows an empty `driver_override`
 * as "(null)" but clears it when "\n" is written.
 */
function restoreValue(path: string, previous: string): string {
  return basename(path) === "driver_override" && previous.trim() === "(null)" ? "\n" : previous;
}

export const sysfsWrite = defineOp<SysfsWriteArgs>({
  kind: "sysfs.write",
  schema: SysfsWriteArgs,
  pathArgs: [],
  describe: (a) => `Write ${JSON.stringify(a.value.trimEnd())} to "${a.path}"`,
  estimate: () => ({ bytes: 0, seconds: 0.01 }),
  permission: (a) => [
    { grant: "sysfs", path: a.path },
    ...(a.undo ?? []).map((u) => ({ grant: "sysfs" as const, path: u.path })),
  ],
  async capture(a) {
    if (isActionFile(a.path)) return { action: true };
    try {
      return { action: false, previous: await Deno.readTextFile(a.path) };
    } catch (error) {
      return { action: false, previous: null, error: String(error) };
    }
  },
  conflicts(a, before) {
    const b = before as { action: boolean; previous?: string | null; error?: string };
    if (!b.action && b.previous === null) return [`"${a.path}" cannot be read: ${b.error}`];
    return [];
  },
  async execute(a) {
    // The kernel acts on the write itself; sysfs files are never created or truncated.
    const file = await Deno.open(a.path, { write: true, create: false, truncate: true });
    try {
      await file.write(new TextEncoder().encode(a.value));
    } finally {
      file.close();
    }
    return { path: a.path, value: a.value };
  },
  simulate: (a) => ({ path: a.path, value: a.value, simulated: true }),
  inverse(a, before): OpRequest[] | null {
    if (a.undo) return a.undo.map((u) => ({ kind: "sysfs.write", args: u }));
    const b = before as { action: boolean; previous?: string | null };
    if (b.action || b.previous == null) return null;
    return [{
      kind: "sysfs.write",
      args: { path: a.path, value: restoreValue(a.path, b.previous) },
    }];
  },
});
