/**
 * The op path: every operation a plugin requests is looked up, validated, checked
 * by the broker, captured, and then either recorded and simulated (dry run) or
 * recorded and executed (live). Both modes produce the same records, which is what
 * makes a dry run a faithful plan.
 *
 * Every op executes with an AbortSignal of its own: `cancelStage()` and `cancelAll()` abort the
 * ops in flight (their programs' process groups are stopped, their downloads aborted) and resolve
 * only once each has stopped and its outcome has reached the observer (the journal).
 *
 * @module
 */
import { didYouMean, GiniError, InterruptedError, PermissionDeniedError } from "../errors.ts";
import type { Json, OpRequest } from "../../workers/protocol.ts";
import {
  checkCheckpoint,
  checkDownload,
  checkLvm,
  checkPath,
  checkProgram,
  checkRequestFile,
  checkSysfs,
  type Grants,
} from "./broker.ts";
import { OP_KIND_NAMES, opKind } from "./registry.ts";
import type { OpEnv, OpEstimate, OpKind } from "./types.ts";

/** One op as planned or executed. */
export interface OpRecord {
  seq: number;
  stage: string;
  plugin: string;
  kind: string;
  args: Json;
  description: string;
  estimate: OpEstimate;
  conflicts: string[];
  readOnly: boolean;
  /** A unified diff of a file edit, shown in the plan. */
  preview?: string;
  /** Ops that undo this one; null when it cannot be undone. */
  inverse: OpRequest[] | null;
  status: "planned" | "done" | "failed";
  result?: Json;
  error?: string;
  /**
   * The op was stopped part-way (its stage timed out, the kernel is stopping): unlike another
   * failure it may have changed something, and whatever it started has stopped.
   */
  cancelled?: boolean;
  durationMs?: number;
}

/** Totals of a plan or a run. */
export interface OpSummary {
  operations: number;
  readOnly: number;
  bytes: number;
  /** Virtual sizes of the disks the run creates (they grow as guests write). */
  virtualBytes: number;
  seconds: number;
  conflicts: string[];
  irreversible: number;
}

/** Told about each op around its execution; the recovery journal is one. */
export interface OpObserver {
  beforeExecute?(record: OpRecord, before: Json): Promise<void> | void;
  afterExecute?(record: OpRecord): Promise<void> | void;
}

/** Why an op was stopped before it finished: its stage timed out, or the kernel is stopping. */
export class OpCancelledError extends GiniError {
  constructor(reason: string) {
    super("OP_CANCELLED", `Cancelled: ${reason}`, 1, {
      hint: "It was stopped; nothing it started is left running",
    });
  }
}

/** Options of one {@linkcode OpEngine.request}. */
export interface RequestOptions {
  /** Cancels the op when aborted (the pipeline aborts the ops of a call whose worker failed). */
  signal?: AbortSignal;
}

/** One op between its acceptance and its outcome. */
interface Flight {
  stage: string;
  controller: AbortController;
  /** The op's environment: `signal` is the controller's, `host` stops its programs with it. */
  env: OpEnv;
  settled: Promise<void>;
  finish(): void;
}

function reasonText(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}

/** An op that could not be accepted: unknown kind or bad arguments. */
export class OpRequestError extends GiniError {
  constructor(message: string, hint?: string) {
    super("OP_INVALID", message, 1, hint === undefined ? {} : { hint });
  }
}

/** Runs or plans ops for the pipeline. */
export class OpEngine {
  readonly mode: "dry" | "live";
  readonly #env: OpEnv;
  readonly #observer: OpObserver;
  readonly #records: OpRecord[] = [];
  readonly #firstSeq: number;
  #interrupted: string | undefined;
  /** Op kinds are looked up (and loaded on first use) in the order the requests came. */
  #lookups: Promise<unknown> = Promise.resolve();
  /** While set, changes wait before they start (see `hold`). */
  #held: Promise<unknown> | undefined;
  /** Files this run created (an executed op's inverse removes them), with the stage that did. */
  readonly #created = new Map<string, string>();
  readonly #flights = new Set<Flight>();
  /** Set by `cancelAll`: every op accepted later is cancelled at once. */
  #cancelledAll: OpCancelledError | undefined;

  /** `firstSeq` continues a journal's numbering when a transaction is resumed. */
  constructor(
    mode: "dry" | "live",
    env: OpEnv,
    observer: OpObserver = {},
    options: { firstSeq?: number } = {},
  ) {
    this.mode = mode;
    this.#env = env;
    this.#observer = observer;
    this.#firstSeq = options.firstSeq ?? 1;
  }

  /** Refuses every later change (Ctrl-C): the op running now finishes, no other starts. */
  interrupt(reason: string): void {
    this.#interrupted ??= reason;
  }

  /**
   * Makes changes that have not started yet wait until `until` settles, so that an interrupt
   * requested now (a signal on its way) is seen by every op that starts after this point.
   */
  async hold(until: Promise<unknown>): Promise<void> {
    const held = until.catch(() => {});
    this.#held = held;
    try {
      await held;
    } finally {
      if (this.#held === held) this.#held = undefined;
    }
  }

  /**
   * Cancels the ops of `stage` in flight now and resolves once every one of them has stopped
   * (its programs exited, its request ended) and its outcome is journaled. Later ops of the
   * stage are not affected.
   */
  async cancelStage(stage: string, reason: string): Promise<void> {
    await this.#cancel([...this.#flights].filter((f) => f.stage === stage), reason);
  }

  /**
   * Cancels every op in flight and refuses every later one (as `interrupt` does, and read-only
   * ops too); resolves once all have stopped and their outcomes are journaled. For the kernel's
   * signal handlers.
   */
  async cancelAll(reason: string): Promise<void> {
    this.interrupt(reason);
    this.#cancelledAll ??= new OpCancelledError(reason);
    await this.#cancel([...this.#flights], reason);
  }

  /** Resolves once every op in flight now has finished (none is cancelled). */
  async settled(): Promise<void> {
    await Promise.all([...this.#flights].map((f) => f.settled));
  }

  async #cancel(flights: Flight[], reason: string): Promise<void> {
    const error = new OpCancelledError(reason);
    for (const flight of flights) flight.controller.abort(error);
    await Promise.all(flights.map((f) => f.settled));
  }

  /** Starts tracking one op; `signal` (the caller's) cancels it too. */
  #track(stage: string, signal: AbortSignal | undefined): Flight {
    const controller = new AbortController();
    const follow = () => controller.abort(signal!.reason);
    if (this.#cancelledAll) controller.abort(this.#cancelledAll);
    else if (signal?.aborted) follow();
    else signal?.addEventListener("abort", follow, { once: true });
    let settle!: () => void;
    const flight: Flight = {
      stage,
      controller,
      env: {
        ...this.#env,
        signal: controller.signal,
        host: this.#env.host.withSignal(controller.signal),
      },
      settled: new Promise<void>((resolve) => settle = resolve),
      finish: () => {
        signal?.removeEventListener("abort", follow);
        this.#flights.delete(flight);
        settle();
      },
    };
    this.#flights.add(flight);
    return flight;
  }

  /** Why the run was interrupted, if it was. */
  get interrupted(): string | undefined {
    return this.#interrupted;
  }

  /** Everything requested so far, in order. */
  get records(): readonly OpRecord[] {
    return this.#records;
  }

  /** Validates, checks and performs (or plans) one op. */
  async request(
    grants: Grants,
    stage: string,
    request: { kind: string; args: Json },
    options: RequestOptions = {},
  ): Promise<Json> {
    const lookup = this.#lookups.then(() => opKind(request.kind));
    this.#lookups = lookup.catch(() => {});
    const op = await lookup as OpKind<Record<string, Json>> | undefined;
    if (!op) {
      throw new OpRequestError(
        `Cannot run op "${request.kind}": no such op kind`,
        didYouMean(request.kind, OP_KIND_NAMES) ?? `Known kinds: ${OP_KIND_NAMES.join(", ")}`,
      );
    }
    if (op.kernelOnly && !grants.plugin.startsWith("kernel:")) {
      throw new PermissionDeniedError(
        grants.plugin,
        op.kind,
        "(any)",
        "only the kernel's own rollback may ask for it",
      );
    }
    const parsed = op.schema.safeParse(request.args);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new OpRequestError(
        `Cannot run op "${op.kind}": argument "${
          issue.path.join(".") || "(args)"
        }" is invalid: ${issue.message}`,
        `Check the arguments plugin "${grants.plugin}" passes to ctx.op("${op.kind}")`,
      );
    }
    const args = { ...parsed.data };
    for (const need of op.permission(args)) {
      if (need.grant === "run") checkProgram(grants, op.kind, need.program);
      else if (need.grant === "lvm") checkLvm(grants, op.kind, need.target);
      else if (need.grant === "download") checkDownload(grants, op.kind, need.url);
      else if (need.grant === "sysfs") checkSysfs(grants, op.kind, need.path);
      else if (need.grant === "checkpoint") checkCheckpoint(grants, op.kind);
      else if (need.grant === "request-file") {
        const canonical = checkRequestFile(grants, op.kind, need.path, this.#env.requestDir);
        for (const key of op.pathArgs) if (args[key] === need.path) args[key] = canonical;
      } else {
        const canonical = checkPath(grants, op.kind, need.path, need.grant);
        for (const key of op.pathArgs) if (args[key] === need.path) args[key] = canonical;
      }
    }
    if (op.bookkeeping) return await op.execute(args, this.#env, null);
    const flight = this.#track(stage, options.signal);
    try {
      return await this.#perform(op, args, grants.plugin, stage, flight);
    } finally {
      flight.finish();
    }
  }

  async #perform(
    op: OpKind<Record<string, Json>>,
    args: Record<string, Json>,
    plugin: string,
    stage: string,
    flight: Flight,
  ): Promise<Json> {
    const before = await op.capture(args, this.#env);
    const readOnly = op.interactive === true || (op.readOnly?.(args, this.#env) ?? false);
    const record: OpRecord = {
      seq: this.#records.length + this.#firstSeq,
      stage,
      plugin,
      kind: op.kind,
      args,
      description: op.describe(args),
      estimate: op.estimate(args, before),
      conflicts: op.conflicts(args, before),
      readOnly,
      inverse: this.#sparing(op.inverse(args, before), stage),
      status: "planned",
    };
    const preview = op.preview?.(args, before);
    if (preview) record.preview = preview;
    this.#records.push(record);
    if (this.mode === "dry" && !readOnly) return op.simulate(args, before);
    if (op.interactive && !this.#env.terminal) return op.simulate(args, before);
    if (!readOnly) { while (this.#held) await this.#held; }
    if (this.#interrupted && !readOnly) {
      record.status = "failed";
      record.error = this.#interrupted;
      throw new InterruptedError(`Not started: ${record.description} (${this.#interrupted})`);
    }
    const { signal } = flight.controller;
    if (signal.aborted) {
      // Not started: nothing to journal or undo.
      record.status = "failed";
      record.error = reasonText(signal.reason);
      throw signal.reason;
    }
    const started = performance.now();
    try {
      await this.#observer.beforeExecute?.(record, before);
      record.result = await op.execute(args, flight.env, before);
      record.status = "done";
      for (const undo of record.inverse ?? []) {
        const a = undo.args as { path?: string; onlyIfEmpty?: boolean };
        if (undo.kind === "fs.remove" && a.path && !a.onlyIfEmpty) this.#created.set(a.path, stage);
      }
      return record.result;
    } catch (error) {
      record.status = "failed";
      // A cancelled op fails however its code noticed; the journal says it was cancelled and why.
      const cause = signal.aborted ? signal.reason : error;
      record.error = reasonText(cause);
      if (signal.aborted) record.cancelled = true;
      throw cause;
    } finally {
      record.durationMs = performance.now() - started;
      await this.#observer.afterExecute?.(record);
    }
  }

  /**
   * A file the same stage created and now replaces or removes needs no backup: undoing its
   * creation (older, so undone later, and always together since resume redoes whole stages)
   * removes it anyway. This keeps scratch files (a disk image built and then converted) out of
   * the journal's blobs.
   */
  #sparing(inverse: OpRequest[] | null, stage: string): OpRequest[] | null {
    if (inverse?.length !== 1 || inverse[0]!.kind !== "fs.restore") return inverse;
    const path = (inverse[0]!.args as { path: string }).path;
    return this.#created.get(path) === stage ? [] : inverse;
  }

  /** Totals over the records that change something. */
  summary(): OpSummary {
    const changing = this.#records.filter((r) => !r.readOnly);
    return {
      operations: changing.length,
      readOnly: this.#records.length - changing.length,
      bytes: changing.reduce((n, r) => n + r.estimate.bytes, 0),
      virtualBytes: changing.reduce((n, r) => n + (r.estimate.virtualBytes ?? 0), 0),
      seconds: changing.reduce((n, r) => n + r.estimate.seconds, 0),
      conflicts: this.#records.flatMap((r) => r.conflicts),
      irreversible: changing.filter((r) => r.inverse === null).length,
    };
  }
}
