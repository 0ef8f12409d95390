/**
 * Terminal colours, shared by the kernel's UI and plugins' command output (which is rendered in
 * the plugin's worker and printed by the kernel).
 *
 * @module
 */

/** ANSI colour codes by role. */
export const COLOURS = { info: 36, warn: 33, error: 31, debug: 90, ok: 32, bold: 1 } as const;

/** A colour role. */
export type Colour = keyof typeof COLOURS;

/** Colours `text` when `enabled` (a terminal), else returns it unchanged. */
export function paintText(enabled: boolean, colour: Colour, text: string): string {
  return enabled ? `\x1b[${COLOURS[colour]}m${text}\x1b[0m` : text;
}
