/**
 * Terminal progress bars, through dax (only `kernel/host/` imports dax).
 *
 * @module
 */
type Dax = typeof import("dax").default;
let dax: Dax | undefined;

/** Starts loading dax in the background; bars appear once it is loaded (a few ms on a terminal). */
export function preloadProgress(): void {
  if (!dax) import("dax").then((m) => dax = m.default, () => {});
}

/** A live progress bar on the terminal. */
export interface ProgressBar {
  position(value: number): void;
  message(text: string): void;
  finish(): void;
}

/** Starts a progress bar (dax draws it only when stderr is a terminal); undefined until dax is loaded. */
export function startProgressBar(label: string, total?: number): ProgressBar | undefined {
  if (!dax) return undefined;
  const bar = total === undefined ? dax.progress(label) : dax.progress(label, { length: total });
  return {
    position: (value) => void bar.position(value),
    message: (text) => void bar.message(text),
    finish: () => bar.finish(),
  };
}
