/**
 * Journaling a live run (an {@linkcode OpObserver}), rolling back what a failed or
 * interrupted transaction applied, and the crash injection the recovery tests use.
 *
 * @module
 */
import type { Json, OpRequest } from "../../workers/protocol.ts";
import type { Grants } from "../ops/broker.ts";
import { OpEngine, type OpObserver, type OpRecord } from "../ops/engine.ts";
import type { OpEnv, OpKind } from "../ops/types.ts";
import { opKind } from "../ops/registry.ts";
import type { StartupEnv } from "../paths.ts";
import {
  Journal,
  journaledArgs,
  type JournalRecord,
  loadTransaction,
  type Transaction,
} from "./journal.ts";
import { lockState } from "./lock.ts";
import { onStopSignal } from "../signals.ts";
import { atomicCopy, blobPath } from "../ops/_fs.ts";
import { ConflictError } from "../errors.ts";
import { dirname } from "../../workers/path.ts";
import { isWithin } from "../ops/broker.ts";

function die(): never {
  // No cleanup on purpose: this is what a power cut or `kill -9` does.
  Deno.kill(Deno.pid, "SIGKILL");
  throw new Error("unreachable");
}

/** Results worth keeping for `gini journal verify`: hashes of what fs ops produced. */
function keep(record: OpRecord): Json | undefined {
  if (record.kind === "run" || record.kind === "qmp") return undefined;
  return record.result ?? undefined;
}

/**
 * Saves, streamed, the content each `fs.restore` in an inverse will need, as a blob named by its
 * sha256. A file that changed since it was captured is refused before the op runs.
 */
async function saveBackups(stateDir: string, inverse: OpRequest[] | null): Promise<void> {
  for (const op of inverse ?? []) {
    if (op.kind !== "fs.restore") continue;
    const { path, sha256 } = op.args as { path: string; sha256: string };
    const blob = blobPath(stateDir, sha256);
    try {
      await Deno.lstat(blob);
      // Saved by an earlier run: marked fresh, so that a prune running now leaves it.
      const now = new Date();
      await Deno.utime(blob, now, now);
      continue;
    } catch { /* not saved yet */ }
    await Deno.mkdir(dirname(blob), { recursive: true });
    const copied = await atomicCopy(path, blob, 0o600);
    if (copied.sha256 !== sha256) {
      await Deno.remove(blob).catch(() => {});
      throw new ConflictError(
        `Cannot change "${path}": it changed while Gini was planning (expected sha256 ${sha256}, found ${copied.sha256})`,
        { hint: "Run the command again" },
      );
    }
  }
}

/**
 * Journals every changing op of a live run. Crash injection counts changes, not op numbers
 * (read-only queries of concurrent stages may interleave differently from one run to the next):
 * `GINI_CRASH_AFTER_OP=N` kills the process after the N-th change.
 */
export function journalObserver(
  journal: Journal,
  startup: Pick<StartupEnv, "crash" | "dirs">,
  afterChange?: (index: number) => Promise<void>,
): OpObserver {
  const crash = startup.crash;
  const indexOf = new Map<number, number>();
  return {
    async beforeExecute(record) {
      if (record.readOnly) return;
      indexOf.set(record.seq, indexOf.size + 1);
      await saveBackups(startup.dirs.state, record.inverse);
      await journal.append({
        type: "intent",
        seq: record.seq,
        stage: record.stage,
        plugin: record.plugin,
        kind: record.kind,
        args: journaledArgs(record.args),
        description: record.description,
        inverse: record.inverse,
      });
    },
    async afterExecute(record) {
      if (record.readOnly) return;
      const index = indexOf.get(record.seq);
      if (crash.beforeDone === index) die();
      const result = keep(record);
      await journal.append({
        type: "done",
        seq: record.seq,
        ok: record.status === "done",
        ...(record.error ? { error: record.error } : {}),
        ...(record.cancelled ? { cancelled: true } : {}),
        ...(result === undefined ? {} : { result }),
      } as never);
      if (crash.afterOp === index) die();
      if (index !== undefined) await afterChange?.(index);
    },
  };
}

/** Inverses made safe to run twice (an interrupted recovery is simply run again). */
function idempotent(op: OpRequest): OpRequest {
  if (op.kind === "fs.remove") {
    return { kind: op.kind, args: { ...(op.args as Record<string, Json>), missingOk: true } };
  }
  return op;
}

/** The kernel's own grants for undoing what plugins did. */
async function recoveryGrants(ops: OpRequest[]): Promise<Grants> {
  // Whatever programs the inverses themselves need (lvremove for lvm.remove, argv[0] for run).
  const kinds = await Promise.all(ops.map((op) => opKind(op.kind)));
  const programs = ops.flatMap((op, i) => {
    const kind = kinds[i] as OpKind<Record<string, Json>> | undefined;
    const parsed = kind?.schema.safeParse(op.args);
    if (!kind || !parsed?.success) return [];
    return kind.permission(parsed.data).flatMap((need) =>
      need.grant === "run" ? [need.program] : []
    );
  });
  return {
    plugin: "kernel:recovery",
    write: ["/"],
    read: ["/"],
    run: new Set(programs),
    lvm: true,
    download: [],
    requestFiles: false,
    sysfs: ["/**"],
    sysfsRoot: null,
  };
}

/** What a rollback did. */
export interface RollbackReport {
  undone: { seq: number; description: string; inverse: string[] }[];
  irreversible: { seq: number; description: string }[];
  failed: { seq: number; description: string; error: string }[];
}

/**
 * Undoes, newest first, the ops a transaction applied (and those in flight, whose inverses are
 * computed from the state before it and is safe whether or not it happened). Each undone op is
 * journaled, so an interrupted rollback continues where it stopped.
 */
export async function rollback(
  tx: Transaction,
  opEnv: OpEnv,
  options: { dryRun: boolean; journal?: Journal },
): Promise<RollbackReport> {
  // An op in flight is undone too: its inverse is computed from the state before it and is safe
  // whether or not it happened (a rebuild is rerun, a created path removed if it is there).
  const all = [...tx.applied, ...tx.inFlight];
  const isRebuild = (step: (typeof all)[number]) =>
    step.kind === "run" && (step.args as { rebuild?: boolean }).rebuild === true;
  // Newest first; rebuilds last, in their original order and once each, so they see the
  // restored files.
  const seen = new Set<string>();
  const rebuilds = all.filter(isRebuild).sort((a, b) => a.seq - b.seq).filter((step) => {
    const key = JSON.stringify((step.args as { argv: string[] }).argv);
    return seen.has(key) ? false : (seen.add(key), true);
  });
  const steps = [...all.filter((s) => !isRebuild(s)).sort((a, b) => b.seq - a.seq), ...rebuilds];
  const engine = new OpEngine(options.dryRun ? "dry" : "live", opEnv);
  // A rollback is not stopped half-way by a signal (each undo is journaled, but stopping would
  // leave programs it started running and the host half-restored): it finishes, then the
  // command ends as it would have.
  const deferSignals = options.dryRun ? undefined : onStopSignal((signal) =>
    opEnv.report?.({
      type: "warn",
      text: `${signal}: finishing the rollback in progress first (each undo is journaled)`,
    })
  );
  try {
    return await undoSteps(steps, engine, opEnv, options);
  } finally {
    deferSignals?.();
  }
}

async function undoSteps(
  steps: Extract<JournalRecord, { type: "intent" }>[],
  engine: OpEngine,
  opEnv: OpEnv,
  options: { dryRun: boolean; journal?: Journal },
): Promise<RollbackReport> {
  const report: RollbackReport = { undone: [], irreversible: [], failed: [] };
  // Paths whose undo failed: a folder the run made that still holds one is kept, and stays to
  // be undone by the next attempt, rather than being left behind as "not empty".
  const stuck: string[] = [];
  for (const step of steps) {
    if (step.inverse === null) {
      report.irreversible.push({ seq: step.seq, description: step.description });
      continue;
    }
    const holds = folderRemoval(step.inverse) &&
      stuck.find((p) => isWithin(p, (step.inverse![0]!.args as { path: string }).path));
    if (holds) {
      report.failed.push({
        seq: step.seq,
        description: step.description,
        error: `it still holds "${holds}", which could not be undone`,
      });
      stuck.push((step.inverse[0]!.args as { path: string }).path);
      continue;
    }
    const ops = step.inverse.map(idempotent);
    try {
      for (const op of ops) {
        await engine.request(await recoveryGrants(ops), `rollback:${step.seq}`, op);
      }
      if (!options.dryRun) await options.journal?.append({ type: "undone", seq: step.seq });
      if (!options.dryRun && opEnv.startup.crash.afterUndo === report.undone.length + 1) die();
      report.undone.push({
        seq: step.seq,
        description: step.description,
        inverse: engine.records.slice(-ops.length).map((r) => r.description),
      });
    } catch (error) {
      report.failed.push({
        seq: step.seq,
        description: step.description,
        error: error instanceof Error ? error.message : String(error),
      });
      stuck.push(...stepPaths(step.args));
    }
  }
  return report;
}

/** Whether an inverse removes a folder only if it is empty (the undo of `fs.mkdir`). */
function folderRemoval(inverse: OpRequest[]): boolean {
  return inverse.length === 1 && inverse[0]!.kind === "fs.remove" &&
    (inverse[0]!.args as { onlyIfEmpty?: boolean }).onlyIfEmpty === true;
}

/** The host paths an op named (its path, destination, or the files a `run` creates). */
function stepPaths(args: Json): string[] {
  const a = args as { path?: unknown; to?: unknown; creates?: unknown };
  return [a.path, a.to, ...(Array.isArray(a.creates) ? a.creates : [])].filter((p): p is string =>
    typeof p === "string"
  );
}

/** Rolls back a transaction's log by file, journaling into it; closes it with abort when clean. */
export async function rollbackFile(
  file: string,
  opEnv: OpEnv,
  dryRun: boolean,
): Promise<RollbackReport> {
  if (dryRun) return await rollback(await loadTransaction(file), opEnv, { dryRun: true });
  // Refused while another live gini holds the state folder (it may be running this very one);
  // the log is read once the lock is held, so no other process is appending to it.
  const id = file.split("/").at(-1)!.replace(/\.wal$/, "");
  const lock = lockState(opEnv.startup.dirs.state, `recover --rollback ${id}`);
  lock.setTransaction(id);
  let journal: Journal | undefined;
  try {
    const tx = await loadTransaction(file);
    journal = await Journal.reopen(file);
    const report = await rollback(tx, opEnv, { dryRun: false, journal });
    if (report.failed.length === 0) await journal.append({ type: "abort", reason: "rolled back" });
    return report;
  } finally {
    journal?.close();
    lock.release();
  }
}
