/**
 * The shape of an operation kind: one module per kind, each with a schema,
 * `describe()`, `estimate()`, `permission()`, `capture()`, `execute()`,
 * `simulate()` and `inverse()`.
 *
 * @module
 */
import type { Json, OpRequest, UiMessage } from "../../workers/protocol.ts";
import type { StartupEnv } from "../paths.ts";
import type { HostRunner } from "../host/run.ts";

/** Disk bytes and seconds an op is expected to take. */
export interface OpEstimate {
  /** Bytes the op really allocates now (a download, a copy, a disk image's metadata). */
  bytes: number;
  seconds: number;
  /** A disk's virtual size: what it may grow to as the guest writes, not allocated now. */
  virtualBytes?: number;
}

/** One grant an op needs, checked by the broker. */
export type PermissionNeed =
  | { grant: "write"; path: string }
  | { grant: "read"; path: string }
  | { grant: "run"; program: string }
  | { grant: "lvm"; target: string }
  | { grant: "download"; url: string }
  | { grant: "sysfs"; path: string }
  | { grant: "request-file"; path: string }
  | { grant: "checkpoint" };

/** What an op kind's functions receive besides their arguments. */
export interface OpEnv {
  startup: StartupEnv;
  host: HostRunner;
  /** The folder of the file the user's request came from (a VM file), if any. */
  requestDir?: string;
  /** Progress of long ops (downloads), shown by the UI. */
  report?: (message: UiMessage) => void;
  /** Journals a checkpoint of a completed stage (live runs only). */
  checkpoint?: (stage: string) => Promise<Json>;
  /**
   * Aborted when the op is cancelled (its stage timed out, or the kernel is stopping). The engine
   * gives every op its own, with `host` bound to it, so the programs it runs are stopped too; an
   * op that does long work of its own (a download) stops it and rejects with `signal.reason`.
   */
  signal?: AbortSignal;
  /**
   * The user's terminal, when this run may hand it to an interactive op (a query command run
   * without `--dry-run`); absent otherwise, and then interactive ops are only described.
   */
  terminal?: Terminal;
}

/** The user's terminal as an interactive op receives it. */
export interface Terminal {
  /** `--json`: an op returns what it would print instead of printing it. */
  json: boolean;
  /** Variables a program given the terminal needs (TERM, SSH_AUTH_SOCK…), from start-up. */
  env: Record<string, string>;
}

/** What checks an op's arguments: zod's `safeParse`, the first issue of a refusal used. */
export interface ArgsSchema<A> {
  safeParse(value: unknown):
    | { success: true; data: A }
    | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
}

/** One kind of operation. `A` is its checked argument type. */
export interface OpKind<A extends object = Record<string, Json>> {
  kind: string;
  /** Checks the arguments: a zod schema, or a shape (`zodLike()` of workers/shape.ts). */
  schema: ArgsSchema<A>;
  /** The argument keys that are paths; the broker replaces them with canonical paths. */
  pathArgs: readonly string[];
  /** Imperative summary: `Create file "/x" (12 B)`. The report turns it into "Would create …". */
  describe(args: A): string;
  /** `before` is the state `capture()` read (a copy's source size). */
  estimate(args: A, before: Json): OpEstimate;
  permission(args: A): PermissionNeed[];
  /**
   * Bookkeeping: changes nothing on the host and is not a query either (a journal checkpoint).
   * Runs in both modes and is never recorded or shown in a plan.
   */
  bookkeeping?: boolean;
  /** Only the kernel may request it (in an inverse), never a plugin. */
  kernelOnly?: boolean;
  /**
   * Hands the user's terminal to a session or acts inside a guest for them (a console, ssh, a
   * command through the guest agent). It changes nothing on the host, so it is never journaled
   * and is counted as read-only; but it is no query either: it runs only when the run was given
   * the terminal (`OpEnv.terminal`), and is otherwise described and simulated, as in `--dry-run`.
   */
  interactive?: boolean;
  /** True when the op changes nothing and so also runs in a dry run. */
  readOnly?(args: A, env: OpEnv): boolean;
  /** The state the op will change, read just before it runs (and in a dry run). */
  capture(args: A, env: OpEnv): Promise<Json>;
  /** What would surprise the user: a file that exists and would be overwritten. */
  conflicts(args: A, before: Json): string[];
  execute(args: A, env: OpEnv, before: Json): Promise<Json>;
  /** The result a dry run returns so that later stages still run. */
  simulate(args: A, before: Json): Json;
  /** What the user should see before it happens, beyond `describe()`: a unified diff of a file edit. */
  preview?(args: A, before: Json): string | undefined;
  /** The ops that undo this one, from the state captured before it; null when it cannot be undone. */
  inverse(args: A, before: Json): OpRequest[] | null;
}

/** An op's checked arguments, or an error naming the first wrong one. */
export function parseArgs<A extends object>(op: OpKind<A>, args: unknown): A {
  const parsed = op.schema.safeParse(args);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new TypeError(
    `Invalid arguments for "${op.kind}" at "${issue?.path.join(".") ?? ""}": ${issue?.message}`,
  );
}

/** Defines an op kind with its argument type inferred from the schema. */
export function defineOp<A extends object>(kind: OpKind<A>): OpKind<A> {
  return kind;
}

/** Human-readable bytes. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
