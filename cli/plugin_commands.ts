/**
 * `register_commands`: the `[[commands]]` of the loaded plugins become `gini` commands, parsed and
 * checked by commander from the manifests alone (help and completions start no worker), run in
 * the owning plugin's worker and rendered by it (`_plugin_run.ts`). A plain command line is
 * parsed without commander first (`fast.ts`); this is the parser for everything else.
 *
 * @module
 */
import { Argument, type Command, Option } from "@commander-js/extra-typings";
import type { Resolution } from "../kernel/mod.ts";
import type { CommandManifest } from "../kernel/plugins/manifest.ts";
import type { Json } from "../workers/protocol.ts";
import type { Cli, CommandEnv } from "./_env.ts";
import { completeWith } from "./completions.ts";
import { pluginCatalogue } from "./_catalogue.ts";
import { checkValue, commandTable, runPluginCommand, type ValueSpec } from "./_plugin_run.ts";

function summaryOf(spec: ValueSpec): string {
  const extras = [
    ...(spec.choices ? [`one of: ${spec.choices.join(", ")}`] : []),
    ...(spec.default !== undefined ? [`default ${JSON.stringify(spec.default)}`] : []),
    ...(spec.repeatable ? ["repeatable"] : []),
  ];
  return extras.length ? `${spec.summary} (${extras.join("; ")})` : spec.summary;
}

function addArgument(command: Command, spec: CommandManifest["arguments"][number]): void {
  const name = `${spec.name}${spec.repeatable ? "..." : ""}`;
  const argument = new Argument(spec.required ? `<${name}>` : `[${name}]`, summaryOf(spec));
  argument.argParser((raw: string, previous: unknown) => {
    const value = checkValue(spec, raw, `<${spec.name}>`);
    return spec.repeatable ? [...(Array.isArray(previous) ? previous : []), value] : value;
  });
  command.addArgument(argument);
  if (spec.complete) {
    completeWith(command, command.registeredArguments.length - 1, spec.complete, spec.suffix);
  }
}

function addFlag(command: Command, spec: CommandManifest["flags"][number]): void {
  const head = `${spec.short ? `-${spec.short}, ` : ""}--${spec.name}`;
  if (spec.type === "boolean") {
    command.addOption(new Option(head, summaryOf(spec)));
    return;
  }
  const option = new Option(`${head} <${spec.value ?? spec.name}>`, summaryOf(spec));
  option.argParser((raw: string, previous: unknown) => {
    const value = checkValue(spec, raw, `--${spec.name}`);
    return spec.repeatable ? [...(Array.isArray(previous) ? previous : []), value] : value;
  });
  option.makeOptionMandatory(spec.required);
  command.addOption(option);
}

/** The group command at `words`, made (described by the first plugin to declare it) if missing. */
function groupAt(root: Command, words: string[], plugin: string): Command {
  let parent = root;
  for (const word of words) {
    let sub = parent.commands.find((c) => c.name() === word) as Command | undefined;
    sub ??= parent.command(word).description(`commands of plugin ${plugin}`) as unknown as Command;
    parent = sub;
  }
  return parent;
}

/** The kernel's command words: no plugin command may start with one. */
export function kernelWords(cli: Cli): Set<string> {
  return new Set([...cli.program.commands.map((c) => c.name()), "help"]);
}

/**
 * Adds the loaded plugins' commands to the program, in load order: a path the kernel or an
 * earlier plugin has is skipped with a warning (shown with --verbose).
 */
export function registerPluginCommands(
  cli: Cli,
  loaded: Resolution,
  warn: (text: string) => void,
): void {
  const kernel = kernelWords(cli);
  // session.plugins is built once, on first use, with the kernel's commands as registered now.
  let built: Json | undefined;
  const catalogue = () =>
    built ??= pluginCatalogue(cli.program as unknown as Command, kernel, loaded) as unknown as Json;
  for (const owned of commandTable(loaded, kernel, warn).values()) {
    const { manifest, spec } = owned;
    const plugin = manifest.plugin.name;
    const words = spec.path.split(" ");
    const name = words.at(-1)!;
    const parent = groupAt(cli.program as unknown as Command, words.slice(0, -1), plugin);
    const existing = parent.commands.find((c) => c.name() === name);
    if (spec.mode === "group") {
      if (existing) existing.description(spec.summary);
      else parent.command(name).description(spec.summary);
      continue;
    }
    const command = parent.command(name).description(
      manifest.origin === "core" ? spec.summary : `${spec.summary} (plugin ${plugin})`,
    ) as unknown as Command;
    for (const arg of spec.arguments) addArgument(command, arg);
    for (const flag of spec.flags) addFlag(command, flag);
    command.action(
      cli.action((c: CommandEnv, ...values: unknown[]) => {
        const options = (values.at(-2) ?? {}) as Record<string, unknown>;
        return runPluginCommand(c, loaded, owned, values, options, catalogue);
      }) as (...args: unknown[]) => Promise<void>,
    );
  }
}
