/**
 * The test kit for plugin authors: runs a plugin's real module in a real worker, started by the
 * kernel's own {@linkcode PluginHost} with exactly its manifest's permissions, against a mock
 * context — a temporary host tree for `ctx.host`, the context keys its stage reads, a VM file or
 * a command, replies to the events it emits — as a dry run (ops planned and recorded by the
 * kernel's op engine, never executed) or live (`fs.*` ops executed against a temporary root
 * standing for Gini's directories; ops that act on the host itself — programs, LVM, QEMU, a TPM,
 * downloads, sysfs — only with `allowHostOps: true`, as they really run on this machine). Every
 * op passes the same broker checks as in `gini up`.
 *
 * Tests register with {@linkcode test}: under `deno test` they are Deno tests; under
 * `gini plugins test DIR` (the compiled binary has no `deno test`) Gini runs them itself and
 * reports them on the console, as JUnit XML and as HTML (test_report.ts). Import this module as
 * `@gini/testing`; a test file imports the SDK only for types (importing `@gini/sdk` at run time
 * would start a worker's bootstrap in the test's own thread).
 *
 * @example
 * ```ts
 * import { loadPlugin, test } from "@gini/testing";
 *
 * const plugin = await loadPlugin(new URL(".", import.meta.url));
 *
 * test("write-note plans its file and writes a valid key", async () => {
 *   const run = await plugin.stage("write-note", { files: { "/etc/hostname": "kit-host\n" } });
 *   run.assertSucceeded();
 *   run.assertOp(/Would write .*note\.txt/);
 *   run.assertWrote("my-plugin.note");
 * });
 * ```
 *
 * @module
 */
import { dirname, isAbsolute, join, relative, resolve } from "./path.ts";
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { parse as parseToml } from "smol-toml";
import { formatError, GiniError, PluginResolutionError } from "../kernel/errors.ts";
import type { StartupEnv } from "../kernel/paths.ts";
import { fromFileUrl } from "../kernel/url.ts";
import { type CallHandlers, PluginHost } from "../kernel/plugins/host.ts";
import { type Manifest, parseManifest } from "../kernel/plugins/manifest.ts";
import { CORE_PLUGIN_DIR, discoverPlugins } from "../kernel/plugins/discover.ts";
import { resolvePlugins } from "../kernel/plugins/resolve.ts";
import { prepareRanges } from "../kernel/plugins/ranges.ts";
import { grantsFor } from "../kernel/ops/broker.ts";
import { OpEngine, type OpRecord } from "../kernel/ops/engine.ts";
import { HostRunner } from "../kernel/host/run.ts";
import { serveRead } from "../kernel/host/read.ts";
import { loadContracts } from "../kernel/stages/contracts.ts";
import type { EventReply, Json, UiMessage } from "./protocol.ts";

export type { Json, OpRecord, UiMessage };

/** A kit assertion that did not hold; its message says what differs. */
export class KitAssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KitAssertionError";
  }
}

/** A reply the mock gives to an event the plugin emits: a value, or a function of the payload. */
export type EventReplyMock = Json | ((payload: Json) => Json | undefined);

/** The mock context of one call into the plugin. */
export interface MockContext {
  /**
   * Execute the ops instead of planning them (default: a dry run). `fs.*` ops then act on the
   * sandbox's directories; ops that act on the host itself are refused unless `allowHostOps`.
   */
  live?: boolean;
  /**
   * With `live`, also execute the ops that act on this machine rather than the sandbox
   * ({@linkcode HOST_OP_KINDS}: programs, LVM, QEMU, a TPM, downloads, sysfs writes).
   */
  allowHostOps?: boolean;
  /**
   * Files of the temporary host tree `ctx.host` reads, by host path
   * (`{ "/proc/cpuinfo": "flags : vmx\n" }`); read within the manifest's `[permissions].read`.
   */
  files?: Record<string, string | Uint8Array>;
  /** An existing folder standing for `/` instead (a fixture host tree); `files` are not allowed with it. */
  hostRoot?: string;
  /**
   * Files of Gini's configuration directory (`{config}`), by name relative to it
   * (`{ "macos.toml": "…" }`): the user's settings a plugin reads.
   */
  config?: Record<string, string>;
  /** Values of the context keys the stage reads (declared in its `reads`). */
  context?: Record<string, Json>;
  /** A VM file's TOML text, given as `session.user_vm_request` (the stage must read it). */
  vm?: string;
  /**
   * A command's values, given as `session.command` (the stage must read it); `plugin` is the
   * plugin whose command it is (default: the one under test).
   */
  command?: {
    path: string;
    args?: Record<string, Json>;
    flags?: Record<string, Json>;
    plugin?: string;
  };
  /**
   * Files beside the VM file (`vm`), by name relative to its folder: what the plugin may read
   * with `file.read` (a password file, the user's own cloud-config).
   */
  beside?: Record<string, string>;
  /** Replies to the events the plugin emits, by event name; events without one get no reply. */
  replies?: Record<string, EventReplyMock | EventReplyMock[]>;
  /** The call's deadline (default: the stage's or the manifest's timeout). */
  timeoutMs?: number;
}

/**
 * Op kinds that act on the machine the test runs on, whatever the sandbox: they run programs,
 * change LVM volumes, start or drive QEMU and swtpm, download, write sysfs, or reach a VM. A
 * `*` ends a prefix (`qemu.*`).
 */
export const HOST_OP_KINDS: readonly string[] = [
  "run",
  "lvm.*",
  "qemu.*",
  "qmp",
  "tpm.launch",
  "download",
  "http.request",
  "sysfs.write",
  "guest.*",
  "ssh.session",
  "console.attach",
];

/** Does the op kind act on the host itself (one of {@linkcode HOST_OP_KINDS})? */
function touchesHost(kind: string): boolean {
  return HOST_OP_KINDS.some((k) => k.endsWith(".*") ? kind.startsWith(k.slice(0, -1)) : k === kind);
}

/** An event the plugin emitted during a call. */
export interface EmittedEvent {
  event: string;
  payload: Json;
}

/** The temporary root of one call: Gini's directories and the host tree. */
export interface Sandbox {
  root: string;
  dirs: StartupEnv["dirs"];
  hostRoot: string;
}

const sandboxes = new Set<string>();

/** Removes every sandbox the kit made so far (the kit's `test` does it after each test). */
export async function cleanupSandboxes(): Promise<void> {
  const roots = [...sandboxes];
  sandboxes.clear();
  await Promise.all(roots.map((r) => Deno.remove(r, { recursive: true }).catch(() => {})));
}

async function makeSandbox(options: MockContext): Promise<{ sandbox: Sandbox; env: StartupEnv }> {
  const root = await Deno.makeTempDir({ prefix: "gini-kit-" });
  sandboxes.add(root);
  const dirs = {
    config: join(root, "config"),
    data: join(root, "data"),
    state: join(root, "state"),
    cache: join(root, "cache"),
  };
  for (const dir of Object.values(dirs)) await Deno.mkdir(dir, { recursive: true });
  if (options.hostRoot && options.files) {
    throw new KitAssertionError(
      "Cannot use both `hostRoot` and `files` in a mock context: give one host tree",
    );
  }
  let hostRoot = join(root, "host");
  if (options.hostRoot) hostRoot = resolve(options.hostRoot);
  else await Deno.mkdir(hostRoot);
  for (const [path, content] of Object.entries(options.files ?? {})) {
    if (!isAbsolute(path)) {
      throw new KitAssertionError(
        `Cannot place mock file "${path}": host paths are absolute ("/etc/hostname")`,
      );
    }
    const real = join(hostRoot, path);
    await Deno.mkdir(dirname(real), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(real, content);
    else await Deno.writeFile(real, content);
  }
  for (const [name, content] of Object.entries(options.config ?? {})) {
    if (isAbsolute(name) || name.split("/").includes("..")) {
      throw new KitAssertionError(
        `Cannot place config file "${name}": give a name relative to the config directory`,
      );
    }
    const real = join(dirs.config, name);
    await Deno.mkdir(dirname(real), { recursive: true });
    await Deno.writeTextFile(real, content);
  }
  const env: StartupEnv = {
    dirs,
    hostRoot,
    cwd: root,
    home: root,
    user: "tester",
    path: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
    terminalEnv: {},
    lvmNoDeviceMapper: true,
    crash: {},
  };
  return { sandbox: { root, dirs, hostRoot }, env };
}

/** "Would create …": an op as a dry run's plan shows it. */
function planLine(op: OpRecord): string {
  return `Would ${op.description.charAt(0).toLowerCase()}${op.description.slice(1)}`;
}

/** Where two values first differ, as a path and both values. */
function firstDifference(actual: unknown, expected: unknown, path = ""): string | undefined {
  if (isDeepStrictEqual(actual, expected)) return undefined;
  const isObject = (v: unknown) => typeof v === "object" && v !== null;
  if (isObject(actual) && isObject(expected) && Array.isArray(actual) === Array.isArray(expected)) {
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    for (const key of new Set([...Object.keys(e), ...Object.keys(a)])) {
      const inner = firstDifference(a[key], e[key], path ? `${path}.${key}` : key);
      if (inner) return inner;
    }
  }
  return `at "${path || "(value)"}": expected ${JSON.stringify(expected)}, found ${
    JSON.stringify(actual)
  }`;
}

/** What one call into the plugin did, with assertions about it. */
export class PluginRun {
  /** What was called: `plugin:stage`, `event NAME` or `preflight`. */
  readonly label: string;
  readonly dryRun: boolean;
  /** Whether the call succeeded (and every key it wrote kept its contract). */
  readonly ok: boolean;
  /** Why it failed, as the kernel would report it. */
  readonly error: { message: string; hint?: string; code?: string } | undefined;
  /** Every op the plugin asked for, in order, as the kernel planned (or executed) it. */
  readonly ops: OpRecord[];
  /**
   * Every op request as the plugin sent it, in order: also those the kernel refused (bad
   * arguments, no grant) and bookkeeping ops no plan shows (`journal.checkpoint`).
   */
  readonly requested: { kind: string; args: Json }[];
  /** The context keys the stage wrote. */
  readonly writes: Record<string, Json>;
  /** The messages it showed (info, warn, error, debug, progress). */
  readonly messages: UiMessage[];
  /** The events it emitted. */
  readonly emitted: EmittedEvent[];
  /** An event handler's reply, or a preflight's veto. */
  readonly reply: Json | undefined;
  readonly veto: string | undefined;
  /** The temporary root of the call: Gini's directories (live ops wrote here) and the host tree. */
  readonly sandbox: Sandbox;
  readonly #problems: Map<string, string>;

  constructor(fields: {
    label: string;
    dryRun: boolean;
    error: PluginRun["error"];
    ops: OpRecord[];
    requested: { kind: string; args: Json }[];
    writes: Record<string, Json>;
    problems: Map<string, string>;
    messages: UiMessage[];
    emitted: EmittedEvent[];
    reply: Json | undefined;
    veto: string | undefined;
    sandbox: Sandbox;
  }) {
    this.label = fields.label;
    this.dryRun = fields.dryRun;
    this.error = fields.error;
    this.ok = !fields.error;
    this.ops = fields.ops;
    this.requested = fields.requested;
    this.writes = fields.writes;
    this.#problems = fields.problems;
    this.messages = fields.messages;
    this.emitted = fields.emitted;
    this.reply = fields.reply;
    this.veto = fields.veto;
    this.sandbox = fields.sandbox;
  }

  /** The plan as `gini plan` lists it: one "Would …" line per op. */
  get plan(): string[] {
    return this.ops.map(planLine);
  }

  #listOps(): string {
    return this.ops.length
      ? this.ops.map((op) => `  - ${op.kind}: ${planLine(op)}`).join("\n")
      : "  (no op)";
  }

  /** Asserts the call succeeded. */
  assertSucceeded(): void {
    if (this.ok) return;
    throw new KitAssertionError(
      `Expected ${this.label} to succeed, but it failed: ${this.error!.message}${
        this.error!.hint ? ` (hint: ${this.error!.hint})` : ""
      }`,
    );
  }

  /** Asserts the call failed, with a message containing `pattern` (or matching it). */
  assertFailed(pattern?: string | RegExp): void {
    if (this.ok) {
      throw new KitAssertionError(
        `Expected ${this.label} to fail${
          pattern ? ` with ${String(pattern)}` : ""
        }, but it succeeded with ops:\n${this.#listOps()}`,
      );
    }
    const message = this.error!.message;
    const matches = pattern === undefined ||
      (typeof pattern === "string" ? message.includes(pattern) : pattern.test(message));
    if (!matches) {
      throw new KitAssertionError(
        `Expected ${this.label} to fail with ${
          typeof pattern === "string" ? JSON.stringify(pattern) : String(pattern)
        }, but it failed with: ${message}`,
      );
    }
  }

  /**
   * Asserts an op matches: a string is found in its plan line ("Would create directory …") or a
   * RegExp matches it; `kind` limits the search to one op kind. Returns the op.
   */
  assertOp(pattern: string | RegExp, options: { kind?: string } = {}): OpRecord {
    const found = this.ops.find((op) =>
      (!options.kind || op.kind === options.kind) &&
      (typeof pattern === "string" ? planLine(op).includes(pattern) : pattern.test(planLine(op)))
    );
    if (found) return found;
    throw new KitAssertionError(
      `Expected ${this.label} to ${this.dryRun ? "plan" : "run"} an op${
        options.kind ? ` of kind "${options.kind}"` : ""
      } matching ${
        typeof pattern === "string" ? JSON.stringify(pattern) : String(pattern)
      }, but its ops were:\n${this.#listOps()}`,
    );
  }

  /** Asserts no op matches (see {@linkcode PluginRun.assertOp}). */
  assertNoOp(pattern: string | RegExp): void {
    const found = this.ops.find((op) =>
      typeof pattern === "string" ? planLine(op).includes(pattern) : pattern.test(planLine(op))
    );
    if (found) {
      throw new KitAssertionError(
        `Expected ${this.label} to ask for no op matching ${String(pattern)}, but it asked for: ${
          planLine(found)
        }`,
      );
    }
  }

  /**
   * Asserts the stage wrote `key` with a value valid against the key's contract (the producer's
   * schema), and equal to `expected` when given. Returns the value.
   */
  assertWrote<T extends Json = Json>(key: string, expected?: T): T {
    const problem = this.#problems.get(key);
    if (problem) {
      throw new KitAssertionError(`Expected ${this.label} to write a valid "${key}": ${problem}`);
    }
    if (!(key in this.writes)) {
      const written = Object.keys(this.writes);
      throw new KitAssertionError(
        `Expected ${this.label} to write "${key}", but it wrote ${
          written.length ? written.map((k) => `"${k}"`).join(", ") : "no key"
        }${this.ok ? "" : ` (it failed: ${this.error!.message})`}`,
      );
    }
    const value = this.writes[key]!;
    if (expected !== undefined) {
      const difference = firstDifference(value, expected);
      if (difference) {
        throw new KitAssertionError(`Expected "${key}" from ${this.label} ${difference}`);
      }
    }
    return value as T;
  }

  /** Asserts the plugin showed a message of `type` containing `pattern` (or matching it). */
  assertMessage(type: UiMessage["type"], pattern: string | RegExp): void {
    const texts = this.messages.filter((m) => m.type === type).map((m) =>
      "text" in m ? m.text : "label" in m ? m.label ?? "" : ""
    );
    const hit = texts.some((t) =>
      typeof pattern === "string" ? t.includes(pattern) : pattern.test(t)
    );
    if (!hit) {
      throw new KitAssertionError(
        `Expected ${this.label} to show a ${type} message matching ${
          String(pattern)
        }, but its ${type} messages were: ${
          texts.length ? texts.map((t) => JSON.stringify(t)).join(", ") : "none"
        }`,
      );
    }
  }

  /** Removes the call's temporary root (the kit's `test` does it after each test). */
  async [Symbol.asyncDispose](): Promise<void> {
    sandboxes.delete(this.sandbox.root);
    await Deno.remove(this.sandbox.root, { recursive: true }).catch(() => {});
  }
}

function errorFields(error: unknown): NonNullable<PluginRun["error"]> {
  if (error instanceof GiniError) {
    return {
      message: error.message,
      code: error.code,
      ...(error.hint ? { hint: error.hint } : {}),
    };
  }
  return { message: error instanceof Error ? error.message : String(error) };
}

/** A plugin loaded from its source folder, ready to be called. */
export class KitPlugin {
  readonly manifest: Manifest;

  constructor(manifest: Manifest) {
    this.manifest = manifest;
  }

  get name(): string {
    return this.manifest.plugin.name;
  }

  /** Runs one of its stages against a mock context. */
  stage(name: string, mock: MockContext = {}): Promise<PluginRun> {
    const declared = this.manifest.stages.find((s) => s.name === name);
    if (!declared) {
      const names = this.manifest.stages.map((s) => `"${s.name}"`).join(", ") || "none";
      throw new KitAssertionError(
        `Cannot run stage "${name}" of "${this.name}": ${this.manifest.file} declares ${names}`,
      );
    }
    const context: Record<string, Json> = { ...mock.context };
    // Placeholders until the sandbox exists (#call fills in its paths).
    if (mock.vm !== undefined) context["session.user_vm_request"] = null;
    if (mock.command) context["session.command"] = null;
    for (const key of Object.keys(context)) {
      if (!declared.reads.includes(key) && !declared.writes.includes(key)) {
        throw new KitAssertionError(
          `Cannot give context key "${key}" to stage "${this.name}:${name}": it does not read it (its reads: ${
            declared.reads.map((k) => `"${k}"`).join(", ") || "none"
          }); add it to the stage's reads in ${this.manifest.file}`,
        );
      }
    }
    return this.#call(
      `${this.name}:${name}`,
      { type: "run-stage", stage: name, context },
      mock,
      declared.timeout_ms ?? this.manifest.plugin.timeout_ms,
      declared.writes,
    );
  }

  /** Hands an event to its handler (declared in `on`) and records the reply. */
  event(event: string, payload: Json = null, mock: MockContext = {}): Promise<PluginRun> {
    return this.#call(
      `${this.name}: event ${event}`,
      { type: "event", event, payload },
      mock,
      this.manifest.plugin.timeout_ms,
      [],
    );
  }

  /**
   * Runs its pre- or post-stage hook around stage `stage` (a `plugin:stage` id); `error` makes
   * it the hook of a stage that failed.
   */
  hook(
    kind: "pre-stage" | "post-stage",
    stage: string,
    options: MockContext & { error?: string } = {},
  ): Promise<PluginRun> {
    const { error, ...mock } = options;
    return this.#call(
      `${this.name}: ${kind} hook for ${stage}`,
      { type: "hook", hook: kind, stage, ...(error === undefined ? {} : { error }) },
      mock,
      this.manifest.plugin.timeout_ms,
      [],
    );
  }

  /** Runs its preflight; `veto` holds the reason it refused, if it did. */
  preflight(mock: MockContext = {}): Promise<PluginRun> {
    return this.#call(
      `${this.name}: preflight`,
      { type: "preflight" },
      mock,
      this.manifest.plugin.timeout_ms,
      [],
    );
  }

  async #call(
    label: string,
    message: Parameters<PluginHost["call"]>[0],
    mock: MockContext,
    defaultTimeout: number,
    writable: string[],
  ): Promise<PluginRun> {
    const { sandbox, env } = await makeSandbox(mock);
    if (message.type === "run-stage") seedSession(message.context, mock, sandbox, this.name);
    else if (mock.vm !== undefined || mock.command || mock.context) {
      throw new KitAssertionError(
        `Cannot give ${label} context keys, a VM file or a command: only a stage reads them`,
      );
    }
    if (mock.vm !== undefined) await Deno.writeTextFile(join(sandbox.root, "vm.toml"), mock.vm);
    for (const [name, text] of Object.entries(mock.beside ?? {})) {
      if (isAbsolute(name) || name.split("/").includes("..") || name === "vm.toml") {
        throw new KitAssertionError(
          `Cannot place "${name}" beside the VM file: give a name relative to its folder`,
        );
      }
      await Deno.mkdir(dirname(join(sandbox.root, name)), { recursive: true });
      await Deno.writeTextFile(join(sandbox.root, name), text);
    }
    const dryRun = !mock.live;
    const messages: UiMessage[] = [];
    const emitted: EmittedEvent[] = [];
    const requested: { kind: string; args: Json }[] = [];
    const engine = new OpEngine(dryRun ? "dry" : "live", {
      startup: env,
      host: new HostRunner(env.path),
      report: (m) => messages.push(m),
      // The VM file's folder: what file.read may read (a password file, a cloud-config).
      ...(mock.vm !== undefined ? { requestDir: sandbox.root } : {}),
    });
    const host = new PluginHost(
      this.manifest,
      env,
      dryRun,
      (text) => messages.push({ type: "warn", text }),
    );
    const writes: Record<string, Json> = {};
    const problems = new Map<string, string>();
    let error: PluginRun["error"];
    let reply: Json | undefined;
    let veto: string | undefined;
    // Kept apart from the plugin's own error: it fails the run even if the plugin catches it.
    let hostOp: string | undefined;
    try {
      const grants = grantsFor(this.manifest, env);
      const handlers: CallHandlers = {
        op: (kind, args) => {
          requested.push({ kind, args });
          if (!dryRun && !mock.allowHostOps && touchesHost(kind)) {
            hostOp ??=
              `Cannot run the op "${kind}" in a live kit call: it acts on this machine, not on the sandbox's directories; set allowHostOps: true in the mock to run it here, or leave out live: true to plan it`;
            return Promise.reject(new KitAssertionError(hostOp));
          }
          return engine.request(grants, label, { kind, args });
        },
        read: (kind, path) => serveRead(grants, kind, path),
        emit: (event, payload) => {
          emitted.push({ event, payload });
          return Promise.resolve(mockReplies(mock.replies?.[event], payload));
        },
        ui: (m) => messages.push(m),
        subscribe: () => {},
      };
      const abilities = await host.start();
      const declared = this.manifest.stages.map((s) => s.name);
      const missing = declared.filter((s) => !abilities.stages.includes(s));
      const undeclared = abilities.stages.filter((s) => !declared.includes(s));
      if (missing.length || undeclared.length) {
        // The kernel refuses to run such a plugin at all.
        throw new KitAssertionError(
          `Cannot start "${this.name}": its stages do not match ${this.manifest.file}: ${
            [
              missing.length ? `declared but not defined: ${missing.join(", ")}` : "",
              undeclared.length ? `defined but not declared: ${undeclared.join(", ")}` : "",
            ].filter(Boolean).join("; ")
          }`,
        );
      }
      const result = await host.call(message, label, mock.timeoutMs ?? defaultTimeout, handlers);
      await engine.settled();
      reply = result.reply;
      veto = result.veto;
      const contracts = await loadContracts([this.manifest]);
      for (const [key, value] of Object.entries(result.writes)) {
        writes[key] = value;
        if (!writable.includes(key)) {
          problems.set(key, `it wrote "${key}", which the stage does not declare in writes`);
          continue;
        }
        const checked = contracts.get(key)?.safeParse(value);
        if (checked && !checked.success) {
          const issue = checked.error.issues[0]!;
          problems.set(
            key,
            `its value breaks the key's contract at "${
              issue.path.join(".") || "(value)"
            }": ${issue.message} (found ${JSON.stringify(valueAt(value, issue.path))})`,
          );
        }
      }
      const first = [...problems.values()][0];
      if (first) error = { message: `${label} failed: ${first}` };
    } catch (caught) {
      error = errorFields(caught);
    } finally {
      host.terminate("the test call is over");
    }
    if (hostOp) error = { message: `${label} failed: ${hostOp}` };
    return new PluginRun({
      label,
      dryRun,
      error,
      ops: [...engine.records],
      requested,
      writes,
      problems,
      messages,
      emitted,
      reply,
      veto,
      sandbox,
    });
  }
}

/** Fills in `session.user_vm_request` and `session.command` with the sandbox's paths. */
function seedSession(
  context: Record<string, Json>,
  mock: MockContext,
  sandbox: Sandbox,
  plugin: string,
): void {
  if (mock.vm !== undefined) {
    context["session.user_vm_request"] = { file: join(sandbox.root, "vm.toml"), text: mock.vm };
  }
  if (mock.command) {
    context["session.command"] = {
      plugin: mock.command.plugin ?? plugin,
      path: mock.command.path,
      args: mock.command.args ?? {},
      flags: mock.command.flags ?? {},
      cwd: sandbox.root,
    };
  }
}

function valueAt(value: unknown, path: PropertyKey[]): unknown {
  let at = value;
  for (const key of path) {
    at = typeof at === "object" && at !== null ? (at as Record<PropertyKey, unknown>)[key] : at;
  }
  return at;
}

function mockReplies(mock: EventReplyMock | EventReplyMock[] | undefined, payload: Json) {
  if (mock === undefined) return [];
  const list = Array.isArray(mock) && mock.some((m) => typeof m === "function")
    ? mock as EventReplyMock[]
    : [mock as EventReplyMock];
  const replies: EventReply[] = [];
  for (const m of list) {
    const reply = typeof m === "function" ? m(payload) : m;
    if (reply === undefined) continue;
    replies.push({ plugin: "kit-mock", manifest: "(test kit)", grants: { vm_patch: [] }, reply });
  }
  return replies;
}

function folderOf(dir: string | URL): string {
  const path = dir instanceof URL ? fromFileUrl(dir) : resolve(dir);
  return path.replace(/\/+$/, "");
}

function originOf(dir: string): Manifest["origin"] {
  return relative(CORE_PLUGIN_DIR, dir).startsWith("..") ? "extra" : "core";
}

async function readManifest(dir: string | URL): Promise<Manifest> {
  const folder = folderOf(dir);
  const file = join(folder, "plugin.toml");
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    throw new KitAssertionError(
      `Cannot load the plugin in ${folder}: ${file} cannot be read (${
        error instanceof Error ? error.message : error
      }); give the folder that holds plugin.toml`,
    );
  }
  const parsed = parseManifest(text, file, originOf(folder));
  if (!parsed.ok) {
    throw new KitAssertionError(
      `Cannot load the plugin in ${folder}:\n${
        parsed.errors.map((e) => `  - ${formatError(e)}`).join("\n")
      }`,
    );
  }
  return parsed.manifest;
}

/**
 * Loads the plugin in `dir` (its `plugin.toml`, checked as the kernel checks it); a test usually
 * passes `new URL(".", import.meta.url)`.
 */
export async function loadPlugin(dir: string | URL): Promise<KitPlugin> {
  return new KitPlugin(await readManifest(dir));
}

/** A plugin the dependencies may resolve against: a folder, or a name and version. */
export type AvailablePlugin = string | URL | { name: string; version: string };

/** Gini's core plugins, as `assertDependenciesResolved` takes them. */
export async function corePlugins(): Promise<string[]> {
  const found = await discoverPlugins([{ dir: CORE_PLUGIN_DIR, origin: "core" }]);
  return found.manifests.map((m) => m.dir);
}

/**
 * Asserts the plugin resolves, as the kernel resolves it before any worker starts, against the
 * given set: plugin folders, or names with versions. A failure lists every problem (a missing
 * dependency, a version conflict, a cycle, a key with two producers).
 */
export async function assertDependenciesResolved(
  plugin: KitPlugin,
  available: AvailablePlugin[],
): Promise<void> {
  const others: Manifest[] = [];
  for (const a of available) {
    if (typeof a === "string" || a instanceof URL) {
      const m = await readManifest(a);
      if (m.file !== plugin.manifest.file) others.push(m); // the plugin itself, in a whole set
      continue;
    }
    const file = `/kit/stand-ins/${a.name}/plugin.toml`;
    const parsed = parseManifest(
      [
        "[plugin]",
        `name = ${JSON.stringify(a.name)}`,
        `version = ${JSON.stringify(a.version)}`,
        'description = "a stand-in given to assertDependenciesResolved"',
        'priority = "third-party:200"',
        "[compatibility]",
        'kernel_api = "^1.0.0"',
      ].join("\n"),
      file,
      "extra",
    );
    if (!parsed.ok) {
      throw new KitAssertionError(
        `Cannot use ${JSON.stringify(a)} as an available plugin: ${parsed.errors[0]!.message}`,
      );
    }
    others.push(parsed.manifest);
  }
  let skipped: { plugin: string; reason: string }[];
  await prepareRanges([plugin.manifest, ...others]);
  try {
    skipped = resolvePlugins([plugin.manifest, ...others]).skipped;
  } catch (error) {
    if (!(error instanceof PluginResolutionError)) throw error;
    throw new KitAssertionError(
      `Expected the dependencies of "${plugin.name}" to resolve, but: ${error.message}`,
    );
  }
  const own = skipped.find((s) => s.plugin === plugin.name);
  if (own) {
    throw new KitAssertionError(
      `Expected "${plugin.name}" to resolve, but it would be left out: ${own.reason}`,
    );
  }
}

/**
 * Asserts a configuration (a value, or TOML text) is valid against a JSON Schema (a VM file
 * against `gini schema`'s, a plugin's own settings against its schema). A failure lists every
 * key that does not fit, with what was expected.
 */
export function assertConfigValid(
  config: Json | string,
  schema: Record<string, unknown>,
  label = "the configuration",
): void {
  let value: unknown = config;
  if (typeof config === "string") {
    try {
      value = parseToml(config);
    } catch (error) {
      throw new KitAssertionError(
        `Expected ${label} to be valid, but it is not TOML: ${
          error instanceof Error ? error.message.split("\n")[0] : error
        }`,
      );
    }
  }
  let checker: z.ZodType;
  try {
    checker = z.fromJSONSchema(schema as never);
  } catch (error) {
    throw new KitAssertionError(
      `Cannot check ${label}: the schema is not a JSON Schema zod can read (${
        error instanceof Error ? error.message : error
      })`,
    );
  }
  const checked = checker.safeParse(value);
  if (checked.success) return;
  const issues = checked.error.issues.map((issue) =>
    `  - at "${issue.path.join(".") || "(top)"}": ${issue.message}`
  );
  throw new KitAssertionError(
    `Expected ${label} to be valid against its schema, but:\n${issues.join("\n")}`,
  );
}

/** A test registered with {@linkcode test}. */
export interface KitTest {
  name: string;
  fn: () => Promise<void> | void;
}

let collector: KitTest[] | undefined;

/**
 * Registers a test. Under `deno test` it is a Deno test; under `gini plugins test` Gini collects
 * and runs it. Every sandbox the test's calls made is removed after it.
 */
export function test(name: string, fn: () => Promise<void> | void): void {
  const wrapped = async () => {
    try {
      await fn();
    } finally {
      await cleanupSandboxes();
    }
  };
  if (collector) {
    collector.push({ name, fn: wrapped });
    return;
  }
  Deno.test({ name, fn: wrapped, sanitizeOps: false, sanitizeResources: false });
}

/** Collects the tests a module registers while `load` imports it (`gini plugins test`). */
export async function collectTests(load: () => Promise<unknown>): Promise<KitTest[]> {
  if (collector) throw new Error("collectTests() is already collecting");
  const tests: KitTest[] = [];
  collector = tests;
  try {
    await load();
  } finally {
    collector = undefined;
  }
  return tests;
}
