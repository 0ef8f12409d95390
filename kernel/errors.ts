/**
 * Errors that tell the user what to do: one base class with a machine-readable
 * `code`, an optional `hint` with the next step, and the exit code `main.ts` uses.
 *
 * @module
 */

/** Where an error was found: a place in a file, or a command-line flag. */
export interface SourceLocation {
  file?: string | undefined;
  /** A command-line flag (`--ram`) the bad value came from. */
  flag?: string | undefined;
  line?: number | undefined;
  column?: number | undefined;
  key?: string | undefined;
}

/** Options every {@linkcode GiniError} accepts. */
export interface GiniErrorOptions {
  hint?: string;
  cause?: unknown;
  location?: SourceLocation;
}

/** The base of every error Gini reports to the user. */
export class GiniError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly location: SourceLocation | undefined;
  /** 2 for bad input, 1 for failures. */
  readonly exitCode: 1 | 2 | 129 | 130 | 143;

  constructor(
    code: string,
    message: string,
    exitCode: 1 | 2 | 129 | 130 | 143,
    options: GiniErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.hint = options.hint;
    this.location = options.location;
  }

  /** Plain data for `--json` output and for crossing the worker boundary. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.location === undefined ? {} : { location: this.location }),
    };
  }
}

/** Bad command-line usage: unknown command or flag, missing argument. */
export class UsageError extends GiniError {
  constructor(message: string, options: GiniErrorOptions = {}) {
    super("USAGE", message, 2, options);
  }
}

/** A plugin manifest that cannot be used. */
export class ManifestError extends GiniError {
  constructor(message: string, options: GiniErrorOptions = {}) {
    super("MANIFEST_INVALID", message, 2, options);
  }
}

/** A set of plugins that cannot be loaded together; lists every problem at once. */
export class PluginResolutionError extends GiniError {
  readonly problems: GiniError[];
  constructor(problems: GiniError[]) {
    super(
      "PLUGINS_UNRESOLVED",
      `Cannot load plugins: ${problems.length} problem${problems.length === 1 ? "" : "s"}\n` +
        problems.map((p) => `  - ${formatError(p)}`).join("\n"),
      2,
      { hint: "Fix the manifests named above, or disable the plugins that cause them" },
    );
    this.problems = problems;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), problems: this.problems.map((p) => p.toJSON()) };
  }
}

/** A user configuration file (VM TOML, settings) that cannot be used. */
export class ConfigError extends GiniError {
  constructor(message: string, options: GiniErrorOptions = {}) {
    super("CONFIG_INVALID", message, 2, options);
  }
}

/** An operation a plugin asked for that its grants do not cover. */
export class PermissionDeniedError extends GiniError {
  readonly plugin: string;
  readonly op: string;
  readonly target: string;
  constructor(plugin: string, op: string, target: string, reason: string, hint?: string) {
    super(
      "PERMISSION_DENIED",
      `Cannot let plugin "${plugin}" run "${op}" on "${target}": ${reason}`,
      1,
      hint === undefined ? {} : { hint },
    );
    this.plugin = plugin;
    this.op = op;
    this.target = target;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), plugin: this.plugin, op: this.op, target: this.target };
  }
}

/** A stage that threw, timed out, or whose worker died. */
export class StageFailedError extends GiniError {
  readonly stage: string;
  readonly plugin: string;
  constructor(stage: string, plugin: string, reason: string, options: GiniErrorOptions = {}) {
    super("STAGE_FAILED", `Stage "${stage}" of plugin "${plugin}" failed: ${reason}`, 1, options);
    this.stage = stage;
    this.plugin = plugin;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), stage: this.stage, plugin: this.plugin };
  }
}

/** A program the kernel ran that failed. */
export class HostCommandError extends GiniError {
  readonly argv: string[];
  readonly exitStatus: number;
  readonly tail: string;
  constructor(argv: string[], exitStatus: number, tail: string, hint?: string) {
    super(
      "HOST_COMMAND_FAILED",
      `Cannot run "${argv.join(" ")}": it exited with code ${exitStatus}` +
        (tail ? `\n${tail.trimEnd()}` : ""),
      1,
      hint === undefined ? {} : { hint },
    );
    this.argv = argv;
    this.exitStatus = exitStatus;
    this.tail = tail;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), argv: this.argv, exitStatus: this.exitStatus, tail: this.tail };
  }
}

/** An operation whose preconditions no longer hold (a file changed behind our back). */
export class ConflictError extends GiniError {
  constructor(message: string, options: GiniErrorOptions = {}) {
    super("CONFLICT", message, 1, options);
  }
}

/** The user pressed Ctrl-C: the run stopped between two operations, journaled. */
export class InterruptedError extends GiniError {
  /** `exitCode`: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP). */
  constructor(message: string, options: GiniErrorOptions = {}, exitCode: 129 | 130 | 143 = 130) {
    super("INTERRUPTED", message, exitCode, options);
  }
}

/** One line (plus hint and location) for a terminal. */
export function formatError(error: GiniError): string {
  const at = error.location;
  const where = at?.flag
    ? error.message.includes(at.flag) ? "" : `${at.flag}: `
    : at?.file
    ? `${at.file}${at.line ? `:${at.line}` : ""}${at.column ? `:${at.column}` : ""}: `
    : "";
  return `${where}${error.message}${error.hint ? `\n    hint: ${error.hint}` : ""}`;
}

/** Levenshtein distance, for "did you mean". */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(
        row[j]! + 1,
        row[j - 1]! + 1,
        diagonal + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/**
 * The closest candidate to `name`, if any is close enough to be a typo.
 *
 * @example
 * ```ts
 * suggest("verison", ["version", "plugins"]); // "version"
 * ```
 */
export function suggest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 3))
    ? best
    : undefined;
}

/** `Did you mean "x"?` or nothing. */
export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  const match = suggest(name, candidates);
  return match === undefined ? undefined : `Did you mean "${match}"?`;
}
