/**
 * Plugin manifests (`plugin.toml`): the zod schema, parsing with errors that name
 * the file and key, and the priority classes of the design.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import semver from "semver";
import { z } from "zod";
import { ManifestError } from "../errors.ts";
import { parseTomlFile, schemaKeysAt } from "../toml.ts";
import { coreOnlyReason, describedPrograms, isDescribed } from "../ops/argv.ts";

/** The kernel API version plugins declare compatibility with. */
export const KERNEL_API_VERSION = "1.0.0";

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
});

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
  }).default({ subscribe: [] }),
  stages: z.array(StageManifestSchema).default([]),
  /**
   * `register_commands`: `gini` subcommands the plugin adds. Each runs one of the plugin's
   * stages (and what it needs) with `session.command` seeded with the command's arguments,
   * then prints the context key `result`.
   */
  commands: z.array(z.strictObject({
    name: kebab,
    description: z.string().min(1),
    stage: kebab,
    arguments: z.array(z.string().regex(/^[a-z][a-z0-9-]*\??$/, 'expected "name" or "name?"'))
      .default([]),
    result: contextKey,
    /** Run live (changes the host through ops, journaled) rather than as a dry run. */
    live: z.boolean().default(false),
  })).default([]),
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
  for (const [i, command] of value.commands.entries()) {
    const stage = value.stages.find((st) => st.name === command.stage);
    if (!stage || !stage.writes.includes(command.result)) {
      errors.push(
        new ManifestError(
          `Cannot register command "${command.name}": ${
            stage
              ? `stage "${command.stage}" does not write "${command.result}"`
              : `the plugin has no stage "${command.stage}"`
          }`,
          {
            location: { file, key: `commands.${i}.${stage ? "result" : "stage"}` },
            hint: "A command runs one of the plugin's own [[stages]] and prints a key it writes",
          },
        ),
      );
    }
  }
  errors.push(...grantErrors(value, file, origin));
  if (errors.length) return { ok: false, errors };
  const dir = dirname(resolve(file));
  return { ok: true, manifest: { ...value, file: resolve(file), dir, origin } };
}
