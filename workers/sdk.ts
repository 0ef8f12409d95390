/**
 * What plugin authors import. A plugin is an ES module whose default export is
 * `definePlugin({...})`; it runs in its own Web Worker with only the Deno
 * permissions its manifest declares, and asks the kernel for every side effect
 * through `ctx.op`.
 *
 * Context values are typed by their key: a producer exports a {@linkcode ContextKey} handle
 * for each key it writes (from its `contracts.ts`, typed by the key's zod schema), and
 * `ctx.get(HANDLE)` / `ctx.set(HANDLE, value)` take their type from it. A handle is the key's
 * string at run time, so a plain string key works as well (its value is `Json`).
 *
 * Importing this module starts the worker's bootstrap: a module the kernel loads too (a
 * `contracts.ts`) imports only its types (`import type`).
 *
 * @example
 * ```ts
 * import { type ContextKey, definePlugin } from "../../workers/sdk.ts";
 * import { ENVIRONMENT_DATA } from "../env_check/contracts.ts";
 *
 * const REPORT: ContextKey<{ path: string; threads: number }> = "example.report";
 *
 * export default definePlugin({
 *   stages: {
 *     "write-report": async (ctx) => {
 *       const host = ctx.get(ENVIRONMENT_DATA)!; // EnvironmentData
 *       const path = `${ctx.dirs.data}/report.txt`;
 *       await ctx.op("fs.write", { path, content: `${host.cpu.threads} threads\n` });
 *       ctx.set(REPORT, { path, threads: host.cpu.threads });
 *     },
 *   },
 * });
 * ```
 *
 * @module
 */
import { registerPlugin } from "./plugin_worker.ts";
import type { EventReply, Json, RenderView, UiMessage } from "./protocol.ts";
import type { Colour } from "./paint.ts";

export type { Colour, EventReply, Json, RenderView, UiMessage };
export { runtimeValue } from "./protocol.ts";
export type { GiniErrorOptions, SourceLocation } from "../kernel/errors.ts";
export type { VmPatchScope } from "../kernel/plugins/manifest.ts";
/** Errors with a location (file, line, column, key or flag) and a hint, as the CLI reports them. */
export { ConfigError, didYouMean, UsageError } from "../kernel/errors.ts";

declare const VALUE: unique symbol;

/**
 * A context key that carries the type of its value. At run time it is the key's string, so it
 * crosses to the kernel unchanged (which still checks every write against the producer's
 * schema); any string is a `ContextKey<Json>`.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import type { ContextKey, Plain } from "../../workers/sdk.ts";
 *
 * const ReportSchema = z.object({ path: z.string(), note: z.string().optional() });
 * export type Report = Plain<z.infer<typeof ReportSchema>>;
 * export const REPORT: ContextKey<Report> = "example.report";
 * ```
 */
export type ContextKey<T extends Json = Json> = string & {
  /** Never present: the value's type, invariant so that a handle is neither widened nor narrowed. */
  readonly [VALUE]?: (value: T) => T;
};

/**
 * `T` as it is stored in the context: plain JSON, where an optional property is absent, never
 * `undefined` (the kernel refuses a write holding `undefined`). Use it on a zod schema's
 * inferred type (`Plain<z.infer<typeof Schema>>`) or on interfaces, to type a handle.
 */
export type Plain<T> = T extends readonly (infer E)[] ? Plain<E>[]
  : T extends object ? { [K in keyof T]: Plain<Exclude<T[K], undefined>> }
  : T;

/** `session.user_vm_request`: the VM file a command deploys or plans (`gini up`, `plan`, `create-vm`…). */
export type UserVmRequest = {
  /** The VM file's absolute path. */
  file: string;
  text: string;
  /** Write the file as part of the deploy (a VM file the command generated). */
  save?: boolean;
  /** The user's defaults for a guest: their login name and public SSH keys. */
  defaults?: { user?: string; sshKeys?: string[] };
  /** For a generated VM file: the flag each key came from, so that errors name the flag. */
  flags?: Record<string, string>;
};
/** The VM file a command deploys or plans; seeded by the command. */
export const USER_VM_REQUEST: ContextKey<UserVmRequest> = "session.user_vm_request";

/** `session.target_vm`: the VM `gini down` or `gini rm` acts on. */
export type TargetVm = { name: string; timeoutMs?: number };
/** The VM a command stops or removes; seeded by the command. */
export const TARGET_VM: ContextKey<TargetVm> = "session.target_vm";

/** One argument or flag of a command, as `session.plugins` describes it. */
export type CatalogueValue = {
  /** The argument's or flag's name (`output` for `-o, --output`). */
  name: string;
  summary: string;
  /** string | number | file | dir | boolean. */
  type: string;
  required: boolean;
  repeatable: boolean;
  choices?: string[];
  default?: string | number | boolean;
  /** A flag's one-letter form. */
  short?: string;
  /** A flag's value name in help (`--output <dir>`). */
  value?: string;
  /** The plugin may read or write the path the user gives, for that run only. */
  access?: "read" | "write";
};

/** One `gini` command: the kernel's own, or one a plugin declares in its manifest. */
export type CatalogueCommand = {
  /** The words after `gini`: "plugins info", "vfio plan". */
  path: string;
  summary: string;
  /** query | change | undo | group for a plugin's; "kernel" for the kernel's own. */
  mode: string;
  arguments: CatalogueValue[];
  flags: CatalogueValue[];
};

/** One loaded plugin's manifest, as `session.plugins` describes it (no paths, no code). */
export type CataloguePlugin = {
  name: string;
  version: string;
  description: string;
  author: string;
  core: boolean;
  /** core (shipped with Gini), user, system (installed packages) or extra (--plugin-dir). */
  origin: string;
  priority: string;
  dependencies: Record<string, string>;
  optionalDependencies: Record<string, string>;
  permissions: { read: string[]; net: string[]; env: string[]; sys: string[] };
  ops: {
    write: string[];
    run: string[];
    download: string[];
    sysfs: string[];
    lvm: boolean;
    request_files: boolean;
    checkpoint: boolean;
  };
  events: string[];
  vmPatch: string[];
  hooks: string[];
  stages: {
    id: string;
    description?: string;
    after: string[];
    reads: string[];
    writes: string[];
    serves: string[];
    when?: { tables?: string[]; guests?: string[] };
  }[];
  commands: CatalogueCommand[];
};

/**
 * `session.plugins`: the plugin set of this run and the kernel's command table, read-only. The
 * kernel seeds it only for a command whose plugin has a stage that reads it (`gini docs`): it
 * is what `gini plugins list --json` and `gini help` already show anyone, without paths.
 */
export type PluginCatalogue = {
  kernelApi: string;
  /** The kernel's own commands (`version`, `plugins info`…), groups included. */
  commands: CatalogueCommand[];
  /** The flags every command takes. */
  globalFlags: CatalogueValue[];
  /** In load order. */
  plugins: CataloguePlugin[];
  /** How plugins and stages connect (`gini plugins graph --json`). */
  graph: {
    plugins: { from: string; to: string; optional: boolean }[];
    stages: { from: string; to: string; via: string }[];
  };
};
/** The loaded plugins and the kernel's commands; seeded by the kernel for a stage that reads it. */
export const PLUGIN_CATALOGUE: ContextKey<PluginCatalogue> = "session.plugins";

/**
 * A context key's value in a command's view (`view.context`), typed by its handle.
 *
 * @example
 * ```ts
 * const report = contextValue(view, ENVIRONMENT_DATA);
 * ```
 */
export function contextValue<T extends Json>(
  view: { context: Record<string, Json> },
  key: ContextKey<T>,
): T | undefined {
  // The kernel checked the value against the producer's schema when it was written.
  return view.context[key] as T | undefined;
}

/** The SHA-256 of a text or bytes, as lower-case hex (what `fs.edit` expects as `expectSha256`). */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A progress bar a stage drives. */
export interface Progress {
  update(current: number, label?: string): void;
  complete(label?: string): void;
}

/** What a plugin may show the user. */
export interface StageUi {
  info(text: string): void;
  warn(text: string): void;
  error(text: string): void;
  debug(text: string): void;
  progress(label: string, total?: number): Progress;
}

/** A file's type and size, from `ctx.host.stat`. */
export interface HostStat {
  isFile: boolean;
  isDirectory: boolean;
  isSymlink: boolean;
  size: number;
  mode: number | null;
}

/**
 * Read-only access to the host tree (`/`, or `--host-root`). Paths are host paths
 * (`/proc/cpuinfo`); reads are limited to the manifest's `[permissions].read`.
 */
export interface HostReader {
  /** The directory standing for `/`. */
  readonly root: string;
  /** The real path of a host path under the root. */
  path(hostPath: string): string;
  readText(hostPath: string): Promise<string>;
  readDir(hostPath: string): Promise<string[]>;
  /** The target of a symbolic link, as stored. */
  readLink(hostPath: string): Promise<string>;
  stat(hostPath: string): Promise<HostStat>;
}

/** Gini's directories, as the kernel resolved them. */
export interface Dirs {
  config: string;
  data: string;
  state: string;
  cache: string;
}

/** What every call into a plugin receives. */
export interface BaseContext {
  readonly plugin: string;
  readonly dryRun: boolean;
  readonly dirs: Dirs;
  readonly host: HostReader;
  readonly ui: StageUi;
  /** Asks the kernel for an operation; resolves with its (in a dry run, simulated) result. */
  op<T extends Json = Json>(kind: string, args: Record<string, Json>): Promise<T>;
  /** Publishes an event to subscribing plugins; resolves with their replies. */
  emit(event: string, payload?: Json): Promise<Json[]>;
  /**
   * Publishes an event like {@linkcode BaseContext.emit}, and resolves with each reply wrapped
   * by the kernel in who sent it and what its manifest grants: for an emitter that must judge a
   * reply by its sender (qemu-setup judging `on_pre_vm_start` patches).
   */
  emitAttested(event: string, payload?: Json): Promise<EventReply[]>;
}

/** What a stage receives. */
export interface StageContext extends BaseContext {
  readonly stage: string;
  /**
   * A context key the stage declared in `reads` (or `writes`), typed by its handle
   * (`ctx.get(ENVIRONMENT_DATA)`); `Json` for a plain string key.
   */
  get<T extends Json = Json>(key: ContextKey<T>): T | undefined;
  /**
   * Writes a key the stage declared in `writes`, a value of its handle's type; the kernel checks
   * it against the producer's schema.
   */
  set<T extends Json = Json>(key: ContextKey<T>, value: NoInfer<T>): void;
  /** Subscribes to an event for the rest of the run. */
  on(event: string, handler: EventHandler): void;
}

/** A stage function. */
export type StageFn = (ctx: StageContext) => Promise<void> | void;

/** An event handler: may reply with data (lifecycle hooks use this). */
export type EventHandler = (
  payload: Json,
  ctx: BaseContext & { readonly event: string },
) => Promise<Json | void> | Json | void;

/** Information a pre- or post-stage hook receives. */
export interface HookInfo {
  stage: string;
  /** Set for post-stage hooks of a stage that failed. */
  error?: string;
}

/** What a command's `render` receives: the command, its context keys, and a colour helper. */
export interface CommandView extends RenderView {
  /** Colours text when it goes to a terminal. */
  paint(colour: Colour, text: string): string;
}

/**
 * A command's output, rendered in the plugin's worker: text for the terminal, and optionally the
 * data `--json` prints (by default the value of the command's `result` key) and the exit code:
 * 1 when the command found a failure it reports as output (a failed check), the exit code of a
 * program it ran for the user (`gini ssh`), 0 (the default) otherwise. Bad input and errors are
 * thrown by stages instead.
 */
export type CommandOutput = string | { text: string; data?: Json; exitCode?: number };

/** How a plugin presents one of its `[[commands]]` (or a kernel verb its stage serves). */
export interface CommandDefinition {
  render(view: CommandView): CommandOutput | Promise<CommandOutput>;
}

/** A plugin's definition. */
export interface PluginDefinition {
  /** Stage functions by stage name; each must be declared in the manifest's `[[stages]]`. */
  stages?: Record<string, StageFn>;
  /** Runs before the pipeline starts; return a string to veto it with that reason. */
  preflight?: (ctx: BaseContext) => Promise<string | void> | string | void;
  /** Run around every stage of the pipeline, in priority order. */
  hooks?: {
    preStage?: (info: HookInfo, ctx: BaseContext) => Promise<void> | void;
    postStage?: (info: HookInfo, ctx: BaseContext) => Promise<void> | void;
  };
  /** Event handlers by event name. */
  on?: Record<string, EventHandler>;
  /** Output of the plugin's `[[commands]]` by command path ("vfio plan"), or of a kernel verb ("up"). */
  commands?: Record<string, CommandDefinition>;
}

/** Declares a plugin. The returned value is the module's default export. */
export function definePlugin(definition: PluginDefinition): PluginDefinition {
  registerPlugin(definition);
  return definition;
}

/**
 * An error for a stage to throw: what went wrong, the next step (shown as the hint), and a code.
 * `CONFIG_INVALID` marks bad input, which the CLI reports with exit code 2.
 */
export function stageError(message: string, hint: string, code = "PLUGIN_ERROR"): Error {
  return Object.assign(new Error(message), { code, hint });
}
