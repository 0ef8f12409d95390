/**
 * What Deno's worker permissions do not stop, taken away before a plugin's code runs.
 *
 * A worker started with no permissions can still talk to other workers (`BroadcastChannel`),
 * keep data between runs (the Cache API), start a worker of its own with fresh globals, keep the
 * whole process alive after SIGTERM (signal listeners), end the process (`Deno.exit`), move the
 * kernel's working folder or umask (`Deno.chdir`, `Deno.umask`, given a read or sys grant), and
 * reach Deno's internal ops. The bootstrap replaces each with a value that cannot be changed
 * back (non-writable, non-configurable), so a plugin can neither use them nor restore them.
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
  ["process", "absent"],
  ["close", "throws"],
];

/** `Deno.*` members a plugin may not use. */
const DENO_MEMBERS = [
  "exit",
  "addSignalListener",
  "removeSignalListener",
  "openKv",
  "chdir",
  "umask",
  "cron",
  "internal",
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

/** Removes every capability listed above from this worker. Call before any plugin code runs. */
export function lockDown(): void {
  const deno = Deno as unknown as Record<PropertyKey, unknown>;
  const internal = deno.internal;
  if (typeof internal === "symbol") lock(deno, internal, undefined);
  for (const [name, as] of GLOBALS) {
    lock(globalThis, name, as === "throws" ? refuse(name) : undefined);
  }
  for (const name of DENO_MEMBERS) {
    lock(deno, name, name === "internal" ? undefined : refuse(`Deno.${name}`));
  }
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
