/**
 * `gini migrate NAME [--to URI]`: a running VM's memory and devices, live, to another QEMU.
 * Without `--to`, to a new QEMU process on this host that takes the VM's place (its pid file,
 * monitor, console, agent, forwards and display), as after a QEMU upgrade: QEMU's own
 * `-incoming defer` + `migrate-incoming`. With `--to tcp:HOST:PORT`, to a QEMU waiting there
 * (`gini start NAME --incoming tcp:0.0.0.0:PORT` on the other host, disks on shared storage).
 * A libvirt VM goes with `virsh migrate --live` to another libvirt (`--to qemu+ssh://HOST/system`).
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import {
  type CommandDefinition,
  type ContextKey,
  contextValue,
  type StageContext,
  type StageFn,
} from "../../workers/sdk.ts";
import type { VmDefinition } from "../qemu_setup/contracts.ts";
import {
  MIGRATION_URI,
  powerControl,
  type PowerState,
  qemuPid,
  reconcile,
  record,
  savedDefinition,
  VM_COMMAND,
} from "./_vm.ts";
import { usage } from "./_errors.ts";

/** `deploy.migrate`: what a migration did (or, in a dry run, would do). */
export type MigrateResult = {
  name: string;
  backend: "qemu" | "libvirt";
  /** "local" (a new QEMU on this host), a QEMU's URI, or a libvirt URI. */
  to: string;
  before: PowerState;
  /** The QEMU that runs the VM now (local), else null. */
  pid: number | null;
  totalMs: number | null;
  downtimeMs: number | null;
  transferredBytes: number | null;
  warnings: string[];
};
export const MIGRATE: ContextKey<MigrateResult> = "deploy.migrate";

/** A path as it appears inside a QEMU option value (commas doubled). */
const optPath = (path: string) => path.replaceAll(",", ",,");

/**
 * The new QEMU's command line for a local migration: the VM's own, waiting for its state, with
 * its pid file and sockets beside the old one's, without the host ports the old one holds (they
 * are added once it lets go), and its VNC display on a free one until it is moved back.
 */
export function incomingLaunch(def: VmDefinition) {
  const temp = (path: string) => join(def.paths.dir, `incoming-${path.split("/").at(-1)}`);
  const moved = [
    def.paths.qmpSocket,
    def.paths.serialSocket,
    def.paths.agentSocket,
    def.paths.pidFile,
  ]
    .filter(Boolean);
  const moves = moved.map((to) => ({ from: temp(to), to }));
  const argv = def.argv.map((arg, i) => {
    let out = arg;
    for (const { from, to } of moves) {
      if (out === to) out = from;
      out = out.replaceAll(`path=${optPath(to)},`, `path=${optPath(from)},`);
    }
    if (def.argv[i - 1] === "-netdev") out = out.replace(/,hostfwd=[^,]+/g, "");
    if (def.argv[i - 1] === "-vnc") out = `${out},to=99`;
    return out;
  });
  const forwards = def.nics.filter((n) => n.type === "user").flatMap((n) =>
    n.forwards.map((f) => ({
      netdev: n.id,
      rule: `${f.protocol}:${f.address}:${f.host}-:${f.guest}`,
    }))
  );
  return {
    argv: [...argv, "-incoming", "defer"],
    qmpSocket: temp(def.paths.qmpSocket),
    channel: join(def.paths.dir, "migrate.sock"),
    pidFile: def.paths.pidFile,
    moves,
    forwards,
    ...(def.display.type === "vnc"
      ? { vnc: { host: "127.0.0.1", port: String(5900 + (def.display.port ?? 0)) } }
      : {}),
  };
}

/** Why a VM cannot go to a new QEMU on this host, or null. */
function localRefusal(def: VmDefinition): string | null {
  if (def.passthrough.length) {
    return `it has passthrough devices (${
      def.passthrough.map((p) => p.address).join(", ")
    }), whose state QEMU cannot migrate`;
  }
  if (def.tpm.enabled) return "its TPM's state lives in swtpm, which this migration does not move";
  if (def.display.type === "spice" || def.display.type === "gtk") {
    return `its ${def.display.type} display cannot move to another process (VNC and none can)`;
  }
  return null;
}

const migrate: StageFn = async (ctx: StageContext) => {
  const command = ctx.get(VM_COMMAND)!;
  const name = String(command.args.name);
  const to = typeof command.flags.to === "string" && command.flags.to !== "local"
    ? command.flags.to
    : null;
  const def = await savedDefinition(ctx, name);
  const state = await powerControl(ctx, def).state();
  await reconcile(ctx, def, state);
  if (state === "stopped") {
    throw usage(
      `Cannot migrate VM "${name}": it is not running`,
      `Start it (gini start ${name}); a stopped VM's files can be copied as they are`,
    );
  }
  const result: MigrateResult = {
    name,
    backend: def.backend,
    to: to ?? "local",
    before: state,
    pid: null,
    totalMs: null,
    downtimeMs: null,
    transferredBytes: null,
    warnings: [],
  };
  if (def.backend === "libvirt") {
    if (!to || !/^[a-z+]+:\/\//.test(to)) {
      throw usage(
        `Cannot migrate libvirt VM "${name}" ${
          to ? `to "${to}"` : "on this host"
        }: --to takes another host's libvirt URI`,
        `For example: gini migrate ${name} --to qemu+ssh://HOST/system`,
      );
    }
    await ctx.op("run", {
      argv: ["virsh", "-c", def.libvirtUri, "migrate", "--live", "--persistent", name, to],
      timeoutMs: 3_600_000,
    });
    await record(ctx, def, "migrated-away", { to });
    ctx.set(MIGRATE, result);
    return;
  }
  if (to && !MIGRATION_URI.test(to)) {
    throw usage(
      `Cannot migrate VM "${name}": --to "${to}" is not a QEMU migration URI`,
      'Give "tcp:HOST:PORT" (where "gini start NAME --incoming tcp:0.0.0.0:PORT" waits) or "unix:/PATH"; without --to the VM moves to a new QEMU on this host',
    );
  }
  if (!to) {
    const refusal = localRefusal(def);
    if (refusal) {
      throw usage(
        `Cannot migrate VM "${name}" to a new QEMU: ${refusal}`,
        `Stop and start it instead: gini restart ${name}`,
      );
    }
  }
  const done = await ctx.op<{
    totalMs?: number;
    downtimeMs?: number | null;
    transferredBytes?: number | null;
    warnings?: string[];
  }>("qemu.migrate", {
    name,
    qmpSocket: def.paths.qmpSocket,
    ...(to ? { to } : { local: incomingLaunch(def) }),
  });
  // The new QEMU's, whose pid file took the old one's place (none when it went elsewhere).
  const pid = to || ctx.dryRun ? null : await qemuPid(def, "running");
  await record(ctx, def, to ? "migrated-away" : "migrated", { to: to ?? "local" });
  ctx.set(MIGRATE, {
    ...result,
    pid,
    totalMs: done.totalMs ?? null,
    downtimeMs: done.downtimeMs ?? null,
    transferredBytes: done.transferredBytes ?? null,
    warnings: done.warnings ?? [],
  });
};

export const migrateStages: Record<string, StageFn> = { migrate };

/** The text of `gini migrate`. */
function renderMigrate(view: Parameters<CommandDefinition["render"]>[0]) {
  const r = contextValue(view, MIGRATE)!;
  const where = r.to === "local" ? "a new QEMU process on this host" : r.to;
  if (view.dryRun) {
    return { text: `VM "${r.name}" is ${r.before}: gini would migrate it to ${where}`, data: r };
  }
  const figures = [
    r.totalMs === null ? null : `${(r.totalMs / 1000).toFixed(1)} s`,
    r.downtimeMs === null ? null : `${r.downtimeMs} ms paused`,
    r.transferredBytes === null ? null : `${Math.round(r.transferredBytes / 1024 ** 2)} MiB sent`,
  ].filter(Boolean);
  return {
    text: [
      `VM "${r.name}" migrated to ${where}${r.pid ? ` (pid ${r.pid})` : ""}${
        figures.length ? `: ${figures.join(", ")}` : ""
      }`,
      ...(r.to === "local"
        ? []
        : [`  it no longer runs here; its files stay (gini rm ${r.name} removes them)`]),
      ...r.warnings.map((w) => `  ! ${w}`),
    ].join("\n"),
    data: r,
  };
}

export const migrateCommands: Record<string, CommandDefinition> = {
  migrate: { render: renderMigrate },
};
