/**
 * Gini's command line. The only module that exits: code 2 for bad input, 1 for failures.
 *
 * @example
 * ```sh
 * deno task gini plugins list --json
 * ```
 *
 * @module
 */
import { Command, CommanderError, Option } from "@commander-js/extra-typings";
import denoJson from "./deno.json" with { type: "json" };
import {
  createUi,
  GiniError,
  loadPlugins,
  renderReport,
  resolveStartupEnv,
  runStages,
  type StartupEnv,
  type Ui,
  type UiSink,
  UsageError,
} from "./kernel/mod.ts";
import { describePlugin, pluginGraph, pluginSummary } from "./kernel/plugins/describe.ts";
import { KERNEL_API_VERSION } from "./kernel/plugins/manifest.ts";
import { PROTOCOL_VERSION } from "./workers/protocol.ts";
import type { EnvironmentData } from "./plugins/env_check/contracts.ts";
import { renderChecks, renderIommu } from "./plugins/env_check/render.ts";

/** Gini's version. */
export const VERSION = denoJson.version;

interface GlobalOptions {
  dryRun?: boolean;
  json?: boolean;
  verbose?: boolean;
  yes?: boolean;
  hostRoot?: string;
  configDir?: string;
  dataDir?: string;
  stateDir?: string;
  cacheDir?: string;
  pluginDir?: string[];
}

/** What a command needs: the UI, the directories, and the global flags. */
interface CommandEnv {
  ui: Ui;
  env: StartupEnv;
  flags: GlobalOptions;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Builds the command tree. `run` wraps every action with start-up and error handling. */
function buildProgram(
  sink: UiSink | undefined,
  processEnv: Record<string, string | undefined>,
  cwd: string,
) {
  let exitCode = 0;
  const program = new Command()
    .name("gini")
    .description(
      "Deploy and manage QEMU/KVM virtual machines: macOS, Linux, Windows, VFIO passthrough",
    )
    .version(VERSION, "-V, --version-flag", "print the version")
    .option("-n, --dry-run", "show what would change without changing anything")
    .option("--json", "machine-readable output")
    .option("-v, --verbose", "more detail")
    .option("-y, --yes", "answer yes to confirmations")
    .option("--host-root <dir>", "read the host from this directory tree instead of /")
    .option("--config-dir <dir>", "configuration directory (default ~/.config/gini)")
    .option("--data-dir <dir>", "data directory: VMs, user plugins (default ~/.local/share/gini)")
    .option("--state-dir <dir>", "state directory: journal (default ~/.local/state/gini)")
    .option("--cache-dir <dir>", "cache directory: downloads (default ~/.cache/gini)")
    .option("--plugin-dir <dir>", "also load plugins from this directory (repeatable)", collect)
    .showSuggestionAfterError(true)
    .exitOverride();
  if (sink) {
    program.configureOutput({ writeOut: (s) => sink.out(s), writeErr: (s) => sink.err(s) });
  } else {
    const encoder = new TextEncoder();
    program.configureOutput({
      writeOut: (s) => void Deno.stdout.writeSync(encoder.encode(s)),
      writeErr: (s) => void Deno.stderr.writeSync(encoder.encode(s)),
    });
  }

  const context = (): CommandEnv => {
    const flags = program.opts() as GlobalOptions;
    const ui = createUi({
      json: flags.json ?? false,
      verbose: flags.verbose ?? false,
      ...(sink ? { sink } : {}),
    });
    return { ui, flags, env: resolveStartupEnv(flags, processEnv, cwd) };
  };
  const run = <A extends unknown[]>(
    action: (c: CommandEnv, ...args: A) => Promise<number | void> | number | void,
  ) =>
  async (...args: A) => {
    let c: CommandEnv | undefined;
    try {
      c = context();
      exitCode = (await action(c, ...args)) ?? 0;
    } catch (error) {
      (c?.ui ??
        createUi({
          json: (program.opts() as GlobalOptions).json ?? false,
          ...(sink ? { sink } : {}),
        }))
        .failure(error);
      exitCode = error instanceof GiniError ? error.exitCode : 1;
    }
  };

  program.command("version")
    .description("print versions of Gini, its kernel API and Deno")
    .action(run(({ ui }) => {
      const data = {
        gini: VERSION,
        kernelApi: KERNEL_API_VERSION,
        protocol: PROTOCOL_VERSION,
        deno: Deno.version.deno,
      };
      ui.result(
        data,
        () =>
          `gini ${data.gini} (kernel API ${data.kernelApi}, protocol ${data.protocol}, deno ${data.deno})`,
      );
    }));

  const plugins = program.command("plugins").description("list and inspect plugins");
  plugins.command("list")
    .description("list loaded plugins with their permissions, ops and stages")
    .action(run(async ({ ui, env, flags }) => {
      const loaded = await loadPlugins(env, flags.pluginDir ?? []);
      for (const s of loaded.skipped) ui.warn(`Skipped plugin "${s.plugin}": ${s.reason}`);
      const list = loaded.plugins.map(pluginSummary);
      ui.result(
        list,
        () =>
          list.length === 0
            ? "No plugins found"
            : list.map((p) =>
              `${p.name} ${p.version}  ${p.priority}${
                p.core ? "  core" : ""
              }\n  ${p.description}\n  stages: ${p.stages.map((s) => s.id).join(", ") || "(none)"}`
            ).join("\n"),
      );
    }));
  plugins.command("info")
    .description("show one plugin's manifest, permissions and stages")
    .argument("<name>", "plugin name")
    .action(run(async ({ ui, env, flags }, name: string) => {
      const loaded = await loadPlugins(env, flags.pluginDir ?? []);
      const info = await describePlugin(loaded, name);
      ui.result(info.data, () => info.text);
    }));
  plugins.command("graph")
    .description("print the plugin dependencies and the stage DAG as Mermaid")
    .action(run(async ({ ui, env, flags }) => {
      const loaded = await loadPlugins(env, flags.pluginDir ?? []);
      const graph = pluginGraph(loaded);
      ui.result(graph.data, () => graph.mermaid);
    }));

  program.command("check")
    .description("check what this host (or --host-root) can run: KVM, IOMMU, GPUs, firmware, tools")
    .option("--iommu", "list IOMMU groups and their devices, like ls-iommu")
    .action(run(async ({ ui, env, flags }, options: { iommu?: boolean }) => {
      const loaded = await loadPlugins(env, flags.pluginDir ?? []);
      // A check changes nothing: it runs as a dry run, where only read-only queries execute.
      const { result } = await runStages({
        env,
        loaded,
        ui,
        dryRun: true,
        targets: ["env-check:finalize-host-report"],
      });
      if (!result.ok) throw result.error;
      const report = result.context["session.environment_data"] as unknown as EnvironmentData;
      if (options.iommu) ui.result(report.iommu, () => renderIommu(report, ui.paint));
      else ui.result(report, () => renderChecks(report, ui.paint));
      return report.checks.some((c) => c.status === "FAIL") ? 1 : 0;
    }));

  program.command("run")
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
    .action(
      run(async ({ ui, env, flags }, stages: string[], options: { stageTimeout?: number }) => {
        const loaded = await loadPlugins(env, flags.pluginDir ?? []);
        const { result, report } = await runStages({
          env,
          loaded,
          ui,
          dryRun: flags.dryRun ?? false,
          ...(stages.length ? { targets: stages } : {}),
          ...(options.stageTimeout ? { stageTimeoutMs: options.stageTimeout } : {}),
        });
        ui.result({
          ok: result.ok,
          ...report,
          ...(result.error ? { error: result.error.toJSON() } : {}),
        }, () => renderReport(report));
        if (result.error && !ui.json) ui.failure(result.error);
        return result.ok ? 0 : result.error?.exitCode ?? 1;
      }),
    );

  return { program, exitCode: () => exitCode };
}

/** Runs the CLI with `args`; returns the exit code. */
export async function main(
  args: string[],
  options: { sink?: UiSink; env?: Record<string, string | undefined>; cwd?: string } = {},
): Promise<number> {
  const { program, exitCode } = buildProgram(
    options.sink,
    options.env ?? Deno.env.toObject(),
    options.cwd ?? Deno.cwd(),
  );
  if (args.length === 0) {
    program.outputHelp({ error: true });
    return 2;
  }
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return 0;
      if (error.code === "commander.help") return 0;
      return 2;
    }
    throw error;
  }
  return exitCode();
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
