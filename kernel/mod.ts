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
import { defaultSources, discoverPlugins } from "./plugins/discover.ts";
import { type Resolution, resolvePlugins } from "./plugins/resolve.ts";
import type { StartupEnv } from "./paths.ts";
import { OpEngine } from "./ops/engine.ts";
import { HostRunner } from "./host/run.ts";
import { Pipeline, type PipelineResult } from "./stages/pipeline.ts";
import { Journal, loadTransaction } from "./journal/journal.ts";
import { journalObserver, rollback } from "./journal/recovery.ts";
import type { OpEnv } from "./ops/types.ts";
import { buildReport, type PlanReport } from "./stages/dry_run.ts";
import type { Ui } from "./ui.ts";
import type { Json } from "../workers/protocol.ts";

export * from "./errors.ts";
export * from "./paths.ts";
export * from "./ui.ts";
export type { Manifest } from "./plugins/manifest.ts";
export type { Resolution } from "./plugins/resolve.ts";
export type { PlanReport } from "./stages/dry_run.ts";
export { renderReport } from "./stages/dry_run.ts";

/** Discovers and resolves plugins; throws with every problem at once. */
export async function loadPlugins(env: StartupEnv, extraDirs: string[]): Promise<Resolution> {
  const discovery = await discoverPlugins(defaultSources(env.dirs.data, extraDirs));
  return resolvePlugins(discovery.manifests, discovery.errors);
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
}

/** What a run produced. */
export interface RunOutcome {
  result: PipelineResult;
  report: PlanReport;
}

/** Runs stages (all, or targets and what they need) in dry-run or live mode. */
export async function runStages(options: RunStagesOptions): Promise<RunOutcome> {
  // A live run is one transaction: every change is journaled before it happens, and a failure
  // rolls back what the run changed.
  const journal = options.dryRun
    ? undefined
    : await Journal.begin(options.env.dirs.state, options.command ?? "run");
  const opEnv = createOpEnv(options.env, options.ui, options.requestDir);
  // Observers see only executed ops, so a dry run (which executes none that change anything) has none.
  const engine = new OpEngine(
    options.dryRun ? "dry" : "live",
    opEnv,
    journal ? journalObserver(journal, options.env.crash) : {},
  );
  const pipeline = new Pipeline({
    resolution: options.loaded,
    env: options.env,
    engine,
    ui: options.ui,
    ...(options.targets ? { targets: options.targets } : {}),
    ...(options.seeds ? { seeds: options.seeds } : {}),
    ...(options.stageTimeoutMs ? { stageTimeoutMs: options.stageTimeoutMs } : {}),
  });
  let result: PipelineResult | undefined;
  try {
    result = await pipeline.run();
    return { result, report: buildReport(engine, result.stages) };
  } finally {
    await pipeline.close();
    if (journal) {
      if (result?.ok) await journal.append({ type: "commit" });
      else {
        const tx = await loadTransaction(journal.file);
        if (tx.applied.length) {
          options.ui.warn(`The run failed; undoing the ${tx.applied.length} change(s) it made`);
        }
        const undo = await rollback(tx, opEnv, { dryRun: false, journal });
        for (const f of undo.failed) {
          options.ui.warn(`Could not undo "${f.description}": ${f.error}`);
        }
        for (const i of undo.irreversible) {
          options.ui.warn(`Cannot undo "${i.description}" automatically`);
        }
        await journal.append({
          type: "abort",
          reason: result?.error?.message ?? "the run stopped",
        });
      }
      journal.close();
    }
  }
}
