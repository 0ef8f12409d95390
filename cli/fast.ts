/**
 * A plugin's command on a plain command line (`gini status web --json`, `gini start web`), parsed
 * from its manifest without commander and without the kernel's own commands: those cost a third
 * of a day-to-day command's time. It answers only lines it reads exactly as commander would; for
 * anything else (help, a mistake, a short-flag cluster, an unknown flag, a command that describes
 * the CLI itself) it says so, and `cli/mod.ts` parses the line with commander, which gives the
 * same result or the same error. `fast_test.ts` holds the two parsers to the same answers.
 *
 * @module
 */
import { loadPlugins, resolveStartupEnv } from "../kernel/mod.ts";
import type { CommandManifest } from "../kernel/plugins/manifest.ts";
import { runAction } from "./_env.ts";
import { KERNEL_WORDS, pluginCommandLine, scanGlobals } from "./_line.ts";
import {
  checkValue,
  commandTable,
  optionKey,
  type OwnedCommand,
  runPluginCommand,
} from "./_plugin_run.ts";
import type { MainOptions } from "./mod.ts";

export { KERNEL_WORDS, scanGlobals };

/** The command's arguments and flags, as commander's action would get them. */
export interface ParsedCommand {
  owned: OwnedCommand;
  values: unknown[];
  options: Record<string, unknown>;
}

/** Reads `rest` (the line without global flags) as one of `table`'s commands, or undefined. */
export function parseCommand(
  table: ReadonlyMap<string, OwnedCommand>,
  rest: string[],
): ParsedCommand | undefined {
  // The command's words come first, as commander finds subcommands.
  let path = "";
  let owned: OwnedCommand | undefined;
  let used = 0;
  while (used < rest.length) {
    const next = path ? `${path} ${rest[used]}` : rest[used]!;
    const found = table.get(next);
    if (!found && ![...table.keys()].some((p) => p.startsWith(`${next} `))) break;
    path = next;
    owned = found;
    used++;
    if (found && found.spec.mode !== "group") break;
  }
  if (!owned || owned.spec.mode === "group") return undefined;
  const spec = owned.spec;
  const operands: string[] = [];
  const options: Record<string, unknown> = {};
  const tokens = rest.slice(used);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token === "--") {
      operands.push(...tokens.slice(i + 1));
      break;
    }
    if (!token.startsWith("-") || token === "-") {
      operands.push(token);
      continue;
    }
    const eq = token.startsWith("--") ? token.indexOf("=") : -1;
    const name = eq > 0 ? token.slice(0, eq) : token;
    const flag = findFlag(spec, name);
    if (!flag) return undefined; // unknown, a cluster (-ab), a value joined to a short flag (-x1)
    const key = optionKey(flag.name);
    if (Object.hasOwn(options, key) && !flag.repeatable) return undefined;
    if (flag.type === "boolean") {
      if (eq > 0) return undefined;
      options[key] = true;
      continue;
    }
    const raw = eq > 0 ? token.slice(eq + 1) : tokens[++i];
    if (raw === undefined) return undefined;
    const value = checkValue(flag, raw, `--${flag.name}`);
    options[key] = flag.repeatable ? [...(options[key] as unknown[] ?? []), value] : value;
  }
  if (spec.flags.some((f) => f.required && !Object.hasOwn(options, optionKey(f.name)))) {
    return undefined;
  }
  const values: unknown[] = [];
  for (const arg of spec.arguments) {
    const given = arg.repeatable ? operands.splice(0) : operands.splice(0, 1);
    if (given.length === 0) {
      if (arg.required) return undefined;
      values.push(arg.repeatable ? [] : undefined); // as commander gives them
      continue;
    }
    const checked = given.map((raw) => checkValue(arg, raw, `<${arg.name}>`));
    values.push(arg.repeatable ? checked : checked[0]);
  }
  if (operands.length) return undefined; // too many arguments: commander's error
  return { owned, values, options };
}

function findFlag(spec: CommandManifest, name: string) {
  return spec.flags.find((f) => name === `--${f.name}` || (f.short && name === `-${f.short}`));
}

/**
 * Runs a plugin's command if the line is a plain one (the exit code), or says it is not
 * (undefined): then commander parses it.
 */
export async function fastMain(
  args: string[],
  options: MainOptions,
  processEnv: Record<string, string | undefined>,
  cwd: string,
): Promise<number | undefined> {
  const scan = pluginCommandLine(args);
  if (!scan) return undefined;
  let parsed: ParsedCommand | undefined;
  let loaded;
  try {
    loaded = await loadPlugins(
      resolveStartupEnv(scan.flags, processEnv, cwd),
      scan.flags.pluginDir ?? [],
    );
    const warnings: string[] = [];
    parsed = parseCommand(commandTable(loaded, KERNEL_WORDS, (w) => warnings.push(w)), scan.rest);
    // With --verbose, commander's registration shows why a plugin's command was skipped.
    if (warnings.length && scan.flags.verbose) return undefined;
  } catch {
    return undefined; // reported, with its location, by the parser that reports errors
  }
  // A command that describes the CLI itself (session.plugins) needs commander's view of it.
  if (!parsed || parsed.owned.manifest.stages.some((s) => s.reads.includes("session.plugins"))) {
    return undefined;
  }
  const { owned, values, options: flags } = parsed;
  const sink = options.sink;
  return await runAction(
    { flags: scan.flags, processEnv, cwd, sink },
    scan.rest[0]!,
    (c) => runPluginCommand(c, loaded, owned, values, flags),
  );
}
