/**
 * One plugin's worker: started with exactly the Deno permissions its manifest
 * declares (all eight keys explicit; `run`, `write`, `ffi` and `import` always
 * false), spoken to only through the validated protocol, and terminated when it
 * times out, floods, or misbehaves. Nothing a worker does can crash the kernel.
 *
 * @module
 */
import { GiniError, StageFailedError } from "../errors.ts";
import type { StartupEnv } from "../paths.ts";
import { toFileUrl } from "../url.ts";
import { expandGrant } from "../ops/broker.ts";
import type { Manifest } from "./manifest.ts";
import {
  type Json,
  type KernelMessage,
  parseWorkerMessage,
  PROTOCOL_VERSION,
  type UiMessage,
  type WireError,
  type WorkerMessage,
} from "../../workers/protocol.ts";
import { join } from "../../workers/path.ts";
import {
  codeFromStringsAllowed,
  CORE_WORKER_PREFIX,
  NO_CODE_FROM_STRINGS,
} from "../../workers/lockdown.ts";
import { stripControls } from "../../workers/paint.ts";
import { deadline } from "../../workers/timer.ts";

/** Gini's worker bootstrap, where a packaged plugin's worker starts. */
const BOOTSTRAP_URL = new URL("../../workers/package_worker.ts", import.meta.url);

/** Raised when a plugin cannot be started safely. */
export class PluginTrustError extends GiniError {
  constructor(message: string, hint: string) {
    super("PLUGIN_UNTRUSTED", message, 1, { hint });
    this.name = "PluginTrustError";
  }
}

/** Messages per second above which a worker is terminated as flooding. */
export const FLOOD_LIMIT_PER_SECOND = 5_000;
/** Refused messages after which a worker is terminated. */
export const MAX_BAD_MESSAGES = 50;
const START_TIMEOUT_MS = 15_000;

/** The exact permission object a plugin's worker gets. */
export function workerPermissions(
  manifest: Manifest,
  env: StartupEnv,
): Deno.PermissionOptionsObject {
  const list = (values: string[]) => values.length ? [...values] : false;
  // A null-prototype object with every key set: nothing can be inherited, even from a polluted
  // Object.prototype, and an omitted key can never mean "inherit".
  const permissions = Object.create(null) as Deno.PermissionOptionsObject;
  Object.assign(permissions, {
    // And what the user named for this run (files and folders with access), which it may read.
    read: list([
      ...manifest.permissions.read.map((g) => expandGrant(g, env)),
      ...Object.values(manifest.named ?? {}).flat(),
    ]),
    net: list(manifest.permissions.net),
    env: list(manifest.permissions.env),
    sys: list(manifest.permissions.sys) as Deno.PermissionOptionsObject["sys"],
    run: false,
    write: false,
    ffi: false,
    import: false,
  });
  return permissions;
}

/** What the kernel does with a worker's requests during a call. */
export interface CallHandlers {
  op(kind: string, args: Json): Promise<Json>;
  read(kind: "text" | "dir" | "link" | "stat", path: string): Promise<Json>;
  emit(event: string, payload: Json): Promise<Json[]>;
  ui(message: UiMessage): void;
  subscribe(event: string): void;
}

/** What a call returned. */
export interface CallResult {
  writes: Record<string, Json>;
  veto?: string;
  reply?: Json;
}

/** What the worker said it defines. */
export interface WorkerAbilities {
  stages: string[];
  events: string[];
  hooks: ("pre-stage" | "post-stage")[];
  preflight: boolean;
  renders: string[];
}

interface InFlight {
  label: string;
  handlers: CallHandlers;
  resolve(result: CallResult): void;
  reject(error: Error): void;
  /** Cancels the call's deadline. */
  cancelTimer(): void;
}

type CallMessage = KernelMessage extends infer T
  ? T extends { call: number } ? Omit<T, "call"> : never
  : never;

/** Raised inside the kernel when a worker's code failed. */
export class PluginCodeError extends GiniError {
  constructor(plugin: string, wire: WireError) {
    // A plugin reporting bad input (a config error) keeps exit code 2 and its location.
    const badInput = wire.code === "CONFIG_INVALID" || wire.code === "USAGE";
    // The plugin's text reaches the terminal: only colours survive, never a title or a cursor move.
    super(wire.code ?? "PLUGIN_ERROR", stripControls(wire.message), badInput ? 2 : 1, {
      hint: wire.hint ? stripControls(wire.hint) : `This is an error in plugin "${plugin}"`,
      ...(wire.location ? { location: wire.location } : {}),
    });
    this.name = wire.name;
  }
}

/** A running plugin worker. */
export class PluginHost {
  readonly manifest: Manifest;
  abilities: WorkerAbilities | undefined;
  #worker: Worker | undefined;
  #dead: string | undefined;
  #calls = new Map<number, InFlight>();
  #nextCall = 1;
  #windowStart = 0;
  #windowCount = 0;
  #badMessages = 0;
  #env: StartupEnv;
  #dryRun: boolean;
  #onWarning: (text: string) => void;
  /** Started ahead of its run ({@linkcode prestart}): its start, until a run takes it. */
  #starting: Promise<WorkerAbilities> | undefined;

  constructor(
    manifest: Manifest,
    env: StartupEnv,
    dryRun: boolean,
    onWarning: (text: string) => void,
  ) {
    this.manifest = manifest;
    this.#env = env;
    this.#dryRun = dryRun;
    this.#onWarning = onWarning;
  }

  get name(): string {
    return this.manifest.plugin.name;
  }

  /** Why the worker is gone, if it is. */
  get deadReason(): string | undefined {
    return this.#dead;
  }

  /** Where its warnings go from now on (a worker started ahead is taken by a run). */
  set onWarning(warn: (text: string) => void) {
    this.#onWarning = warn;
  }

  /** Starts the worker and waits for it to say what it defines. */
  start(): Promise<WorkerAbilities> {
    return this.#starting ??= this.#start();
  }

  async #start(): Promise<WorkerAbilities> {
    const { entry, module } = this.#entry();
    const worker = new Worker(entry, {
      type: "module",
      // A core plugin's worker runs only Gini's own code: lockdown.ts skips what guards against
      // another's (loading Node's process to lock it, about 13 ms).
      name: `${this.manifest.origin === "core" ? CORE_WORKER_PREFIX : "gini-plugin:"}${this.name}`,
      deno: { permissions: workerPermissions(this.manifest, this.#env) },
    });
    this.#worker = worker;
    const ready = new Promise<WorkerAbilities>((resolve, reject) => {
      const cancelTimer = deadline(START_TIMEOUT_MS, () => {
        this.terminate(`it did not start within ${START_TIMEOUT_MS} ms`);
        reject(this.#failure("start", `it did not start within ${START_TIMEOUT_MS} ms`));
      });
      this.#onReady = (message) => {
        cancelTimer();
        if (message.type === "init-failed") {
          this.terminate("it failed to initialise");
          reject(new PluginCodeError(this.name, message.error));
          return;
        }
        resolve({
          stages: message.stages,
          events: message.events,
          hooks: message.hooks,
          preflight: message.preflight,
          renders: message.renders,
        });
      };
      this.#onStartError = (reason) => {
        cancelTimer();
        reject(this.#failure("start", reason));
      };
    });
    worker.onmessage = (event) => this.#receive(event.data);
    worker.onmessageerror = () => this.#refuse("a message could not be deserialised");
    worker.onerror = (event) => {
      event.preventDefault();
      const reason = `its code threw outside any call: ${stripControls(String(event.message))}`;
      this.#onStartError?.(reason);
      this.terminate(reason);
    };
    this.#post({
      type: "init",
      v: PROTOCOL_VERSION,
      plugin: this.name,
      dryRun: this.#dryRun,
      hostRoot: this.#env.hostRoot,
      dirs: { ...this.#env.dirs },
      ...(module ? { module } : {}),
    });
    try {
      this.abilities = await ready;
    } finally {
      if (module) URL.revokeObjectURL(module);
    }
    return this.abilities;
  }

  /**
   * Where the worker starts. A core plugin, or an author's source folder (`--plugin-dir`), starts
   * from its entry file, which imports the SDK and with it the bootstrap. A packaged plugin starts
   * from Gini's bootstrap, which locks the worker down and then imports the approved bytes from a
   * `blob:` URL: every import the bundle makes is then checked against the worker's permissions.
   */
  #entry(): { entry: URL; module?: string } {
    const bundle = this.manifest.bundle;
    if (!bundle) return { entry: toFileUrl(join(this.manifest.dir, this.manifest.plugin.entry)) };
    if (codeFromStringsAllowed()) {
      throw new PluginTrustError(
        `Cannot start plugin "${this.name}": this Gini process allows code built from strings (eval), which would let a plugin past its sandbox`,
        `Run Gini with deno's ${NO_CODE_FROM_STRINGS} (the compiled binary and \`deno task gini\` have it)`,
      );
    }
    const blob = new Blob([bundle.code as BlobPart], { type: "text/javascript" });
    return { entry: BOOTSTRAP_URL, module: URL.createObjectURL(blob) };
  }

  #onReady:
    | ((message: Extract<WorkerMessage, { type: "ready" | "init-failed" }>) => void)
    | undefined;
  #onStartError: ((reason: string) => void) | undefined;

  #failure(label: string, reason: string): StageFailedError {
    return new StageFailedError(label, this.name, reason, {
      hint: reason.includes("time")
        ? `Raise timeout_ms in ${this.manifest.file} if the work is expected to take longer`
        : `Report this to the author of plugin "${this.name}"`,
    });
  }

  /** Runs one call (stage, preflight, hook, event) with a deadline. */
  call(
    message: CallMessage,
    label: string,
    timeoutMs: number,
    handlers: CallHandlers,
  ): Promise<CallResult> {
    if (this.#dead) {
      return Promise.reject(this.#failure(label, `its worker was stopped earlier: ${this.#dead}`));
    }
    const call = this.#nextCall++;
    return new Promise<CallResult>((resolve, reject) => {
      const cancelTimer = deadline(timeoutMs, () => {
        this.terminate(`"${label}" did not finish within ${timeoutMs} ms`, call);
      });
      this.#calls.set(call, { label, handlers, resolve, reject, cancelTimer });
      this.#post({ ...message, call } as KernelMessage);
    });
  }

  /** Stops the worker; every call in flight fails with the reason. */
  terminate(reason: string, culprit?: number): void {
    if (this.#dead) return;
    this.#dead = reason;
    this.#worker?.terminate();
    // A worker stopped while it starts fails its start now, with the reason, not at the deadline.
    this.#onStartError?.(reason);
    for (const [id, call] of this.#calls) {
      call.cancelTimer();
      const why = culprit === undefined || culprit === id
        ? reason
        : `its worker was stopped because ${reason}`;
      call.reject(this.#failure(call.label, why));
    }
    this.#calls.clear();
  }

  #post(message: KernelMessage): void {
    try {
      this.#worker?.postMessage(message);
    } catch (error) {
      this.terminate(
        `a message could not be sent: ${error instanceof Error ? error.message : error}`,
      );
    }
  }

  #refuse(reason: string): void {
    this.#badMessages++;
    this.#onWarning(`Ignored a message from plugin "${this.name}": ${reason}`);
    if (this.#badMessages >= MAX_BAD_MESSAGES) {
      this.terminate(`it sent ${this.#badMessages} invalid messages`);
    }
  }

  #receive(raw: unknown): void {
    if (this.#dead) return;
    if (this.#flooding()) {
      this.terminate(
        `it flooded the kernel with more than ${FLOOD_LIMIT_PER_SECOND} messages a second`,
      );
      return;
    }
    const parsed = parseWorkerMessage(raw);
    if (!parsed.ok) return this.#refuse(parsed.reason);
    const message = parsed.message;
    switch (message.type) {
      case "ready":
      case "init-failed":
        this.#onReady?.(message);
        this.#onReady = undefined;
        return;
      case "ui": {
        const call = message.call === undefined ? undefined : this.#calls.get(message.call);
        const handler = call?.handlers ?? this.#anyHandlers();
        handler?.ui({ ...message.message, source: this.name });
        return;
      }
      case "crashed": {
        const reason = `its code threw outside any call: ${stripControls(message.error.message)}`;
        this.#onStartError?.(reason);
        this.terminate(reason);
        return;
      }
      case "subscribe":
        this.#anyHandlers()?.subscribe(message.event);
        return;
      case "done":
        return this.#finish(message);
      case "op":
      case "read":
      case "emit":
        return this.#serve(message);
    }
  }

  /** Counts one message against the flood limit; true once the worker is over it. */
  #flooding(): boolean {
    const now = performance.now();
    if (now - this.#windowStart > 1000) {
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    return ++this.#windowCount > FLOOD_LIMIT_PER_SECOND;
  }

  /** Settles a call the worker says is done. */
  #finish(message: Extract<WorkerMessage, { type: "done" }>): void {
    const call = this.#calls.get(message.call);
    if (!call) return this.#refuse(`"done" for unknown call ${message.call}`);
    this.#calls.delete(message.call);
    call.cancelTimer();
    if (message.ok) {
      call.resolve({
        writes: message.writes ?? {},
        ...(message.veto === undefined ? {} : { veto: message.veto }),
        ...(message.reply === undefined ? {} : { reply: message.reply }),
      });
    } else {
      call.reject(
        new PluginCodeError(
          this.name,
          message.error ??
            { name: "Error", message: "the plugin reported a failure without an error" },
        ),
      );
    }
  }

  /** Serves a call's request (an op, a read, an event to emit) and posts the answer. */
  #serve(message: Extract<WorkerMessage, { type: "op" | "read" | "emit" }>): void {
    const call = this.#calls.get(message.call);
    if (!call) return this.#refuse(`request for unknown call ${message.call}`);
    // Async so that a handler throwing synchronously becomes an answer, never a kernel crash.
    const work =
      (async () =>
        message.type === "op"
          ? await call.handlers.op(message.op.kind, message.op.args)
          : message.type === "read"
          ? await call.handlers.read(message.read.kind, message.read.path)
          : await call.handlers.emit(message.event, message.payload))();
    work.then(
      (result) =>
        this.#post({ type: "op-result", req: message.req, ok: true, result: result as Json }),
      (error: unknown) =>
        this.#post({ type: "op-result", req: message.req, ok: false, error: requestError(error) }),
    );
  }

  #anyHandlers(): CallHandlers | undefined {
    return this.#calls.values().next().value?.handlers;
  }
}

/** How a request's error is answered to the worker; a GiniError keeps its code and hint. */
function requestError(error: unknown): WireError {
  return error instanceof GiniError
    ? {
      name: error.name,
      message: error.message,
      code: error.code,
      ...(error.hint ? { hint: error.hint } : {}),
    }
    : error instanceof Error
    ? { name: error.name, message: error.message }
    : { name: "Error", message: String(error) };
}

/**
 * Workers started ahead of their run, by what they were started with. Starting a worker blocks
 * the kernel about 13 ms and loading its modules takes 20-30 ms more: a command that knows early
 * which core plugin runs it starts that worker first and loads the kernel meanwhile.
 */
const warm = new Map<string, PluginHost>();

function warmKey(manifest: Manifest, env: StartupEnv, dryRun: boolean): string {
  return JSON.stringify([manifest, env, dryRun]);
}

/**
 * Starts a core plugin's worker ahead of its run. A run takes it only if it would start the same
 * worker (the same manifest, directories and mode); {@linkcode discardPrestarted} ends the rest.
 */
export function prestart(manifest: Manifest, env: StartupEnv, dryRun: boolean): void {
  if (manifest.origin !== "core" || manifest.bundle) return;
  const key = warmKey(manifest, env, dryRun);
  if (warm.has(key)) return;
  const host = new PluginHost(manifest, env, dryRun, () => {});
  warm.set(key, host);
  // A failure is the run's to report: it starts the worker again, or finds it dead.
  host.start().catch(() => {});
}

/** The worker started ahead for exactly this manifest, directories and mode, if any. */
export function takePrestarted(
  manifest: Manifest,
  env: StartupEnv,
  dryRun: boolean,
  onWarning: (text: string) => void,
): PluginHost | undefined {
  const key = warmKey(manifest, env, dryRun);
  const host = warm.get(key);
  warm.delete(key);
  if (!host || host.deadReason) return undefined;
  host.onWarning = onWarning;
  return host;
}

/** Ends every worker started ahead that no run took. */
export function discardPrestarted(): void {
  for (const host of warm.values()) host.terminate("no run needed it");
  warm.clear();
}
