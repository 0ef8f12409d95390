/**
 * Gini's entry point, and its only exit: code 2 for bad input, 1 for failures, 128 + N when
 * stopped by signal N. Everything else is in `cli/`.
 *
 * @example
 * ```sh
 * deno task gini plugins list --json
 * ```
 *
 * @module
 */
import { quickVersion } from "./cli/version.ts";
import { setStopFallback, STOP_SIGNALS } from "./kernel/signals.ts";
import { importLater } from "./kernel/lazy.ts";

// The kernel is loaded only for a command that needs it: `gini version` needs none of it.
if (import.meta.main && !quickVersion(Deno.args)) {
  const { main } = await importLater<typeof import("./cli/mod.ts")>(
    "./cli/mod.ts",
    import.meta.url,
  );
  // Outside a live run (which stops its own way), a stop signal ends gini at once, even when a
  // plugin's worker registered a listener for it.
  setStopFallback((signal) => {
    Deno.stderr.writeSync(new TextEncoder().encode(`Stopped by ${signal}\n`));
    Deno.exit(STOP_SIGNALS[signal]);
  });
  Deno.exit(await main(Deno.args));
}
