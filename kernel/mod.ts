/**
 * The kernel's surface: load plugins, run their stages through the op path, and
 * report. Everything that changes the host goes through here.
 *
 * @example
 * ```ts
 * import { createUi, loadPlugins, resolveStartupEnv, runStages } from "./kernel/mod.ts";
 *
 * const env = resolveStartupEnv({}, Deno.env.toObject(), Deno.cwd());
 * const loaded = await loadPlugins(env, []);
 * const outcome = await runStages({ env, loaded, ui: createUi(), dryRun: true });
 * ```
 *
 * @module
 */
import {
  defaultSources,
  discoverPlugins,
  saveCheckedManifests,
  SYSTEM_PLUGIN_DIR,
} from "./plugins/discover.ts";
import { join } from "../workers/path.ts";
import { type Resolution, resolvePlugins } from "./plugins/resolve.ts";
import { lockPath, type StartupEnv } from "./paths.ts";
import { prepareRanges } from "./plugins/ranges.ts";
import { OpEngine, type OpObserver } from "./ops/engine.ts";
import { approvalGuard, type ApprovedPlan, approvedPlan } from "./stages/approval.ts";
import { HostRunner } from "./host/run.ts";
import { Pipeline, type PipelineResult } from "./stages/pipeline.ts";
import { Journal, loadTransaction, type Replay, type Transaction } from "./journal/journal.ts";
import { journalObserver, rollback, type RollbackReport } from "./journal/recovery.ts";
import { lockState, type StateLock } from "./journal/lock.ts";
import { onStopSignal, STOP_SIGNALS, type StopSignal } from "./signals.ts";
import type { OpEnv, Terminal } from "./ops/types.ts";
import { buildReport, type PlanReport, renderReport } from "./stages/dry_run.ts";
import type { Ui } from "./ui.ts";
import type { Json, RenderOutput, RenderView } from "../workers/protocol.ts";
import { GiniError, InterruptedError, UsageError } from "./errors.ts";
import { importLater } from "./lazy.ts";

export * from "./errors.ts";
export * from "./paths.ts";
export * from "./ui.ts";
export type { Manifest } from "./plugins/manifest.ts";
export type { Resolution } from "./plugins/resolve.ts";
export type { PlanReport } from "./stages/dry_run.ts";
export type { Terminal } from "./ops/types.ts";
export { renderReport } from "./stages/dry_run.ts";
export { type ApprovedPlan, approvedPlan, PlanChangedError } from "./stages/approval.ts";

/**
 * Discovers and resolves plugins: the core ones, the approved third-party ones (exactly the
 * approved bytes), and the source folders of `--plugin-dir`. A plugin on disk that is not
 * approved, or whose bytes changed, is not loaded: it is listed in `skipped` with the reason.
 * Throws with every problem of the loaded ones at once.
 */
export async function loadPlugins(
  env: StartupEnv,
  extraDirs: string[],
  systemDir?: string,
): Promise<Resolution> {
  const discovery = await discoverPlugins(
    defaultSources(extraDirs),
    join(env.dirs.state, "manifests.json"),
  );
  // Checking installed packages loads the unzipper and the approvals' schemas: only when there
  // can be one.
  const installed = mayHaveInstalled(env, systemDir)
    ? await (await importLater<typeof import("./plugins/installed.ts")>(
      "./plugins/installed.ts",
      import.meta.url,
    )).loadInstalled(env, systemDir)
    : { manifests: [], refused: [] };
  const all = [...discovery.manifests, ...installed.manifests];
  await prepareRanges(all);
  const resolution = resolvePlugins(all, discovery.errors);
  resolution.skipped.push(
    ...installed.refused.map((r) => ({ plugin: r.plugin, reason: r.reason })),
  );
  return resolution;
}

/**
 * Whether a third-party plugin may be installed: there is an approvals file, or something in a
 * plugins folder (hand-placed folders are reported even when not approved).
 */
function mayHaveInstalled(env: StartupEnv, systemDir = SYSTEM_PLUGIN_DIR): boolean {
  const absent = (error: unknown) => error instanceof Deno.errors.NotFound;
  try {
    Deno.lstatSync(lockPath(env));
    return true;
  } catch (error) {
    if (!absent(error)) return true;
  }
  for (const dir of [systemDir, join(env.dirs.data, "plugins")]) {
    try {
      for (const _ of Deno.readDirSync(dir)) return true;
    } catch (error) {
      if (!absent(error)) return true;
    }
  }
  return false;
}

/** What op kinds need from the kernel: its start-up environment, the program runner, the UI. */
export function createOpEnv(env: StartupEnv, ui: Ui, requestDir?: string): OpEnv {
  return {
    startup: env,
    host: new HostRunner(env.path),
    report: (m) => ui.message(m),
    ...(requestDir ? { requestDir } : {}),
  };
}

/** Options of {@linkcode runStages}. */
export interface RunStagesOptions {
  env: StartupEnv;
  loaded: Resolution;
  ui: Ui;
  dryRun: boolean;
  targets?: string[];
  seeds?: Record<string, Json>;
  stageTimeoutMs?: number;
  /** The folder of the user's request file (a VM file), for `file.read`. */
  requestDir?: string;
  /** The command, recorded in the journal of a live run. */
  command?: string;
  /** Extra plugin folders the run loaded, recorded so that `gini recover --resume` loads them. */
  pluginDirs?: string[];
  /** What `gini recover` does by default if this run is interrupted (rollback unless told). */
  recoverBy?: Replay["recoverBy"];
  /**
   * The plan the user approved (a confirmed command): every change is checked against it before
   * it starts, and one it did not show is refused.
   */
  approved?: ApprovedPlan;
  /**
   * The user's terminal, given to the interactive ops of the run (`gini console`, `ssh`, `exec`);
   * without it they are described and simulated.
   */
  terminal?: Terminal;
  /** Continue an interrupted transaction instead of starting one (`gini recover --resume`). */
  resume?: { file: string; completed: string[]; context: Record<string, Json>; lastSeq: number };
  /**
   * A plugin that renders the command's output once the stages succeed, before its worker ends:
   * the view lacks only the context and the plan, which the run supplies.
   */
  render?: {
    plugin: string;
    command: string;
    view: Omit<RenderView, "context" | "plan" | "report">;
  };
}

/** What a run produced. */
export interface RunOutcome {
  result: PipelineResult;
  report: PlanReport;
  /** The plugin's rendering of the output (`render`), when it renders one. */
  output?: RenderOutput;
}

/**
 * Test hook: raise a real SIGINT after change N (GINI_INTERRUPT_AFTER_OP), as Ctrl-C would. No
 * change starts until the handler has run, so the run stops at N plus whatever was in flight.
 */
async function interruptAfter(engine: OpEngine, index: number, wanted: number | undefined) {
  if (wanted !== index) return;
  Deno.kill(Deno.pid, "SIGINT");
  await engine.hold((async () => {
    for (let waited = 0; waited < 30_000 && !engine.interrupted; waited += 5) {
      await new Promise((r) => setTimeout(r, 5));
    }
  })());
}

/** Runs stages (all, or targets and what they need) in dry-run or live mode. */
export async function runStages(options: RunStagesOptions): Promise<RunOutcome> {
  // A live run is one transaction: every change is journaled before it happens, and a failure
  // rolls back what the run changed. Ctrl-C stops it between two ops, to be resumed.
  const { env } = options;
  const replay: Replay = {
    targets: options.targets ?? null,
    seeds: options.seeds ?? {},
    requestDir: options.requestDir ?? null,
    hostRoot: env.hostRoot,
    dirs: { config: env.dirs.config, data: env.dirs.data, cache: env.dirs.cache },
    pluginDirs: options.pluginDirs ?? [],
    recoverBy: options.recoverBy ?? "rollback",
  };
  // One live transaction per state folder: a second gini is refused, naming the first.
  const lock: StateLock | undefined = options.dryRun
    ? undefined
    : lockState(env.dirs.state, options.command ?? "run");
  let journal: Journal | undefined;
  try {
    journal = options.dryRun
      ? undefined
      : options.resume
      ? await Journal.reopen(options.resume.file)
      : await Journal.begin(env.dirs.state, options.command ?? "run", replay);
    if (journal) lock?.setTransaction(journal.id);
    // A live run keeps the manifests it checked for the next command; nothing else writes them.
    if (journal) saveCheckedManifests();
    if (journal && options.resume) {
      await journal.append({ type: "resume", at: new Date().toISOString() });
    }
  } catch (error) {
    lock?.release();
    throw error;
  }
  try {
    return await runInTransaction(options, journal);
  } finally {
    lock?.release();
  }
}

async function runInTransaction(
  options: RunStagesOptions,
  journal: Journal | undefined,
): Promise<RunOutcome> {
  const guard = options.approved ? approvalGuard(options.approved) : undefined;
  // The checkpoint callback needs the pipeline, which needs the engine, which needs opEnv.
  const pipelineRef: { current?: Pipeline } = {};
  const opEnv = transactionOpEnv(options, journal, pipelineRef);
  const engine = createEngine(options, opEnv, journal, guard);
  const pipeline = createPipeline(options, engine);
  pipelineRef.current = pipeline;
  const stopper = createStopper(engine, pipeline, options.ui);
  const stopListening = journal ? onStopSignal(stopper.onSignal) : undefined;
  let result: PipelineResult | undefined;
  try {
    result = await pipeline.run();
    // Whatever a plugin made of the refusal it got, the run failed because of it.
    const refusal = guard?.refusal();
    if (refusal) result = { ...result, ok: false, error: refusal };
    const report = buildReport(engine, result.stages);
    if (options.dryRun) report.digest = approvedPlan(report).digest;
    const unused = guard?.unused() ?? [];
    if (result.ok && unused.length) {
      options.ui.warn(
        `${unused.length} change(s) of the approved plan were not needed: ${
          unused.map((op) => op.description).join("; ")
        }`,
      );
    }
    const output = result.ok && options.render
      ? await renderOutput(pipeline, options.render, result, report, options.ui)
      : undefined;
    return { result, report, ...(output ? { output } : {}) };
  } finally {
    await pipeline.close();
    if (journal) {
      await closeJournal(journal, { result, engine, opEnv, options, stopper, stopListening });
    }
  }
}

/** The op environment of a run; a live one can checkpoint a completed stage's context keys. */
function transactionOpEnv(
  options: RunStagesOptions,
  journal: Journal | undefined,
  pipelineRef: { current?: Pipeline },
): OpEnv {
  return {
    ...createOpEnv(options.env, options.ui, options.requestDir),
    ...(options.terminal ? { terminal: options.terminal } : {}),
    ...(journal
      ? {
        checkpoint: async (stage: string) => {
          const keys = pipelineRef.current!.stageWrites(stage);
          await journal.append({ type: "checkpoint", stage, keys });
          return { stage, saved: true, keys: Object.keys(keys) };
        },
      }
      : {}),
  };
}

/** The op engine of a run: dry, or live with every change checked and journaled. */
function createEngine(
  options: RunStagesOptions,
  opEnv: OpEnv,
  journal: Journal | undefined,
  guard: OpObserver | undefined,
): OpEngine {
  const { env } = options;
  // Observers see only executed ops, so a dry run (which executes none that change anything) has none.
  const engine: OpEngine = new OpEngine(
    options.dryRun ? "dry" : "live",
    opEnv,
    guarded(
      guard,
      journal
        ? journalObserver(
          journal,
          env,
          (index) => interruptAfter(engine, index, env.crash.interruptAfter),
        )
        : {},
    ),
    options.resume ? { firstSeq: options.resume.lastSeq + 1 } : {},
  );
  return engine;
}

/** The pipeline of a run, resumed from its checkpoints' context when it continues one. */
function createPipeline(options: RunStagesOptions, engine: OpEngine): Pipeline {
  return new Pipeline({
    resolution: options.loaded,
    env: options.env,
    engine,
    ui: options.ui,
    ...(options.targets ? { targets: options.targets } : {}),
    seeds: { ...options.seeds, ...options.resume?.context },
    ...(options.stageTimeoutMs ? { stageTimeoutMs: options.stageTimeoutMs } : {}),
    ...(options.resume ? { completed: options.resume.completed } : {}),
  });
}

/** A run's answer to stop signals, and the first signal it got. */
interface Stopper {
  stoppedBy: StopSignal | undefined;
  onSignal(signal: StopSignal): void;
}

/**
 * The kernel owns its signals: Ctrl-C lets the change in progress finish, SIGTERM and SIGHUP
 * (and a second signal) cancel it, journaled; then every worker is ended, whatever listeners
 * its plugin registered, and the run stops with 128 + the signal's number.
 */
function createStopper(engine: OpEngine, pipeline: Pipeline, ui: Ui): Stopper {
  const stopper: Stopper = {
    stoppedBy: undefined,
    onSignal: (signal) => {
      if (signal === "SIGINT" && !stopper.stoppedBy) {
        stopper.stoppedBy = signal;
        engine.interrupt("interrupted by Ctrl-C");
        ui.warn("Interrupted: finishing the operation in progress, then stopping");
        void engine.settled().then(() => pipeline.close(`the run was interrupted by ${signal}`));
        return;
      }
      stopper.stoppedBy ??= signal;
      ui.warn(
        `Stopping on ${signal}: cancelling the operation in progress (it is journaled either way)`,
      );
      void engine.cancelAll(`stopped by ${signal}`).then(() =>
        pipeline.close(`the run was stopped by ${signal}`)
      );
    },
  };
  return stopper;
}

/** What closing a run's journal needs to know of the run. */
interface RunEnd {
  result: PipelineResult | undefined;
  engine: OpEngine;
  opEnv: OpEnv;
  options: RunStagesOptions;
  stopper: Stopper;
  stopListening: (() => void) | undefined;
}

/**
 * Ends a live run's transaction: commits a run that succeeded, leaves an interrupted one open
 * (throwing InterruptedError), and rolls back a failed one.
 */
async function closeJournal(journal: Journal, run: RunEnd): Promise<void> {
  const { result, engine, options } = run;
  // A run that asked for no change (a failed validation, a query) leaves no log behind; a
  // resumed one keeps the log it continues.
  const changedNothing = !options.resume && !engine.interrupted &&
    engine.records.every((r) => r.readOnly);
  try {
    // Ctrl-C after the last change of a run that completed changes nothing: it commits.
    if (result?.ok) await journal.append({ type: "commit" });
    else if (engine.interrupted) {
      // Left incomplete on purpose: everything that ran is journaled, nothing is half-done.
      throw await interruptedError(journal, options.command, run.stopper);
    } else {
      await rollbackFailedRun(journal, run.opEnv, result?.error?.message, options.ui);
    }
  } finally {
    journal.close();
    // Until the journal's last record: a signal before it must not end the process.
    run.stopListening?.();
    if (changedNothing) await Deno.remove(journal.file).catch(() => {});
  }
}

/** How far an interrupted run got, and how to continue or undo it. */
async function interruptedError(
  journal: Journal,
  command: string | undefined,
  stopper: Stopper,
): Promise<InterruptedError> {
  const tx = await loadTransaction(journal.file);
  return new InterruptedError(
    `Interrupted after ${tx.applied.length} change(s) (${tx.checkpoints.size} stage(s) complete): ${
      command ?? "run"
    } (${journal.id})`,
    {
      hint:
        "Continue it with: gini recover --resume; or undo it with: gini recover --rollback (add --dry-run to see how)",
    },
    STOP_SIGNALS[stopper.stoppedBy ?? "SIGINT"],
  );
}

/**
 * Undoes what a failed run changed and closes its transaction; what cannot be undone stays
 * recorded (rollback-incomplete) for `gini recover`.
 */
async function rollbackFailedRun(
  journal: Journal,
  opEnv: OpEnv,
  error: string | undefined,
  ui: Ui,
): Promise<void> {
  const tx = await loadTransaction(journal.file);
  if (tx.applied.length) {
    ui.warn(`The run failed; undoing the ${tx.applied.length} change(s) it made`);
  }
  const undo = await rollback(tx, opEnv, { dryRun: false, journal });
  for (const i of undo.irreversible) {
    ui.warn(`Cannot undo "${i.description}" automatically`);
  }
  const reason = error ?? "the run stopped";
  if (undo.failed.length) {
    // Not closed: the changes still in place stay recorded, and recover retries them.
    await journal.append({
      type: "rollback-incomplete",
      reason,
      failed: undo.failed.map((f) => ({ seq: f.seq, error: f.error })),
    });
    ui.warn(
      [
        `${undo.failed.length} change(s) could not be undone and are still in place (transaction ${journal.id}):`,
        ...undo.failed.map((f) => `  ✗ ${f.description}: ${f.error}`),
        'Fix what is named, then run "gini recover" to finish undoing them (add --dry-run to see how)',
      ].join("\n"),
    );
  } else await journal.append({ type: "abort", reason });
}

/** The plugin's rendering of a command's output; a plugin that fails to render only warns. */
async function renderOutput(
  pipeline: Pipeline,
  render: NonNullable<RunStagesOptions["render"]>,
  result: PipelineResult,
  report: PlanReport,
  ui: Ui,
): Promise<RenderOutput | undefined> {
  try {
    return await pipeline.render(render.plugin, render.command, {
      ...render.view,
      context: result.context,
      plan: renderReport(report),
      report: report as unknown as Json,
    });
  } catch (error) {
    ui.warn(
      `Plugin "${render.plugin}" could not render the output of "${render.command}": ${
        error instanceof Error ? error.message : error
      }`,
    );
    return undefined;
  }
}

/**
 * Runs the approval guard's check before the journal's, so that a refused change is never
 * journaled; the journal is told the outcome only of changes it was told about.
 */
function guarded(guard: OpObserver | undefined, journal: OpObserver): OpObserver {
  if (!guard) return journal;
  const passed = new Set<number>();
  return {
    async beforeExecute(record, before) {
      await guard.beforeExecute?.(record, before);
      passed.add(record.seq);
      await journal.beforeExecute?.(record, before);
    },
    async afterExecute(record) {
      if (passed.delete(record.seq)) await journal.afterExecute?.(record);
    },
  };
}

/** What resuming a transaction did (or, in a dry run, would do). */
export interface ResumeOutcome {
  id: string;
  command: string;
  /** Changes of stages that had not completed, undone first so that those stages start clean. */
  undone: RollbackReport;
  /** Stages completed before the interruption, not run again. */
  restored: string[];
  outcome: RunOutcome;
}

/**
 * Carries an interrupted transaction forward: undoes the changes of stages that did not
 * complete (newest first; an op in flight included), then runs the pipeline again from the
 * checkpoints with the context they saved, in the same journal.
 */
export async function resumeTransaction(
  tx: Transaction,
  options: { env: StartupEnv; loaded: Resolution; ui: Ui; dryRun: boolean },
): Promise<ResumeOutcome> {
  const replay = tx.replay;
  if (!replay) {
    throw new UsageError(`Cannot resume ${tx.id} (${tx.command}): it did not record how`, {
      hint: "Undo it with: gini recover --rollback, then run the command again",
    });
  }
  if (tx.rollbackIncomplete) {
    throw new UsageError(
      `Cannot resume ${tx.id} (${tx.command}): it failed and its rollback has begun`,
      { hint: "Finish undoing it with: gini recover --rollback" },
    );
  }
  const partial: Transaction = {
    ...tx,
    applied: tx.applied.filter((op) => !tx.checkpoints.has(op.stage)),
    inFlight: tx.inFlight.filter((op) => !tx.checkpoints.has(op.stage)),
  };
  const opEnv = createOpEnv(options.env, options.ui, replay.requestDir ?? undefined);
  // Held from the undo through the run (runStages takes it again, re-entrantly).
  const lock = options.dryRun ? undefined : lockState(options.env.dirs.state, tx.command);
  try {
    lock?.setTransaction(tx.id);
    return await resumeLocked(tx, partial, opEnv, options);
  } finally {
    lock?.release();
  }
}

async function resumeLocked(
  tx: Transaction,
  partial: Transaction,
  opEnv: OpEnv,
  options: { env: StartupEnv; loaded: Resolution; ui: Ui; dryRun: boolean },
): Promise<ResumeOutcome> {
  const replay = tx.replay!;
  const completed = [...tx.checkpoints.keys()];
  let undone: RollbackReport;
  if (options.dryRun) undone = await rollback(partial, opEnv, { dryRun: true });
  else {
    const journal = await Journal.reopen(tx.file);
    try {
      undone = await rollback(partial, opEnv, { dryRun: false, journal });
    } finally {
      journal.close();
    }
    if (undone.failed.length) {
      throw new GiniError(
        "RESUME_FAILED",
        `Cannot resume ${tx.id}: ${undone.failed.length} change(s) of an unfinished stage could not be undone (${
          undone.failed.map((f) => `${f.description}: ${f.error}`).join("; ")
        })`,
        1,
        { hint: "Fix what is named, then run gini recover --resume again" },
      );
    }
  }
  const context = Object.assign({}, ...tx.checkpoints.values()) as Record<string, Json>;
  const outcome = await runStages({
    env: options.env,
    loaded: options.loaded,
    ui: options.ui,
    dryRun: options.dryRun,
    ...(replay.targets ? { targets: replay.targets } : {}),
    seeds: replay.seeds,
    ...(replay.requestDir ? { requestDir: replay.requestDir } : {}),
    command: tx.command,
    resume: { file: tx.file, completed, context, lastSeq: tx.lastSeq },
  });
  return { id: tx.id, command: tx.command, undone, restored: completed, outcome };
}
