/**
 * `qemu.save` and `qemu.restore`: a running VM's whole state (memory and devices) to a file and
 * back, with QEMU's migration: `file:` on QEMU ≥ 8.2, `exec:cat` before it. Save pauses the vCPUs,
 * writes the state, and quits QEMU; restore feeds the state to a QEMU started with
 * `-incoming defer`, resumes it, and removes the file (a state is good for one restore: the disks
 * move on from there). Neither can be undone: the VM's memory is in the file, or running again.
 *
 * @module
 */
import { z } from "zod";
import { ConflictError } from "../errors.ts";
import { qmpCommand } from "../host/qmp.ts";
import { defineOp } from "./types.ts";

const StateArgs = z.strictObject({
  name: z.string().min(1),
  qmpSocket: z.string().min(1),
  file: z.string().min(1),
});
type StateArgs = z.infer<typeof StateArgs>;

const qmp = (socket: string, command: string, args?: Record<string, unknown>) =>
  qmpCommand(socket, command, args, 30_000);

/** The migration URI that writes (`to`) or reads the file, for this QEMU. */
async function uri(socket: string, file: string, direction: "to" | "from"): Promise<string> {
  const { qemu } = await qmp(socket, "query-version") as {
    qemu: { major: number; minor: number };
  };
  if (qemu.major > 8 || (qemu.major === 8 && qemu.minor >= 2)) return `file:${file}`;
  // QEMU runs exec: with /bin/sh -c: the path goes in single quotes.
  const quoted = `'${file.replaceAll("'", `'\\''`)}'`;
  return direction === "to" ? `exec:cat > ${quoted}` : `exec:cat ${quoted}`;
}

/** Waits for the migration to finish; throws QEMU's reason when it fails. */
async function migrated(socket: string, signal?: AbortSignal): Promise<void> {
  for (;;) {
    signal?.throwIfAborted();
    const info = await qmp(socket, "query-migrate") as { status?: string; "error-desc"?: string };
    if (info.status === "completed") return;
    if (info.status === "failed" || info.status === "cancelled") {
      throw new Error(
        `QEMU's migration ${info.status}: ${info["error-desc"] ?? "no reason given"}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

export const qemuSave = defineOp<StateArgs>({
  kind: "qemu.save",
  schema: StateArgs,
  pathArgs: ["qmpSocket", "file"],
  describe: (a) => `Save VM "${a.name}"'s memory and devices to "${a.file}" and stop it`,
  estimate: () => ({ bytes: 0, seconds: 5 }),
  permission: (a) => [{ grant: "write", path: a.qmpSocket }, { grant: "write", path: a.file }],
  capture: async (a) => ({ exists: await exists(a.file) }),
  conflicts: (a, before) =>
    (before as { exists: boolean }).exists ? [`"${a.file}" holds a saved state already`] : [],
  async execute(a, env, before) {
    if ((before as { exists: boolean }).exists) {
      throw new ConflictError(`Cannot save VM "${a.name}": "${a.file}" holds a saved state`, {
        hint: `Restore it first: gini restore ${a.name}`,
      });
    }
    await qmp(a.qmpSocket, "stop");
    try {
      await qmp(a.qmpSocket, "migrate", { uri: await uri(a.qmpSocket, a.file, "to") });
      await migrated(a.qmpSocket, env.signal);
    } catch (error) {
      // The VM goes on as it was; a partial file is no state.
      await Deno.remove(a.file).catch(() => {});
      await qmp(a.qmpSocket, "cont").catch(() => {});
      throw error;
    }
    const bytes = (await Deno.stat(a.file)).size;
    await qmp(a.qmpSocket, "quit").catch(() => {});
    for (let i = 0; i < 100; i++) {
      if (!(await qmp(a.qmpSocket, "query-status").then(() => true, () => false))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return { file: a.file, bytes };
  },
  simulate: (a) => ({ file: a.file, bytes: 0, simulated: true }),
  inverse: () => null,
});

export const qemuRestore = defineOp<StateArgs>({
  kind: "qemu.restore",
  schema: StateArgs,
  pathArgs: ["qmpSocket", "file"],
  describe: (a) => `Restore VM "${a.name}" from "${a.file}", resume it, and remove the file`,
  estimate: () => ({ bytes: 0, seconds: 5 }),
  permission: (a) => [{ grant: "write", path: a.qmpSocket }, { grant: "write", path: a.file }],
  capture: async (a) => ({ exists: await exists(a.file) }),
  conflicts: (a, before) =>
    (before as { exists: boolean }).exists ? [] : [`"${a.file}" holds no saved state`],
  async execute(a, env) {
    await qmp(a.qmpSocket, "migrate-incoming", { uri: await uri(a.qmpSocket, a.file, "from") });
    // A QEMU whose incoming migration fails exits: its monitor goes away with an error.
    for (;;) {
      env.signal?.throwIfAborted();
      const { status } = await qmp(a.qmpSocket, "query-status") as { status: string };
      if (status !== "inmigrate") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await qmp(a.qmpSocket, "cont");
    await Deno.remove(a.file);
    return { file: a.file };
  },
  simulate: (a) => ({ file: a.file, simulated: true }),
  inverse: () => null,
});
