/**
 * Running a plugin's command once it is parsed, by either parser: commander's (`plugin_commands.ts`,
 * which also gives help and completions) or the one for plain command lines (`fast.ts`), which
 * needs neither commander nor the kernel's own commands. Nothing here imports commander.
 *
 * - `query`: the stages run as a dry run (only read-only queries execute); the plugin renders.
 * - `change`: a dry run shows the plan; after a yes (or `--yes`) exactly that plan runs,
 *   journaled, recovered as the manifest says (rollback or resume).
 * - `undo`: the kernel rolls back the last committed run of the named change, byte for byte.
 *
 * @module
 */
import { basename, dirname, resolve } from "../workers/path.ts";
import {
  approvedPlan,
  createOpEnv,
  didYouMean,
  type Manifest,
  PlanChangedError,
  renderReport,
  type Resolution,
  type RunOutcome,
  runStages,
  type Terminal,
  UsageError,
} from "../kernel/mod.ts";
import type { CommandManifest } from "../kernel/plugins/manifest.ts";
import { isRunInPlace, listTransactions } from "../kernel/journal/journal.ts";
import { rollbackFile } from "../kernel/journal/recovery.ts";
import type { Json } from "../workers/protocol.ts";
import { type CommandEnv, confirmed } from "./_env.ts";
import { renderUndo } from "./_undo.ts";
import { importLater } from "../kernel/lazy.ts";

export type ValueSpec = CommandManifest["arguments"][number] | CommandManifest["flags"][number];

/** The command's values by declared name, as the plugin reads them from `session.command`. */
export interface CommandInput {
  args: Record<string, Json>;
  flags: Record<string, Json>;
  /** The words the user typed after `gini`, for the journal. */
  line: string;
}

/** Checks one value against its declaration; `where` names it in errors ("--device"). */
export function checkValue(spec: ValueSpec, raw: string, where: string): Json {
  if (spec.choices && !spec.choices.includes(raw)) {
    throw new UsageError(
      `Cannot use ${where} "${raw}": expected ${spec.choices.map((c) => `"${c}"`).join(", ")}`,
      {
        location: { flag: where },
        hint: didYouMean(raw, spec.choices) ?? `Choose one of: ${spec.choices.join(", ")}`,
      },
    );
  }
  if (spec.type === "number") {
    const n = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(n)) {
      throw new UsageError(`Cannot use ${where} "${raw}": expected a number`, {
        location: { flag: where },
        hint: `For example: ${where.startsWith("-") ? `${where} 4` : "4"}`,
      });
    }
    return n;
  }
  return raw;
}

/** The camelCase key commander stores a flag under. */
export function optionKey(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Fills defaults ("{name}.toml" names another value) and makes file values absolute. */
function finishInput(
  spec: CommandManifest,
  values: unknown[],
  options: Record<string, unknown>,
  cwd: string,
) {
  const args: Record<string, Json> = {};
  const flags: Record<string, Json> = {};
  spec.arguments.forEach((a, i) => {
    args[a.name] = (values[i] as Json | undefined) ?? (a.repeatable ? [] : null);
  });
  for (const f of spec.flags) {
    const key = optionKey(f.name);
    const value = Object.hasOwn(options, key) ? options[key] as Json | undefined : undefined;
    flags[f.name] = value ?? (f.type === "boolean" ? false : f.repeatable ? [] : null);
  }
  const known = { ...args, ...flags };
  const fill = (spec: ValueSpec, value: Json): Json => {
    if (value !== null || spec.default === undefined) return value;
    if (typeof spec.default !== "string") return spec.default;
    return spec.default.replace(/\{([a-z][a-z0-9-]*)\}/g, (all, name: string) => {
      const v = known[name];
      return typeof v === "string" || typeof v === "number" ? String(v) : all;
    });
  };
  const absolute = (spec: ValueSpec, value: Json): Json =>
    (spec.type !== "file" && spec.type !== "dir") || value === null
      ? value
      : Array.isArray(value)
      ? value.map((v) => resolve(cwd, String(v)))
      : resolve(cwd, String(value));
  for (const a of spec.arguments) args[a.name] = absolute(a, fill(a, args[a.name]!));
  for (const f of spec.flags) flags[f.name] = absolute(f, fill(f, flags[f.name]!));
  return { args, flags };
}

/** The plugin with the files the user named granted for this run only. */
function withNamedFiles(
  loaded: Resolution,
  manifest: Manifest,
  spec: CommandManifest,
  input: CommandInput,
): Resolution {
  const named = {
    read: [] as string[],
    write: [] as string[],
    readDirs: [] as string[],
    writeDirs: [] as string[],
  };
  const all: [ValueSpec, Json | undefined][] = [
    ...spec.arguments.map((a) => [a, input.args[a.name]] as [ValueSpec, Json | undefined]),
    ...spec.flags.map((f) => [f, input.flags[f.name]] as [ValueSpec, Json | undefined]),
  ];
  for (const [value, given] of all) {
    if (!value.access || given === null || given === undefined) continue;
    const key = value.type === "dir" ? (`${value.access}Dirs` as const) : value.access;
    named[key].push(...(Array.isArray(given) ? given.map(String) : [String(given)]));
  }
  if (!Object.values(named).some((list) => list.length)) return loaded;
  return {
    ...loaded,
    plugins: loaded.plugins.map((m) => m === manifest ? { ...m, named } : m),
  };
}

/**
 * Refuses a folder the plugin is to write in that cannot be one: something other than a folder
 * is there or above it, or its nearest folder is not writable (a file cannot be made in it).
 */
function checkWritableDir(spec: ValueSpec, path: string, where: string): void {
  let existing = path;
  const exists = (path: string) => {
    try {
      Deno.statSync(path);
      return true;
    } catch {
      return false;
    }
  };
  while (!exists(existing) && dirname(existing) !== existing) existing = dirname(existing);
  const info = Deno.statSync(existing);
  const refuse = (state: string, hint: string) => {
    throw new UsageError(`Cannot use ${where} "${path}": ${state}`, {
      location: { flag: where },
      hint,
    });
  };
  if (!info.isDirectory) {
    refuse(
      existing === path ? "it is not a folder" : `"${existing}" is not a folder`,
      `Give ${where} a folder to write ${spec.summary} in`,
    );
  }
  // Mode bits miss supplementary groups, ACLs and read-only mounts: make a file and remove it.
  let probe: string | undefined;
  try {
    probe = Deno.makeTempFileSync({ dir: existing, prefix: ".gini-write-test-" });
  } catch {
    // Refused below.
  }
  if (probe === undefined) {
    refuse(
      `the folder "${existing}" is not writable by this user`,
      `Choose a folder you may write in for ${where}`,
    );
  } else {
    Deno.removeSync(probe);
  }
}

/** Checks the folders a command's values name for writing, before anything runs. */
function checkOutputDirs(
  spec: CommandManifest,
  input: { args: Record<string, Json>; flags: Record<string, Json> },
) {
  const values: [ValueSpec, Json | undefined, string][] = [
    ...spec.arguments.map((a) =>
      [a, input.args[a.name], `<${a.name}>`] as [ValueSpec, Json | undefined, string]
    ),
    ...spec.flags.map((f) =>
      [f, input.flags[f.name], `--${f.name}`] as [ValueSpec, Json | undefined, string]
    ),
  ];
  for (const [value, given, where] of values) {
    if (value.type !== "dir" || value.access !== "write" || given === null || given === undefined) {
      continue;
    }
    for (const path of Array.isArray(given) ? given : [given]) {
      checkWritableDir(value, String(path), where);
    }
  }
}

/** One invocation of a plugin command: where it runs, whose it is, and what the user typed. */
export interface Invocation {
  c: CommandEnv;
  loaded: Resolution;
  manifest: Manifest;
  spec: CommandManifest;
  input: CommandInput;
  /** `session.plugins`, for a plugin with a stage that reads it. */
  catalogue?: () => Json;
}

/** Runs a plugin command's stages once, dry or live. */
function runOnce(
  { c, loaded, manifest, spec, input, catalogue }: Invocation,
  phase: "query" | "plan" | "applied",
  approved?: ReturnType<typeof approvedPlan>,
  terminal?: Terminal,
): Promise<RunOutcome> {
  const plugin = manifest.plugin.name;
  const dryRun = phase !== "applied";
  return runStages({
    env: c.env,
    loaded: withNamedFiles(loaded, manifest, spec, input),
    ui: c.ui,
    dryRun,
    targets: spec.stages.map((s) => `${plugin}:${s}`),
    seeds: {
      "session.command": {
        plugin,
        path: spec.path,
        args: input.args,
        flags: input.flags,
        cwd: c.env.cwd,
      },
      ...(catalogue ? { "session.plugins": catalogue() } : {}),
    },
    command: input.line,
    pluginDirs: c.flags.pluginDir ?? [],
    recoverBy: spec.recover,
    ...(approved ? { approved } : {}),
    ...(terminal ? { terminal } : {}),
    render: {
      plugin,
      command: spec.path,
      view: {
        command: spec.path,
        args: input.args,
        flags: input.flags,
        dryRun,
        phase,
        color: c.ui.color,
      },
    },
  });
}

/** Prints a run's output: the plugin's text and data, or the result key. */
function printOutcome(
  c: CommandEnv,
  spec: CommandManifest,
  outcome: RunOutcome,
  text = outcome.output?.text,
): void {
  const value = spec.result ? outcome.result.context[spec.result] ?? null : null;
  const data = outcome.output?.data ??
    (spec.mode === "change" ? { ...outcome.report, result: value } : value);
  c.ui.result(
    data,
    () => text ?? (typeof value === "string" ? value : JSON.stringify(value, null, 2)),
  );
}

async function runQuery(call: Invocation): Promise<number> {
  const { c, spec } = call;
  // A query may hand the terminal to a session (gini console, ssh, exec): it changes nothing on
  // the host, so it holds no lock and leaves no journal; --dry-run only says what it would do.
  const terminal = c.flags.dryRun ? undefined : { json: c.ui.json, env: c.env.terminalEnv ?? {} };
  const outcome = await runOnce(call, "query", undefined, terminal);
  if (!outcome.result.ok) throw outcome.result.error;
  printOutcome(c, spec, outcome);
  return outcome.output?.exitCode ?? 0;
}

async function runChange(call: Invocation): Promise<number> {
  const { c, spec } = call;
  // A change that asks nothing (start a VM the user named) runs at once: what it does depends on
  // the guest (a stop powers off, or is forced after the timeout), so there is no plan to hold it
  // to. --dry-run still shows the plan.
  if (!spec.ask && !c.flags.dryRun) {
    const live = await runOnce(call, "applied");
    if (!live.result.ok) throw live.result.error;
    printOutcome(c, spec, live);
    return live.output?.exitCode ?? 0;
  }
  const plan = await runOnce(call, "plan");
  if (!plan.result.ok) throw plan.result.error;
  // The summary's operations are the changes already (read-only ones are counted apart).
  const changes = plan.report.summary.operations;
  // The kernel's plan is always shown: a plugin's text may add to it, never stand in for it.
  const planned = renderReport(plan.report);
  const text = plan.output?.text ?? "";
  const shown = text.includes(planned) ? text : [text, planned].filter(Boolean).join("\n");
  if (c.flags.dryRun || changes === 0) {
    printOutcome(c, spec, plan, changes ? shown : undefined);
    return plan.output?.exitCode ?? 0;
  }
  const approved = approvedPlan(plan.report);
  const who = call.manifest.origin === "core" ? "" : `[plugin ${call.manifest.plugin.name}] `;
  if (
    spec.ask &&
    !confirmed(
      c,
      `${who}${spec.confirm ?? "Apply these changes?"} (${changes} change(s), plan ${
        approved.digest.slice(7, 19)
      })`,
      `Cannot run "gini ${spec.path}" without confirmation`,
      shown,
    )
  ) return 1;
  const live = await runOnce(call, "applied", approved);
  if (live.result.error instanceof PlanChangedError) {
    const again = await runOnce(call, "plan").catch(() => undefined);
    if (again?.output) c.ui.info(`The plan now:\n${again.output.text}`);
  }
  if (!live.result.ok) throw live.result.error;
  printOutcome(c, spec, live);
  return live.output?.exitCode ?? 0;
}

/** The last committed run of the plugin's change `path` that still has changes in place. */
async function lastRun(c: CommandEnv, manifest: Manifest, path: string) {
  const prefix = `${manifest.plugin.name}:`;
  return (await listTransactions(c.env.dirs.state)).find((t) =>
    isRunInPlace(t, path) &&
    // Only a run of this plugin's own stages: a bare `gini run` (no targets) is nobody's.
    (t.replay?.targets ?? []).length > 0 &&
    t.replay!.targets!.every((target) => target.startsWith(prefix))
  );
}

async function runUndo({ c, manifest, spec }: Invocation): Promise<number> {
  const path = spec.undoes!;
  const tx = await lastRun(c, manifest, path);
  if (!tx) {
    c.ui.result({ undone: null }, () => `Nothing to undo: no "gini ${path}" with changes in place`);
    return 0;
  }
  const dryRun = c.flags.dryRun ?? false;
  const report = await rollbackFile(tx.file, createOpEnv(c.env, c.ui), dryRun);
  c.ui.result(
    { id: tx.id, ...report },
    () =>
      [
        `${dryRun ? "Would undo" : "Undid"} ${tx.id} (${tx.command}):`,
        ...renderUndo(report, dryRun),
      ]
        .join("\n"),
  );
  return report.failed.length ? 1 : 0;
}

/** The text of a VM file already at `path` (null if none); only a small regular file is read. */
async function existingVmFile(path: string): Promise<string | null> {
  const info = await Deno.lstat(path).catch((error) => {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  });
  if (!info) return null;
  if (!info.isFile || info.size > 1024 * 1024) {
    throw new UsageError(`Cannot create "${path}": something other than a VM file is there`, {
      hint: "Choose another name, or move what is there",
    });
  }
  return await Deno.readTextFile(path);
}

/**
 * A VM file a command made (`{ file, text, flags? }` in its result), deployed as `gini up` deploys
 * one, the file written as part of the deploy; refused when the file exists with other content.
 */
async function handToUp(call: Invocation): Promise<number> {
  const { c, spec } = call;
  const outcome = await runOnce(call, "query");
  if (!outcome.result.ok) throw outcome.result.error;
  const value = spec.result ? outcome.result.context[spec.result] : undefined;
  const made = value as { file?: unknown; text?: unknown; flags?: Record<string, string> } | null;
  if (typeof made?.file !== "string" || typeof made.text !== "string") {
    throw new UsageError(
      `Cannot deploy what "gini ${spec.path}" made: its result is not a VM file`,
      {
        hint: `Its result key "${spec.result}" must hold { file, text }`,
      },
    );
  }
  const existing = await existingVmFile(made.file);
  if (existing !== null && existing !== made.text) {
    throw new UsageError(`Cannot create "${made.file}": it exists with other settings`, {
      hint: `Edit it and run "gini up ${made.file}", or choose other values`,
    });
  }
  const { deployVm } = await importLater<typeof import("./_pipeline.ts")>(
    "./_pipeline.ts",
    import.meta.url,
  );
  await deployVm(c, made.file, c.flags.dryRun ?? false, true, {
    text: made.text,
    // The journal names the VM made ("create-vm Mac-Four"), as `gini up` names its file.
    command: `${spec.path} ${basename(made.file, ".toml")}`,
    save: existing === null,
    ...(made.flags ? { flags: made.flags } : {}),
  });
  return 0;
}

/** Runs a plugin command by its mode; returns the exit code. */
export function runCommand(call: Invocation): Promise<number> {
  switch (call.spec.mode) {
    case "undo":
      return runUndo(call);
    case "change":
      return runChange(call);
    default:
      return call.spec.deploys ? handToUp(call) : runQuery(call);
  }
}

/** A plugin command as the CLI offers it: the plugin that owns it and its declaration. */
export interface OwnedCommand {
  manifest: Manifest;
  spec: CommandManifest;
}

/**
 * The plugins' commands by path, in load order (plugins shipped with Gini first, whatever
 * priority another claims: theirs are never shadowed). A path the kernel has, or under a word
 * another plugin owns, or that an earlier plugin declared, is left out with a warning. Groups
 * (`mode = "group"`) are listed with the first plugin to declare them.
 */
export function commandTable(
  loaded: Resolution,
  kernel: ReadonlySet<string>,
  warn: (text: string) => void = () => {},
): Map<string, OwnedCommand> {
  const table = new Map<string, OwnedCommand>();
  const ordered = [
    ...loaded.plugins.filter((m) => m.origin === "core"),
    ...loaded.plugins.filter((m) => m.origin !== "core"),
  ];
  const owners = new Map<string, string>();
  for (const manifest of ordered) {
    const plugin = manifest.plugin.name;
    for (const spec of manifest.commands) {
      const words = spec.path.split(" ");
      if (kernel.has(words[0]!)) {
        warn(`Plugin "${plugin}" declares "gini ${spec.path}", which is the kernel's: skipped`);
        continue;
      }
      // A command word belongs to the first plugin to use it: no other nests commands under it.
      const prefixes = words.map((_, i) => words.slice(0, i + 1).join(" "));
      const taken = prefixes.find((p) => owners.has(p) && owners.get(p) !== plugin);
      if (taken) {
        warn(
          `Plugin "${plugin}" declares "gini ${spec.path}", but "${taken}" is plugin "${
            owners.get(taken)
          }"'s: skipped`,
        );
        continue;
      }
      for (const p of prefixes) if (!owners.has(p)) owners.set(p, plugin);
      const existing = table.get(spec.path);
      if (spec.mode === "group") {
        if (!existing) table.set(spec.path, { manifest, spec });
        continue;
      }
      if (existing) {
        warn(`Plugin "${plugin}" declares "gini ${spec.path}", which another plugin has: skipped`);
        continue;
      }
      table.set(spec.path, { manifest, spec });
    }
  }
  return table;
}

/** The command as the journal records it: its path, arguments and the flags the user typed. */
export function commandLine(
  spec: CommandManifest,
  values: unknown[],
  typed: Record<string, unknown>,
): string {
  const words = [spec.path];
  spec.arguments.forEach((_, i) => {
    const value = values[i];
    if (value !== undefined) words.push(...(Array.isArray(value) ? value : [value]).map(String));
  });
  for (const flag of spec.flags) {
    const key = optionKey(flag.name);
    if (!Object.hasOwn(typed, key)) continue;
    const value = typed[key];
    if (flag.type === "boolean") words.push(`--${flag.name}`);
    else {
      for (const v of Array.isArray(value) ? value : [value]) {
        words.push(`--${flag.name}`, String(v));
      }
    }
  }
  return words.join(" ");
}

/**
 * Runs a parsed plugin command: `values` are its arguments in order, `options` its flags by
 * camelCase key, as the user typed them (no defaults yet).
 */
export function runPluginCommand(
  c: CommandEnv,
  loaded: Resolution,
  { manifest, spec }: OwnedCommand,
  values: unknown[],
  options: Record<string, unknown>,
  catalogue?: () => Json,
): Promise<number> {
  const finished = finishInput(spec, values.slice(0, spec.arguments.length), options, c.env.cwd);
  const input = { ...finished, line: commandLine(spec, values, options) };
  checkOutputDirs(spec, input);
  const readsCatalogue = manifest.stages.some((s) => s.reads.includes("session.plugins"));
  return runCommand({
    c,
    loaded,
    manifest,
    spec,
    input,
    ...(readsCatalogue && catalogue ? { catalogue } : {}),
  });
}
