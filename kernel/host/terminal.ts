/**
 * The user's terminal, handed to a session: a VM's serial console (a unix socket, attached in raw
 * mode until the detach key), a program that takes the terminal over (`ssh`), and the wait for a
 * service's banner before one starts. Only interactive ops use this module.
 *
 * @example
 * ```ts
 * const end = await attachSocket("/vms/web/serial.sock", { detachKey: 0x1d });
 * end; // "detached" | "closed" | "input-ended"
 * ```
 *
 * @module
 */
import { onStopSignal, STOP_SIGNALS, type StopSignal } from "../signals.ts";
import type { HostRunner } from "./run.ts";

/** Ctrl-]: the detach key of `virsh console` and telnet. */
export const DETACH_KEY = 0x1d;

/** How a console session ended. */
export type SessionEnd = "detached" | "closed" | "input-ended" | StopSignal;

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  let done = 0;
  while (done < bytes.length) done += await w.write(bytes.subarray(done));
}

/** The last `lines` lines of a log file (at most its last 64 KiB are read), or "". */
export async function logTail(path: string, lines: number): Promise<Uint8Array> {
  if (lines <= 0) return new Uint8Array();
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch {
    return new Uint8Array();
  }
  try {
    const size = (await file.stat()).size;
    const start = Math.max(0, size - 64 * 1024);
    await file.seek(start, Deno.SeekMode.Start);
    const buffer = new Uint8Array(size - start);
    let got = 0;
    while (got < buffer.length) {
      const n = await file.read(buffer.subarray(got));
      if (n === null) break;
      got += n;
    }
    const text = buffer.subarray(0, got);
    // Count newlines back from the end (a trailing one ends the last line, it starts none).
    let at = text.length - (text.at(-1) === 0x0a ? 1 : 0);
    let seen = 0;
    while (at > 0) {
      if (text[at - 1] === 0x0a && ++seen === lines) break;
      at--;
    }
    return text.subarray(at);
  } finally {
    file.close();
  }
}

/** Options of {@linkcode attachSocket}. */
export interface AttachOptions {
  detachKey: number;
  /** Bytes shown before the session starts (the log's last lines). */
  before?: Uint8Array;
  /** With input that is not a terminal: how long the output must be quiet after it ends. */
  quietMs?: number;
}

/**
 * Connects the terminal to a unix socket until the detach key is typed (a terminal is put in raw
 * mode, so every other key, Ctrl-C too, goes to the guest), the socket closes (the VM stopped),
 * or, when the input is not a terminal, the input ends and the output has been quiet a moment.
 * A stop signal (SIGTERM, SIGHUP) ends it too; the terminal's mode is always restored.
 */
export async function attachSocket(socket: string, options: AttachOptions): Promise<SessionEnd> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  const tty = Deno.stdin.isTerminal();
  let finish!: (end: SessionEnd) => void;
  const ended = new Promise<SessionEnd>((resolve) => finish = resolve);
  const stopListening = onStopSignal((signal) => finish(signal));
  let lastOutput = Date.now();
  const output = (async () => {
    const buffer = new Uint8Array(16 * 1024);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        lastOutput = Date.now();
        await writeAll(Deno.stdout, buffer.subarray(0, n));
      }
    } catch { /* closed by us */ }
    finish("closed");
  })();
  const input = (async () => {
    const buffer = new Uint8Array(4096);
    while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) break;
      const chunk = buffer.subarray(0, n);
      const key = chunk.indexOf(options.detachKey);
      if (key >= 0) {
        if (key > 0) await writeAll(conn, chunk.subarray(0, key));
        finish("detached");
        return;
      }
      await writeAll(conn, chunk);
    }
    // Piped input: let the guest answer what it was sent, then end.
    const quiet = options.quietMs ?? 1000;
    const deadline = Date.now() + 30 * quiet;
    while (Date.now() - lastOutput < quiet && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    finish("input-ended");
  })().catch(() => finish("closed"));
  if (options.before?.length) await writeAll(Deno.stdout, options.before);
  if (tty) Deno.stdin.setRaw(true);
  try {
    return await ended;
  } finally {
    if (tty) Deno.stdin.setRaw(false);
    stopListening();
    try {
      conn.close();
    } catch { /* the VM closed it */ }
    await output;
    // A read of the input may still be pending: it ends with the process, and takes nothing
    // the user meant for the guest.
    void input;
  }
}

/** How a program given the terminal ended. */
export interface HandOverResult {
  code: number;
  /** A stop signal the kernel received while it ran (the program got it too). */
  signal?: StopSignal;
}

/**
 * Runs a program with the user's terminal (stdin, stdout and stderr inherited; in the foreground
 * process group, so that it can read a passphrase from /dev/tty and job control works), its
 * exit code passed back. Ctrl-C reaches it as it reaches Gini; Gini waits for it to end.
 */
export async function handOver(
  host: HostRunner,
  argv: readonly string[],
  env: Record<string, string>,
  signal?: AbortSignal,
): Promise<HandOverResult> {
  const [program, ...args] = argv;
  const absolute = program ? host.which(program) : null;
  if (!absolute) throw new Deno.errors.NotFound(`${program}: not installed`);
  const child = new Deno.Command(absolute, {
    args,
    clearEnv: true,
    env: host.cleanEnv(env),
    cwd: "/",
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  let stopped: StopSignal | undefined;
  const kill = (s: Deno.Signal = "SIGTERM") => {
    try {
      child.kill(s);
    } catch { /* ended */ }
  };
  // Ctrl-C on the terminal reached the program already (one process group); pass on the others.
  const stopListening = onStopSignal((s) => {
    stopped ??= s;
    if (s !== "SIGINT") kill(s);
  });
  const cancel = () => kill();
  signal?.addEventListener("abort", cancel, { once: true });
  try {
    const status = await child.status;
    const code = status.signal ? 128 + signalNumber(status.signal) : status.code;
    return { code, ...(stopped ? { signal: stopped } : {}) };
  } finally {
    stopListening();
    signal?.removeEventListener("abort", cancel);
  }
}

function signalNumber(signal: Deno.Signal): number {
  const known: Partial<Record<Deno.Signal, number>> = {
    SIGHUP: STOP_SIGNALS.SIGHUP - 128,
    SIGINT: STOP_SIGNALS.SIGINT - 128,
    SIGQUIT: 3,
    SIGKILL: 9,
    SIGPIPE: 13,
    SIGTERM: STOP_SIGNALS.SIGTERM - 128,
  };
  return known[signal] ?? 1;
}

/**
 * Whether a TCP service answers with a banner starting with `prefix` ("SSH-"): a port forward
 * accepts connections before the guest's service runs, so only the banner says it is up.
 */
export async function bannerReady(
  hostname: string,
  port: number,
  prefix: string,
  timeoutMs: number,
): Promise<boolean> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname, port });
  } catch {
    return false;
  }
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const buffer = new Uint8Array(256);
    let text = "";
    while (text.length < prefix.length) {
      const n = await conn.read(buffer);
      if (n === null) return false;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    return text.startsWith(prefix);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}
