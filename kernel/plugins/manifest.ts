/**
 * Plugin manifests (`plugin.toml`): the zod schema, parsing with errors that name
 * the file and key, and the priority classes of the design.
 *
 * @module
 */
import { dirname, isAbsolute, resolve } from "../../workers/path.ts";
import semver from "semver";
import { z } from "zod";
import { didYouMean, ManifestError } from "../errors.ts";
import { parseTomlFile, schemaKeysAt } from "../toml.ts";
import { coreOnlyReason, describedPrograms, isDescribed } from "../ops/argv.ts";

/** The kernel API version plugins declare compatibility with. */
import { KERNEL_API_VERSION, KERNEL_SEEDS } from "../versions.ts";
export { KERNEL_API_VERSION };

/** Priority classes and their numeric ranges; lower runs first. */
export const PRIORITY_CLASSES = {
  "kernel": [0, 10],
  "core-critical": [11, 50],
  "core": [51, 100],
  "third-party-high": [101, 150],
  "third-party": [151, 200],
  "third-party-low": [201, 255],
} as const;
export type PriorityClass = keyof typeof PRIORITY_CLASSES;

const KEBAB = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const kebab = z.string().regex(KEBAB, 'expected a kebab-case name like "linux-setup"');
const CONTEXT_KEY = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
const contextKey = z.string().regex(
  CONTEXT_KEY,
  'expected a dotted context key like "session.vm_definition"',
);
const semverVersion = z.string().refine((v) => semver.valid(v) !== null, {
  message: 'expected a semantic version like "1.0.0"',
});
const semverRange = z.string().refine((v) => semver.validRange(v) !== null, {
  message: 'expected a semver range like "^1.0.0"',
});
const priority = z.string().transform((value, ctx) => {
  const match = value.match(/^([a-z-]+):(\d{1,3})$/);
  const cls = match?.[1] as PriorityClass | undefined;
  const range = cls ? PRIORITY_CLASSES[cls] : undefined;
  const n = match ? Number(match[2]) : NaN;
  if (!cls || !range || n < range[0] || n > range[1]) {
    ctx.addIssue({
      code: "custom",
      message: `expected "class:N" with class one of ${
        Object.entries(PRIORITY_CLASSES).map(([k, [lo, hi]]) => `${k} (${lo}-${hi})`).join(", ")
      }, found "${value}"`,
    });
    return z.NEVER;
  }
  return { class: cls, value: n, text: value };
});
const stringList = z.array(z.string().min(1)).default([]);

/**
 * Parts of the VM definition an `on_pre_vm_start` patch may change only with a grant: each is a
 * top-level key of the definition (`kernel_boot` is `kernelBoot`, `extra_args` is `extraArgs`).
 */
export const VM_PATCH_SCOPES = [
  "cpu",
  "memory",
  "disks",
  "nics",
  "firmware",
  "tpm",
  "usb",
  "passthrough",
  "kernel_boot",
  "extra_args",
  "emulator",
] as const;
export type VmPatchScope = typeof VM_PATCH_SCOPES[number];

/**
 * The kernel's verbs a stage may serve: `up`, `up --no-start` (create), `down`, `rm`; and
 * `settle`, what `gini up` runs after its run committed, as a run of its own: waiting on the
 * started VM (an installation) must not put the deploy at stake, nor be undone with it.
 */
export const VERBS = ["up", "create", "down", "rm", "settle"] as const;
export type Verb = typeof VERBS[number];

/** One stage a plugin declares; its function lives in the plugin module. */
export const StageManifestSchema = z.strictObject({
  name: kebab,
  description: z.string().optional(),
  after: z.array(z.string().regex(/^[a-z0-9-]+:[a-z0-9-]+$/, 'expected "plugin:stage"')).default(
    [],
  ),
  reads: z.array(contextKey).default([]),
  writes: z.array(contextKey).default([]),
  timeout_ms: z.number().int().positive().max(24 * 3600 * 1000).optional(),
  /** Kernel verbs that run this stage (`gini up` runs the stages serving "up"). */
  serves: z.array(z.enum(VERBS)).default([]),
  /**
   * When the stage applies to a VM file (`session.user_vm_request`): it has one of `tables` at
   * its top level, and its `guest` (default "linux") is one of `guests`. A stage that does not
   * apply is skipped without starting its plugin, and the keys it writes are null.
   */
  when: z.strictObject({
    tables: z.array(z.string().regex(/^[a-z][a-z0-9_]*$/)).min(1).optional(),
    guests: z.array(z.string().regex(/^[a-z][a-z0-9-]*$/)).min(1).optional(),
  }).refine((w) => w.tables || w.guests, { message: "expected tables or guests" }).optional(),
});

const optionName = z.string().regex(
  /^[a-z][a-z0-9-]*$/,
  'expected a kebab-case name like "bind-now"',
);
const scalar = z.union([z.string(), z.number(), z.boolean()]);

/** One positional argument or flag of a plugin command. */
const valueSpec = {
  name: optionName,
  summary: z.string().min(1),
  /** `file`: a path, made absolute against the current folder; `dir`: a folder, the same way. */
  type: z.enum(["string", "number", "file", "dir"]).default("string"),
  repeatable: z.boolean().default(false),
  choices: z.array(z.string().min(1)).optional(),
  /** A string default may name other values: "{name}.toml". */
  default: scalar.optional(),
  /** What Tab offers: VM names, files (with `suffix`), transaction ids. */
  complete: z.enum(["vms", "files", "transactions"]).optional(),
  suffix: z.string().optional(),
  /**
   * A `file` the plugin may read or write for this run only: the user named it on the command
   * line, so the kernel grants exactly that path; for a `dir`, that folder and what is in it.
   */
  access: z.enum(["read", "write"]).optional(),
};

/** A plugin command's positional argument. */
export const ArgumentManifestSchema = z.strictObject({
  ...valueSpec,
  required: z.boolean().default(true),
});

/** A plugin command's flag (`--name`, `-s`). */
export const FlagManifestSchema = z.strictObject({
  ...valueSpec,
  type: z.enum(["string", "number", "file", "dir", "boolean"]).default("string"),
  short: z.string().regex(/^[a-zA-Z]$/, "expected one letter").optional(),
  /** The value's name in help: `--device <address>`. */
  value: z.string().regex(/^[a-z][a-z0-9-]*$/).optional(),
  /** The command refuses to run without it (commander: "required option ... not specified"). */
  required: z.boolean().default(false),
});

/** One `[[commands]]` entry. */
export const CommandManifestSchema = z.strictObject({
  /** The words after `gini`: "check", "vfio plan". */
  path: z.string().regex(
    /^[a-z][a-z0-9-]*( [a-z][a-z0-9-]*)*$/,
    'expected command words like "vfio plan"',
  ),
  summary: z.string().min(1),
  /**
   * query: runs as a dry run and prints; change: plans, shows the plan, asks unless --yes, then
   * runs exactly that plan, journaled; undo: the kernel rolls back the last committed run of the
   * change named in `undoes`, byte for byte; group: only holds subcommands.
   */
  mode: z.enum(["query", "change", "undo", "group"]).default("query"),
  /** An undo command: the change command of this plugin whose last committed run it reverses. */
  undoes: z.string().optional(),
  /** The plugin's stages the command runs (and whatever they need). */
  stages: z.array(kebab).default([]),
  /** The context key `--json` prints when the plugin renders no data of its own. */
  result: contextKey.optional(),
  /** What `gini recover` does with an interrupted change. */
  recover: z.enum(["rollback", "resume"]).default("rollback"),
  /**
   * A query whose result is a VM file (`{ file, text, flags? }`) that the kernel then deploys as
   * `gini up` deploys one, writing the file as part of the deploy (`create-vm`).
   */
  deploys: z.boolean().default(false),
  /** The confirmation question of a change. */
  confirm: z.string().optional(),
  /**
   * false: a change that makes only what the user named (a new file, a VM started) runs at once,
   * without asking and without a plan first (`--dry-run` shows one); core plugins only.
   */
  ask: z.boolean().default(true),
  arguments: z.array(ArgumentManifestSchema).default([]),
  flags: z.array(FlagManifestSchema).default([]),
});
export type CommandManifest = z.output<typeof CommandManifestSchema>;

/** The schema of `plugin.toml`. */
export const ManifestSchema = z.strictObject({
  plugin: z.strictObject({
    name: kebab,
    version: semverVersion,
    description: z.string().min(1),
    author: z.string().default("unknown"),
    core: z.boolean().default(false),
    priority,
    entry: z.string().default("mod.ts"),
    enabled: z.boolean().default(true),
    optional: z.boolean().default(false),
    timeout_ms: z.number().int().positive().max(24 * 3600 * 1000).default(60_000),
  }),
  compatibility: z.strictObject({ kernel_api: semverRange }),
  dependencies: z.record(kebab, semverRange).default({}),
  optional_dependencies: z.record(kebab, semverRange).default({}),
  permissions: z.strictObject({
    read: stringList,
    net: stringList,
    env: stringList,
    sys: stringList,
  }).default({ read: [], net: [], env: [], sys: [] }),
  ops: z.strictObject({
    write: stringList,
    run: stringList,
    download: stringList,
    sysfs: stringList,
    lvm: z.boolean().default(false),
    /** Read small files in the folder of the user's request (file.read). */
    request_files: z.boolean().default(false),
    /** Record journal checkpoints (journal.checkpoint), which `gini recover --resume` uses. */
    checkpoint: z.boolean().default(false),
  }).default({
    write: [],
    run: [],
    download: [],
    sysfs: [],
    lvm: false,
    request_files: false,
    checkpoint: false,
  }),
  context: z.strictObject({
    /** A module (core plugins) exporting `contracts`, zod schemas by context key. */
    schemas: z.string().optional(),
  }).default({}),
  hooks: z.strictObject({
    pre_stage: z.boolean().default(false),
    post_stage: z.boolean().default(false),
    /** Also call the hooks in dry runs; false keeps the plugin's worker out of plans. */
    dry_run: z.boolean().default(true),
  }).default({ pre_stage: false, post_stage: false, dry_run: true }),
  events: z.strictObject({
    /** Events the plugin handles (`stage:completed`, `on_pre_vm_start`…). */
    subscribe: z.array(z.string().regex(/^[a-z0-9_]+([:.-][a-z0-9_]+)*$/)).default([]),
    /**
     * Parts of the VM definition an `on_pre_vm_start` patch may change beyond what every
     * subscriber may (hypervisor flags, CPU model and features, display): each is a grant the
     * install summary and `plugins info` show.
     */
    vm_patch: z.array(z.enum(VM_PATCH_SCOPES)).default([]),
  }).default({ subscribe: [], vm_patch: [] }),
  stages: z.array(StageManifestSchema).default([]),
  /**
   * `register_commands`: `gini` commands the plugin adds, as rich as the kernel's own. The kernel
   * parses and checks their arguments and flags from this table alone (help and completions start
   * no worker), seeds `session.command`, runs the named stages (and what they need), and asks the
   * plugin to render the output.
   */
  commands: z.array(CommandManifestSchema).default([]),
});

type RawManifest = z.output<typeof ManifestSchema>;

/** A validated manifest plus where it came from. */
export interface Manifest extends RawManifest {
  /** Absolute path of the `plugin.toml`. */
  file: string;
  /** Absolute path of the plugin's folder. */
  dir: string;
  /** Where it was discovered. */
  origin: "core" | "user" | "system" | "extra";
  /**
   * For an approved package or bundled folder: the entry module's exact bytes (checked against
   * `plugins.lock` at load), which the worker imports from a `blob:` URL after Gini's bootstrap
   * has locked the worker down. Absent for core plugins and `--plugin-dir` sources.
   */
  bundle?: {
    code: Uint8Array;
    sha256: string;
    /** Text files the manifest names (its `[context] schemas`), by name. */
    files: Record<string, string>;
  };
  /**
   * Set by the kernel for one command run: the files the user named on its command line, which
   * the plugin may read or write for that run (a `file` argument with `access`).
   */
  named?: {
    read: string[];
    write: string[];
    /** Folders (a `dir` value with `access`): the plugin may read or write what is in them. */
    readDirs?: string[];
    writeDirs?: string[];
  };
}

function manifestError(message: string, options: ConstructorParameters<typeof ManifestError>[1]) {
  return new ManifestError(message, options);
}

/**
 * Grants that could lend the plugin more than they say: a `..` segment (a grant names a place,
 * it does not climb out of one), and for a plugin not shipped with Gini, a program whose
 * arguments the kernel cannot check (kernel/ops/argv.ts).
 */
function grantErrors(
  value: RawManifest,
  file: string,
  origin: Manifest["origin"],
): ManifestError[] {
  const errors: ManifestError[] = [];
  const lists: [string, string, string[]][] = [
    ["permissions", "read", value.permissions.read],
    ["ops", "write", value.ops.write],
    ["ops", "sysfs", value.ops.sysfs],
  ];
  for (const [table, key, list] of lists) {
    for (const [i, grant] of list.entries()) {
      if (!grant.split("/").includes("..")) continue;
      errors.push(
        new ManifestError(
          `Cannot grant "${grant}" in [${table}].${key}: a grant may not contain ".." segments`,
          {
            location: { file, key: `${table}.${key}.${i}` },
            hint: `Name the directory itself in [${table}].${key}, without ".."`,
          },
        ),
      );
    }
  }
  if (origin === "core") return errors;
  for (const [i, program] of value.ops.run.entries()) {
    const coreOnly = coreOnlyReason(program);
    if (isDescribed(program) && !coreOnly) continue;
    errors.push(
      new ManifestError(
        `Cannot grant plugin "${value.plugin.name}" the program "${program}" in [ops].run: ${
          coreOnly ??
            "the kernel has no description of its arguments (which of them are paths it reads or writes)"
        }, so only plugins shipped with Gini may run it`,
        {
          location: { file, key: `ops.run.${i}` },
          hint:
            `Remove "${program}" from [ops].run and use an op kind for the work, or a program the kernel can check: ${
              describedPrograms().filter((p) => !coreOnlyReason(p)).join(", ")
            }`,
        },
      ),
    );
  }
  return errors;
}

export { KERNEL_SEEDS };

/** Priority classes only plugins shipped with Gini may take. */
const CORE_CLASSES: PriorityClass[] = ["kernel", "core-critical", "core"];

/**
 * Gini's own state, installed plugins and plugin approvals: a third-party plugin may hold no
 * grant inside them, nor one that contains them (`{data}` holds `{data}/plugins`).
 */
const OWN_DIRS = ["{state}", "{data}/plugins", "{config}/plugins.lock"];

/** Does the grant reach into one of Gini's own folders? */
function reachesOwnDir(grant: string): boolean {
  const path = grant.replace(/\/+$/, "");
  return OWN_DIRS.some((dir) =>
    path === dir || path.startsWith(`${dir}/`) || dir.startsWith(`${path}/`)
  );
}

/** One problem of a manifest: the key it is at, what is wrong, the hint. */
type Problem = [key: string, message: string, hint: string];

/** Problems as errors naming the file and key (`keyPrefix` + key), messages after `lead`. */
function problemErrors(file: string, problems: Problem[], keyPrefix = "", lead = "") {
  return problems.map(([key, message, hint]) =>
    new ManifestError(`${lead}${message}`, { location: { file, key: `${keyPrefix}${key}` }, hint })
  );
}

/** Third parties may not take a reserved priority, serve a verb, deploy, or hold Gini's dirs. */
function thirdPartyProblems(value: RawManifest): Problem[] {
  const name = value.plugin.name;
  const shipped = "only plugins shipped with Gini may";
  const problems: Problem[] = [];
  if (CORE_CLASSES.includes(value.plugin.priority.class)) {
    problems.push([
      "plugin.priority",
      `Cannot give plugin "${name}" the priority "${value.plugin.priority.text}": ${shipped} take the classes ${
        CORE_CLASSES.join(", ")
      }`,
      'Use a third-party class, such as "third-party:160"',
    ]);
  }
  for (const [i, stage] of value.stages.entries()) {
    if (!stage.serves.length) continue;
    problems.push([
      `stages.${i}.serves`,
      `Cannot let stage "${stage.name}" serve ${
        stage.serves.join(", ")
      }: ${shipped} serve the kernel's verbs`,
      "Remove serves, and order the stage with after",
    ]);
  }
  for (const [i, command] of value.commands.entries()) {
    if (!command.deploys) continue;
    problems.push([
      `commands.${i}.deploys`,
      `Cannot register command "${command.path}": ${shipped} deploy a VM file they made`,
      "Write the VM file, and let the user run gini up",
    ]);
  }
  const grants: [string, string[]][] = [["permissions.read", value.permissions.read], [
    "ops.write",
    value.ops.write,
  ]];
  for (const [key, list] of grants) {
    for (const [i, grant] of list.entries()) {
      if (!reachesOwnDir(grant)) continue;
      problems.push([
        `${key}.${i}`,
        `Cannot grant plugin "${name}" "${grant}": it reaches Gini's own journal, plugins or plugin approvals (${
          OWN_DIRS.join(", ")
        })`,
        "Use a folder of the plugin's own, such as {data}/<plugin-name>",
      ]);
    }
  }
  return problems;
}

/** What no plugin may do (produce a key the kernel seeds), and what only core plugins may. */
function trustErrors(value: RawManifest, file: string, origin: Manifest["origin"]) {
  const problems: Problem[] = [];
  for (const [i, stage] of value.stages.entries()) {
    for (const [j, key] of stage.writes.entries()) {
      if (!KERNEL_SEEDS.includes(key)) continue;
      problems.push([
        `stages.${i}.writes.${j}`,
        `Cannot let plugin "${value.plugin.name}" write "${key}": the kernel seeds it from the user's command`,
        `Remove "${key}" from writes`,
      ]);
    }
  }
  if (origin !== "core") problems.push(...thirdPartyProblems(value));
  return problemErrors(file, problems);
}

/**
 * Flags every command has (the global ones), which a plugin command may not redefine. `--version`
 * is not one: only `gini --version`, before any command, means `gini version`, so a command may
 * take its own (`gini new --version sonoma`).
 */
export const GLOBAL_FLAGS = [
  "dry-run",
  "json",
  "verbose",
  "yes",
  "host-root",
  "config-dir",
  "data-dir",
  "state-dir",
  "cache-dir",
  "plugin-dir",
  "help",
];
const GLOBAL_SHORTS = ["n", "v", "y", "h", "V"];

type Command = RawManifest["commands"][number];

/** What a group, an undo or a command that runs stages must and must not have. */
function modeProblems(command: Command, value: RawManifest, origin: Manifest["origin"]) {
  const problems: Problem[] = [];
  const changes = value.commands.filter((o) => o.mode === "change").map((o) => `"${o.path}"`);
  if (
    command.mode === "group" &&
    (command.stages.length || command.arguments.length || command.flags.length)
  ) {
    problems.push([
      "mode",
      "a group only holds subcommands",
      "Remove its stages, arguments and flags",
    ]);
  }
  if (command.mode === "undo") {
    if (value.commands.find((o) => o.path === command.undoes)?.mode !== "change") {
      problems.push([
        "undoes",
        "an undo command names one of the plugin's change commands in undoes",
        `Set undoes to one of: ${changes.join(", ") || "(none: add a change command)"}`,
      ]);
    }
    if (command.stages.length) {
      problems.push(["stages", "an undo runs no stage (the kernel rolls back)", "Remove stages"]);
    }
  } else if (command.undoes) {
    problems.push(["undoes", 'undoes is for mode = "undo"', 'Set mode = "undo", or remove undoes']);
  }
  if (command.deploys && (command.mode !== "query" || !command.result)) {
    problems.push([
      "deploys",
      "a command that deploys is a query whose result is a VM file",
      'Set mode = "query" and result = the key holding { file, text }',
    ]);
  }
  if (!command.ask && origin !== "core") {
    problems.push([
      "ask",
      "only plugins shipped with Gini may change the host without asking",
      "Remove ask = false: the user confirms every change a third-party command makes",
    ]);
  }
  if (command.mode !== "change" && (command.confirm || !command.ask)) {
    problems.push([
      command.confirm ? "confirm" : "ask",
      "only a change asks for confirmation",
      'Set mode = "change", or remove the key',
    ]);
  }
  return problems;
}

/** The stages a query or change runs must be the plugin's, and one must write its result. */
function stageProblems(command: Command, value: RawManifest): Problem[] {
  if (command.mode === "group" || command.mode === "undo") return [];
  const problems: Problem[] = [];
  const names = value.stages.map((st) => st.name);
  if (command.stages.length === 0) {
    problems.push(["stages", "it runs no stage", "Name one of the plugin's [[stages]] in stages"]);
  }
  for (const [j, stage] of command.stages.entries()) {
    if (names.includes(stage)) continue;
    problems.push([
      `stages.${j}`,
      `the plugin has no stage "${stage}"`,
      didYouMean(stage, names) ?? "A command runs the plugin's own [[stages]]",
    ]);
  }
  const written = value.stages.filter((st) => command.stages.includes(st.name)).flatMap((st) =>
    st.writes
  );
  if (command.result && !written.includes(command.result)) {
    problems.push([
      "result",
      `none of its stages writes "${command.result}"`,
      `Add "${command.result}" to the writes of one of: ${command.stages.join(", ")}`,
    ]);
  }
  return problems;
}

/** Flags may not take a global flag's name or letter, twice; a boolean takes no value. */
function flagProblems(command: Command): Problem[] {
  const problems: Problem[] = [];
  const names = new Set<string>();
  const shorts = new Set<string>();
  for (const [j, flag] of command.flags.entries()) {
    if (GLOBAL_FLAGS.includes(flag.name) || names.has(flag.name)) {
      problems.push([
        `flags.${j}.name`,
        `the flag "--${flag.name}" is ${names.has(flag.name) ? "declared twice" : "a global flag"}`,
        "Choose another name",
      ]);
    }
    names.add(flag.name);
    if (flag.short && (GLOBAL_SHORTS.includes(flag.short) || shorts.has(flag.short))) {
      problems.push([
        `flags.${j}.short`,
        `the short flag "-${flag.short}" is taken`,
        `Choose a letter other than ${[...GLOBAL_SHORTS, ...shorts].join(", ")}`,
      ]);
    }
    if (flag.short) shorts.add(flag.short);
    if (
      flag.type === "boolean" && (flag.repeatable || flag.choices || flag.access || flag.required)
    ) {
      problems.push([
        `flags.${j}.type`,
        "a boolean flag takes no value",
        "Remove repeatable, choices, access and required",
      ]);
    }
  }
  return problems;
}

/**
 * Only the last argument repeats, required ones come first, access is for files, and only a core
 * plugin gives a file or folder it may read or write a default (the approved grant is for paths
 * the user names, and a default is one the user never did).
 */
function valueProblems(command: Command, index: number, origin: Manifest["origin"]): Problem[] {
  const problems: Problem[] = [];
  for (const [j, arg] of command.arguments.entries()) {
    if (arg.repeatable && j < command.arguments.length - 1) {
      problems.push([
        `arguments.${j}.repeatable`,
        "only the last argument may repeat",
        "Make it a repeatable flag",
      ]);
    }
    if (arg.required && command.arguments.slice(0, j).some((a) => !a.required)) {
      problems.push([
        `arguments.${j}.required`,
        "a required argument follows an optional one",
        "Put required arguments first",
      ]);
    }
  }
  const values: [
    string,
    { name: string; access?: string | undefined; type: string; default?: unknown },
  ][] = [
    ...command.arguments.map((a, j) => [`arguments.${j}`, a] as [string, typeof a]),
    ...command.flags.map((f, j) => [`flags.${j}`, f] as [string, typeof f]),
  ];
  for (const [key, spec] of values) {
    const fallback = spec.default;
    const isPath = spec.type === "file" || spec.type === "dir";
    if (spec.access && isPath && fallback !== undefined && origin !== "core") {
      const label = key.startsWith("flags.") ? `--${spec.name}` : `<${spec.name}>`;
      problems.push([
        `${key}.default`,
        `the ${
          spec.type === "dir" ? "folder" : "file"
        } ${label}, which it may ${spec.access}, has a default "${
          String(fallback)
        }" (commands.${index}.${key}.default): only plugins shipped with Gini may ${spec.access} a path the user did not name`,
        `Remove default from ${label} (or its access): the user names the path on each run`,
      ]);
    } else if (
      // A core plugin's default may only name a path in the current folder.
      spec.access && typeof fallback === "string" &&
      (isAbsolute(fallback) || fallback.split("/").some((part) => ["", ".", ".."].includes(part)))
    ) {
      problems.push([
        `${key}.default`,
        `the default "${fallback}" of a file the plugin may ${spec.access} leaves the current folder`,
        'Give a path relative to the current folder, without "..", or no default',
      ]);
    }
    if (spec.access && !isPath) {
      problems.push([
        `${key}.access`,
        "access is for file and dir values",
        'Set type = "file" (or "dir"), or remove access',
      ]);
    }
  }
  return problems;
}

/** What a `[[commands]]` entry promises that the rest of the manifest must keep. */
function commandErrors(value: RawManifest, file: string, origin: Manifest["origin"]) {
  const errors: ManifestError[] = [];
  const seen = new Set<string>();
  for (const [i, command] of value.commands.entries()) {
    const problems: Problem[] = [
      ...(seen.has(command.path)
        ? [["path", "it is declared twice", "Give each [[commands]] entry its own path"] as Problem]
        : []),
      ...modeProblems(command, value, origin),
      ...stageProblems(command, value),
      ...flagProblems(command),
      ...valueProblems(command, i, origin),
    ];
    seen.add(command.path);
    errors.push(
      ...problemErrors(
        file,
        problems,
        `commands.${i}.`,
        `Cannot register command "${command.path}": `,
      ),
    );
  }
  return errors;
}

/**
 * Parses and validates a manifest's text. Returns every problem found.
 */
export function parseManifest(
  source: string,
  file: string,
  origin: Manifest["origin"],
): { ok: true; manifest: Manifest } | { ok: false; errors: ManifestError[] } {
  const parsed = parseTomlFile(
    source,
    file,
    ManifestSchema,
    manifestError,
    (path) => schemaKeysAt(ManifestSchema, path),
  );
  if (!parsed.ok) return { ok: false, errors: parsed.errors as ManifestError[] };
  const value = parsed.value;
  const errors: ManifestError[] = [];
  if (!semver.satisfies(KERNEL_API_VERSION, value.compatibility.kernel_api)) {
    errors.push(
      new ManifestError(
        `Cannot load plugin "${value.plugin.name}": it needs kernel API "${value.compatibility.kernel_api}" and this kernel offers ${KERNEL_API_VERSION}`,
        {
          location: { file, key: "compatibility.kernel_api" },
          hint: "Install a version of the plugin built for this Gini, or upgrade Gini",
        },
      ),
    );
  }
  const names = new Set<string>();
  for (const [i, stage] of value.stages.entries()) {
    if (names.has(stage.name)) {
      errors.push(
        new ManifestError(`Cannot declare stage "${stage.name}" twice`, {
          location: { file, key: `stages.${i}.name` },
          hint: "Give each [[stages]] entry a unique name",
        }),
      );
    }
    names.add(stage.name);
  }
  errors.push(...commandErrors(value, file, origin));
  errors.push(...grantErrors(value, file, origin), ...trustErrors(value, file, origin));
  if (errors.length) return { ok: false, errors };
  const dir = dirname(resolve(file));
  return { ok: true, manifest: { ...value, file: resolve(file), dir, origin } };
}
