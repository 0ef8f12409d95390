/**
 * `download`: fetches a URL into Gini's content-addressed cache
 * (`<cache-dir>/downloads/sha256-<hex>`), streamed to a partial file, resumed with
 * HTTP Range after an interruption, hashed while it streams, retried with backoff,
 * fsync'd and renamed into place only when the hash matches. A mismatch leaves
 * nothing in the cache. `file://` URLs are copied through the same path.
 *
 * Bounded: a server that does not answer within the connect timeout, or sends nothing for the
 * idle timeout, fails the attempt (the next one resumes); a body longer than an exact expected
 * size is cut off there and refused. A cancelled op (`env.signal`) aborts the request and removes
 * its partial file before it rejects.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "../../workers/path.ts";
import { z } from "zod";
import { GiniError } from "../errors.ts";
import { defineOp, formatBytes, type OpEnv } from "./types.ts";

const DownloadArgs = z.strictObject({
  url: z.string().url(),
  /** Expected sha256 (hex). Without it the file is cached under the hash it turns out to have. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** A published checksum in another algorithm (Debian publishes SHA512SUMS). */
  checksum: z.strictObject({
    algorithm: z.enum(["sha256", "sha512"]),
    value: z.string().regex(/^[0-9a-f]{64,128}$/),
  }).optional(),
  /**
   * Expected size, for the plan and the progress bar; unless `sizeApproximate`, also exact: a
   * server sending more is cut off there and the download refused.
   */
  sizeBytes: z.number().int().nonnegative().optional(),
  /** The size is an estimate (a "latest" image whose size changes): the plan says "about". */
  sizeApproximate: z.boolean().optional(),
  label: z.string().max(200).optional(),
  /** A Cookie header (the macOS recovery protocol's AssetToken). */
  cookie: z.string().max(4096).optional(),
  /** How long the server may take to answer a request (default 30 s). */
  connectTimeoutMs: z.number().int().positive().max(3_600_000).optional(),
  /** How long the body may deliver no data at all before the attempt fails (default 60 s). */
  idleTimeoutMs: z.number().int().positive().max(3_600_000).optional(),
});
type DownloadArgs = z.infer<typeof DownloadArgs>;

/** A download that failed for good: the URL, and what was expected and found. */
export class DownloadError extends GiniError {
  constructor(message: string, hint: string) {
    super("DOWNLOAD_FAILED", message, 1, { hint });
  }
}

const ATTEMPTS = 4;
const CHUNK_PROGRESS = 4 * 1024 * 1024;
const WRITE_BUFFER = 4 * 1024 * 1024;
/** How much is written between two flushes to disk during a download. */
const SYNC_EVERY = 64 * 1024 * 1024;
/** Defaults of the `connectTimeoutMs` and `idleTimeoutMs` arguments. */
export const CONNECT_TIMEOUT_MS = 30_000;
export const IDLE_TIMEOUT_MS = 60_000;

/** An attempt that stopped hearing from the server: worth another attempt, which resumes. */
class StalledError extends Error {}

function duration(ms: number): string {
  return ms < 10_000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

/** Waits `ms`, or rejects with the reason as soon as `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const stop = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", stop);
      resolve();
    }, ms);
    if (signal?.aborted) stop();
    else signal?.addEventListener("abort", stop, { once: true });
  });
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.byteLength) offset += await file.write(data.subarray(offset));
}

function downloadsDir(env: OpEnv): string {
  return join(env.startup.dirs.cache, "downloads");
}

/** Where a file with this hash lives in the cache. */
export function cachePath(env: OpEnv, sha256: string): string {
  return join(downloadsDir(env), `sha256-${sha256}`);
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** How many buffers may wait for the hashing thread before the download waits for it. */
const HASH_QUEUE = 4;

/**
 * sha256 (the cache address) plus, when asked, the algorithm of a published checksum, computed on
 * a thread of their own (hashing costs as much as the rest of a download on a fast link). A buffer
 * given to `update` must not change afterwards: the op gives each its own, in shared memory.
 */
class Hashes {
  readonly #worker = new Worker(new URL("../../workers/hash_worker.ts", import.meta.url), {
    type: "module",
  });
  #queued = 0;
  #drained: (() => void) | undefined;
  #digested: ((digests: Record<string, string>) => void) | undefined;
  #failed: Error | undefined;
  constructor(algorithm?: "sha256" | "sha512") {
    this.#worker.onmessage = (event) => {
      if (event.data === "ok") {
        this.#queued--;
        this.#drained?.();
      } else this.#digested?.(event.data as Record<string, string>);
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#failed = new Error(`the hashing thread failed: ${event.message}`);
      this.#drained?.();
      this.#digested?.({});
    };
    this.#worker.postMessage(algorithm === "sha512" ? ["sha256", "sha512"] : ["sha256"]);
  }
  /** Queues `data` for hashing; waits while the hashing thread is behind. */
  async update(data: Uint8Array): Promise<void> {
    if (this.#failed) throw this.#failed;
    this.#worker.postMessage(data);
    this.#queued++;
    while (this.#queued >= HASH_QUEUE && !this.#failed) {
      await new Promise<void>((resolve) => this.#drained = resolve);
    }
  }
  async digest(): Promise<{ sha256: string; extra: string | undefined }> {
    const digests = await new Promise<Record<string, string>>((resolve) => {
      this.#digested = resolve;
      this.#worker.postMessage({ digest: true });
    });
    this.close();
    if (this.#failed) throw this.#failed;
    return { sha256: digests.sha256!, extra: digests.sha512 };
  }
  close(): void {
    this.#worker.terminate();
  }
}

/**
 * A write buffer the hashing thread reads in place (shared memory: posting it copies nothing).
 * A download cycles through a few of them, so its memory stays flat.
 */
const sharedBuffer = () => new Uint8Array(new SharedArrayBuffer(WRITE_BUFFER));

/** Hashes what a partial file already holds, so a resumed download verifies the whole file. */
async function hashExisting(path: string, hash: Hashes): Promise<number> {
  let size = 0;
  try {
    const file = await Deno.open(path);
    for await (const chunk of file.readable) {
      await hash.update(chunk);
      size += chunk.byteLength;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return size;
}

function tooLong(a: DownloadArgs, size: number): DownloadError {
  return new DownloadError(
    `Cannot download "${a.url}": the server sends more than the expected ${size} bytes`,
    "The file on the server is not the one expected; nothing was cached. Check the size the request gives",
  );
}

/** An opened body, with the whole file's size when known; `restart` when Range was ignored. */
interface Opened {
  body: ReadableStream<Uint8Array>;
  total: number | undefined;
  restart: boolean;
}

/**
 * Opens one attempt's body; "again" when the partial file must be dropped first. The connect
 * timeout runs until the response's headers arrive.
 */
async function openBody(
  a: DownloadArgs,
  url: URL,
  have: number,
  signal: AbortSignal,
  stall: (error: StalledError) => void,
): Promise<Opened | "again"> {
  if (url.protocol === "file:") {
    const file = await Deno.open(url);
    if (have > 0) await file.seek(have, Deno.SeekMode.Start);
    return { body: file.readable, total: (await file.stat()).size, restart: false };
  }
  const connectMs = a.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  const timer = setTimeout(() => {
    stall(
      new StalledError(
        `the server did not answer within the connect timeout of ${duration(connectMs)}`,
      ),
    );
  }, connectMs);
  let response: Response;
  try {
    response = await fetch(url, {
      headers: {
        ...(have > 0 ? { Range: `bytes=${have}-` } : {}),
        ...(a.cookie ? { Cookie: a.cookie } : {}),
      },
      signal,
    });
  } finally {
    clearTimeout(timer);
  }
  if (response.status === 404 || response.status === 410) {
    await response.body?.cancel();
    throw new DownloadError(
      `Cannot download "${a.url}": the server says ${response.status} (not found)`,
      "Check the URL, or the image catalogue entry that gave it",
    );
  }
  if (response.status === 416 && have > 0) {
    // The partial file is already complete (or longer than the file): start over.
    await response.body?.cancel();
    return "again";
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new Error(`HTTP ${response.status}`);
  }
  const length = Number(response.headers.get("content-length") ?? NaN);
  return {
    body: response.body,
    total: Number.isFinite(length) ? (response.status === 206 ? have : 0) + length : undefined,
    // A server that ignores Range sends the whole body: what we had is discarded.
    restart: have > 0 && response.status !== 206,
  };
}

async function transfer(
  a: DownloadArgs,
  env: OpEnv,
  partial: string,
): Promise<{ sha256: string; extra: string | undefined; bytes: number }> {
  const url = new URL(a.url);
  const id = `download:${a.url}`;
  const label = a.label ?? `Downloading ${url.pathname.split("/").at(-1) || url.host}`;
  // An exact expected size is also a limit: nothing beyond it is read or written.
  const limit = a.sizeApproximate ? undefined : a.sizeBytes;
  const idleMs = a.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
  let lastError: unknown;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    env.signal?.throwIfAborted();
    // Closed when the attempt ends (digest() closes it too); a restart starts another.
    let hash = new Hashes(a.checksum?.algorithm);
    let have = await hashExisting(partial, hash).catch((error) => {
      hash.close();
      throw error;
    });
    // This attempt's own stop (a timeout, the size limit) joined with the op's (a cancel).
    const attemptStop = new AbortController();
    const signal = env.signal
      ? AbortSignal.any([env.signal, attemptStop.signal])
      : attemptStop.signal;
    const stall = (error: StalledError) => attemptStop.abort(error);
    try {
      const opened = await openBody(a, url, have, signal, stall);
      if (opened === "again") {
        hash.close();
        await Deno.remove(partial).catch(() => {});
        continue;
      }
      if (opened.restart) {
        await Deno.remove(partial).catch(() => {});
        have = 0;
        hash.close();
        hash = new Hashes(a.checksum?.algorithm);
      }
      if (limit !== undefined && opened.total !== undefined && opened.total > limit) {
        await opened.body.cancel();
        throw tooLong(a, limit);
      }
      // An approximate size gives way to what the server says.
      const total = limit ?? opened.total ?? a.sizeBytes;
      const fresh = hash;
      const out = await Deno.open(partial, {
        write: true,
        create: true,
        append: have > 0,
        truncate: have === 0,
      });
      env.report?.({
        type: "progress",
        phase: "start",
        id,
        label,
        unit: "bytes",
        ...(total === undefined ? {} : { total }),
      });
      let written = have;
      let reported = written;
      // Chunks are gathered into 4 MiB buffers; each full one is hashed on the hashing thread and
      // written while the next one fills, so network, hash and disk overlap instead of taking turns.
      const ring = Array.from({ length: HASH_QUEUE + 1 }, sharedBuffer);
      let slot = 0;
      let buffer = ring[0]!;
      let filled = 0;
      let writing: Promise<void> = Promise.resolve();
      // Written data is flushed to disk as it comes (every SYNC_EVERY bytes, beside the next
      // writes), so that the final fsync has little left to wait for.
      let unsynced = 0;
      let syncing: Promise<void> = Promise.resolve();
      const flush = async () => {
        const full = buffer.subarray(0, filled);
        await fresh.update(full);
        await writing;
        unsynced += full.byteLength;
        if (unsynced >= SYNC_EVERY) {
          unsynced = 0;
          await syncing;
          syncing = out.syncData();
        }
        writing = writeAll(out, full);
        // The next buffer of the ring: its hashing and its write are done by now (the hashing
        // thread is at most HASH_QUEUE - 1 behind, writes go one at a time).
        slot = (slot + 1) % ring.length;
        buffer = ring[slot]!;
        filled = 0;
      };
      const reader = opened.body.getReader();
      // A file:// body does not follow the signal by itself; cancelling ends its pending read.
      const stopReading = () => void reader.cancel(signal.reason).catch(() => {});
      signal.addEventListener("abort", stopReading, { once: true });
      let heard = performance.now();
      let watchdog: ReturnType<typeof setTimeout> | undefined;
      const watch = (ms: number) => {
        watchdog = setTimeout(() => {
          const quiet = performance.now() - heard;
          if (quiet < idleMs) return watch(idleMs - quiet);
          stall(
            new StalledError(`no data arrived within the idle timeout of ${duration(idleMs)}`),
          );
        }, ms);
      };
      watch(idleMs);
      try {
        while (true) {
          const { done, value: chunk } = await reader.read();
          if (done) break;
          heard = performance.now();
          if (limit !== undefined && written + chunk.byteLength > limit) {
            attemptStop.abort(tooLong(a, limit));
            throw attemptStop.signal.reason;
          }
          let offset = 0;
          while (offset < chunk.byteLength) {
            const take = Math.min(chunk.byteLength - offset, WRITE_BUFFER - filled);
            buffer.set(chunk.subarray(offset, offset + take), filled);
            filled += take;
            offset += take;
            if (filled === WRITE_BUFFER) await flush();
          }
          written += chunk.byteLength;
          if (written - reported >= CHUNK_PROGRESS) {
            env.report?.({ type: "progress", phase: "update", id, current: written });
            reported = written;
          }
        }
        // A cancelled read ends like a finished one: only the signal tells them apart.
        signal.throwIfAborted();
        if (filled) await flush();
        await writing;
        await syncing;
        await out.sync();
      } finally {
        clearTimeout(watchdog);
        signal.removeEventListener("abort", stopReading);
        // On a cut connection, keep what arrived so the next attempt resumes after it.
        if (filled) await flush().catch(() => {});
        await writing.catch(() => {});
        await syncing.catch(() => {});
        out.close();
      }
      if (limit !== undefined && written !== limit) {
        throw new DownloadError(
          `Cannot use "${a.url}": it has ${written} bytes, expected ${limit}`,
          "The file on the server is not the one expected; nothing was cached. Check the size the request gives",
        );
      }
      env.report?.({
        type: "progress",
        phase: "complete",
        id,
        label: `${label}: ${formatBytes(written)}`,
      });
      return { ...await fresh.digest(), bytes: written };
    } catch (thrown) {
      hash.close();
      // The signal's reason says why better than the AbortError fetch rejects with.
      const error = signal.aborted ? signal.reason : thrown;
      if (env.signal?.aborted || error instanceof DownloadError) {
        // Cancelled, or refused for good: nothing of it is kept.
        await Deno.remove(partial).catch(() => {});
        throw error;
      }
      lastError = error;
      if (attempt < ATTEMPTS) await pause(200 * 2 ** attempt, env.signal);
    }
  }
  throw new DownloadError(
    `Cannot download "${a.url}": ${
      lastError instanceof Error ? lastError.message : lastError
    } (after ${ATTEMPTS} attempts)`,
    "Check the network and the URL; running the command again resumes where it stopped",
  );
}

export const downloadOp = defineOp<DownloadArgs>({
  kind: "download",
  schema: DownloadArgs,
  pathArgs: [],
  describe: (a) =>
    `Download "${a.url}"${
      a.sizeBytes ? ` (${a.sizeApproximate ? "about " : ""}${formatBytes(a.sizeBytes)})` : ""
    } into the cache${a.sha256 ? `, verified by sha256 ${a.sha256.slice(0, 12)}…` : ""}`,
  estimate: (a) => ({ bytes: a.sizeBytes ?? 0, seconds: (a.sizeBytes ?? 0) / (20 * 1024 * 1024) }),
  // A file:// source is a read of the host: it needs the read grant on that file, or the cache
  // would hand the plugin a copy of anything the kernel can read.
  permission: (a) => {
    const url = new URL(a.url);
    return [
      { grant: "download", url: a.url },
      ...(url.protocol === "file:"
        ? [{ grant: "read" as const, path: decodeURIComponent(url.pathname) }]
        : []),
    ];
  },
  capture: async (a, env) => ({
    cached: a.sha256 ? await exists(cachePath(env, a.sha256)) : false,
  }),
  conflicts: () => [],
  async execute(a, env, before) {
    if (a.sha256 && (before as { cached: boolean }).cached) {
      return { path: cachePath(env, a.sha256), sha256: a.sha256, cached: true };
    }
    await Deno.mkdir(join(downloadsDir(env), "partial"), { recursive: true });
    const partial = join(
      downloadsDir(env),
      "partial",
      `${createHash("sha256").update(a.url).digest("hex")}.part`,
    );
    const got = await transfer(a, env, partial);
    if (a.checksum) {
      const actual = a.checksum.algorithm === "sha256" ? got.sha256 : got.extra!;
      if (actual !== a.checksum.value) {
        await Deno.remove(partial).catch(() => {});
        throw new DownloadError(
          `Cannot use "${a.url}": its ${a.checksum.algorithm} is ${actual}, expected ${a.checksum.value}`,
          "The file changed on the server or was corrupted on the way; nothing was cached. Check the published checksum",
        );
      }
    }
    if (a.sha256 && got.sha256 !== a.sha256) {
      await Deno.remove(partial).catch(() => {});
      throw new DownloadError(
        `Cannot use "${a.url}": its sha256 is ${got.sha256}, expected ${a.sha256}`,
        "The file changed on the server or was corrupted on the way; nothing was cached. Check the published checksum",
      );
    }
    const path = cachePath(env, got.sha256);
    await Deno.rename(partial, path);
    return { path, sha256: got.sha256, bytes: got.bytes, cached: false };
  },
  simulate: (a) => ({
    path: a.sha256 ? `sha256-${a.sha256}` : "",
    sha256: a.sha256 ?? "",
    simulated: true,
  }),
  // The cache is Gini's own; a cached image is reused, not undone.
  inverse: () => [],
});
