/**
 * Trust for plugins installed from elsewhere: the grants a manifest asks for in one stable,
 * comparable shape ({@linkcode grantsOf}), worded for the person approving them
 * ({@linkcode describeGrants}), what an upgrade adds ({@linkcode widerGrants}), the approvals
 * in `<config>/plugins.lock` ({@linkcode readLock}, {@linkcode writeLock}), and Ed25519
 * signatures of packages ({@linkcode signPackage}, {@linkcode verifySignature}).
 *
 * @example
 * ```ts
 * const grants = grantsOf(manifest);
 * for (const line of describeGrants(grants)) ui.line(line.risky ? red(line.text) : line.text);
 * const lock = await readLock(join(dirs.config, "plugins.lock"));
 * const approved = lock.plugins[manifest.plugin.name];
 * if (approved && widerGrants(approved.grants, grants).length) askAgain();
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, dirname, join, posix } from "../../workers/path.ts";
import semver from "semver";
import { z } from "zod";
import { ConfigError } from "../errors.ts";
import { decodeBase64, encodeBase64 } from "../encoding.ts";
import { coreOnlyReason, isDescribed } from "../ops/argv.ts";
import type { Manifest, PriorityClass } from "./manifest.ts";

// ---------------------------------------------------------------------------------------------
// Grants

/** A command a plugin adds, as far as trust goes: what it may do and which files it may touch. */
export interface CommandGrant {
  /** The words after `gini`: "notes add". */
  path: string;
  /** query: only reads; change: changes the host; undo: rolls a change back. */
  mode: "query" | "change" | "undo";
  /** Whether a change asks before it runs (only plugins shipped with Gini may say no). */
  ask: boolean;
  /** File values the user names that the plugin may read for the run: `--flag` or `<argument>`. */
  read: string[];
  /** File values the user names that the plugin may write for the run. */
  write: string[];
}

/**
 * Everything a manifest lets a plugin do, normalised: arrays sorted and de-duplicated, paths
 * without trailing slashes, plain JSON. The same manifest always gives deep-equal JSON, so it
 * can be stored in `plugins.lock` and compared at load.
 */
export interface GrantSet {
  /** Deno permissions of the plugin's worker. */
  permissions: { env: string[]; net: string[]; read: string[]; sys: string[] };
  /** Ops the kernel performs for the plugin. */
  ops: {
    checkpoint: boolean;
    download: string[];
    lvm: boolean;
    request_files: boolean;
    run: string[];
    sysfs: string[];
    write: string[];
  };
  /** Events it handles, and the parts of the VM an `on_pre_vm_start` patch may change. */
  events: { subscribe: string[]; vm_patch: string[] };
  /** Hooks it runs around every stage: "post_stage", "pre_stage". */
  hooks: string[];
  /** Commands it adds (groups, which only hold subcommands, are left out), by path. */
  commands: CommandGrant[];
  /** Context keys its stages write. */
  writes: string[];
  /** Its priority, "class:N". */
  priority: string;
}

/** One line of a grant summary; `risky` lines are worth a colour and a second look. */
export interface GrantLine {
  text: string;
  risky: boolean;
}

function sorted(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}

/** A path grant without `.` segments, doubled or trailing slashes. */
function normalisePath(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 && normal.endsWith("/") ? normal.slice(0, -1) : normal;
}

function commandGrant(command: Manifest["commands"][number]): CommandGrant {
  const values = [
    // A folder is labelled as one: a file grant that becomes a folder grant is a new grant.
    ...command.arguments.map((a) => ({
      label: `<${a.name}>${a.type === "dir" ? " (a folder)" : ""}`,
      access: a.access,
    })),
    ...command.flags.map((f) => ({
      label: `--${f.name}${f.type === "dir" ? " (a folder)" : ""}`,
      access: f.access,
    })),
  ];
  return {
    path: command.path,
    mode: command.mode as CommandGrant["mode"],
    ask: command.ask,
    read: sorted(values.filter((v) => v.access === "read").map((v) => v.label)),
    write: sorted(values.filter((v) => v.access === "write").map((v) => v.label)),
  };
}

function canonicalCommands(commands: Iterable<CommandGrant>): CommandGrant[] {
  const byPath = new Map<string, CommandGrant>();
  for (const c of commands) {
    byPath.set(c.path, {
      path: c.path,
      mode: c.mode,
      ask: c.ask,
      read: sorted(c.read),
      write: sorted(c.write),
    });
  }
  return [...byPath.keys()].sort().map((path) => byPath.get(path)!);
}

/** A grant set rebuilt with its keys in one order and its lists sorted: stable JSON. */
function canonicalGrants(g: GrantSet): GrantSet {
  return {
    permissions: {
      env: sorted(g.permissions.env),
      net: sorted(g.permissions.net),
      read: sorted(g.permissions.read.map(normalisePath)),
      sys: sorted(g.permissions.sys),
    },
    ops: {
      checkpoint: g.ops.checkpoint,
      download: sorted(g.ops.download),
      lvm: g.ops.lvm,
      request_files: g.ops.request_files,
      run: sorted(g.ops.run),
      sysfs: sorted(g.ops.sysfs.map(normalisePath)),
      write: sorted(g.ops.write.map(normalisePath)),
    },
    events: { subscribe: sorted(g.events.subscribe), vm_patch: sorted(g.events.vm_patch) },
    hooks: sorted(g.hooks),
    commands: canonicalCommands(g.commands),
    writes: sorted(g.writes),
    priority: g.priority,
  };
}

/**
 * The grants of a manifest, normalised (see {@linkcode GrantSet}).
 *
 * @example
 * ```ts
 * grantsOf(manifest).ops.run; // ["qemu-img"]
 * ```
 */
export function grantsOf(m: Manifest): GrantSet {
  return canonicalGrants({
    permissions: m.permissions,
    ops: m.ops,
    events: { subscribe: m.events.subscribe, vm_patch: m.events.vm_patch },
    hooks: [
      ...(m.hooks.pre_stage ? ["pre_stage"] : []),
      ...(m.hooks.post_stage ? ["post_stage"] : []),
    ],
    commands: m.commands.filter((c) => c.mode !== "group").map(commandGrant),
    writes: m.stages.flatMap((s) => s.writes),
    priority: m.plugin.priority.text,
  });
}

/** Whether two grant sets grant the same, whatever the order of their keys and lists. */
export function sameGrants(a: GrantSet, b: GrantSet): boolean {
  return JSON.stringify(canonicalGrants(a)) === JSON.stringify(canonicalGrants(b));
}

// ---------------------------------------------------------------------------------------------
// Plain words

/** Gini's folders as grants name them, and what to call them. */
const PLACES: Record<string, string> = {
  "{data}": "Gini's data folder",
  "{cache}": "Gini's cache folder",
  "{config}": "Gini's settings folder, which holds plugins.lock",
  "{state}": "Gini's state folder, which holds the journal",
  "{host}": "the host's root folder",
};
/** Folders a plugin may write to without the write being risky. */
const SAFE_WRITE_PLACES = ["{data}", "{cache}"];

function placeOf(path: string): string | undefined {
  return Object.keys(PLACES).find((p) => path === p || path.startsWith(`${p}/`));
}

function annotatePath(path: string): string {
  const place = placeOf(path);
  if (!place) return path;
  return `${path} (${place === "{host}" ? "under" : "inside"} ${PLACES[place]})`;
}

function isRiskyWrite(path: string): boolean {
  return !SAFE_WRITE_PLACES.includes(placeOf(path) ?? "");
}

/** Whether the kernel checks every path in the program's arguments for a third-party plugin. */
function isChecked(program: string): boolean {
  return isDescribed(program) && coreOnlyReason(program) === undefined;
}

function annotateHost(host: string): string {
  if (host === "file") return "file (local files it may read)";
  return host.startsWith("*.") ? `${host} (and its subdomains)` : host;
}

/** What each part of the VM an `on_pre_vm_start` patch may change is, and whether it is risky. */
const VM_PATCH_WORDS: Record<string, { words: string; risky: boolean }> = {
  cpu: { words: "CPU model and count", risky: false },
  memory: { words: "memory size", risky: false },
  disks: { words: "disks (which host files and devices the VM uses)", risky: true },
  nics: { words: "network cards", risky: false },
  firmware: { words: "firmware (BIOS/UEFI files from the host)", risky: true },
  tpm: { words: "TPM", risky: false },
  usb: { words: "USB devices handed over from the host", risky: true },
  passthrough: { words: "PCI devices handed over from the host", risky: true },
  kernel_boot: { words: "the kernel and initrd it boots (host files)", risky: true },
  extra_args: { words: "extra QEMU arguments (anything QEMU can do)", risky: true },
  emulator: { words: "the QEMU program that runs it", risky: true },
};

function vmPatchWords(scope: string): { words: string; risky: boolean } {
  // An unknown scope is one this kernel cannot describe: assume the worst.
  return VM_PATCH_WORDS[scope] ?? { words: scope, risky: true };
}

const LVM_WORDS = "Create and remove LVM logical volumes";
const REQUEST_FILES_WORDS = "Read small files in the folder of the file you give Gini";
const CHECKPOINT_WORDS = "Record journal checkpoints (for gini recover --resume)";

const HOOK_WORDS: Record<string, string> = {
  pre_stage: "before every stage",
  post_stage: "after every stage",
};

const CLASS_WORDS: Record<PriorityClass, string> = {
  "kernel": "with Gini's kernel, first",
  "core-critical": "with Gini's most important plugins",
  "core": "with Gini's own plugins",
  "third-party-high": "before other third-party plugins",
  "third-party": "with other third-party plugins, after Gini's own",
  "third-party-low": "after other third-party plugins",
};

function priorityClass(priority: string): string {
  return priority.split(":")[0] ?? priority;
}

function classWords(cls: string): string {
  return CLASS_WORDS[cls as PriorityClass] ?? cls;
}

/** What a command's mode lets it do: "changes the host, asks first". */
function modeWords(c: CommandGrant): string {
  if (c.mode === "query") return "only reads";
  if (c.mode === "undo") return "undoes its last change";
  return c.ask ? "changes the host, asks first" : "changes the host without asking";
}

/** What a command does, in words: "gini notes add (changes the host, asks first; ...)". */
function commandWords(c: CommandGrant): string {
  const files = [
    ...(c.read.length ? [`reads the file given as ${c.read.join(", ")}`] : []),
    ...(c.write.length ? [`writes the file given as ${c.write.join(", ")}`] : []),
  ];
  return `gini ${c.path} (${[modeWords(c), ...files].join("; ")})`;
}

/** Adds `label: values` to `lines` when there are values. */
function listLine(lines: GrantLine[], label: string, values: string[], risky = false, note = "") {
  if (values.length) lines.push({ text: `${label}: ${values.join(", ")}${note}`, risky });
}

/** The lines of the Deno permissions and of the ops that reach outside the worker. */
function fileLines(g: GrantSet): GrantLine[] {
  const lines: GrantLine[] = [];
  listLine(lines, "Read files", g.permissions.read.map(annotatePath));
  listLine(lines, "Connect to", g.permissions.net);
  listLine(lines, "Read environment variables", g.permissions.env);
  listLine(lines, "Read system information", g.permissions.sys);
  listLine(lines, "Write files", g.ops.write.filter((p) => !isRiskyWrite(p)).map(annotatePath));
  listLine(
    lines,
    "Write files outside Gini's data and cache folders",
    g.ops.write.filter(isRiskyWrite).map(annotatePath),
    true,
  );
  listLine(
    lines,
    "Run programs",
    g.ops.run.filter(isChecked),
    true,
    " (the kernel checks every path in their arguments)",
  );
  listLine(
    lines,
    "Run programs whose arguments the kernel cannot check",
    g.ops.run.filter((p) => !isChecked(p)),
    true,
  );
  listLine(lines, "Download from", g.ops.download.map(annotateHost));
  listLine(lines, "Change kernel device settings (sysfs)", g.ops.sysfs, true);
  return lines;
}

/** The lines of everything else: switches, events, VM patches, hooks, commands, context. */
function behaviourLines(g: GrantSet): GrantLine[] {
  const lines: GrantLine[] = [];
  if (g.ops.lvm) lines.push({ text: LVM_WORDS, risky: true });
  if (g.ops.request_files) lines.push({ text: REQUEST_FILES_WORDS, risky: false });
  if (g.ops.checkpoint) lines.push({ text: CHECKPOINT_WORDS, risky: false });
  listLine(lines, "Handle events", g.events.subscribe);
  const scopes = g.events.vm_patch.map(vmPatchWords);
  const patch = "Change the VM before it starts";
  listLine(lines, patch, scopes.filter((s) => !s.risky).map((s) => s.words));
  listLine(lines, patch, scopes.filter((s) => s.risky).map((s) => s.words), true);
  listLine(lines, "Run its hooks", g.hooks.map((h) => HOOK_WORDS[h] ?? h));
  listLine(lines, "Add commands", g.commands.map(commandWords));
  listLine(lines, "Provide data other stages read", g.writes);
  return lines;
}

/** "Nothing else: no network, no programs, no writes", leaving out what the plugin may do. */
function nothingElse(g: GrantSet): GrantLine[] {
  const none = [
    ...(g.permissions.net.length || g.ops.download.length ? [] : ["no network"]),
    ...(g.ops.run.length ? [] : ["no programs"]),
    ...(g.ops.write.length || g.ops.sysfs.length || g.ops.lvm ||
        g.commands.some((c) => c.write.length)
      ? []
      : ["no writes"]),
  ];
  return none.length ? [{ text: `Nothing else: ${none.join(", ")}`, risky: false }] : [];
}

/**
 * The grants in plain words, one line per kind of grant, for the person approving a plugin.
 * Risky lines (running programs, writing outside Gini's data and cache folders, sysfs, LVM,
 * VM patches that reach host files or devices) have `risky: true`.
 *
 * @example
 * ```ts
 * describeGrants(grantsOf(manifest)).map((l) => l.text);
 * // ["Run order: third-party:160 (with other third-party plugins, after Gini's own)",
 * //  "Read files: /proc/cpuinfo", "Nothing else: no network, no programs, no writes"]
 * ```
 */
export function describeGrants(g: GrantSet): GrantLine[] {
  return [
    {
      text: `Run order: ${g.priority} (${classWords(priorityClass(g.priority))})`,
      risky: false,
    },
    ...fileLines(g),
    ...behaviourLines(g),
    ...nothingElse(g),
  ];
}

// ---------------------------------------------------------------------------------------------
// What an upgrade adds

/** Whether the path grant `root` covers `path`: the same place or inside it. */
function pathCovers(root: string, path: string): boolean {
  return root === path || path.startsWith(root.endsWith("/") ? root : `${root}/`);
}

/** Deno net: "host" allows every port of the host. */
function netCovers(grant: string, value: string): boolean {
  return grant === value || (!grant.includes(":") && value.startsWith(`${grant}:`));
}

/** Deno env: "AWS_*" allows every variable starting "AWS_". */
function envCovers(grant: string, value: string): boolean {
  return grant === value || (grant.endsWith("*") && value.startsWith(grant.slice(0, -1)));
}

/** Download hosts: "*.example.org" allows its subdomains (and narrower wildcards). */
function hostCovers(grant: string, value: string): boolean {
  return grant === value || (grant.startsWith("*.") && value.endsWith(grant.slice(1)));
}

/** sysfs globs (`*` within one segment): a glob covers another if it matches it literally. */
function globCovers(grant: string, value: string): boolean {
  const body = grant.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join("[^/]*");
  return new RegExp(`^${body}$`).test(value);
}

function exact(grant: string, value: string): boolean {
  return grant === value;
}

/** The values of `to` that no grant of `from` covers. */
function uncovered(
  from: string[],
  to: string[],
  covers: (grant: string, value: string) => boolean,
): string[] {
  return to.filter((value) => !from.some((grant) => covers(grant, value)));
}

const MODE_RANK: Record<CommandGrant["mode"], number> = { query: 0, undo: 1, change: 2 };

/** What the commands of `to` may do that those of `from` may not. */
function commandAdditions(from: GrantSet, to: GrantSet): GrantLine[] {
  const lines: GrantLine[] = [];
  for (const c of to.commands) {
    const before = from.commands.find((b) => b.path === c.path);
    if (!before) {
      lines.push({ text: `Add commands: ${commandWords(c)}`, risky: false });
      continue;
    }
    if (MODE_RANK[c.mode] > MODE_RANK[before.mode] || (before.ask && !c.ask)) {
      lines.push({ text: `Let gini ${c.path} do more: it ${modeWords(c)}`, risky: false });
    }
    const read = uncovered([...before.read, ...before.write], c.read, exact);
    const write = uncovered(before.write, c.write, exact);
    listLine(lines, `Let gini ${c.path} read the file given as`, read);
    listLine(lines, `Let gini ${c.path} write the file given as`, write);
  }
  return lines;
}

/** The lines of the Deno permissions and of the ops with lists that `to` adds to `from`. */
function listAdditions(from: GrantSet, to: GrantSet): GrantLine[] {
  const lines: GrantLine[] = [];
  const each = (
    values: string[],
    text: (value: string) => string,
    risky: (value: string) => boolean = () => false,
  ) => lines.push(...values.map((v) => ({ text: text(v), risky: risky(v) })));
  const { permissions: was, ops } = from;
  const fromRead = [...was.read, ...ops.write];
  each(
    uncovered(fromRead, to.permissions.read, pathCovers),
    (p) => `Read files: ${annotatePath(p)}`,
  );
  each(uncovered(was.net, to.permissions.net, netCovers), (h) => `Connect to: ${h}`);
  each(
    uncovered(was.env, to.permissions.env, envCovers),
    (v) => `Read environment variables: ${v}`,
  );
  each(uncovered(was.sys, to.permissions.sys, exact), (s) => `Read system information: ${s}`);
  each(
    uncovered(ops.write, to.ops.write, pathCovers),
    (p) =>
      isRiskyWrite(p)
        ? `Write files outside Gini's data and cache folders: ${annotatePath(p)}`
        : `Write files: ${annotatePath(p)}`,
    isRiskyWrite,
  );
  each(
    uncovered(ops.run, to.ops.run, exact),
    (p) =>
      isChecked(p)
        ? `Run programs: ${p} (the kernel checks every path in its arguments)`
        : `Run programs whose arguments the kernel cannot check: ${p}`,
    () => true,
  );
  each(
    uncovered(ops.download, to.ops.download, hostCovers),
    (h) => `Download from: ${annotateHost(h)}`,
  );
  each(
    uncovered(ops.sysfs, to.ops.sysfs, globCovers),
    (p) => `Change kernel device settings (sysfs): ${p}`,
    () => true,
  );
  return lines;
}

/** One line per grant of `to` that `from` does not give; priority classes are not compared. */
function additions(from: GrantSet, to: GrantSet): GrantLine[] {
  const lines = listAdditions(from, to);
  const turnedOn = (key: "lvm" | "request_files" | "checkpoint") => to.ops[key] && !from.ops[key];
  if (turnedOn("lvm")) lines.push({ text: LVM_WORDS, risky: true });
  if (turnedOn("request_files")) lines.push({ text: REQUEST_FILES_WORDS, risky: false });
  if (turnedOn("checkpoint")) lines.push({ text: CHECKPOINT_WORDS, risky: false });
  for (const e of uncovered(from.events.subscribe, to.events.subscribe, exact)) {
    lines.push({ text: `Handle events: ${e}`, risky: false });
  }
  for (const s of uncovered(from.events.vm_patch, to.events.vm_patch, exact)) {
    const { words, risky } = vmPatchWords(s);
    lines.push({ text: `Change the VM before it starts: ${words}`, risky });
  }
  for (const h of uncovered(from.hooks, to.hooks, exact)) {
    lines.push({ text: `Run its hooks: ${HOOK_WORDS[h] ?? h}`, risky: false });
  }
  lines.push(...commandAdditions(from, to));
  for (const k of uncovered(from.writes, to.writes, exact)) {
    lines.push({ text: `Provide data other stages read: ${k}`, risky: false });
  }
  return lines;
}

/**
 * What `after` grants that `before` did not, one plain-word line per addition (a path, program,
 * host, event, command, context key, permission, VM patch scope, switch turned on, a change of
 * priority class); empty when the upgrade needs no new approval. A grant inside one already
 * given (`/etc/modprobe.d` under `/etc`) is no addition.
 */
export function widerGrants(before: GrantSet, after: GrantSet): GrantLine[] {
  const lines = additions(canonicalGrants(before), canonicalGrants(after));
  const [was, now] = [priorityClass(before.priority), priorityClass(after.priority)];
  if (was !== now) {
    lines.push({
      text: `Run order: ${after.priority} (${classWords(now)}), was ${before.priority} (${
        classWords(was)
      })`,
      risky: false,
    });
  }
  return lines;
}

/**
 * What `before` granted that `after` no longer does, worded as the grant itself (show them under
 * "No longer:"). Priority class changes are reported by {@linkcode widerGrants} alone.
 */
export function narrowerGrants(before: GrantSet, after: GrantSet): GrantLine[] {
  return additions(canonicalGrants(after), canonicalGrants(before));
}

// ---------------------------------------------------------------------------------------------
// plugins.lock

/** One approved plugin in `plugins.lock`. */
export interface LockEntry {
  name: string;
  version: string;
  /** The URL or absolute path it was installed from, or the folder of a hand-placed plugin. */
  source: string;
  kind: "package" | "folder";
  /** The sha256 of the package zip, or for a folder of its `plugin.toml` and the schema file it names. */
  sha256: string;
  /** The sha256 of the entry module. */
  entry_sha256: string;
  /** What the user approved. */
  grants: GrantSet;
  /** The base64 raw Ed25519 public key the package was signed with, pinned for upgrades. */
  signer?: string;
  /** When the user approved it, as an ISO time. */
  approved_at: string;
}

/** `<config>/plugins.lock`: the plugins the user approved and what they may do. */
export interface LockFile {
  version: 1;
  plugins: Record<string, LockEntry>;
}

const KEBAB = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const SHA256 = /^[0-9a-f]{64}$/;
/** Base64 of `n` bytes, padded. */
function base64Of(n: number): RegExp {
  const chars = Math.ceil(n / 3) * 4;
  const pad = (3 - (n % 3)) % 3;
  return new RegExp(`^[A-Za-z0-9+/]{${chars - pad}}${"=".repeat(pad)}$`);
}
const ED25519_KEY = base64Of(32);
const ED25519_SIGNATURE = base64Of(64);

const list = z.array(z.string().min(1));
const sha256 = z.string().regex(SHA256, "expected a sha256: 64 lowercase hex digits");

const CommandGrantSchema = z.strictObject({
  path: z.string().min(1),
  mode: z.enum(["query", "change", "undo"]),
  ask: z.boolean(),
  read: list,
  write: list,
});

const GrantSetSchema = z.strictObject({
  permissions: z.strictObject({ env: list, net: list, read: list, sys: list }),
  ops: z.strictObject({
    checkpoint: z.boolean(),
    download: list,
    lvm: z.boolean(),
    request_files: z.boolean(),
    run: list,
    sysfs: list,
    write: list,
  }),
  events: z.strictObject({ subscribe: list, vm_patch: list }),
  hooks: list,
  commands: z.array(CommandGrantSchema),
  writes: list,
  priority: z.string().regex(/^[a-z-]+:\d{1,3}$/, 'expected "class:N"'),
});

const LockEntrySchema = z.strictObject({
  name: z.string().regex(KEBAB, "expected a kebab-case plugin name"),
  version: z.string().refine((v) => semver.valid(v) !== null, "expected a semantic version"),
  source: z.string().min(1),
  kind: z.enum(["package", "folder"]),
  sha256,
  entry_sha256: sha256,
  grants: GrantSetSchema,
  signer: z.string().regex(ED25519_KEY, "expected a base64 Ed25519 public key (32 bytes)")
    .optional(),
  approved_at: z.iso.datetime({ message: 'expected an ISO time like "2025-01-31T12:00:00Z"' }),
});

const LockFileSchema = z.strictObject({
  version: z.literal(1),
  plugins: z.record(z.string(), LockEntrySchema),
}).superRefine((lock, ctx) => {
  for (const [key, entry] of Object.entries(lock.plugins)) {
    if (entry.name === key) continue;
    ctx.addIssue({
      code: "custom",
      path: ["plugins", key, "name"],
      message: `expected "${key}", the name the entry is filed under`,
    });
  }
});

/** What the value at a zod issue's path is, quoted and short, for "found ...". */
function found(data: unknown, path: readonly PropertyKey[]): string | undefined {
  let value = data;
  for (const part of path) {
    value = value !== null && typeof value === "object"
      ? (value as Record<PropertyKey, unknown>)[part]
      : undefined;
  }
  if (value === undefined) return undefined;
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** What a zod issue expected, in words. */
function expectation(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type") return `expected ${issue.expected}`;
  if (issue.code === "invalid_value") {
    return `expected ${issue.values.map((v) => JSON.stringify(v)).join(" or ")}`;
  }
  return issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
}

/** The first problem zod found in a JSON file, as a ConfigError naming the file and key. */
function shapeError(
  what: string,
  file: string,
  error: z.ZodError,
  data: unknown,
  hint: (key: string) => string,
): ConfigError {
  const issue = error.issues[0]!;
  const path = issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[0]!] : issue.path;
  const key = path.map(String).join(".");
  const shown = found(data, path);
  const expected = issue.code === "unrecognized_keys"
    ? "is not a key Gini knows"
    : shown === undefined
    ? `is missing: ${expectation(issue)}`
    : `${expectation(issue)}, found ${shown}`;
  const rest = error.issues.length - 1;
  const more = rest ? ` (and ${rest} more problem${rest === 1 ? "" : "s"})` : "";
  const subject = key ? `"${key}" ` : "";
  return new ConfigError(`Cannot use ${what} "${file}": ${subject}${expected}${more}`, {
    location: { file, ...(key ? { key } : {}) },
    hint: hint(key),
  });
}

/** The hint for a bad lock: fix the entry, or delete it and approve the plugin again. */
function lockHint(file: string): (key: string) => string {
  return (key) => {
    const name = key.match(/^plugins\.([^.]+)/)?.[1];
    return name
      ? `Fix "${key}" in ${file}, or delete the "${name}" entry and install the plugin again to re-approve it`
      : `Fix ${file}, or delete it and install your third-party plugins again to re-approve them`;
  };
}

/** Parses a JSON text, or throws a ConfigError naming the file. */
function parseJson(text: string, what: string, file: string, hint: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigError(
      `Cannot read ${what} "${file}": it is not valid JSON (${(error as Error).message})`,
      { location: { file }, hint },
    );
  }
}

/**
 * Reads `plugins.lock`. A missing file is an empty lock; invalid JSON or a bad entry throws a
 * {@linkcode ConfigError} naming the file and the key (`plugins.notes.sha256`).
 */
export async function readLock(path: string): Promise<LockFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { version: 1, plugins: {} };
    throw error;
  }
  const data = parseJson(text, "the plugin approvals", path, lockHint(path)(""));
  const parsed = LockFileSchema.safeParse(data);
  if (!parsed.success) {
    throw shapeError("the plugin approvals", path, parsed.error, data, lockHint(path));
  }
  return parsed.data as LockFile;
}

/** An entry with its keys in one order and its grants canonical. */
function canonicalEntry(e: LockEntry): LockEntry {
  return {
    name: e.name,
    version: e.version,
    source: e.source,
    kind: e.kind,
    sha256: e.sha256,
    entry_sha256: e.entry_sha256,
    ...(e.signer === undefined ? {} : { signer: e.signer }),
    approved_at: e.approved_at,
    grants: canonicalGrants(e.grants),
  };
}

/**
 * Writes `plugins.lock`: 2-space JSON with keys in a stable order (plugins by name) and a
 * trailing newline, atomically (a temporary file in the same folder, renamed over it), creating
 * the folder if needed. Throws a {@linkcode ConfigError} for a lock {@linkcode readLock} would
 * refuse.
 */
export async function writeLock(path: string, lock: LockFile): Promise<void> {
  const plugins: Record<string, LockEntry> = {};
  for (const name of Object.keys(lock.plugins).sort()) {
    plugins[name] = canonicalEntry(lock.plugins[name]!);
  }
  const data = { version: 1, plugins };
  const checked = LockFileSchema.safeParse(data);
  if (!checked.success) {
    throw shapeError("the plugin approvals", path, checked.error, data, lockHint(path));
  }
  await Deno.mkdir(dirname(path), { recursive: true });
  await writeAtomically(path, `${JSON.stringify(data, null, 2)}\n`, 0o644);
}

/** Writes `text` to a temporary file beside `path`, syncs it, and renames it over `path`. */
async function writeAtomically(path: string, text: string, mode: number): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${crypto.randomUUID()}.tmp`);
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true, mode });
    try {
      const bytes = new TextEncoder().encode(text);
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    // The umask may have taken bits off the mode `open` was given.
    await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Signatures

/** A detached signature, `<package>.sig`. */
export interface PackageSignature {
  algorithm: "ed25519";
  /** The base64 raw 32-byte Ed25519 public key. */
  key: string;
  /** The base64 64-byte signature over the exact package bytes. */
  signature: string;
}

const SignatureSchema = z.strictObject({
  algorithm: z.literal("ed25519"),
  key: z.string().regex(ED25519_KEY, "expected a base64 Ed25519 public key (32 bytes)"),
  signature: z.string().regex(ED25519_SIGNATURE, "expected a base64 Ed25519 signature (64 bytes)"),
});

const ED25519 = { name: "Ed25519" } as const;

function bufferOf(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

function base64UrlToBase64(text: string): string {
  const plain = text.replaceAll("-", "+").replaceAll("_", "/");
  return plain + "=".repeat((4 - (plain.length % 4)) % 4);
}

/**
 * A new Ed25519 key pair for signing packages: the private key as a JWK (keep it secret), the
 * public key as base64 of its 32 raw bytes (the `key` of a `.sig` and `signer` in the lock).
 */
export async function generateSigningKey(): Promise<
  { privateKey: JsonWebKey; publicKey: string }
> {
  const pair = await crypto.subtle.generateKey(ED25519, true, ["sign", "verify"]) as CryptoKeyPair;
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return {
    privateKey: await crypto.subtle.exportKey("jwk", pair.privateKey),
    publicKey: encodeBase64(raw),
  };
}

/**
 * Signs a package's exact bytes; returns the text of its `.sig` file (JSON, trailing newline).
 *
 * @example
 * ```ts
 * const { privateKey } = await generateSigningKey();
 * await Deno.writeTextFile("notes.zip.sig", await signPackage(zip, privateKey));
 * ```
 */
export async function signPackage(bytes: Uint8Array, privateKey: JsonWebKey): Promise<string> {
  if (privateKey.kty !== "OKP" || privateKey.crv !== "Ed25519" || !privateKey.x || !privateKey.d) {
    throw new ConfigError("Cannot sign the package: the key is not an Ed25519 private key", {
      hint: "Use a key made by generateSigningKey()",
    });
  }
  const key = await crypto.subtle.importKey("jwk", privateKey, ED25519, false, ["sign"]);
  const signature = new Uint8Array(await crypto.subtle.sign(ED25519, key, bufferOf(bytes)));
  const sig: PackageSignature = {
    algorithm: "ed25519",
    key: encodeBase64(decodeBase64(base64UrlToBase64(privateKey.x))),
    signature: encodeBase64(signature),
  };
  return `${JSON.stringify(sig, null, 2)}\n`;
}

/** Parses a `.sig` file's text, or throws a {@linkcode ConfigError} naming the file and key. */
export function parseSignature(text: string, file: string): PackageSignature {
  const hint = "Download the signature again, or ask the plugin's author for a valid one";
  const data = parseJson(text, "the package signature", file, hint);
  const parsed = SignatureSchema.safeParse(data);
  if (!parsed.success) {
    throw shapeError("the package signature", file, parsed.error, data, () => hint);
  }
  return parsed.data;
}

/** Whether `sig` is a valid signature of exactly `bytes` by the key it names. */
export async function verifySignature(bytes: Uint8Array, sig: PackageSignature): Promise<boolean> {
  try {
    const key = await crypto.subtle.importKey(
      "raw",
      bufferOf(decodeBase64(sig.key)),
      ED25519,
      false,
      ["verify"],
    );
    return await crypto.subtle.verify(
      ED25519,
      key,
      bufferOf(decodeBase64(sig.signature)),
      bufferOf(bytes),
    );
  } catch {
    // A key that is not a point on the curve, or text that is not base64, signs nothing.
    return false;
  }
}

/**
 * A short readable form of a public key for messages: the first 16 hex digits of the sha256 of
 * its raw bytes, in groups of four (`"3f2a 9c01 7b44 e0d5"`).
 */
export function keyFingerprint(publicKey: string): string {
  const hex = createHash("sha256").update(decodeBase64(publicKey)).digest("hex").slice(0, 16);
  return hex.match(/.{4}/g)!.join(" ");
}
