/**
 * What plugin authors import. A plugin is an ES module whose default export is
 * `definePlugin({...})`; it runs in its own Web Worker with only the Deno
 * permissions its manifest declares, and asks the kernel for every side effect
 * through `ctx.op`.
 *
 * @example
 * ```ts
 * import { definePlugin } from "../../workers/sdk.ts";
 *
 * export default definePlugin({
 *   stages: {
 *     "write-report": async (ctx) => {
 *       const path = `${ctx.dirs.data}/report.txt`;
 *       await ctx.op("fs.write", { path, content: "hello\n" });
 *       ctx.set("example.report", { path });
 *     },
 *   },
 * });
 * ```
 *
 * @module
 */
import { registerPlugin } from "./plugin_worker.ts";
import type { Json, RenderView, UiMessage } from "./protocol.ts";
import type { Colour } from "./paint.ts";

export type { Colour, Json, RenderView, UiMessage };
export { runtimeValue } from "./protocol.ts";

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
}

/** What a stage receives. */
export interface StageContext extends BaseContext {
  readonly stage: string;
  /** A context key the stage declared in `reads` (or `writes`). */
  get<T extends Json = Json>(key: string): T | undefined;
  /** Writes a key the stage declared in `writes`; checked against the producer's schema. */
  set(key: string, value: Json): void;
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
 * data `--json` prints (by default the value of the command's `result` key).
 */
export type CommandOutput = string | { text: string; data?: Json };

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
