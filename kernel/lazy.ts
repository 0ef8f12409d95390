/**
 * Loads a module on first use, out of sight of Deno's start-up module graph.
 *
 * `deno run` reads, hashes and analyses every module a program can reach before its first line
 * runs, following `import("./literal.ts")` too: a literal import that a command never takes still
 * costs its whole subgraph at every start (100 modules, about 10 ms, for `gini status`). A
 * specifier built at run time is followed only when it is imported. `deno compile` embeds these
 * modules through `--include` (scripts/compile.ts).
 *
 * @example
 * ```ts
 * import { importLater } from "./lazy.ts";
 *
 * const { KERNEL_WORDS } = await importLater<typeof import("../cli/_line.ts")>(
 *   "../cli/_line.ts",
 *   import.meta.url,
 * );
 * ```
 *
 * @module
 */

/** Imports `specifier`, relative to `base` (the caller's `import.meta.url`). */
export function importLater<M>(specifier: string, base: string): Promise<M> {
  return import(new URL(specifier, base).href);
}
