/**
 * The message union spoken between the kernel and plugin workers, versioned and
 * validated with zod on both sides. Every message is hostile input: it is
 * checked for size, depth and prototype keys before its shape.
 *
 * @module
 */
import { z } from "zod";
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
    else if (current instanceof Uint8Array) bytes += current.byteLength;
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

/** Plain JSON-like data, as context values and op arguments are. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

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

const json: z.ZodType<Json> = z.lazy(() =>
  z.union([
    z.null(),
    z.boolean(),
    z.number(),
    z.string(),
    z.array(json),
    z.record(z.string(), json),
  ])
);

/** Messages a plugin shows the user through the kernel's UI. */
export const UiMessageSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.enum(["info", "warn", "error", "debug"]),
    text: z.string().max(64 * 1024),
    source: z.string().optional(),
  }),
  z.object({
    type: z.literal("progress"),
    phase: z.enum(["start", "update", "complete"]),
    id: z.string().max(200),
    label: z.string().max(1000).optional(),
    total: z.number().nonnegative().optional(),
    current: z.number().nonnegative().optional(),
    /** "bytes": the renderer shows sizes, rate and ETA. */
    unit: z.literal("bytes").optional(),
    source: z.string().optional(),
  }),
]);
export type UiMessage = z.infer<typeof UiMessageSchema>;

/** An error as it crosses the worker boundary. */
export const WireErrorSchema = z.object({
  name: z.string(),
  message: z.string(),
  code: z.string().optional(),
  hint: z.string().optional(),
  stack: z.string().optional(),
  location: z.object({
    file: z.string().optional(),
    flag: z.string().max(100).optional(),
    line: z.number().optional(),
    column: z.number().optional(),
    key: z.string().optional(),
  }).optional(),
});
export type WireError = z.infer<typeof WireErrorSchema>;

/** An operation request: its kind and its arguments, validated by the op's own schema. */
export const OpRequestSchema = z.object({ kind: z.string().max(100), args: json });
export type OpRequest = z.infer<typeof OpRequestSchema>;

const id = z.number().int().nonnegative();

/**
 * What a plugin renders a command's output from: the command as parsed, the final values of the
 * context keys the plugin's stages read or write, and the run's plan (the ops it asked for).
 */
export const RenderViewSchema = z.object({
  command: z.string(),
  args: z.record(z.string(), json),
  flags: z.record(z.string(), json),
  context: z.record(z.string(), json),
  dryRun: z.boolean(),
  /** query: a read-only command; plan: a change shown before it runs; applied: after it ran. */
  phase: z.enum(["query", "plan", "applied"]),
  /** The run's plan as the kernel shows it, and as data (stages, ops, summary). */
  plan: z.string(),
  report: json,
  /** Whether colours reach the terminal. */
  color: z.boolean(),
});
export type RenderView = z.infer<typeof RenderViewSchema>;

/**
 * A plugin's rendering of a command's output (the reply to "render"): the text, the data `--json`
 * prints, and the exit code (1: the command found a failure, as `gini check` does; another
 * program's code passed through, as `gini ssh` and `gini exec` do).
 */
export const RenderOutputSchema = z.object({
  text: z.string(),
  data: json.optional(),
  exitCode: z.number().int().min(0).max(255).optional(),
});
export type RenderOutput = z.infer<typeof RenderOutputSchema>;

/** Kernel → worker. */
export const KernelMessageSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("init"),
    v: z.literal(PROTOCOL_VERSION),
    plugin: z.string(),
    dryRun: z.boolean(),
    hostRoot: z.string(),
    dirs: z.object({ config: z.string(), data: z.string(), state: z.string(), cache: z.string() }),
    /** A packaged plugin's bundle (a `blob:` URL), which the bootstrap imports. */
    module: z.string().startsWith("blob:").optional(),
  }),
  z.object({
    type: z.literal("run-stage"),
    call: id,
    stage: z.string(),
    context: z.record(z.string(), json),
  }),
  z.object({ type: z.literal("preflight"), call: id }),
  z.object({
    type: z.literal("hook"),
    call: id,
    hook: z.enum(["pre-stage", "post-stage"]),
    stage: z.string(),
    error: z.string().optional(),
  }),
  z.object({ type: z.literal("event"), call: id, event: z.string(), payload: json }),
  z.object({ type: z.literal("render"), call: id, command: z.string(), view: RenderViewSchema }),
  z.object({
    type: z.literal("op-result"),
    req: id,
    ok: z.boolean(),
    result: json.optional(),
    error: WireErrorSchema.optional(),
  }),
]);
export type KernelMessage = z.infer<typeof KernelMessageSchema>;

/** Worker → kernel. */
export const WorkerMessageSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("ready"),
    v: z.literal(PROTOCOL_VERSION),
    stages: z.array(z.string()),
    events: z.array(z.string()),
    hooks: z.array(z.enum(["pre-stage", "post-stage"])),
    preflight: z.boolean(),
    /** Commands the module renders output for. */
    renders: z.array(z.string()).default([]),
  }),
  z.object({ type: z.literal("init-failed"), error: WireErrorSchema }),
  /** The plugin's code threw (or rejected) outside any call; the kernel stops the worker. */
  z.object({ type: z.literal("crashed"), error: WireErrorSchema }),
  z.object({ type: z.literal("op"), req: id, call: id, op: OpRequestSchema }),
  z.object({
    type: z.literal("read"),
    req: id,
    call: id,
    read: z.object({
      kind: z.enum(["text", "dir", "link", "stat"]),
      path: z.string().max(4096),
    }),
  }),
  z.object({ type: z.literal("ui"), call: id.optional(), message: UiMessageSchema }),
  z.object({ type: z.literal("subscribe"), event: z.string().max(200) }),
  z.object({
    type: z.literal("emit"),
    req: id,
    call: id,
    event: z.string().max(200),
    payload: json,
  }),
  z.object({
    type: z.literal("done"),
    call: id,
    ok: z.boolean(),
    writes: z.record(z.string(), json).optional(),
    veto: z.string().optional(),
    reply: json.optional(),
    error: WireErrorSchema.optional(),
  }),
]);
export type WorkerMessage = z.infer<typeof WorkerMessageSchema>;

/** A successfully checked message, or the reason it was refused. */
export type Parsed<T> = { ok: true; message: T } | { ok: false; reason: string };

function parseWith<T>(schema: z.ZodType<T>, raw: unknown): Parsed<T> {
  const problem = inspectRawMessage(raw);
  if (problem) return { ok: false, reason: `the message ${problem}` };
  const result = schema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    return {
      ok: false,
      reason: `the message does not match the protocol at "${issue?.path.join(".") ?? ""}": ${
        issue?.message ?? "invalid"
      }`,
    };
  }
  return { ok: true, message: result.data };
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
