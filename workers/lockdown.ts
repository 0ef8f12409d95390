/**
 * What Deno's worker permissions do not stop, taken away before a plugin's code runs.
 *
 * A worker started with no permissions can still talk to other workers (`BroadcastChannel`, and
 * the Web Locks API, whose lock names every worker of the process can list), keep data between
 * runs (the Cache API), start a worker of its own with fresh globals, keep the whole process
 * alive after SIGTERM (signal listeners), end the process (`Deno.exit`, and `Deno.kill` of its
 * own pid, which needs no run grant), move the kernel's working folder or umask (`Deno.chdir`,
 * `Deno.umask`, given a read or sys grant), set environment variables for the whole process (an
 * env grant allows it), read the terminal's input and write to it past the kernel (`Deno.stdin`,
 * `Deno.stdout`, `console`), and reach Deno's internal ops. The bootstrap replaces each with a
 * value that cannot be changed back (non-writable, non-configurable), so a plugin can neither use
 * them nor restore them.
 *
 * Node's `process` needs more than hiding the global: Node's built-ins reach it internally, and a
 * plugin that defines an accessor on `Object.prototype` is handed it whenever one of them reads a
 * property `process` lacks (`util.deprecate` does). Its members that load any built-in module
 * (`getBuiltinModule`, `binding`: `node:worker_threads` starts a worker without this lockdown),
 * end, signal or move the process, or reach the terminal are replaced on the object itself.
 * Console output goes to the kernel as the plugin's messages, which the kernel prints without
 * their escape sequences.
 *
 * Code built from strings (`eval`, `new Function`) could import a Node built-in such as
 * `node:process` or `node:worker_threads` past the package's import check; Gini runs with V8's
 * `--disallow-code-generation-from-strings`, and the kernel refuses to start a packaged plugin
 * in a process that allows it ({@linkcode codeFromStringsAllowed}).
 *
 * @module
 */

/** Globals a plugin may not use: each becomes a function that throws, or `undefined`. */
const GLOBALS: [name: string, as: "throws" | "absent"][] = [
  ["BroadcastChannel", "throws"],
  ["Worker", "throws"],
  ["caches", "absent"],
  ["CacheStorage", "throws"],
  ["Cache", "throws"],
  ["LockManager", "throws"],
  ["Lock", "throws"],
  ["process", "absent"],
  ["close", "throws"],
];

/** Methods refused on every instance, should a plugin reach one some other way. */
const METHODS: [global: string, methods: string[]][] = [
  ["BroadcastChannel", ["postMessage"]],
  ["CacheStorage", ["open", "has", "delete", "keys", "match"]],
  ["LockManager", ["request", "query"]],
];

/** `Deno.*` members a plugin may not use: each throws, or is `undefined`. */
const DENO_MEMBERS: [name: string, as: "throws" | "absent"][] = [
  ["exit", "throws"],
  ["kill", "throws"],
  ["addSignalListener", "throws"],
  ["removeSignalListener", "throws"],
  ["openKv", "throws"],
  ["chdir", "throws"],
  ["umask", "throws"],
  ["cron", "throws"],
  ["internal", "absent"],
  ["stdin", "absent"],
  ["stdout", "absent"],
  ["stderr", "absent"],
];

/** Members of Node's `process` a plugin may not use: each throws, or is `undefined`. */
const PROCESS_MEMBERS: [name: string, as: "throws" | "absent"][] = [
  ["getBuiltinModule", "throws"],
  ["binding", "throws"],
  ["_linkedBinding", "throws"],
  ["dlopen", "throws"],
  ["mainModule", "absent"],
  ["exit", "throws"],
  ["reallyExit", "throws"],
  ["abort", "throws"],
  ["kill", "throws"],
  ["_kill", "throws"],
  ["chdir", "throws"],
  ["umask", "throws"],
  ["loadEnvFile", "throws"],
  ["setUncaughtExceptionCaptureCallback", "throws"],
  ["send", "throws"],
  ["disconnect", "throws"],
  ["setuid", "throws"],
  ["setgid", "throws"],
  ["seteuid", "throws"],
  ["setegid", "throws"],
  ["setgroups", "throws"],
  ["initgroups", "throws"],
  ["openStdin", "throws"],
  ["_rawDebug", "throws"],
  ["stdin", "absent"],
  ["stdout", "absent"],
  ["stderr", "absent"],
];

function refuse(name: string): () => never {
  return () => {
    throw new Error(`Cannot use ${name} in a plugin: Gini's sandbox removes it`);
  };
}

function lock(target: object, key: PropertyKey, value: unknown): void {
  try {
    Object.defineProperty(target, key, { value, writable: false, configurable: false });
  } catch {
    // Already non-configurable: then it was locked by an earlier bootstrap, or never existed.
  }
}

function lockAll(
  target: object | undefined,
  prefix: string,
  members: [name: string, as: "throws" | "absent"][],
): void {
  if (!target) return;
  for (const [name, as] of members) {
    lock(target, name, as === "throws" ? refuse(`${prefix}${name}`) : undefined);
  }
}

type Post = (message: unknown) => void;

/** A `console` whose output reaches the kernel as the plugin's messages, never the terminal. */
function kernelConsole(
  post: Post,
  inspect: (value: unknown) => string,
  frozen: boolean,
): Console {
  const say = (type: "info" | "warn" | "error" | "debug") => (...args: unknown[]) => {
    try {
      const text = args.map((a) => typeof a === "string" ? a : inspect(a)).join(" ");
      post({ type: "ui", message: { type, text: text.slice(0, 60_000) } });
    } catch { /* a value that cannot be shown is not shown */ }
  };
  const quiet = () => {};
  const methods = {
    log: say("info"),
    info: say("info"),
    dir: say("info"),
    dirxml: say("info"),
    table: say("info"),
    warn: say("warn"),
    error: say("error"),
    debug: say("debug"),
    trace: say("debug"),
    assert: (condition?: unknown, ...args: unknown[]) => {
      if (!condition) say("error")("Assertion failed", ...args);
    },
    clear: quiet,
    count: quiet,
    countReset: quiet,
    group: quiet,
    groupCollapsed: quiet,
    groupEnd: quiet,
    time: quiet,
    timeEnd: quiet,
    timeLog: quiet,
    timeStamp: quiet,
    profile: quiet,
    profileEnd: quiet,
  };
  // Frozen, so that a plugin cannot put the terminal back. In a core plugin's worker it stays
  // open: Node's process, loaded there only when used, binds its streams to the console.
  return (frozen ? Object.freeze(methods) : methods) as unknown as Console;
}

/**
 * The name the kernel gives the worker of a plugin shipped with Gini. Only the kernel starts
 * workers (a plugin's `Worker` is refused), and a core plugin's worker loads only Gini's code.
 */
export const CORE_WORKER_PREFIX = "gini-core:";

/** Removes every capability listed above from this worker. Call before any plugin code runs. */
export function lockDown(): void {
  const global = globalThis as unknown as Record<PropertyKey, unknown>;
  const deno = Deno as unknown as Record<PropertyKey, unknown>;
  // Taken before anything is replaced: Node's process (loaded now, so that it is locked before a
  // plugin can be handed it), the classes whose methods are refused, and what console needs.
  // Loading Node's process costs a worker about 13 ms, and the Cache API's classes 2-8 ms; a core
  // plugin's worker runs no code that would misuse them, so there their globals are only removed,
  // and their objects are not loaded to lock their methods.
  const core = typeof global.name === "string" && global.name.startsWith(CORE_WORKER_PREFIX);
  const process = core ? undefined : global.process as object | undefined;
  const classes = core ? {} : Object.fromEntries(METHODS.map(([name]) => [name, global[name]]));
  const navigator = global.navigator as object | undefined;
  const post = typeof global.postMessage === "function"
    ? (global.postMessage as Post).bind(globalThis)
    : undefined;
  const inspect = Deno.inspect;

  const internal = deno.internal;
  if (typeof internal === "symbol") lock(deno, internal, undefined);
  for (const [name, as] of GLOBALS) {
    lock(globalThis, name, as === "throws" ? refuse(name) : undefined);
  }
  lockAll(deno, "Deno.", DENO_MEMBERS);
  lockAll(process, "process.", PROCESS_MEMBERS);
  for (const [name, methods] of METHODS) {
    const prototype = (classes[name] as { prototype?: object } | undefined)?.prototype;
    lockAll(prototype, `${name}.`, methods.map((m) => [m, "throws"]));
  }
  // navigator.locks is an accessor of WorkerNavigator.prototype.
  if (navigator) {
    lock(navigator, "locks", undefined);
    lock(Object.getPrototypeOf(navigator), "locks", undefined);
  }
  // An env grant is a grant to read: setting a variable would change it for the kernel too.
  lockAll(Deno.env, "Deno.env.", [["set", "throws"], ["delete", "throws"]]);
  // Gini runs with --no-prompt; a plugin asks for nothing beyond what it was granted.
  const permissions = Deno.permissions as unknown as object;
  for (const target of [permissions, Object.getPrototypeOf(permissions)]) {
    lockAll(target, "Deno.permissions.", [["request", "throws"], ["requestSync", "throws"]]);
  }
  if (post) lock(globalThis, "console", kernelConsole(post, inspect, !core));
}

/** True when this process lets code be built from strings (`eval`, `new Function`). */
export function codeFromStringsAllowed(): boolean {
  try {
    new Function("");
    return true;
  } catch {
    return false;
  }
}

/** The V8 flag that forbids code from strings, process-wide. */
export const NO_CODE_FROM_STRINGS = "--v8-flags=--disallow-code-generation-from-strings";
