/**
 * The only module that prints. Plugins and the kernel send {@linkcode UiMessage}s;
 * a renderer shows them: colour and progress bars on a terminal, plain lines
 * otherwise, or one JSON object per line with `--json`. Command results go to
 * stdout, everything else to stderr, so `gini … --json | jq` works.
 *
 * @module
 */
import type { UiMessage } from "../workers/protocol.ts";
import { type Colour, paintText, stripControls } from "../workers/paint.ts";
import { formatError, GiniError } from "./errors.ts";
import { formatBytes } from "./ops/types.ts";
import { preloadProgress, type ProgressBar, startProgressBar } from "./host/progress.ts";

export type { UiMessage };

/** Where a UI writes; tests give their own. */
export interface UiSink {
  out(text: string): void;
  err(text: string): void;
  isTerminal: boolean;
}

const encoder = new TextEncoder();

/** The process's stdout and stderr. */
export function processSink(): UiSink {
  return {
    out: (text) => void Deno.stdout.writeSync(encoder.encode(text)),
    err: (text) => void Deno.stderr.writeSync(encoder.encode(text)),
    isTerminal: Deno.stderr.isTerminal() && !Deno.env.get("NO_COLOR"),
  };
}

/** Shows messages and results. */
export interface Ui {
  readonly json: boolean;
  readonly verbose: boolean;
  /** Whether output is coloured (a terminal). */
  readonly color: boolean;
  message(message: UiMessage): void;
  info(text: string): void;
  warn(text: string): void;
  /** A command's result: `data` with `--json`, else `text()`. */
  result(data: unknown, text: () => string): void;
  /** A failure, with its hint; JSON with `--json`. */
  failure(error: unknown): void;
  /** Colours text on a terminal. */
  paint(colour: Colour, text: string): string;
}

/** Options for {@linkcode createUi}. */
export interface UiOptions {
  json?: boolean;
  verbose?: boolean;
  sink?: UiSink;
}

/** "120.0 MiB of 512.0 MiB, 85.3 MiB/s, 5 s left" */
export function byteProgress(
  current: number,
  total: number | undefined,
  elapsedMs: number,
): string {
  const rate = elapsedMs > 0 ? current / (elapsedMs / 1000) : 0;
  const left = total !== undefined && rate > 0 ? Math.max(0, (total - current) / rate) : undefined;
  return [
    `${formatBytes(current)}${total !== undefined ? ` of ${formatBytes(total)}` : ""}`,
    `${formatBytes(rate)}/s`,
    ...(left !== undefined
      ? [
        `${
          left < 60
            ? `${Math.ceil(left)} s`
            : `${Math.floor(left / 60)} min ${Math.ceil(left % 60)} s`
        } left`,
      ]
      : []),
  ].join(", ");
}

/** Makes the UI for one command run. */
export function createUi(options: UiOptions = {}): Ui {
  const sink = options.sink ?? processSink();
  const json = options.json ?? false;
  const verbose = options.verbose ?? false;
  const bars = new Map<
    string,
    {
      bar: ProgressBar | undefined;
      label: string;
      total: number | undefined;
      bytes: boolean;
      started: number;
    }
  >();
  const paint = (colour: Colour, text: string) => paintText(sink.isTerminal, colour, text);
  const line = (text: string) => sink.err(`${text}\n`);
  if (sink.isTerminal && !json) preloadProgress();

  const ui: Ui = {
    json,
    verbose,
    color: sink.isTerminal,
    paint,
    message(message) {
      if (json) {
        if (message.type !== "debug" || verbose) line(JSON.stringify(message));
        return;
      }
      // A plugin's words reach the terminal without its escape sequences (cursor moves, titles…).
      if ("text" in message) message = { ...message, text: stripControls(message.text) };
      if ("label" in message && message.label) {
        message = { ...message, label: stripControls(message.label) };
      }
      const source = message.source ? paint("debug", `[${message.source}] `) : "";
      switch (message.type) {
        case "info":
          line(`${source}${message.text}`);
          return;
        case "debug":
          if (verbose) line(`${source}${paint("debug", message.text)}`);
          return;
        case "warn":
          line(`${source}${paint("warn", "warning:")} ${message.text}`);
          return;
        case "error":
          line(`${source}${paint("error", "error:")} ${message.text}`);
          return;
        case "progress": {
          const state = bars.get(message.id);
          if (message.phase === "start") {
            const label = message.label ?? message.id;
            bars.set(message.id, {
              bar: sink.isTerminal ? startProgressBar(label, message.total) : undefined,
              label,
              total: message.total,
              bytes: message.unit === "bytes",
              started: performance.now(),
            });
            if (!bars.get(message.id)!.bar) line(`${source}${label}…`);
          } else if (message.phase === "update" && state) {
            if (message.current !== undefined) state.bar?.position(message.current);
            if (message.label) state.bar?.message(message.label);
            else if (state.bytes && message.current !== undefined) {
              state.bar?.message(
                byteProgress(message.current, state.total, performance.now() - state.started),
              );
            }
          } else if (message.phase === "complete" && state) {
            state.bar?.finish();
            bars.delete(message.id);
            line(`${source}${paint("ok", "✓")} ${message.label ?? state.label}`);
          }
          return;
        }
      }
    },
    info: (text) => ui.message({ type: "info", text }),
    warn: (text) => ui.message({ type: "warn", text }),
    result(data, text) {
      if (json) sink.out(`${JSON.stringify(data, null, 2)}\n`);
      else {
        // A command whose output went straight to the terminal (gini exec) has nothing to add.
        const shown = text().trimEnd();
        if (shown) sink.out(`${shown}\n`);
      }
    },
    failure(error) {
      const gini = error instanceof GiniError
        ? error
        : new GiniError("INTERNAL", error instanceof Error ? error.message : String(error), 1, {
          hint: "This is a bug in Gini; run again with --verbose and report it",
        });
      if (json) {
        sink.out(`${JSON.stringify({ error: gini.toJSON() }, null, 2)}\n`);
        return;
      }
      line(`${paint("error", "error:")} ${formatError(gini)}`);
      if (verbose && error instanceof Error && error.stack) line(paint("debug", error.stack));
    },
  };
  return ui;
}
