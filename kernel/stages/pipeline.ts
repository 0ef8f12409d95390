/**
 * The pipeline: one DAG over the stages of all loaded plugins (edges from `after`
 * and from each key a stage reads to the stage that produces it), run with
 * independent stages concurrently, pre- and post-stage hooks around each stage,
 * events to subscribing plugins, and `preflight` for every plugin first.
 *
 * A call into a plugin that fails (its worker timed out and was terminated, or it threw) cancels
 * the ops it asked for that are still running, and fails only once they have stopped and been
 * journaled, so nothing a stage started outlives it into the rollback.
 *
 * @module
 */
import { didYouMean, GiniError, StageFailedError, UsageError } from "../errors.ts";
import type { StartupEnv } from "../paths.ts";
import type { Resolution, ResolvedStage } from "../plugins/resolve.ts";
import type { Manifest } from "../plugins/manifest.ts";
import { KERNEL_SEEDS } from "../versions.ts";
import {
  type CallHandlers,
  type CallResult,
  discardPrestarted,
  PluginHost,
  takePrestarted,
} from "../plugins/host.ts";
import { type Grants, grantsFor } from "../ops/broker.ts";
import { OpCancelledError, type OpEngine } from "../ops/engine.ts";
import { serveRead } from "../host/read.ts";
import type { Ui } from "../ui.ts";
import {
  type EventReply,
  type Json,
  type RenderOutput,
  RenderOutputSchema,
  type RenderView,
} from "../../workers/protocol.ts";
import { type Contracts, loadContracts } from "./contracts.ts";
import { stripControls } from "../../workers/paint.ts";
import { check } from "../../workers/shape.ts";

/** How long a plugin may take to render a command's output. */
const RENDER_TIMEOUT_MS = 10_000;

/** What happened to one stage. */
export interface StageReport {
  id: string;
  plugin: string;
  status: "done" | "failed" | "skipped";
  durationMs: number;
  error?: string;
  /** Completed by an earlier, interrupted run of the same transaction (resume). */
  restored?: boolean;
  /** Skipped because it does not apply to the VM file (its manifest's `when`); not an error. */
  notApplicable?: boolean;
}

/** A prerequisite its dependents may go on from: done, or not applying to this VM. */
const settled = (report: StageReport | undefined) =>
  report?.status === "done" || report?.notApplicable === true;

/** Options of one pipeline run. */
export interface PipelineOptions {
  resolution: Resolution;
  env: StartupEnv;
  engine: OpEngine;
  ui: Ui;
  /** Context keys the kernel provides before any stage runs (the user's request…). */
  seeds?: Record<string, Json>;
  /** Stage ids to run, with what they depend on; all stages when absent. */
  targets?: string[];
  /** Overrides every stage's timeout. */
  stageTimeoutMs?: number;
  /** Stages an interrupted run completed (resume): not run again; their keys are in `seeds`. */
  completed?: string[];
}

/** The outcome of a run. */
export interface PipelineResult {
  ok: boolean;
  context: Record<string, Json>;
  stages: StageReport[];
  /** The first failure, when `ok` is false. */
  error?: GiniError;
}

/** A plugin vetoed the run in its preflight. */
export class PreflightVetoError extends GiniError {
  constructor(plugin: string, reason: string) {
    super(
      "PREFLIGHT_VETO",
      `Cannot start: plugin "${plugin}" refused in its preflight: ${reason}`,
      1,
      {
        hint: "Fix what the plugin reports, or disable the plugin",
      },
    );
  }
}

/**
 * The stages that do not apply to the run's VM file (their manifest's `when`), each with the
 * reason. Decided from `session.user_vm_request` alone; with no VM file, or one that is not TOML
 * (qemu-setup reports that), every stage applies.
 */
export async function notApplying(
  stages: ResolvedStage[],
  seeded: Map<string, Json>,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!stages.some((s) => s.when)) return out;
  const request = seeded.get("session.user_vm_request") as { text?: unknown } | undefined;
  if (typeof request?.text !== "string") return out;
  // Loaded only here: a command without a VM file (status, start) never needs a TOML parser.
  const { parse: parseToml } = await import("smol-toml");
  let vm: Record<string, unknown>;
  try {
    vm = parseToml(request.text) as Record<string, unknown>;
  } catch {
    return out;
  }
  const guest = typeof vm.guest === "string" ? vm.guest : "linux";
  const isTable = (key: string) =>
    typeof vm[key] === "object" && vm[key] !== null && !Array.isArray(vm[key]);
  for (const s of stages) {
    if (!s.when) continue;
    const { tables, guests } = s.when;
    if (tables && !tables.some(isTable)) {
      out.set(
        s.id,
        `does not apply: the VM file has no ${tables.map((t) => `[${t}]`).join(" or ")}`,
      );
    } else if (guests && !guests.includes(guest)) {
      out.set(s.id, `does not apply: the VM's guest is "${guest}", not ${guests.join(" or ")}`);
    }
  }
  return out;
}

/** The stages to run: the targets plus everything they depend on. */
export function selectStages(resolution: Resolution, targets?: string[]): ResolvedStage[] {
  const all = resolution.stages;
  if (!targets) return [...all.values()];
  const chosen = new Set<string>();
  const visit = (id: string) => {
    if (chosen.has(id)) return;
    const stage = all.get(id);
    if (!stage) {
      throw new UsageError(`Cannot run stage "${id}": no loaded plugin defines it`, {
        hint: didYouMean(id, all.keys()) ?? "List stages with: gini plugins graph",
      });
    }
    chosen.add(id);
    stage.after.forEach((dep) => all.has(dep) && visit(dep));
    for (const key of stage.reads) {
      const producer = resolution.producers.get(key);
      if (producer) visit(producer);
    }
  };
  targets.forEach(visit);
  return [...chosen].map((id) => all.get(id)!);
}

/**
 * The stages that cannot run for want of inputs, each with the reason: a key it reads that is
 * neither seeded nor produced, or a prerequisite that cannot run (transitively).
 */
export function wantingInputs(
  stages: ResolvedStage[],
  resolution: Resolution,
  seeded: Map<string, Json>,
): Map<string, string> {
  const wanting = new Map<string, string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const s of stages) {
      if (wanting.has(s.id)) continue;
      let reason: string | undefined;
      for (const key of s.reads) {
        if (seeded.has(key)) continue;
        const producer = resolution.producers.get(key);
        if (!producer) reason = `needs "${key}", which only a command provides`;
        else if (wanting.has(producer)) reason = `needs "${key}" from "${producer}", skipped`;
        if (reason) break;
      }
      const after = s.after.find((d) => wanting.has(d));
      reason ??= after ? `runs after "${after}", skipped` : undefined;
      if (reason) {
        wanting.set(s.id, reason);
        grew = true;
      }
    }
  }
  return wanting;
}

/** Each stage's prerequisites among the chosen stages. Throws on a cycle. */
export function stageEdges(
  stages: ResolvedStage[],
  resolution: Resolution,
): Map<string, Set<string>> {
  const ids = new Set(stages.map((s) => s.id));
  const edges = new Map<string, Set<string>>();
  for (const s of stages) {
    const deps = new Set(s.after.filter((d) => ids.has(d)));
    for (const key of s.reads) {
      const producer = resolution.producers.get(key);
      if (producer && producer !== s.id && ids.has(producer)) deps.add(producer);
    }
    edges.set(s.id, deps);
  }
  const state = new Map<string, number>();
  const visit = (id: string, path: string[]) => {
    if (state.get(id) === 2) return;
    if (state.get(id) === 1) {
      throw new GiniError(
        "PIPELINE_CYCLE",
        `Cannot order stages: ${[...path.slice(path.indexOf(id)), id].join(" → ")} form a cycle`,
        2,
        {
          hint: "Remove one of these after or reads entries",
        },
      );
    }
    state.set(id, 1);
    for (const dep of edges.get(id) ?? []) visit(dep, [...path, id]);
    state.set(id, 2);
  };
  for (const id of edges.keys()) visit(id, []);
  return edges;
}

/**
 * Throws if a stage reads a context key that is neither seeded nor produced by any stage. A key
 * the kernel seeds (`session.command`, `session.target_vm`…) may be absent: a stage that serves a
 * verb and a command reads whichever the run has.
 */
function checkReads(
  stages: ResolvedStage[],
  resolution: Resolution,
  context: Map<string, Json>,
): void {
  for (const s of stages) {
    for (const key of s.reads) {
      if (!context.has(key) && !resolution.producers.has(key) && !KERNEL_SEEDS.includes(key)) {
        throw new GiniError(
          "PIPELINE_INVALID",
          `Cannot run stage "${s.id}": nothing produces context key "${key}" it reads`,
          2,
          {
            hint: didYouMean(key, [...resolution.producers.keys(), ...context.keys()]) ??
              "Install the plugin that produces it",
          },
        );
      }
    }
  }
}

/** What a stage's error is reported as. */
function stageError(stage: ResolvedStage, error: unknown): GiniError {
  // Bad input found by a stage (exit code 2) is shown as itself, not as a stage failure.
  if (error instanceof GiniError && error.exitCode === 2) return error;
  if (error instanceof StageFailedError) return error;
  if (error instanceof GiniError) {
    return new StageFailedError(stage.id, stage.plugin, error.message, {
      ...(error.hint ? { hint: error.hint } : {}),
      cause: error,
    });
  }
  return new StageFailedError(
    stage.id,
    stage.plugin,
    error instanceof Error ? error.message : String(error),
  );
}

/** Where one run stands, shared by the steps of {@linkcode Pipeline.run}. */
interface RunState {
  context: Map<string, Json>;
  /** Each stage's prerequisites. */
  edges: Map<string, Set<string>>;
  reports: Map<string, StageReport>;
  /** Stages not yet launched. */
  pending: Map<string, ResolvedStage>;
  running: Map<string, Promise<void>>;
  /** Stage ids in the order they were launched. */
  launchOrder: string[];
  /** The first failure of a required stage. */
  failure: GiniError | undefined;
  /** Each failed required stage's error: the one reported is the earliest launched. */
  failures: Map<string, GiniError>;
}

/** What a plugin may ask for while it renders a command's output: nothing but messages. */
function renderOnlyHandlers(plugin: string): CallHandlers {
  const refuse = () =>
    Promise.reject(
      new GiniError(
        "RENDER_ONLY",
        `Cannot act while rendering: plugin "${plugin}" may only return output`,
        1,
      ),
    );
  return { op: refuse, read: refuse, emit: refuse, ui: () => {}, subscribe: () => {} };
}

/** Runs plugins' stages; owns the workers it starts and stops them at the end. */
export class Pipeline {
  readonly #o: PipelineOptions;
  readonly #manifests: Map<string, Manifest>;
  readonly #order: Map<string, number>;
  readonly #hosts = new Map<string, Promise<PluginHost>>();
  readonly #grants = new Map<string, Grants>();
  readonly #dynamicSubscribers = new Map<string, Set<string>>();
  /** What each stage that completed in this run wrote, for checkpoints. */
  readonly #written = new Map<string, Record<string, Json>>();
  #contracts: Contracts = new Map();

  constructor(options: PipelineOptions) {
    this.#o = options;
    this.#manifests = new Map(options.resolution.plugins.map((m) => [m.plugin.name, m]));
    this.#order = new Map(options.resolution.plugins.map((m, i) => [m.plugin.name, i]));
  }

  /** Starts (once) and returns a plugin's worker. */
  host(name: string): Promise<PluginHost> {
    let host = this.#hosts.get(name);
    if (!host) {
      const manifest = this.#manifests.get(name)!;
      host = (async () => {
        const dryRun = this.#o.engine.mode === "dry";
        const warn = (text: string) => this.#o.ui.warn(text);
        const h = takePrestarted(manifest, this.#o.env, dryRun, warn) ??
          new PluginHost(manifest, this.#o.env, dryRun, warn);
        const abilities = await h.start();
        const declared = manifest.stages.map((s) => s.name);
        const missing = declared.filter((s) => !abilities.stages.includes(s));
        const undeclared = abilities.stages.filter((s) => !declared.includes(s));
        if (missing.length || undeclared.length) {
          h.terminate("its stages do not match its manifest");
          throw new StageFailedError(
            "start",
            name,
            [
              missing.length
                ? `the manifest declares ${
                  missing.map((s) => `"${s}"`).join(", ")
                } but the module does not define ${missing.length > 1 ? "them" : "it"}`
                : "",
              undeclared.length
                ? `the module defines ${
                  undeclared.map((s) => `"${s}"`).join(", ")
                } which the manifest does not declare`
                : "",
            ].filter(Boolean).join("; "),
            { hint: `Make [[stages]] in ${manifest.file} match definePlugin({ stages })` },
          );
        }
        return h;
      })();
      this.#hosts.set(name, host);
    }
    return host;
  }

  #grantsOf(name: string): Grants {
    let grants = this.#grants.get(name);
    if (!grants) {
      grants = grantsFor(this.#manifests.get(name)!, this.#o.env);
      this.#grants.set(name, grants);
    }
    return grants;
  }

  /**
   * What the kernel does for one call's requests: its ops are labelled `label`, cancelled with
   * `signal`, and tracked in `inFlight` (with the events it emits) until they settle.
   */
  #handlers(
    plugin: string,
    label: string,
    signal: AbortSignal,
    inFlight: Set<Promise<unknown>>,
  ): CallHandlers {
    const track = <T>(work: Promise<T>): Promise<T> => {
      inFlight.add(work);
      const done = () => void inFlight.delete(work);
      work.then(done, done);
      return work;
    };
    return {
      op: (kind, args) =>
        track(this.#o.engine.request(this.#grantsOf(plugin), label, { kind, args }, { signal })),
      read: (kind, path) => serveRead(this.#grantsOf(plugin), kind, path),
      // Ops of the handlers count as the emitting stage's: resume undoes and redoes them with it.
      emit: (event, payload) => track(this.emit(event, payload, label, signal)),
      ui: (message) => this.#o.ui.message(message),
      subscribe: (event) => {
        const set = this.#dynamicSubscribers.get(event) ?? new Set();
        set.add(plugin);
        this.#dynamicSubscribers.set(event, set);
      },
    };
  }

  /** The context keys a stage that completed in this run wrote; refused for any other. */
  stageWrites(stage: string): Record<string, Json> {
    const writes = this.#written.get(stage);
    if (!writes) {
      throw new GiniError(
        "CHECKPOINT_INVALID",
        `Cannot checkpoint stage "${stage}": it has not completed in this run`,
        1,
        { hint: "Checkpoint from a post-stage hook, and only for a stage that did not fail" },
      );
    }
    return writes;
  }

  #hookPlugins(kind: "pre-stage" | "post-stage"): Manifest[] {
    const dry = this.#o.engine.mode === "dry";
    return [...this.#manifests.values()].filter((m) =>
      (kind === "pre-stage" ? m.hooks.pre_stage : m.hooks.post_stage) && (!dry || m.hooks.dry_run)
    );
  }

  #timeout(manifest: Manifest, stage?: ResolvedStage): number {
    return this.#o.stageTimeoutMs ?? stage?.timeoutMs ?? manifest.plugin.timeout_ms;
  }

  #byPriority(names: Iterable<string>): string[] {
    return [...names].sort((a, b) => (this.#order.get(a) ?? 0) - (this.#order.get(b) ?? 0));
  }

  /**
   * One call into a plugin's worker. If it fails, the ops it asked for that are still running
   * are cancelled (and so are those of the events it emitted), and its error is thrown only once
   * all of them have stopped and their outcomes are journaled. `parent` (the call that emitted
   * an event) cancels them too.
   */
  async #call(
    host: PluginHost,
    message: Parameters<PluginHost["call"]>[0],
    label: string,
    timeoutMs: number,
    opLabel: string,
    parent?: AbortSignal,
  ): Promise<CallResult> {
    const scope = new AbortController();
    const follow = () => scope.abort(parent!.reason);
    if (parent?.aborted) follow();
    else parent?.addEventListener("abort", follow, { once: true });
    const inFlight = new Set<Promise<unknown>>();
    try {
      const result = await host.call(
        message,
        label,
        timeoutMs,
        // Rendering only shapes output: the run's plan and report are already final.
        message.type === "render"
          ? renderOnlyHandlers(host.name)
          : this.#handlers(host.name, opLabel, scope.signal, inFlight),
      );
      // An op the plugin did not await still belongs to this call: it ends before the call does.
      await Promise.allSettled([...inFlight]);
      return result;
    } catch (error) {
      if (inFlight.size) {
        if (!scope.signal.aborted) {
          const reason = host.deadReason ??
            (error instanceof Error ? error.message : String(error));
          scope.abort(new OpCancelledError(reason));
        }
        await Promise.allSettled([...inFlight]);
      }
      throw error;
    } finally {
      parent?.removeEventListener("abort", follow);
    }
  }

  /**
   * Sends an event to every subscribing plugin, in priority order; returns their replies, each
   * wrapped in the replier's name, manifest file and `vm_patch` grants, which the kernel alone
   * fills in, so that an emitter can judge a reply by who sent it (a reply cannot claim to be
   * another plugin's). The ops the handlers request are labelled with `origin`, the stage the
   * event comes from, and are cancelled with `signal`, the emitting call's.
   */
  async emit(
    event: string,
    payload: Json,
    origin?: string,
    signal?: AbortSignal,
  ): Promise<EventReply[]> {
    const subscribers = new Set(
      [...this.#manifests.values()].filter((m) => m.events.subscribe.includes(event)).map((m) =>
        m.plugin.name
      ),
    );
    for (const name of this.#dynamicSubscribers.get(event) ?? []) subscribers.add(name);
    const replies: EventReply[] = [];
    for (const name of this.#byPriority(subscribers)) {
      const manifest = this.#manifests.get(name)!;
      try {
        const host = await this.host(name);
        const result = await this.#call(
          host,
          { type: "event", event, payload },
          `event ${event}`,
          this.#timeout(manifest),
          origin ?? `event:${event}`,
          signal,
        );
        if (result.reply === undefined) continue;
        replies.push({
          plugin: name,
          manifest: manifest.file,
          grants: { vm_patch: [...manifest.events.vm_patch] },
          reply: result.reply,
        });
      } catch (error) {
        this.#o.ui.warn(
          `Plugin "${name}" failed to handle event "${event}": ${
            error instanceof Error ? error.message : error
          }`,
        );
      }
    }
    return replies;
  }

  async #hooks(
    kind: "pre-stage" | "post-stage",
    stage: ResolvedStage,
    error?: string,
  ): Promise<void> {
    const names = this.#byPriority(this.#hookPlugins(kind).map((m) => m.plugin.name));
    for (const name of names) {
      const manifest = this.#manifests.get(name)!;
      const host = await this.host(name);
      await this.#call(
        host,
        { type: "hook", hook: kind, stage: stage.id, ...(error ? { error } : {}) },
        `${kind} hook for ${stage.id}`,
        this.#timeout(manifest),
        stage.id,
      );
    }
  }

  async #runStage(stage: ResolvedStage, context: Map<string, Json>): Promise<void> {
    const manifest = this.#manifests.get(stage.plugin)!;
    const host = await this.host(stage.plugin);
    const input: Record<string, Json> = {};
    for (const key of stage.reads) if (context.has(key)) input[key] = context.get(key)!;
    const written: Record<string, Json> = {};
    const result = await this.#call(
      host,
      { type: "run-stage", stage: stage.name, context: input },
      stage.id,
      this.#timeout(manifest, stage),
      stage.id,
    );
    for (const [key, value] of Object.entries(result.writes)) {
      if (!stage.writes.includes(key)) {
        throw new StageFailedError(
          stage.id,
          stage.plugin,
          `it wrote context key "${key}", which it does not declare in writes`,
          {
            hint: `Add "${key}" to the stage's writes in ${manifest.file}`,
          },
        );
      }
      const schema = this.#contracts.get(key);
      if (schema) {
        const checked = schema.safeParse(value);
        if (!checked.success) {
          const issue = checked.error.issues[0]!;
          throw new StageFailedError(
            stage.id,
            stage.plugin,
            `its value for "${key}" breaks the key's contract at "${
              issue.path.join(".")
            }": ${issue.message}`,
          );
        }
        context.set(key, checked.data as Json);
      } else context.set(key, value);
      written[key] = context.get(key)!;
    }
    this.#written.set(stage.id, written);
  }

  /** Runs preflight for every participating plugin, then the stages. */
  async run(): Promise<PipelineResult> {
    const context = new Map<string, Json>(Object.entries(this.#o.seeds ?? {}));
    const { selected, wanting, stages, edges } = this.#plan(context);
    const completed = new Set(this.#o.completed ?? []);
    // A stage that does not apply is settled before the run: its plugin may get no worker at all.
    const idle = await notApplying(stages.filter((s) => !completed.has(s.id)), context);
    const participants = await this.#startWorkers(
      stages.filter((s) => !idle.has(s.id)),
      completed,
    );
    await this.#preflight(participants);

    const state: RunState = {
      context,
      edges,
      reports: new Map(),
      pending: new Map(
        stages.filter((s) => !completed.has(s.id) && !idle.has(s.id)).map((s) => [s.id, s]),
      ),
      running: new Map(),
      launchOrder: [],
      failure: undefined,
      failures: new Map(),
    };
    for (const s of stages.filter((s) => completed.has(s.id))) {
      state.reports.set(s.id, {
        id: s.id,
        plugin: s.plugin,
        status: "done",
        durationMs: 0,
        restored: true,
      });
    }
    for (const stage of stages.filter((s) => idle.has(s.id))) {
      state.reports.set(stage.id, {
        id: stage.id,
        plugin: stage.plugin,
        status: "skipped",
        durationMs: 0,
        error: idle.get(stage.id)!,
        notApplicable: true,
      });
      // What the stage would have said had it run: nothing for this VM.
      for (const key of stage.writes) if (!context.has(key)) context.set(key, null);
    }
    try {
      await this.#schedule(state);
    } finally {
      await Promise.allSettled(state.running.values());
    }
    const skipped: StageReport[] = selected.filter((s) => wanting.has(s.id)).map((s) => ({
      id: s.id,
      plugin: s.plugin,
      status: "skipped",
      durationMs: 0,
      error: wanting.get(s.id)!,
    }));
    return this.#outcome(state, stages, completed, skipped);
  }

  /**
   * The stages this run takes on, with their prerequisites, and those it skips for want of
   * inputs (each with its reason). Throws on a cycle or a key that nothing produces.
   */
  #plan(context: Map<string, Json>): {
    selected: ResolvedStage[];
    wanting: Map<string, string>;
    stages: ResolvedStage[];
    edges: Map<string, Set<string>>;
  } {
    const { resolution } = this.#o;
    const selected = selectStages(resolution, this.#o.targets);
    // Run with no targets ("run everything"), a stage whose inputs nobody gives (a key only a
    // command seeds, such as session.user_vm_request) is skipped with its reason, not an error.
    const wanting = this.#o.targets
      ? new Map<string, string>()
      : wantingInputs(selected, resolution, context);
    const stages = selected.filter((s) => !wanting.has(s.id));
    const edges = stageEdges(stages, resolution);
    checkReads(stages, resolution, context);
    return { selected, wanting, stages, edges };
  }

  /**
   * Loads the contracts of the plugins that take part (those with a stage to run, and hook
   * plugins) and starts their workers; returns their names.
   */
  async #startWorkers(stages: ResolvedStage[], completed: Set<string>): Promise<Set<string>> {
    const participants = new Set(stages.filter((s) => !completed.has(s.id)).map((s) => s.plugin));
    for (const m of [...this.#hookPlugins("pre-stage"), ...this.#hookPlugins("post-stage")]) {
      participants.add(m.plugin.name);
    }
    this.#contracts = await loadContracts(
      [...this.#manifests.values()].filter((m) => participants.has(m.plugin.name)),
    );
    // Start every participating worker at once (they load in parallel), then preflight in order.
    await Promise.all([...participants].map((name) => this.host(name)));
    // Workers started ahead that this run did not take are ended now, not when gini exits.
    discardPrestarted();
    return participants;
  }

  /** Runs each participant's preflight in priority order; throws on the first veto. */
  async #preflight(participants: Set<string>): Promise<void> {
    for (const name of this.#byPriority(participants)) {
      const manifest = this.#manifests.get(name)!;
      const host = await this.host(name);
      if (!host.abilities?.preflight) continue;
      const result = await this.#call(
        host,
        { type: "preflight" },
        `${name}:preflight`,
        this.#timeout(manifest),
        `${name}:preflight`,
      );
      if (result.veto) throw new PreflightVetoError(name, result.veto);
    }
  }

  #optional(stage: ResolvedStage): boolean {
    return this.#manifests.get(stage.plugin)!.plugin.optional;
  }

  /** Launches stages as their prerequisites complete, until none is pending or running. */
  async #schedule(state: RunState): Promise<void> {
    while (state.pending.size || state.running.size) {
      if (!state.failure) {
        this.#skipBlocked(state);
        const ready = [...state.pending.values()]
          .filter((s) => [...state.edges.get(s.id)!].every((d) => settled(state.reports.get(d))))
          .sort((a, b) => (this.#order.get(a.plugin) ?? 0) - (this.#order.get(b.plugin) ?? 0));
        ready.forEach((stage) => this.#launch(state, stage));
      }
      if (state.running.size === 0) break;
      await Promise.race(state.running.values());
    }
  }

  /** Stages whose prerequisites failed or were skipped are skipped too. */
  #skipBlocked(state: RunState): void {
    for (const stage of [...state.pending.values()]) {
      const deps = [...state.edges.get(stage.id)!];
      const blocked = deps.find((d) => state.reports.get(d) && !settled(state.reports.get(d)));
      if (!blocked) continue;
      state.pending.delete(stage.id);
      state.reports.set(stage.id, {
        id: stage.id,
        plugin: stage.plugin,
        status: "skipped",
        durationMs: 0,
        error: `"${blocked}" did not complete`,
      });
      if (!this.#optional(stage)) {
        state.failure ??= new StageFailedError(
          stage.id,
          stage.plugin,
          `it needs "${blocked}", which did not complete`,
        );
      }
    }
  }

  /** Starts one stage with its hooks; it is running until its report is in. */
  #launch(state: RunState, stage: ResolvedStage): void {
    state.pending.delete(stage.id);
    state.launchOrder.push(stage.id);
    const started = performance.now();
    const work = (async () => {
      const error = await this.#runWithHooks(stage, state.context);
      await this.#report(state, stage, error, performance.now() - started);
    })();
    state.running.set(stage.id, work.finally(() => state.running.delete(stage.id)));
  }

  /** Runs a stage between its pre- and post-stage hooks; returns the first error, if any. */
  async #runWithHooks(stage: ResolvedStage, context: Map<string, Json>): Promise<unknown> {
    let error: unknown;
    try {
      await this.#hooks("pre-stage", stage);
      await this.#runStage(stage, context);
    } catch (e) {
      error = e;
    }
    try {
      await this.#hooks(
        "post-stage",
        stage,
        error ? String(error instanceof Error ? error.message : error) : undefined,
      );
    } catch (e) {
      error ??= e;
    }
    return error;
  }

  /**
   * Records how a stage ended and tells subscribers; a failure of a required plugin's stage
   * becomes the run's failure, an optional one's only a warning.
   */
  async #report(
    state: RunState,
    stage: ResolvedStage,
    error: unknown,
    durationMs: number,
  ): Promise<void> {
    if (error === undefined) {
      state.reports.set(stage.id, {
        id: stage.id,
        plugin: stage.plugin,
        status: "done",
        durationMs,
      });
      await this.emit("stage:completed", { stage: stage.id, durationMs }, stage.id);
      return;
    }
    const gini = stageError(stage, error);
    state.reports.set(stage.id, {
      id: stage.id,
      plugin: stage.plugin,
      status: "failed",
      durationMs,
      error: gini.message,
    });
    if (this.#optional(stage)) {
      this.#o.ui.warn(
        `Optional plugin "${stage.plugin}" failed; its stage "${stage.id}" is skipped: ${gini.message}`,
      );
    } else {
      state.failures.set(stage.id, gini);
      state.failure ??= gini;
    }
    await this.emit("stage:failed", { stage: stage.id, error: gini.message }, stage.id);
  }

  /** The run's result, with every stage's report in the order the user reads them. */
  #outcome(
    state: RunState,
    stages: ResolvedStage[],
    completed: Set<string>,
    skipped: StageReport[],
  ): PipelineResult {
    const { reports, launchOrder } = state;
    // Stages running side by side may fail in either order: report the one that started first,
    // so the same input always gets the same error.
    const failure = launchOrder.map((id) => state.failures.get(id)).find(Boolean) ?? state.failure;
    for (const stage of state.pending.values()) {
      reports.set(stage.id, {
        id: stage.id,
        plugin: stage.plugin,
        status: "skipped",
        durationMs: 0,
        error: "the run stopped before it",
      });
    }
    const restored = stages.map((s) => s.id).filter((id) => completed.has(id));
    return {
      ok: failure === undefined,
      context: Object.fromEntries(state.context),
      // Restored stages first, then in the order stages started; those that never started last.
      stages: [
        ...restored,
        ...launchOrder,
        ...stages.map((s) => s.id).filter((id) => !launchOrder.includes(id) && !completed.has(id)),
      ]
        .map((id) => reports.get(id)!)
        .concat(skipped),
      ...(failure ? { error: failure } : {}),
    };
  }

  /**
   * Asks a plugin to render a command's output from `view` (its `context` limited to the keys the
   * plugin's stages read or write); undefined when the plugin renders no such command.
   */
  async render(
    plugin: string,
    command: string,
    view: RenderView,
  ): Promise<RenderOutput | undefined> {
    const manifest = this.#manifests.get(plugin)!;
    const host = await this.host(plugin);
    if (!host.abilities?.renders.includes(command)) return undefined;
    const visible = new Set(manifest.stages.flatMap((s) => [...s.reads, ...s.writes]));
    const context = Object.fromEntries(
      Object.entries(view.context).filter(([key]) => visible.has(key)),
    );
    const { reply } = await this.#call(
      host,
      { type: "render", command, view: { ...view, context } },
      `${plugin} rendering "${command}"`,
      Math.min(this.#timeout(manifest), RENDER_TIMEOUT_MS),
      `${plugin}:render`,
    );
    const output = check(RenderOutputSchema, reply);
    if (!output.ok) {
      throw new StageFailedError(
        "render",
        plugin,
        `its output for "${command}" is not { text, data?, exitCode?: 0-255 }`,
      );
    }
    const { text, data, exitCode } = output.value;
    return {
      text: stripControls(text),
      ...(data === undefined ? {} : { data }),
      ...(exitCode === undefined ? {} : { exitCode }),
    };
  }

  /** Stops every worker this pipeline started. */
  async close(reason = "the pipeline finished"): Promise<void> {
    for (const host of this.#hosts.values()) {
      try {
        (await host).terminate(reason);
      } catch { /* failed to start: nothing to stop */ }
    }
  }
}
