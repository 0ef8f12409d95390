/**
 * The kernel's own signals. SIGINT, SIGTERM and SIGHUP are handled here, whatever listeners a
 * plugin's worker registered (a listener anywhere in the process disables Deno's default exit, so
 * the kernel must decide): the innermost handler a live run installed, or else the command
 * line's fallback, which exits at once with 128 + the signal's number.
 *
 * @module
 */

/** The signals the kernel stops on, and the exit code each gives (128 + its number). */
export const STOP_SIGNALS = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;

/** One of {@linkcode STOP_SIGNALS}. */
export type StopSignal = keyof typeof STOP_SIGNALS;

type Handler = (signal: StopSignal) => void;

const handlers: Handler[] = [];
let fallback: Handler | undefined;
const listening = new Map<StopSignal, () => void>();

function listen(): void {
  if (listening.size) return;
  for (const signal of Object.keys(STOP_SIGNALS) as StopSignal[]) {
    const listener = () => (handlers.at(-1) ?? fallback)?.(signal);
    Deno.addSignalListener(signal, listener);
    listening.set(signal, listener);
  }
}

function unlisten(): void {
  if (handlers.length || fallback) return;
  for (const [signal, listener] of listening) Deno.removeSignalListener(signal, listener);
  listening.clear();
}

/** Sets what a stop signal does when no run is handling it (the command line: exit). */
export function setStopFallback(handler: Handler | undefined): void {
  fallback = handler;
  if (handler) listen();
  else unlisten();
}

/** Makes `handler` receive stop signals until the returned function is called. */
export function onStopSignal(handler: Handler): () => void {
  handlers.push(handler);
  listen();
  return () => {
    const at = handlers.lastIndexOf(handler);
    if (at >= 0) handlers.splice(at, 1);
    unlisten();
  };
}
