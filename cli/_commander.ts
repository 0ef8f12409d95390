/**
 * The command line as commander parses it: the global flags, the kernel's own commands (one file
 * each in this folder), and the commands plugins declare in their manifests. `mod.ts` sends a
 * plain line of a plugin's command to `fast.ts` first.
 *
 * @module
 */
import { Command, CommanderError } from "@commander-js/extra-typings";
import {
  createUi,
  GiniError,
  loadPlugins,
  resolveStartupEnv,
  type UiSink,
  UsageError,
} from "../kernel/mod.ts";
import { listTransactions } from "../kernel/journal/journal.ts";
import { type Cli, collect, createCli, type GlobalOptions } from "./_env.ts";
import type { MainOptions } from "./mod.ts";
import { complete, registerCompletions, vmNames } from "./completions.ts";
import { registerDown } from "./down.ts";
import { registerJournal } from "./journal.ts";
import { registerPlan } from "./plan.ts";
import { registerPluginCommands } from "./plugin_commands.ts";
import { registerPlugins } from "./plugins.ts";
import { registerRecover } from "./recover.ts";
import { registerRm } from "./rm.ts";
import { registerRun } from "./run.ts";
import { registerUp } from "./up.ts";
import { registerVersion } from "./version.ts";

/** The program with its global flags; output goes to `sink` (tests) or the process. */
function globalProgram(sink: UiSink | undefined): Command {
  const program = new Command()
    .name("gini")
    .description(
      "Deploy and manage QEMU/KVM virtual machines: macOS, Linux, Windows, VFIO passthrough",
    )
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
  const encoder = new TextEncoder();
  program.configureOutput({
    writeOut: sink ? (s) => sink.out(s) : (s) => void Deno.stdout.writeSync(encoder.encode(s)),
    writeErr: sink ? (s) => sink.err(s) : (s) => void Deno.stderr.writeSync(encoder.encode(s)),
    // Usage errors are reported by main(), as text or as --json, with the exit code 2.
    outputError: () => {},
  });
  return program as unknown as Command;
}

/** The kernel's commands: only what is about Gini itself and its pipeline. */
const KERNEL_COMMANDS = [
  registerCompletions,
  registerVersion,
  registerPlugins,
  registerPlan,
  registerUp,
  registerDown,
  registerRm,
  registerRecover,
  registerJournal,
  registerRun,
];

const VALUE_FLAGS = new Set([
  "--host-root",
  "--config-dir",
  "--data-dir",
  "--state-dir",
  "--cache-dir",
  "--plugin-dir",
]);

/** The global flags before the subcommand, and the subcommand's name. */
function preScan(args: string[]): { command?: string; flags: GlobalOptions } {
  const flags: GlobalOptions = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = arg.includes("=") ? arg.split(/=(.*)/s) as [string, string] : [arg];
    if (VALUE_FLAGS.has(name)) {
      const value = inline ?? args[++i];
      if (value === undefined) break;
      if (name === "--plugin-dir") flags.pluginDir = [...(flags.pluginDir ?? []), value];
      if (name === "--data-dir") flags.dataDir = value;
      if (name === "--config-dir") flags.configDir = value;
      if (name === "--host-root") flags.hostRoot = value;
      if (name === "--state-dir") flags.stateDir = value;
      if (name === "--cache-dir") flags.cacheDir = value;
      continue;
    }
    if (arg.startsWith("-")) continue;
    return { command: arg, flags };
  }
  return { flags };
}

/**
 * Adds the plugins' commands, from their manifests alone (no worker starts). A plugin that
 * cannot load is reported by the command that loads it, not here.
 */
async function addPluginCommands(cli: Cli, flags: GlobalOptions, verbose: boolean) {
  try {
    const env = resolveStartupEnv(flags, cli.processEnv, cli.cwd);
    const loaded = await loadPlugins(env, flags.pluginDir ?? []);
    const ui = createUi({ verbose, ...(cli.sink ? { sink: cli.sink } : {}) });
    registerPluginCommands(cli, loaded, (text) => verbose && ui.warn(text));
  } catch { /* reported by the command that loads plugins */ }
}

/** `gini __complete WORDS…`: the candidates at the cursor, one per line. */
async function answerCompletion(cli: Cli, words: string[]): Promise<number> {
  const flags = preScan(words).flags;
  await addPluginCommands(cli, flags, false);
  const env = resolveStartupEnv(flags, cli.processEnv, cli.cwd);
  const candidates = await complete(cli.program, words, {
    vms: () => vmNames(env.dirs.data),
    transactions: async () => (await listTransactions(env.dirs.state)).map((tx) => tx.id),
    files: async (suffix) =>
      (await Array.fromAsync(Deno.readDir(cli.cwd)))
        .filter((e) => !e.isDirectory && e.name.endsWith(suffix)).map((e) => e.name).sort(),
  }).catch(() => []);
  const ui = createUi({ ...(cli.sink ? { sink: cli.sink } : {}) });
  if (candidates.length) ui.result(candidates, () => candidates.join("\n"));
  return 0;
}

/** The command words of `args` ("notes add "), for a hint. */
function commandPath(program: Command, args: string[], first: string | undefined): string {
  const words: string[] = [];
  let command: Command | undefined = program;
  for (const arg of args.slice(first ? args.indexOf(first) : args.length)) {
    command = command?.commands.find((c) => c.name() === arg) as Command | undefined;
    if (!command) break;
    words.push(arg);
  }
  return words.map((w) => `${w} `).join("");
}

/** A parse error (bad command, flag or value): exit code 2, as text or as a JSON error. */
function usageFailure(cli: Cli, args: string[], command: string | undefined, error: unknown) {
  const ui = createUi({ json: args.includes("--json"), ...(cli.sink ? { sink: cli.sink } : {}) });
  if (!(error instanceof CommanderError)) {
    ui.failure(error);
    return error instanceof GiniError ? error.exitCode : 1;
  }
  // commander says "error: unknown option '--x'\n(Did you mean --y?)".
  const [first = "", ...rest] = error.message.replace(/^error: /, "").split("\n");
  const suggestion = rest.join(" ").match(/Did you mean (\S+?)\?/)?.[1];
  const message = first.replace(/'([^']*)'/g, '"$1"');
  ui.failure(
    new UsageError(message.charAt(0).toUpperCase() + message.slice(1), {
      hint: suggestion
        ? `Did you mean "${suggestion}"?`
        : error.code === "commander.unknownCommand"
        ? "List the commands with: gini help"
        : `See: gini ${commandPath(cli.program, args, command)}--help`,
    }),
  );
  return 2;
}

/** The program with the global flags and the kernel's commands (no plugin's yet). */
export function kernelCli(options: MainOptions = {}): Cli {
  const cli = createCli(
    globalProgram(options.sink),
    options.sink,
    options.env ?? Deno.env.toObject(),
    options.cwd ?? Deno.cwd(),
  );
  for (const register of KERNEL_COMMANDS) register(cli);
  return cli;
}

/** Runs the CLI with `argv` through commander; returns the exit code. */
export async function commanderMain(argv: string[], options: MainOptions = {}): Promise<number> {
  let args = argv;
  const cli = kernelCli(options);
  const scan = preScan(args);
  // `gini --version` (or -V) before any command is `gini version`, in every output format.
  if (!scan.command && args.some((a) => a === "--version" || a === "-V")) {
    args = [...args.filter((a) => a !== "--version" && a !== "-V"), "version"];
  }
  if (args[0] === "__complete") return await answerCompletion(cli, args.slice(1));
  // Plugins' commands are read from their manifests only when the command is not the kernel's
  // (or for help), so the kernel's commands never pay for plugin discovery.
  const kernelCommand = cli.program.commands.some((c) => c.name() === scan.command);
  if (!kernelCommand || args.some((a) => a === "--help" || a === "-h")) {
    if (scan.command !== "version") {
      await addPluginCommands(cli, scan.flags, args.includes("-v") || args.includes("--verbose"));
    }
  }
  if (args.length === 0) {
    cli.program.outputHelp({ error: true });
    return 2;
  }
  try {
    await cli.program.parseAsync(args, { from: "user" });
  } catch (error) {
    if (
      error instanceof CommanderError &&
      ["commander.helpDisplayed", "commander.version", "commander.help"].includes(error.code)
    ) return 0;
    return usageFailure(cli, args, scan.command, error);
  }
  return cli.exitCode();
}
