/**
 * `gini run [STAGES…]`: runs plugin stages (all, or the named ones and what they need), for
 * plugin authors.
 *
 * @module
 */
import { Option } from "@commander-js/extra-typings";
import { renderReport, runStages, UsageError } from "../kernel/mod.ts";
import { type Cli, plugins } from "./_env.ts";

/** Registers `gini run`. */
export function registerRun(cli: Cli): void {
  cli.program.command("run")
    .description(
      "run plugin stages (all, or the named ones and what they need); for plugin authors",
    )
    .argument("[stages...]", "stage ids like compat-check:write-report")
    .addOption(
      new Option("--stage-timeout <ms>", "override every stage's timeout").argParser((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n <= 0) {
          throw new UsageError(`Cannot use --stage-timeout "${v}": expected milliseconds`);
        }
        return n;
      }),
    )
    .action(cli.action(async (c, stages: string[], options: { stageTimeout?: number }) => {
      const { ui, env, flags } = c;
      const { result, report } = await runStages({
        env,
        loaded: await plugins(c),
        ui,
        dryRun: flags.dryRun ?? false,
        ...(stages.length ? { targets: stages } : {}),
        ...(options.stageTimeout ? { stageTimeoutMs: options.stageTimeout } : {}),
        command: ["run", ...stages].join(" "),
        pluginDirs: flags.pluginDir ?? [],
      });
      ui.result({
        ok: result.ok,
        ...report,
        ...(result.error ? { error: result.error.toJSON() } : {}),
      }, () => renderReport(report));
      if (result.error && !ui.json) ui.failure(result.error);
      return result.ok ? 0 : result.error?.exitCode ?? 1;
    }));
}
