/**
 * A VM deploy made, found by name: its saved definition, whether it runs, how to power it off,
 * and its history (`history.jsonl`, sealed records the kernel's `history.append` op writes).
 * Shared by the stages of `up`, the lifecycle commands and the verbs deploy serves.
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import { type ContextKey, type StageContext, TARGET_VM } from "../../workers/sdk.ts";
import { type LogRecord, type VerifiedLog, verifyLog } from "../../workers/event_log.ts";
import type { Json } from "../../workers/protocol.ts";
import type { VmDefinition } from "../qemu_setup/contracts.ts";
import { startScript } from "../qemu_setup/start_script.ts";
import { own } from "./_files.ts";
import { usage } from "./_errors.ts";

/** `session.command` of deploy's commands that name a VM (`gini start NAME`, `stop`, …). */
export type VmCommand = {
  plugin: string;
  path: string;
  args: Record<string, Json>;
  flags: Record<string, Json>;
};
export const VM_COMMAND: ContextKey<VmCommand> = "session.command";

/**
 * The VM a run names and what to do with it: a deploy command's NAME (the action is the
 * command's first word: "start", "snapshot"), or the VM of a kernel verb (`down` stops, `rm`).
 */
export function target(ctx: StageContext): { name: string; timeoutMs: number; action: string } {
  const command = ctx.get(VM_COMMAND);
  if (command?.plugin === "deploy" && typeof command.args.name === "string") {
    const seconds = command.flags.timeout;
    return {
      name: command.args.name,
      timeoutMs: typeof seconds === "number" ? seconds * 1000 : 60_000,
      action: command.path.split(" ")[0]!,
    };
  }
  const verb = ctx.get(TARGET_VM);
  if (!verb) throw new Error("deploy: no VM named (session.command or session.target_vm)");
  return { name: verb.name, timeoutMs: verb.timeoutMs ?? 60_000, action: "stop" };
}

/** The saved definition of the VM `name`, or null when Gini made none. */
export async function findDefinition(
  ctx: StageContext,
  name: string,
): Promise<VmDefinition | null> {
  try {
    return JSON.parse(
      await own.readText(`${ctx.dirs.data}/vms/${name}/vm.json`),
    ) as VmDefinition;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** The saved definition of the VM `name`; a usage error naming the VMs there are when none. */
export async function savedDefinition(ctx: StageContext, name: string): Promise<VmDefinition> {
  const def = await findDefinition(ctx, name);
  if (def) return def;
  const known = await own.readDir(`${ctx.dirs.data}/vms`).catch(() => [] as string[]);
  throw usage(
    `Cannot find VM "${name}": Gini made no VM of that name`,
    known.length ? `VMs: ${known.sort().join(", ")}` : 'Create one with "gini up vm.toml"',
  );
}

/** QEMU's run state ("running", "paused", "shutdown"…), or null when its monitor is gone. */
export async function qmpStatus(ctx: StageContext, def: VmDefinition): Promise<string | null> {
  try {
    const reply = await ctx.op<{ status?: string; simulated?: boolean }>("qmp", {
      socket: def.paths.qmpSocket,
      command: "query-status",
      timeoutMs: 3000,
    });
    return reply.status ?? "running";
  } catch {
    return null;
  }
}

/**
 * What a VM is doing now, in Gini's words. "crashed": its guest's kernel panicked and said so
 * through the pvpanic device; QEMU keeps it paused, memory and all, until it is stopped.
 */
export type PowerState = "running" | "paused" | "stopped" | "crashed";

/** Where QEMU sends or takes a migration: `tcp:HOST:PORT` (an IPv6 host in brackets) or `unix:/PATH`. */
export const MIGRATION_URI = /^(tcp:([^:\[\]]+|\[[0-9a-fA-F:]+\]):\d{1,5}|unix:\/.+)$/;

/** A QEMU run state (`query-status`; null when its monitor is gone) in Gini's words. */
export function powerState(status: string | null): PowerState {
  return status === null
    ? "stopped"
    : status === "paused"
    ? "paused"
    : status === "guest-panicked"
    ? "crashed"
    : "running";
}

/** How to see, ask and force a VM's power state, per backend. */
export function powerControl(ctx: StageContext, def: VmDefinition) {
  if (def.backend === "libvirt") {
    const virsh = (...args: string[]) => ["virsh", "-c", def.libvirtUri, ...args];
    const state = async (): Promise<PowerState> => {
      const out = (await ctx.op<{ stdout: string }>("run", {
        argv: virsh("domstate", def.name),
        allowFailure: true,
      })).stdout.trim();
      return out === "running"
        ? "running"
        : out === "paused"
        ? "paused"
        : out === "crashed"
        ? "crashed"
        : "stopped";
    };
    return {
      state,
      running: async () => (await state()) !== "stopped",
      shutdown: () => ctx.op("run", { argv: virsh("shutdown", def.name), allowFailure: true }),
      force: () => ctx.op("run", { argv: virsh("destroy", def.name) }),
      pause: () => ctx.op("run", { argv: virsh("suspend", def.name) }),
      resume: () => ctx.op("run", { argv: virsh("resume", def.name) }),
    };
  }
  const qmp = (command: string) => ctx.op("qmp", { socket: def.paths.qmpSocket, command });
  const state = async (): Promise<PowerState> => powerState(await qmpStatus(ctx, def));
  const gone = async () => (await qmpStatus(ctx, def)) === null;
  return {
    state,
    running: async () => !(await gone()),
    shutdown: () => qmp("system_powerdown"),
    force: async () => {
      await qmp("quit");
      // "quit" answers before QEMU has exited; wait until its monitor is gone.
      for (let i = 0; i < 40 && !ctx.dryRun && !(await gone()); i++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    },
    pause: () => qmp("stop"),
    resume: () => qmp("cont"),
  };
}

/**
 * Writes the files a VM is started from: start.sh (its QEMU command), vm.xml (`domainXml`, its
 * libvirt domain) and vm.json (the definition deploy reads back), each an op undone by putting
 * the old file back.
 */
export async function writeDefinition(
  ctx: StageContext,
  def: VmDefinition,
  domainXml: string,
): Promise<void> {
  await ctx.op("fs.write", {
    path: def.paths.startScript,
    content: startScript(def),
    mode: 0o755,
    overwrite: true,
  });
  await ctx.op("fs.write", { path: def.paths.domainXml, content: domainXml, overwrite: true });
  await ctx.op("fs.write", {
    path: def.paths.definition,
    content: JSON.stringify(def, null, 2) + "\n",
    overwrite: true,
  });
}

/** The pid of a running VM's QEMU, from its pid file (null under libvirt, or when stopped). */
export async function qemuPid(def: VmDefinition, state: PowerState): Promise<number | null> {
  if (state === "stopped" || def.backend !== "qemu") return null;
  const pid = Number.parseInt(await own.readText(def.paths.pidFile).catch(() => ""), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** Where `gini save` puts a VM's memory and devices (QEMU backend). */
export const savedStateFile = (def: VmDefinition): string => join(def.paths.dir, "saved.state");

/** Whether the VM has a saved state to restore. */
export async function hasSavedState(_ctx: StageContext, def: VmDefinition): Promise<boolean> {
  return def.backend === "qemu" &&
    await own.stat(savedStateFile(def)).then(() => true, () => false);
}

/** The VM's history file. */
export const historyFile = (def: VmDefinition): string => join(def.paths.dir, "history.jsonl");

/** Appends an event to the VM's history (a journaled op: planned in a dry run). */
export async function record(
  ctx: StageContext,
  def: VmDefinition,
  event: string,
  detail: Json = null,
): Promise<void> {
  await ctx.op("history.append", { path: historyFile(def), event, detail });
}

/** The VM's history, checked; empty for a VM made before histories were kept. */
export async function readHistory(_ctx: StageContext, def: VmDefinition): Promise<VerifiedLog> {
  const text = await own.readText(historyFile(def)).catch(() => "");
  return await verifyLog(text);
}

/** Events that leave the VM running, and those that end it. */
const STARTS = new Set(["started", "restored"]);
const ENDS = new Set([
  "stopped",
  "killed",
  "crashed",
  "exited",
  "saved",
  "removed",
  "migrated-away",
]);

/**
 * The state the history says the VM is in (the event-sourced view): the last start or end
 * that was not undone, and when the VM last started.
 */
export function replay(
  records: LogRecord[],
): { running: boolean; since: string | null; crashed: boolean } {
  const undone = new Set(
    records.filter((r) => r.event === "undone").map((r) =>
      (r.detail as { seq?: number } | null)?.seq
    ),
  );
  let running = false;
  let since: string | null = null;
  // A crash is recorded once, and stays the news until the VM ends or starts again.
  let crashed = false;
  for (const r of records) {
    if (undone.has(r.seq)) continue;
    if (STARTS.has(r.event)) {
      if (!running || r.event === "restarted") since = r.at;
      running = true;
      crashed = false;
    } else if (ENDS.has(r.event)) {
      running = false;
      since = null;
      crashed = false;
    } else if (r.event === "crashed") crashed = true;
  }
  return { running, since, crashed };
}

/**
 * Reconciles the history with the VM as it is: a VM the history says runs but whose QEMU is gone
 * ended without Gini (a crash, a kill, the guest powering off): that is recorded as "exited", with
 * what QEMU's last serial lines or nothing tell. Returns the checked history.
 */
export async function reconcile(
  ctx: StageContext,
  def: VmDefinition,
  state: PowerState,
): Promise<VerifiedLog> {
  const log = await readHistory(ctx, def);
  if (log.broken) return log;
  if (state === "stopped" && replay(log.records).running) {
    await record(ctx, def, "exited", { seen: "not running at the next call" });
  } else if (state === "crashed" && !replay(log.records).crashed) {
    await record(ctx, def, "crashed", {
      seen: "its kernel panicked (pvpanic); QEMU keeps it paused",
    });
  }
  return log;
}
