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
import { OpEngine, type OpObserver } from "./ops/engine.ts";
import { HostRunner } from "./host/run.ts";
import { Pipeline, type PipelineResult } from "./stages/pipeline.ts";
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

/** Options of {@linkcode runStages}. */
export interface RunStagesOptions {
  env: StartupEnv;
  loaded: Resolution;
  ui: Ui;
  dryRun: boolean;
  targets?: string[];
  seeds?: Record<string, Json>;
  stageTimeoutMs?: number;
  observer?: OpObserver;
  /** The folder of the user's request file (a VM file), for `file.read`. */
  requestDir?: string;
}

/** What a run produced. */
export interface RunOutcome {
  result: PipelineResult;
  report: PlanReport;
}

/** Runs stages (all, or targets and what they need) in dry-run or live mode. */
export async function runStages(options: RunStagesOptions): Promise<RunOutcome> {
  const engine = new OpEngine(
    options.dryRun ? "dry" : "live",
    {
      startup: options.env,
      host: new HostRunner(options.env.path),
      report: (m) => options.ui.message(m),
      ...(options.requestDir ? { requestDir: options.requestDir } : {}),
    },
    options.observer,
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
  try {
    const result = await pipeline.run();
    return { result, report: buildReport(engine, result.stages) };
  } finally {
    await pipeline.close();
  }
}
