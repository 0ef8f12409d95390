/**
 * `session.plugins`: the loaded plugins' manifests and the kernel's command table, as plain data
 * for a plugin stage that reads it (`gini docs`). It carries what `gini plugins list --json` and
 * `gini help` already show anyone (no paths, no code, no approvals), so it grants nothing.
 *
 * @module
 */
import type { Command, Option } from "@commander-js/extra-typings";
import type { Manifest } from "../kernel/plugins/manifest.ts";
import { KERNEL_API_VERSION } from "../kernel/versions.ts";
import { pluginGraph } from "../kernel/plugins/describe.ts";
import type { Resolution } from "../kernel/mod.ts";
import type {
  CatalogueCommand,
  CataloguePlugin,
  CatalogueValue,
  PluginCatalogue,
} from "../workers/sdk.ts";

type Scalar = string | number | boolean;
const isScalar = (v: unknown): v is Scalar => ["string", "number", "boolean"].includes(typeof v);

/** A commander option as a catalogue value. */
function optionValue(option: Option): CatalogueValue {
  const name = (option.long ?? option.short ?? "").replace(/^-+/, "");
  const value = option.flags.match(/[<[]([^>\]]+)[>\]]/)?.[1]?.replace(/\.\.\.$/, "");
  return {
    name,
    summary: option.description,
    type: option.isBoolean() || option.negate ? "boolean" : "string",
    required: option.mandatory,
    repeatable: option.variadic || /repeatable/.test(option.description),
    ...(option.argChoices ? { choices: [...option.argChoices] } : {}),
    ...(isScalar(option.defaultValue) ? { default: option.defaultValue } : {}),
    ...(option.short && option.long ? { short: option.short.replace(/^-/, "") } : {}),
    ...(value ? { value } : {}),
  };
}

/** The kernel's commands under `command`, depth first, with their paths. */
function kernelCommands(command: Command, prefix: string[]): CatalogueCommand[] {
  const out: CatalogueCommand[] = [];
  // `__complete` is the shell completion's hook, not a command a user types.
  for (const sub of (command.commands as Command[]).filter((c) => !c.name().startsWith("_"))) {
    const path = [...prefix, sub.name()];
    const children = sub.commands as Command[];
    out.push({
      path: path.join(" "),
      summary: sub.description(),
      mode: children.length ? "group" : "kernel",
      arguments: sub.registeredArguments.map((a) => ({
        name: a.name(),
        summary: a.description,
        type: "string",
        required: a.required,
        repeatable: a.variadic,
        ...(a.argChoices ? { choices: [...a.argChoices] } : {}),
        ...(isScalar(a.defaultValue) ? { default: a.defaultValue } : {}),
      })),
      flags: (sub.options as readonly Option[]).map(optionValue),
    });
    out.push(...kernelCommands(sub, path));
  }
  return out;
}

/** One manifest's command as a catalogue command. */
function pluginCommand(spec: Manifest["commands"][number]): CatalogueCommand {
  const value = (
    v:
      | Manifest["commands"][number]["flags"][number]
      | Manifest["commands"][number]["arguments"][number],
  ): CatalogueValue => ({
    name: v.name,
    summary: v.summary,
    type: v.type,
    required: v.required,
    repeatable: v.repeatable,
    ...(v.choices ? { choices: v.choices } : {}),
    ...(v.default !== undefined ? { default: v.default } : {}),
    ...("short" in v && v.short ? { short: v.short } : {}),
    ...("value" in v && v.value ? { value: v.value } : {}),
    ...(v.access ? { access: v.access } : {}),
  });
  return {
    path: spec.path,
    summary: spec.summary,
    mode: spec.mode,
    arguments: spec.arguments.map(value),
    flags: spec.flags.map(value),
  };
}

/** One manifest without its paths. */
function cataloguePlugin(m: Manifest): CataloguePlugin {
  return {
    name: m.plugin.name,
    version: m.plugin.version,
    description: m.plugin.description,
    author: m.plugin.author,
    core: m.plugin.core,
    origin: m.origin,
    priority: m.plugin.priority.text,
    dependencies: m.dependencies,
    optionalDependencies: m.optional_dependencies,
    permissions: m.permissions,
    ops: m.ops,
    events: m.events.subscribe,
    vmPatch: m.events.vm_patch,
    hooks: [
      ...(m.hooks.pre_stage ? ["pre-stage"] : []),
      ...(m.hooks.post_stage ? ["post-stage"] : []),
    ],
    stages: m.stages.map((s) => ({
      id: `${m.plugin.name}:${s.name}`,
      ...(s.description ? { description: s.description } : {}),
      after: s.after,
      reads: s.reads,
      writes: s.writes,
      serves: s.serves,
      ...(s.when
        ? {
          when: {
            ...(s.when.tables ? { tables: s.when.tables } : {}),
            ...(s.when.guests ? { guests: s.when.guests } : {}),
          },
        }
        : {}),
    })),
    commands: m.commands.map(pluginCommand),
  };
}

/**
 * The catalogue of this run: `program` holds the kernel's commands (those named in `kernel`)
 * and the global flags; `loaded` the plugins.
 */
export function pluginCatalogue(
  program: Command,
  kernel: ReadonlySet<string>,
  loaded: Resolution,
): PluginCatalogue {
  const own = (program.commands as Command[]).filter((c) => kernel.has(c.name()));
  return {
    kernelApi: KERNEL_API_VERSION,
    commands: kernelCommands({ commands: own } as unknown as Command, []),
    globalFlags: (program.options as readonly Option[]).map(optionValue),
    plugins: loaded.plugins.map(cataloguePlugin),
    graph: pluginGraph(loaded).data,
  };
}
