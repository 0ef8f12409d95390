/**
 * The adapter that runs programs. Programs are resolved to absolute paths from the PATH captured
 * at start-up and get a clean, explicit environment, a timeout, and a bounded capture of their
 * output. Each program leads a process group of its own, so that stopping it (its timeout, or
 * the op that asked for it being cancelled) stops everything it started too.
 *
 * @example
 * ```ts
 * const host = new HostRunner("/usr/bin:/bin");
 * const { stdout } = await host.run(["qemu-img", "--version"], { timeoutMs: 10_000 });
 * ```
 *
 * @module
 */
import { isAbsolute, join } from "../../workers/path.ts";
import { HostCommandError, UsageError } from "../errors.ts";
import { deadline } from "../../workers/timer.ts";

/** What a finished program returned. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of one program run. */
export interface RunOptions {
  timeoutMs?: number;
  stdin?: string;
  /** Extra variables on top of the clean environment. */
  env?: Record<string, string>;
  /** Do not throw on a non-zero exit code. */
  noThrow?: boolean;
  /**
   * Stops the program (and its process group) when aborted; `run()` then rejects with the
   * signal's reason once every process of the group has exited.
   */
  signal?: AbortSignal;
  /** How long a stopped program gets between SIGTERM and SIGKILL. */
  killGraceMs?: number;
}

/** Keep at most this much of each output stream: stdout's head, stderr's tail. */
export const OUTPUT_LIMIT = 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;
const DEFAULT_KILL_GRACE_MS = 5_000;
/** The exit code of a program stopped by its timeout, as timeout(1) reports it. */
export const TIMED_OUT_CODE = 124;
/**
 * After the program exits, how long a process it left behind may hold its output pipes open
 * before the kernel stops reading them.
 */
const DRAIN_GRACE_MS = 1_000;

function tail(text: string, lines = 20): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** A deadline that can be awaited and cancelled (without Node's timers: workers/timer.ts). */
function delay(ms: number): { done: Promise<void>; cancel(): void } {
  let cancel = () => {};
  const done = new Promise<void>((resolve) => cancel = deadline(ms, resolve));
  return { done, cancel };
}

function pause(ms: number): Promise<void> {
  return delay(ms).done;
}

/** Whether a live (not zombie) process of the group led by `pgid` remains. */
function groupAlive(pgid: number): boolean {
  try {
    // SIGCONT changes nothing for a running process and lets a stopped one act on SIGTERM.
    Deno.kill(-pgid, "SIGCONT");
  } catch {
    return false;
  }
  // An exited member whose new parent has not reaped it yet still counts for kill(2): look.
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(pgrp) === pgid && state !== "Z") return true;
    } catch { /* exited meanwhile */ }
  }
  return false;
}

function signalGroup(pgid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pgid, signal);
  } catch { /* already gone */ }
}

/** Reads a stream to its end, keeping at most `limit` bytes: its head or its tail. */
async function capture(
  stream: ReadableStream<Uint8Array>,
  keep: "head" | "tail",
  limit: number,
  stop: Promise<void>,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let held = 0;
  const reader = stream.getReader();
  // A process the program left behind may keep the pipe open: stop reading when told to.
  const stopped = stop.then(() => reader.cancel().catch(() => {}));
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (keep === "head") {
        if (held >= limit) continue;
        const part = value.subarray(0, limit - held);
        chunks.push(part);
        held += part.byteLength;
      } else {
        chunks.push(value);
        held += value.byteLength;
        while (held - chunks[0]!.byteLength >= limit) held -= chunks.shift()!.byteLength;
      }
    }
  } catch { /* the pipe was cancelled: keep what arrived */ }
  void stopped;
  const all = new Uint8Array(held);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.byteLength;
  }
  return keep === "tail" && held > limit ? all.subarray(held - limit) : all;
}

/** How a program ended, with its captured output. */
interface Exit {
  status: Deno.CommandStatus;
  out: Uint8Array;
  err: Uint8Array;
  /** Stopped by its timeout. */
  timedOut: boolean;
}

/** The result of a finished program; throws on a non-zero exit code unless `noThrow`. */
function finish(argv: string[], exit: Exit, timeoutMs: number, noThrow: boolean): RunResult {
  const decoder = new TextDecoder();
  const stdout = decoder.decode(exit.out);
  let stderr = decoder.decode(exit.err);
  let code = exit.status.code;
  if (exit.timedOut) {
    code = TIMED_OUT_CODE;
    stderr += `${stderr && !stderr.endsWith("\n") ? "\n" : ""}` +
      `gini: stopped after its time limit of ${timeoutMs} ms`;
  }
  if (code !== 0 && !noThrow) {
    throw new HostCommandError(
      argv,
      code,
      tail(stderr || stdout),
      ...(exit.timedOut ? [`It did not finish within ${timeoutMs} ms`] : []),
    );
  }
  return { code, stdout, stderr };
}

/** Runs programs for the kernel. */
export class HostRunner {
  #path: string[];
  #cache = new Map<string, string | null>();
  /** Set on a runner bound to one op (see `withSignal`). */
  #signal: AbortSignal | undefined;

  /** @param searchPath the PATH captured at start-up */
  constructor(searchPath: string) {
    // System tools (mkfs.fat, sgdisk, lvcreate) live in sbin, which users' PATH often lacks.
    const dirs = searchPath.split(":").filter((p) => isAbsolute(p));
    for (const sbin of ["/usr/local/sbin", "/usr/sbin", "/sbin"]) {
      if (!dirs.includes(sbin)) dirs.push(sbin);
    }
    this.#path = dirs;
  }

  /**
   * The same runner, whose every program is stopped when `signal` aborts: the engine gives each
   * op one, so an op module needs no code of its own to be cancellable.
   */
  withSignal(signal: AbortSignal): HostRunner {
    const bound = new HostRunner("");
    bound.#path = this.#path;
    bound.#cache = this.#cache;
    bound.#signal = this.#signal ? AbortSignal.any([this.#signal, signal]) : signal;
    return bound;
  }

  /** The absolute path of a program, or null when it is not installed. */
  which(program: string): string | null {
    if (isAbsolute(program)) return program;
    if (program.includes("/")) return null;
    const cached = this.#cache.get(program);
    if (cached !== undefined) return cached;
    let found: string | null = null;
    for (const dir of this.#path) {
      const candidate = join(dir, program);
      try {
        const info = Deno.statSync(candidate);
        if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) {
          found = candidate;
          break;
        }
      } catch { /* not here */ }
    }
    this.#cache.set(program, found);
    return found;
  }

  /** The clean environment every child gets. */
  cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
    return { PATH: this.#path.join(":"), LC_ALL: "C.UTF-8", LANG: "C.UTF-8", ...extra };
  }

  /**
   * Runs `argv` (never through a shell) and returns its output: stdout up to
   * {@linkcode OUTPUT_LIMIT} from its start (callers parse it), stderr's last
   * {@linkcode OUTPUT_LIMIT}. Neither is ever held in memory beyond that.
   */
  async run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const [program, ...args] = argv;
    if (!program) throw new UsageError("Cannot run an empty command");
    const absolute = this.which(program);
    if (!absolute) {
      throw new HostCommandError(
        [...argv],
        127,
        `${program}: not found in ${this.#path.join(":")}`,
        `Install "${program}"`,
      );
    }
    const signal = options.signal && this.#signal
      ? AbortSignal.any([options.signal, this.#signal])
      : options.signal ?? this.#signal;
    signal?.throwIfAborted();
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const child = new Deno.Command(absolute, {
      args,
      clearEnv: true,
      env: this.cleanEnv(options.env),
      cwd: "/",
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      // A session and process group of its own (setsid), so a stop reaches its children too.
      detached: true,
    }).spawn();
    const exit = await this.#supervise(child, options, signal, timeoutMs);
    return finish([absolute, ...args], exit, timeoutMs, options.noThrow ?? false);
  }

  /**
   * Feeds `child` its input and waits for it and its output, stopping its process group at the
   * timeout or when `signal` aborts; rejects with the signal's reason once the group is gone.
   */
  async #supervise(
    child: Deno.ChildProcess,
    options: RunOptions,
    signal: AbortSignal | undefined,
    timeoutMs: number,
  ): Promise<Exit> {
    const pgid = child.pid;
    let stopping: Promise<void> | undefined;
    let timedOut = false;
    const stop = () =>
      stopping ??= this.#stopGroup(
        pgid,
        child.status,
        options.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
      );
    const cancelTimer = deadline(timeoutMs, () => {
      timedOut = true;
      void stop();
    });
    const onAbort = () => void stop();
    signal?.addEventListener("abort", onAbort, { once: true });

    const exited = child.status.then(() => {});
    const drained = exited.then(() => delay(DRAIN_GRACE_MS));
    const giveUp = drained.then((d) => d.done);
    const outputs = Promise.all([
      capture(child.stdout, "head", OUTPUT_LIMIT, giveUp),
      capture(child.stderr, "tail", OUTPUT_LIMIT, giveUp),
    ]);
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      // A program that exits without reading its input closes the pipe: not an error of ours.
      writer.write(new TextEncoder().encode(options.stdin))
        .then(() => writer.close())
        .catch(() => {});
    }
    let status: Deno.CommandStatus;
    let out: Uint8Array;
    let err: Uint8Array;
    try {
      status = await child.status;
      [out, err] = await outputs;
      if (stopping) await stopping;
    } finally {
      cancelTimer();
      signal?.removeEventListener("abort", onAbort);
      (await drained).cancel();
    }
    if (signal?.aborted && stopping) throw signal.reason;
    return { status, out, err, timedOut };
  }

  /**
   * Stops a process group: SIGTERM, then SIGKILL to whatever is left after `graceMs`; resolves
   * once the leader has exited and no process of the group remains.
   */
  async #stopGroup(
    pgid: number,
    status: Promise<Deno.CommandStatus>,
    graceMs: number,
  ): Promise<void> {
    signalGroup(pgid, "SIGTERM");
    const grace = delay(graceMs);
    const deadline = performance.now() + graceMs;
    try {
      await Promise.race([status, grace.done]);
      // Members of the group may outlive the leader (a shell's children): give them the grace too.
      while (groupAlive(pgid) && performance.now() < deadline) await pause(20);
    } finally {
      grace.cancel();
    }
    if (groupAlive(pgid)) signalGroup(pgid, "SIGKILL");
    await status;
    // SIGKILL cannot be refused; the kernel reaps the last members within moments.
    for (let i = 0; i < 500 && groupAlive(pgid); i++) await pause(10);
  }
}
