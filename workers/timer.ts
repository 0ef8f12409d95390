/**
 * A deadline that does not load Node's timers. In Deno 2.9 the first touch of the global
 * `setTimeout` (even `typeof setTimeout`) loads `node:timers`, which costs 6-8 ms on each
 * thread that does it: a third of what a `gini status` may take. `AbortSignal.timeout` runs on
 * Deno's own timer and costs under a millisecond.
 *
 * Until it fires or is cancelled, a deadline keeps the process alive, as `setTimeout` does (an
 * `AbortSignal.timeout` with a listener does); once cancelled it neither fires nor holds anything.
 *
 * @example
 * ```ts
 * import { deadline } from "./timer.ts";
 *
 * const cancel = deadline(3000, () => console.error("no answer within 3 s"));
 * cancel();
 * ```
 *
 * @module
 */

/** Calls `fire` after `ms` milliseconds unless the returned function is called first. */
export function deadline(ms: number, fire: () => void): () => void {
  const signal = AbortSignal.timeout(ms);
  signal.addEventListener("abort", fire, { once: true });
  return () => signal.removeEventListener("abort", fire);
}
