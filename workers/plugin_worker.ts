/**
 * The bootstrap inside every plugin worker. It registers its message handler
 * before any `await`, speaks only the message union of `protocol.ts`, and turns
 * the plugin's definition into answers to the kernel's calls.
 *
 * Plugin authors do not import this file; `sdk.ts` does.
 *
 * @module
 */
import { join } from "./path.ts";
import { paintText } from "./paint.ts";
import { lockDown } from "./lockdown.ts";
import {
  type EventReply,
  type Json,
  type KernelMessage,
  parseKernelMessage,
  PROTOCOL_VERSION,
  toWireError,
  type UiMessage,
  type WorkerMessage,
} from "./protocol.ts";
import type {
  BaseContext,
  Dirs,
  EventHandler,
  HostReader,
  HostStat,
  PluginDefinition,
  Progress,
  StageContext,
  StageUi,
} from "./sdk.ts";

interface WorkerScope {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (event: MessageEvent) => void): void;
  close(): void;
}

const scope = globalThis as unknown as WorkerScope;
const postMessage = scope.postMessage.bind(scope);
const post = (message: WorkerMessage) => postMessage(message);

let definition: PluginDefinition | undefined;
let announceRegistered: () => void = () => {};
const registered = new Promise<void>((resolve) => announceRegistered = resolve);

interface Session {
  plugin: string;
  dryRun: boolean;
  hostRoot: string;
  dirs: Dirs;
}
let session: Session | undefined;

const pending = new Map<number, { resolve(value: Json): void; reject(error: Error): void }>();
const dynamicHandlers = new Map<string, EventHandler>();
let nextRequest = 1;
let nextProgress = 1;

/** The slot through which a plugin module registers, installed by the first bootstrap to run. */
const BOOTSTRAP = Symbol.for("gini.plugin.bootstrap");

interface Bootstrap {
  register(plugin: PluginDefinition): void;
}

/**
 * Installs this bootstrap unless one already runs in the worker. A packaged plugin's bundle
 * carries its own copy of this module (through the SDK); that copy finds Gini's bootstrap,
 * which started the worker and locked it down before importing the bundle, and stays inert.
 */
function install(): void {
  const global = globalThis as unknown as Record<symbol, unknown>;
  if (global[BOOTSTRAP]) return;
  lockDown();
  Object.defineProperty(global, BOOTSTRAP, {
    value: Object.freeze({ register: registerHere }),
    writable: false,
    configurable: false,
  });
  // Registered before any plugin code, so they run first: an error the plugin's code throws outside
  // a call reaches the kernel as a message, never as Deno's own report with the plugin's raw text.
  const crashed = (error: unknown) => post({ type: "crashed", error: toWireError(error) });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    crashed(event.error ?? event.message);
  });
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    crashed(event.reason);
  });
  scope.addEventListener("message", (event: MessageEvent) => {
    const parsed = parseKernelMessage(event.data);
    if (!parsed.ok) {
      post({
        type: "ui",
        message: { type: "error", text: `Ignored a kernel message: ${parsed.reason}` },
      });
      return;
    }
    void handle(parsed.message);
  });
}

function registerHere(plugin: PluginDefinition): void {
  if (definition) return;
  definition = plugin;
  announceRegistered();
}

install();

let loadModule: ((url: string) => Promise<unknown>) | undefined;

/** Set once by the packaged plugin's worker entry (package_worker.ts): how to import the package. */
export function setModuleLoader(load: (url: string) => Promise<unknown>): void {
  loadModule ??= load;
}

/** Called by `definePlugin` when the plugin module evaluates: registers with the running bootstrap. */
export function registerPlugin(plugin: PluginDefinition): void {
  ((globalThis as unknown as Record<symbol, Bootstrap>)[BOOTSTRAP])!.register(plugin);
}

class RemoteError extends Error {
  code: string | undefined;
  hint: string | undefined;
  constructor(
    wire: { name: string; message: string; code?: string | undefined; hint?: string | undefined },
  ) {
    super(wire.message);
    this.name = wire.name;
    this.code = wire.code;
    this.hint = wire.hint;
  }
}

type Request<T = Extract<WorkerMessage, { type: "op" | "read" | "emit" }>> = T extends unknown
  ? Omit<T, "req">
  : never;

function request(message: Request): Promise<Json> {
  const req = nextRequest++;
  return new Promise<Json>((resolve, reject) => {
    pending.set(req, { resolve, reject });
    post({ ...message, req } as WorkerMessage);
  });
}

function makeUi(call: number | undefined, plugin: string): StageUi {
  const send = (message: UiMessage) =>
    post(call === undefined ? { type: "ui", message } : { type: "ui", call, message });
  const text = (type: "info" | "warn" | "error" | "debug") => (line: string) =>
    send({ type, text: String(line), source: plugin });
  return {
    info: text("info"),
    warn: text("warn"),
    error: text("error"),
    debug: text("debug"),
    progress(label: string, total?: number): Progress {
      const id = `${plugin}#${nextProgress++}`;
      send({
        type: "progress",
        phase: "start",
        id,
        label,
        ...(total === undefined ? {} : { total }),
        source: plugin,
      });
      return {
        update: (current, newLabel) =>
          send({
            type: "progress",
            phase: "update",
            id,
            current,
            ...(newLabel ? { label: newLabel } : {}),
          }),
        complete: (newLabel) =>
          send({
            type: "progress",
            phase: "complete",
            id,
            ...(newLabel ? { label: newLabel } : {}),
          }),
      };
    },
  };
}

const SPECIAL_ROOTS = ["/proc/", "/sys/", "/dev/"];

function isNotCapable(error: unknown): boolean {
  return error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied;
}

/**
 * Deno requires `--allow-all` for any read under /proc, /sys and /dev inside a worker, whatever
 * its read list says; for those paths the kernel serves the read after checking the same grant.
 */
function makeHost(call: number, root: string): HostReader {
  const path = (hostPath: string) => root === "/" ? hostPath : join(root, hostPath);
  const viaKernel = (real: string) => SPECIAL_ROOTS.some((prefix) => real.startsWith(prefix));
  const read = async <T>(
    kind: "text" | "dir" | "link" | "stat",
    hostPath: string,
    direct: (real: string) => T,
  ): Promise<T> => {
    const real = path(hostPath);
    try {
      return direct(real);
    } catch (error) {
      if (!isNotCapable(error) || !viaKernel(real)) throw error;
      return await request({ type: "read", call, read: { kind, path: real } }) as T;
    }
  };
  return {
    root,
    path,
    // Sync calls: sysfs attributes are tiny, and a thread-pool hop per file costs more than the read.
    readText: (p) => read("text", p, (real) => Deno.readTextFileSync(real)),
    readDir: (p) =>
      read("dir", p, (real) => Array.from(Deno.readDirSync(real), (entry) => entry.name).sort()),
    readLink: (p) => read("link", p, (real) => Deno.readLinkSync(real)),
    stat: (p) =>
      read("stat", p, (real): HostStat => {
        const info = Deno.lstatSync(real);
        return {
          isFile: info.isFile,
          isDirectory: info.isDirectory,
          isSymlink: info.isSymlink,
          size: info.size,
          mode: info.mode,
        };
      }),
  };
}

/** The kernel's answer to an emit: each reply wrapped in who sent it ({@linkcode EventReply}). */
async function emitAttested(call: number, event: string, payload: Json): Promise<EventReply[]> {
  const replies = await request({ type: "emit", call, event, payload });
  return Array.isArray(replies) ? replies as EventReply[] : [];
}

function baseContext(call: number, s: Session): BaseContext {
  return {
    plugin: s.plugin,
    dryRun: s.dryRun,
    dirs: s.dirs,
    host: makeHost(call, s.hostRoot),
    ui: makeUi(call, s.plugin),
    op: <T extends Json>(kind: string, args: Record<string, Json>) =>
      request({ type: "op", call, op: { kind, args } }) as Promise<T>,
    emit: async (event, payload = null) =>
      (await emitAttested(call, event, payload)).map((r) => r.reply),
    emitAttested: (event, payload = null) => emitAttested(call, event, payload),
  };
}

/** The kernel message of one type. */
type Message<T extends KernelMessage["type"]> = Extract<KernelMessage, { type: T }>;
/** What a call that succeeded answers with, besides its call id. */
type Done = Pick<Extract<WorkerMessage, { type: "done" }>, "writes" | "veto" | "reply">;

/** Answers one kernel message; a call that fails answers with its error. */
async function handle(message: KernelMessage): Promise<void> {
  if (message.type === "op-result") return settleRequest(message);
  if (message.type === "init") return await initialise(message);
  const s = session;
  const def = definition;
  if (!s || !def) {
    post({
      type: "done",
      call: message.call,
      ok: false,
      error: { name: "Error", message: "The worker was not initialised" },
    });
    return;
  }
  const call = message.call;
  try {
    switch (message.type) {
      case "run-stage":
        post({ type: "done", call, ok: true, ...await runStage(message, s, def) });
        break;
      case "preflight":
        post({ type: "done", call, ok: true, ...await preflight(message, s, def) });
        break;
      case "hook":
        post({ type: "done", call, ok: true, ...await runHook(message, s, def) });
        break;
      case "render":
        post({ type: "done", call, ok: true, ...await renderCommand(message, def) });
        break;
      case "event":
        post({ type: "done", call, ok: true, ...await handleEvent(message, s, def) });
        break;
    }
  } catch (error) {
    post({ type: "done", call, ok: false, error: toWireError(error) });
  }
}

/** Answers the plugin's request that the kernel has served or refused. */
function settleRequest(message: Message<"op-result">): void {
  const waiter = pending.get(message.req);
  if (!waiter) return;
  pending.delete(message.req);
  if (message.ok) waiter.resolve(message.result ?? null);
  else {
    // Deno's own error classes survive the trip, so `instanceof Deno.errors.NotFound` works.
    const wire = message.error ?? { name: "Error", message: "The kernel refused the request" };
    const native = (Deno.errors as unknown as Record<string, new (m: string) => Error>)[wire.name];
    waiter.reject(native && !wire.code ? new native(wire.message) : new RemoteError(wire));
  }
}

/** Starts the session once the plugin has registered, and says what it defines. */
async function initialise(message: Message<"init">): Promise<void> {
  if (message.module !== undefined) {
    try {
      // A packaged plugin: its bundle, from a blob: URL of the approved bytes. Imported here,
      // after the lockdown, so every import it makes is checked against this worker's permissions.
      if (!loadModule) throw new Error("This worker was not started to load a package");
      await loadModule(message.module);
    } catch (error) {
      post({ type: "init-failed", error: toWireError(error) });
      return;
    }
  }
  await registered;
  session = {
    plugin: message.plugin,
    dryRun: message.dryRun,
    hostRoot: message.hostRoot,
    dirs: message.dirs,
  };
  const def = definition!;
  const hooks: ("pre-stage" | "post-stage")[] = [];
  if (def.hooks?.preStage) hooks.push("pre-stage");
  if (def.hooks?.postStage) hooks.push("post-stage");
  post({
    type: "ready",
    v: PROTOCOL_VERSION,
    stages: Object.keys(def.stages ?? {}),
    events: Object.keys(def.on ?? {}),
    hooks,
    preflight: typeof def.preflight === "function",
    renders: Object.keys(def.commands ?? {}),
  });
}

/** Runs one stage with the context keys it reads; answers with the keys it wrote. */
async function runStage(
  message: Message<"run-stage">,
  s: Session,
  def: PluginDefinition,
): Promise<Done> {
  const fn = def.stages?.[message.stage];
  if (!fn) throw new Error(`The plugin defines no stage "${message.stage}"`);
  const values = new Map(Object.entries(message.context));
  const writes: Record<string, Json> = {};
  const ctx: StageContext = {
    ...baseContext(message.call, s),
    stage: message.stage,
    get: <T extends Json>(key: string) =>
      (key in writes ? writes[key] : values.get(key)) as T | undefined,
    set: (key, value) => {
      writes[key] = value;
    },
    on: (event, handler) => {
      dynamicHandlers.set(event, handler);
      post({ type: "subscribe", event });
    },
  };
  await fn(ctx);
  return { writes };
}

/** Runs the plugin's preflight; a string it returns vetoes the run. */
async function preflight(
  message: Message<"preflight">,
  s: Session,
  def: PluginDefinition,
): Promise<Done> {
  const veto = await def.preflight?.(baseContext(message.call, s));
  return { writes: {}, ...(typeof veto === "string" ? { veto } : {}) };
}

/** Runs the plugin's pre- or post-stage hook, if it has one. */
async function runHook(message: Message<"hook">, s: Session, def: PluginDefinition): Promise<Done> {
  const info = { stage: message.stage, ...(message.error ? { error: message.error } : {}) };
  const hook = message.hook === "pre-stage" ? def.hooks?.preStage : def.hooks?.postStage;
  await hook?.(info, baseContext(message.call, s));
  return { writes: {} };
}

/** Renders a command's output; a plain string is the text. */
async function renderCommand(message: Message<"render">, def: PluginDefinition): Promise<Done> {
  const render = def.commands?.[message.command]?.render;
  if (!render) throw new Error(`The plugin renders no command "${message.command}"`);
  const view = message.view;
  const output = await render({
    ...view,
    paint: (colour, text) => paintText(view.color, colour, text),
  });
  if (typeof output === "string") return { writes: {}, reply: { text: output } };
  // Only the keys the kernel reads, and none holding undefined (not JSON).
  const { text, data, exitCode } = output;
  const reply = {
    text,
    ...(data === undefined ? {} : { data }),
    ...(exitCode === undefined ? {} : { exitCode }),
  };
  return { writes: {}, reply };
}

/** Hands an event to the plugin's handler for it (declared or subscribed by a stage). */
async function handleEvent(
  message: Message<"event">,
  s: Session,
  def: PluginDefinition,
): Promise<Done> {
  const handler = def.on?.[message.event] ?? dynamicHandlers.get(message.event);
  const reply = await handler?.(message.payload, {
    ...baseContext(message.call, s),
    event: message.event,
  });
  return { writes: {}, ...(reply === undefined ? {} : { reply }) };
}
