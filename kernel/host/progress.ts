/**
 * Terminal progress bars, through dax (only `kernel/host/` imports dax).
 *
 * @module
 */
import $ from "dax";

/** A live progress bar on the terminal. */
export interface ProgressBar {
  position(value: number): void;
  message(text: string): void;
  finish(): void;
}

/** Starts a progress bar (dax draws it only when stderr is a terminal). */
export function startProgressBar(label: string, total?: number): ProgressBar {
  const bar = total === undefined ? $.progress(label) : $.progress(label, { length: total });
  return {
    position: (value) => void bar.position(value),
    message: (text) => void bar.message(text),
    finish: () => bar.finish(),
  };
}
