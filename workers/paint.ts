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

// deno-lint-ignore no-control-regex
const ESCAPE = /\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-_])?/g;
// deno-lint-ignore no-control-regex
const SGR = /^\x1b\[[0-9;]*m$/;
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f]/g;

/**
 * Text from a plugin, safe for a terminal: colours (SGR sequences) stay; every other escape
 * sequence (cursor moves, erasing, titles, the clipboard) and control character except newline
 * and tab is removed, so a plugin cannot hide or rewrite what the kernel printed.
 */
export function stripControls(text: string): string {
  return text.replace(ESCAPE, (m) => SGR.test(m) ? m : "").replace(CONTROL, "");
}
