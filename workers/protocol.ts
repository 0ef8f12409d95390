/**
 * The message union spoken between the kernel and plugin workers, versioned and
 * checked on both sides (with `shape.ts`, not zod: every worker parses it, and loading zod would
 * cost each one about 15 ms). Every message is hostile input: it is checked for size, depth and
 * prototype keys before its shape.
 *
 * @module
 */
import {
  arr,
  bool,
  check,
  type Infer,
  type Json,
  json,
  lit,
  num,
  obj,
  oneOf,
  opt,
  rec,
  type Shape,
  str,
  tagged,
  withDefault,
} from "./shape.ts";
import type { VmPatchScope } from "../kernel/plugins/manifest.ts";

/** Bumped on any incompatible change to the messages below. */
import { PROTOCOL_VERSION } from "../kernel/versions.ts";
export { PROTOCOL_VERSION };
/** Largest message either side accepts, in bytes of its JSON form. */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
/** Deepest nesting of objects and arrays either side accepts. */
export const MAX_MESSAGE_DEPTH = 64;

const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/** Why a raw message was refused before its shape was checked, or undefined if it is sane. */
export function inspectRawMessage(value: unknown): string | undefined {
  let bytes = 0;
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop()!;
    if (depth > MAX_MESSAGE_DEPTH) return `nested deeper than ${MAX_MESSAGE_DEPTH} levels`;
    if (typeof current === "string") bytes += current.length;
    else if (current instanceof Uint8Array) return "holds binary data, which no message carries";
    else if (current === null || typeof current !== "object") bytes += 8;
    else {
      const proto = Object.getPrototypeOf(current);
      if (proto !== Object.prototype && proto !== Array.prototype && proto !== null) {
        return "holds an object that is not plain data";
      }
      for (const key of Reflect.ownKeys(current)) {
        if (typeof key === "symbol") return "holds a symbol key";
        if (FORBIDDEN_KEYS.has(key)) return `holds the forbidden key "${key}"`;
        bytes += key.length;
        stack.push({ value: (current as Record<string, unknown>)[key], depth: depth + 1 });
      }
    }
    if (bytes > MAX_MESSAGE_BYTES) return `is larger than ${MAX_MESSAGE_BYTES} bytes`;
  }
  return undefined;
}

/**
 * How a planned op's argument says a value only exists once the live run gets there (a cookie or
 * a URL from a server's answer, a download's hash): `<known at run time: WHY>`, as the whole
 * argument or inside it (`AssetToken=<known at run time: …>`). A dry run shows it; comparing a plan
 * with a journal, each marker stands for the text the live run put there.
 *
 * @example
 * ```ts
 * runtimeValue("the session cookie from the recovery server"); // "<known at run time: the session cookie from the recovery server>"
 * ```
 */
export function runtimeValue(why: string): string {
  return `<known at run time: ${why.replaceAll(">", ")")}>`;
}

/** Matches one `runtimeValue()` marker inside a string. */
export const RUNTIME_VALUE_PATTERN = /<known at run time: [^>]*>/g;

export type { Json };

/**
 * One reply to an emitted event as the kernel hands it back: `plugin`, `manifest` and `grants`
 * are the kernel's word, from the manifest of the plugin whose worker answered; only `reply`
 * came from that plugin.
 */
export type EventReply = {
  /** The replying plugin's name. */
  plugin: string;
  /** Its manifest file, for a hint that names it. */
  manifest: string;
  /** What its manifest grants the emitter may need to judge the reply. */
  grants: { vm_patch: VmPatchScope[] };
  /** What the plugin's handler returned. */
  reply: Json;
};

/** Messages a plugin shows the user through the kernel's UI. */
export const UiMessageSchema = tagged([
  obj({
    type: oneOf(["info", "warn", "error", "debug"]),
    text: str({ max: 64 * 1024 }),
    source: opt(str()),
  }),
  obj({
    type: lit("progress"),
    phase: oneOf(["start", "update", "complete"]),
    id: str({ max: 200 }),
    label: opt(str({ max: 1000 })),
    total: opt(num({ min: 0 })),
    current: opt(num({ min: 0 })),
    /** "bytes": the renderer shows sizes, rate and ETA. */
    unit: opt(lit("bytes")),
    source: opt(str()),
  }),
]);
export type UiMessage = Infer<typeof UiMessageSchema>;

/** An error as it crosses the worker boundary. */
export const WireErrorSchema = obj({
  name: str(),
  message: str(),
  code: opt(str()),
  hint: opt(str()),
  stack: opt(str()),
  location: opt(obj({
    file: opt(str()),
    flag: opt(str({ max: 100 })),
    line: opt(num()),
    column: opt(num()),
    key: opt(str()),
  })),
});
export type WireError = Infer<typeof WireErrorSchema>;

/** An operation request: its kind and its arguments, validated by the op's own schema. */
export const OpRequestSchema = obj({ kind: str({ max: 100 }), args: json });
export type OpRequest = Infer<typeof OpRequestSchema>;

const id = num({ int: true, min: 0 });

/**
 * What a plugin renders a command's output from: the command as parsed, the final values of the
 * context keys the plugin's stages read or write, and the run's plan (the ops it asked for).
 */
export const RenderViewSchema = obj({
  command: str(),
  args: rec(json),
  flags: rec(json),
  context: rec(json),
  dryRun: bool(),
  /** query: a read-only command; plan: a change shown before it runs; applied: after it ran. */
  phase: oneOf(["query", "plan", "applied"]),
  /** The run's plan as the kernel shows it, and as data (stages, ops, summary). */
  plan: str(),
  report: json,
  /** Whether colours reach the terminal. */
  color: bool(),
});
export type RenderView = Infer<typeof RenderViewSchema>;

/**
 * A plugin's rendering of a command's output (the reply to "render"): the text, the data `--json`
 * prints, and the exit code (1: the command found a failure, as `gini check` does; another
 * program's code passed through, as `gini ssh` and `gini exec` do).
 */
export const RenderOutputSchema = obj({
  text: str(),
  data: opt(json),
  exitCode: opt(num({ int: true, min: 0, max: 255 })),
});
export type RenderOutput = Infer<typeof RenderOutputSchema>;

/** Kernel → worker. */
export const KernelMessageSchema = tagged([
  obj({
    type: lit("init"),
    v: lit(PROTOCOL_VERSION),
    plugin: str(),
    dryRun: bool(),
    hostRoot: str(),
    dirs: obj({ config: str(), data: str(), state: str(), cache: str() }),
    /** A packaged plugin's bundle (a `blob:` URL), which the bootstrap imports. */
    module: opt(str({ startsWith: "blob:" })),
  }),
  obj({ type: lit("run-stage"), call: id, stage: str(), context: rec(json) }),
  obj({ type: lit("preflight"), call: id }),
  obj({
    type: lit("hook"),
    call: id,
    hook: oneOf(["pre-stage", "post-stage"]),
    stage: str(),
    error: opt(str()),
  }),
  obj({ type: lit("event"), call: id, event: str(), payload: json }),
  obj({ type: lit("render"), call: id, command: str(), view: RenderViewSchema }),
  obj({
    type: lit("op-result"),
    req: id,
    ok: bool(),
    result: opt(json),
    error: opt(WireErrorSchema),
  }),
]);
export type KernelMessage = Infer<typeof KernelMessageSchema>;

/** Worker → kernel. */
export const WorkerMessageSchema = tagged([
  obj({
    type: lit("ready"),
    v: lit(PROTOCOL_VERSION),
    stages: arr(str()),
    events: arr(str()),
    hooks: arr(oneOf(["pre-stage", "post-stage"])),
    preflight: bool(),
    /** Commands the module renders output for. */
    renders: withDefault(arr(str()), () => []),
  }),
  obj({ type: lit("init-failed"), error: WireErrorSchema }),
  /** The plugin's code threw (or rejected) outside any call; the kernel stops the worker. */
  obj({ type: lit("crashed"), error: WireErrorSchema }),
  obj({ type: lit("op"), req: id, call: id, op: OpRequestSchema }),
  obj({
    type: lit("read"),
    req: id,
    call: id,
    read: obj({ kind: oneOf(["text", "dir", "link", "stat"]), path: str({ max: 4096 }) }),
  }),
  obj({ type: lit("ui"), call: opt(id), message: UiMessageSchema }),
  obj({ type: lit("subscribe"), event: str({ max: 200 }) }),
  obj({ type: lit("emit"), req: id, call: id, event: str({ max: 200 }), payload: json }),
  obj({
    type: lit("done"),
    call: id,
    ok: bool(),
    writes: opt(rec(json)),
    veto: opt(str()),
    reply: opt(json),
    error: opt(WireErrorSchema),
  }),
]);
export type WorkerMessage = Infer<typeof WorkerMessageSchema>;

/** A successfully checked message, or the reason it was refused. */
export type Parsed<T> = { ok: true; message: T } | { ok: false; reason: string };

function parseWith<T>(shape: Shape<T>, raw: unknown): Parsed<T> {
  const problem = inspectRawMessage(raw);
  if (problem) return { ok: false, reason: `the message ${problem}` };
  const result = check(shape, raw);
  if (!result.ok) {
    return {
      ok: false,
      reason: `the message does not match the protocol at "${
        result.path.join(".")
      }": ${result.message}`,
    };
  }
  return { ok: true, message: result.value };
}

/** Checks a message a worker sent. */
export function parseWorkerMessage(raw: unknown): Parsed<WorkerMessage> {
  return parseWith(WorkerMessageSchema, raw);
}

/** Checks a message the kernel sent. */
export function parseKernelMessage(raw: unknown): Parsed<KernelMessage> {
  return parseWith(KernelMessageSchema, raw);
}

/** Plain data for any thrown value. */
export function toWireError(error: unknown): WireError {
  if (error instanceof Error) {
    const wire: WireError = { name: error.name, message: error.message };
    const extra = error as Error & {
      code?: unknown;
      hint?: unknown;
      location?: WireError["location"];
    };
    if (typeof extra.code === "string") wire.code = extra.code;
    if (typeof extra.hint === "string") wire.hint = extra.hint;
    const at = extra.location;
    if (at && (typeof at.file === "string" || typeof at.flag === "string")) wire.location = at;
    if (error.stack) wire.stack = error.stack.slice(0, 4000);
    return wire;
  }
  return { name: "Error", message: String(error) };
}
