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
import { main } from "./cli/mod.ts";
import { setStopFallback, STOP_SIGNALS } from "./kernel/signals.ts";

export { main, type MainOptions, VERSION } from "./cli/mod.ts";

if (import.meta.main) {
  // Outside a live run (which stops its own way), a stop signal ends gini at once, even when a
  // plugin's worker registered a listener for it.
  setStopFallback((signal) => {
    Deno.stderr.writeSync(new TextEncoder().encode(`Stopped by ${signal}\n`));
    Deno.exit(STOP_SIGNALS[signal]);
  });
  Deno.exit(await main(Deno.args));
}
