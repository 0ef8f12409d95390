/**
 * The kernel's verbs over the pipeline (`up`, `plan`, `down`, `rm`): which stages serve a verb is
 * declared by plugins (`serves` in `[[stages]]`), and the plugin that serves it last renders its
 * output. The kernel names no plugin, stage or context key of a plugin here.
 *
 * @module
 */
import { dirname, isAbsolute, resolve } from "../workers/path.ts";
import {
  type ApprovedPlan,
  type PlanReport,
  renderReport,
  type Resolution,
  type RunOutcome,
  runStages,
  UsageError,
} from "../kernel/mod.ts";
import type { Verb } from "../kernel/plugins/manifest.ts";
import type { Json } from "../workers/protocol.ts";
import { type CommandEnv, plugins } from "./_env.ts";
import { requestDefaults } from "./_request.ts";

/** The stages serving `verb` and the plugin that renders its output. */
export function verbStages(
  loaded: Resolution,
  verb: Verb,
): { targets: string[]; renderer?: string } {
  const targets: string[] = [];
  let renderer: string | undefined;
  for (const manifest of loaded.plugins) {
    for (const stage of manifest.stages) {
      if (!stage.serves.includes(verb)) continue;
      targets.push(`${manifest.plugin.name}:${stage.name}`);
      renderer = manifest.plugin.name;
    }
  }
  if (targets.length === 0) {
    throw new UsageError(`Cannot run "${verb}": no loaded plugin serves it`, {
      hint: "Check the plugins with: gini plugins list (the core plugin deploy serves it)",
    });
  }
  return { targets, ...(renderer ? { renderer } : {}) };
}

/** One run of a verb. */
export interface VerbRun {
  verb: Verb;
  dryRun: boolean;
  seeds: Record<string, Json>;
  command: string;
  args: Record<string, Json>;
  requestDir?: string;
  approved?: ApprovedPlan;
}

/** Runs the stages serving a verb, dry or live; throws the run's error. */
export async function runVerb(
  c: CommandEnv,
  loaded: Resolution,
  run: VerbRun,
): Promise<RunOutcome> {
  const { targets, renderer } = verbStages(loaded, run.verb);
  const outcome = await runStages({
    env: c.env,
    loaded,
    ui: c.ui,
    dryRun: run.dryRun,
    targets,
    seeds: run.seeds,
    ...(run.requestDir ? { requestDir: run.requestDir } : {}),
    command: run.command,
    pluginDirs: c.flags.pluginDir ?? [],
    recoverBy: "resume",
    ...(run.approved ? { approved: run.approved } : {}),
    ...(renderer
      ? {
        render: {
          plugin: renderer,
          command: run.verb,
          view: {
            command: run.verb,
            args: run.args,
            flags: {},
            dryRun: run.dryRun,
            phase: run.dryRun ? "plan" as const : "applied" as const,
            color: c.ui.color,
          },
        },
      }
      : {}),
  });
  if (!outcome.result.ok) throw outcome.result.error;
  return outcome;
}

/** A VM file a plugin command made (`create-vm`), deployed as `gini up` would deploy it. */
export interface GeneratedVmFile {
  text: string;
  command: string;
  /** Write the file as part of the deploy (it did not exist). */
  save: boolean;
  /** The command's flag behind each key of the file, for errors. */
  flags?: Record<string, string>;
}

/** Prints a verb's outcome: the plan, then the rendering plugin's text. */
export function printVerb(
  c: CommandEnv,
  outcome: RunOutcome,
  extra: Record<string, Json> = {},
  text?: string,
): void {
  const report: PlanReport = outcome.report;
  // The plugin's data adds to the kernel's report and file; it never overrides them.
  const data = { ...(outcome.output?.data as Record<string, Json> ?? {}), ...report, ...extra };
  c.ui.result(
    data,
    () => [renderReport(report), "", text ?? outcome.output?.text ?? ""].join("\n").trimEnd(),
  );
}

/**
 * `gini up` / `gini plan` of a VM file (or of a file a command generated): seeds the user's
 * request, runs the stages serving "up" (or "create" without starting), prints the outcome.
 */
export async function deployVm(
  c: CommandEnv,
  file: string,
  dryRun: boolean,
  start = true,
  generated?: GeneratedVmFile,
): Promise<void> {
  const path = isAbsolute(file) ? file : resolve(c.env.cwd, file);
  let text: string;
  try {
    text = generated?.text ?? await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(
      `Cannot read VM file "${path}": ${error instanceof Error ? error.message : error}`,
      { hint: 'Create one with "gini new NAME"' },
    );
  }
  const loaded = await plugins(c);
  const run: VerbRun = {
    verb: start ? "up" : "create",
    dryRun,
    seeds: {
      "session.user_vm_request": {
        file: path,
        text,
        defaults: await requestDefaults(c.env),
        ...(generated?.save ? { save: true } : {}),
        ...(generated?.flags ? { flags: generated.flags } : {}),
      },
    },
    requestDir: dirname(path),
    command: generated?.command ?? `${dryRun ? "plan" : "up"} ${file}${start ? "" : " --no-start"}`,
    args: { file: path },
  };
  const outcome = await runVerb(c, loaded, run);
  const settles = !dryRun && start && served(loaded, "settle");
  // The deploy is committed: what waits on the started VM runs on its own (its failure, or a stop,
  // undoes only what it did). With --json, one document holds both.
  if (!settles || !c.ui.json) {
    printVerb(
      c,
      outcome,
      { file: path },
      dryRun && generated
        ? `VM file (written to ${path} without --dry-run):\n${generated.text}`
        : undefined,
    );
  }
  if (!settles) return;
  const settled = await runVerb(c, loaded, {
    ...run,
    verb: "settle",
    command: `${run.command} (settle)`,
  });
  if (c.ui.json) {
    printVerb(c, outcome, { file: path, settled: settled.output?.data ?? null });
  } else if (settled.output?.text) c.ui.result(null, () => settled.output!.text);
}

/** Whether a loaded plugin serves `verb`. */
function served(loaded: Resolution, verb: Verb): boolean {
  return loaded.plugins.some((m) => m.stages.some((s) => s.serves.includes(verb)));
}
