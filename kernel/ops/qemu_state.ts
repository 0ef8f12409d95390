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
import { argvNeeds } from "./run.ts";
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

/** What QEMU says of a migration (`query-migrate`). */
type MigrateInfo = {
  status?: string;
  "error-desc"?: string;
  "total-time"?: number;
  downtime?: number;
  ram?: { transferred?: number };
};

/** Waits for the migration to finish and gives QEMU's figures; throws its reason when it fails. */
async function migrated(socket: string, signal?: AbortSignal): Promise<MigrateInfo> {
  for (;;) {
    signal?.throwIfAborted();
    const info = await qmp(socket, "query-migrate") as MigrateInfo;
    if (info.status === "completed") return info;
    if (info.status === "failed" || info.status === "cancelled") {
      throw new Error(
        `QEMU's migration ${info.status}: ${info["error-desc"] ?? "no reason given"}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until a QEMU's monitor no longer answers (it quit). */
async function gone(socket: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (!(await qmp(socket, "query-status").then(() => true, () => false))) return;
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
    await gone(a.qmpSocket);
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

const MigrateArgs = z.strictObject({
  name: z.string().min(1),
  /** The running QEMU's monitor. */
  qmpSocket: z.string().min(1),
  /** Where the state goes: a QEMU waiting there (`tcp:HOST:PORT`, `unix:PATH`). */
  to: z.string().regex(/^(tcp|unix):.+/, 'expected "tcp:HOST:PORT" or "unix:PATH"').optional(),
  /** Or a new QEMU on this host: its command line (`-incoming defer`), started by the op. */
  local: z.strictObject({
    argv: z.array(z.string()).min(1),
    /** The new QEMU's monitor while it waits, and the socket the state passes through. */
    qmpSocket: z.string().min(1),
    channel: z.string().min(1),
    /** The VM's pid file: the old QEMU's, which the new one's replaces. */
    pidFile: z.string().min(1),
    /** Its pid file and sockets, each moved to where the old QEMU's were once that one quits. */
    moves: z.array(z.strictObject({ from: z.string().min(1), to: z.string().min(1) })).max(8),
    /** Host forwards, added once the old QEMU has let go of their ports (HMP hostfwd_add). */
    forwards: z.array(z.strictObject({ netdev: z.string().min(1), rule: z.string().min(1) })),
    /** The VNC address to move the display back to (QMP display-update). */
    vnc: z.strictObject({ host: z.string(), port: z.string() }).optional(),
  }).optional(),
}).refine((a) => (a.to === undefined) !== (a.local === undefined), {
  message: "expected either to (a waiting QEMU's URI) or local (a new QEMU here)",
});
type MigrateArgs = z.infer<typeof MigrateArgs>;

/**
 * `qemu.migrate`: a running VM's memory and devices, live, to another QEMU: one waiting at a URI
 * (another host), or a new QEMU on this host that takes the VM's place (its pid file, monitor,
 * console and agent sockets, forwards and display), as after a QEMU upgrade. The old QEMU quits
 * once the new one has it all; if the migration fails the old one goes on and the new one is
 * stopped. Not undone: the VM runs on, in the new process.
 */
export const qemuMigrate = defineOp<MigrateArgs>({
  kind: "qemu.migrate",
  schema: MigrateArgs as unknown as z.ZodType<MigrateArgs>,
  pathArgs: ["qmpSocket"],
  describe: (a) =>
    a.to
      ? `Migrate VM "${a.name}" live to the QEMU waiting at ${a.to}, then stop it here`
      : `Migrate VM "${a.name}" live to a new QEMU process (${
        a.local!.argv[0]
      }) that takes its place`,
  estimate: () => ({ bytes: 0, seconds: 5 }),
  permission: (a) => [
    { grant: "write", path: a.qmpSocket },
    ...(a.local
      ? [
        ...argvNeeds(a.local.argv),
        { grant: "write" as const, path: a.local.qmpSocket },
        { grant: "write" as const, path: a.local.channel },
        { grant: "write" as const, path: a.local.pidFile },
        ...a.local.moves.flatMap((m) => [
          { grant: "write" as const, path: m.from },
          { grant: "write" as const, path: m.to },
        ]),
      ]
      : []),
  ],
  capture: () => Promise.resolve(null),
  conflicts: () => [],
  async execute(a, env) {
    const started = Date.now();
    const local = a.local;
    const oldPid = local
      ? Number.parseInt(await Deno.readTextFile(local.pidFile).catch(() => ""), 10)
      : NaN;
    // The new QEMU's own sockets and pid file, and the channel: gone if the move fails.
    const scratch = local
      ? [local.qmpSocket, local.channel, ...local.moves.map((m) => m.from)]
      : [];
    if (local) {
      for (const path of scratch) await Deno.remove(path).catch(() => {});
      await env.host.run(local.argv, { timeoutMs: 60_000 });
      await qmp(local.qmpSocket, "migrate-incoming", { uri: `unix:${local.channel}` });
    }
    let info: MigrateInfo;
    try {
      await qmp(a.qmpSocket, "migrate", { uri: a.to ?? `unix:${local!.channel}` });
      info = await migrated(a.qmpSocket, env.signal);
    } catch (error) {
      // The VM goes on where it was; the new QEMU, if any, goes.
      await qmp(a.qmpSocket, "migrate_cancel").catch(() => {});
      await qmp(a.qmpSocket, "cont").catch(() => {});
      if (local) {
        await qmp(local.qmpSocket, "quit").catch(() => {});
        await gone(local.qmpSocket);
        for (const path of scratch) await Deno.remove(path).catch(() => {});
      }
      throw error;
    }
    await qmp(a.qmpSocket, "quit").catch(() => {});
    await gone(a.qmpSocket);
    // An exiting QEMU removes its pid file and sockets: the new one's move in after it is gone.
    for (let i = 0; Number.isInteger(oldPid) && i < 100; i++) {
      if (!(await Deno.stat(`/proc/${oldPid}`).then(() => true, () => false))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const warnings: string[] = [];
    if (local) {
      // The old QEMU removed its pid file and sockets as it quit: the new one's take their names.
      for (const move of local.moves) await Deno.rename(move.from, move.to);
      await Deno.remove(local.channel).catch(() => {});
      const socket = local.moves.find((m) => m.from === local.qmpSocket)?.to ?? local.qmpSocket;
      for (const f of local.forwards) {
        const said = await qmp(socket, "human-monitor-command", {
          "command-line": `hostfwd_add ${f.netdev} ${f.rule}`,
        });
        if (typeof said === "string" && said.trim()) {
          warnings.push(`forward ${f.rule}: ${said.trim()}`);
        }
      }
      if (local.vnc) {
        await qmp(socket, "display-update", {
          type: "vnc",
          addresses: [{ type: "inet", host: local.vnc.host, port: local.vnc.port }],
        }).catch((error) => warnings.push(`display: ${(error as Error).message}`));
      }
    }
    return {
      name: a.name,
      to: a.to ?? "local",
      totalMs: info!["total-time"] ?? Date.now() - started,
      downtimeMs: info!.downtime ?? null,
      transferredBytes: info!.ram?.transferred ?? null,
      warnings,
    };
  },
  simulate: (a) => ({ name: a.name, to: a.to ?? "local", simulated: true }),
  inverse: () => null,
});
