/**
 * The recovery journal: one write-ahead log per transaction in
 * `<state-dir>/journal/<id>.wal`, one JSON record per line with its own sha256,
 * fsync'd before the op it describes runs. A torn last line (a power cut mid-write)
 * is detected and ignored; a bad checksum before the end is refused.
 *
 * @module
 */
import { sha256Hex } from "../sha256.ts";
import { join } from "../../workers/path.ts";
import { GiniError } from "../errors.ts";
import type { Json } from "../../workers/protocol.ts";
import type { OpRecord } from "../ops/engine.ts";

/**
 * What it takes to run a transaction's pipeline again (`gini recover --resume`): the stages it
 * targeted, the context it was seeded with, and the directories and plugins it ran with.
 */
export interface Replay {
  targets: string[] | null;
  seeds: Record<string, Json>;
  requestDir: string | null;
  hostRoot: string;
  dirs: { config: string; data: string; cache: string };
  pluginDirs: string[];
  /** What `gini recover` does without a flag: finish a deployment, undo a host change. */
  recoverBy: "resume" | "rollback";
}

/** One journal record. */
export type JournalRecord =
  | { type: "begin"; id: string; command: string; at: string; replay?: Replay }
  /** An op about to run, with the ops that undo it. */
  | (
    & { type: "intent" }
    & Pick<
      OpRecord,
      "seq" | "stage" | "plugin" | "kind" | "args" | "description" | "inverse"
    >
  )
  /** `cancelled`: stopped part-way (a timeout, a signal): it may have changed something. */
  | { type: "done"; seq: number; ok: boolean; error?: string; cancelled?: boolean }
  | { type: "undone"; seq: number }
  /** A stage completed; `keys` are the context keys it wrote, restored on resume. */
  | { type: "checkpoint"; stage: string; keys: Record<string, Json> }
  /** `gini recover --resume` took the transaction over from here. */
  | { type: "resume"; at: string }
  /**
   * The run's automatic rollback could not undo every change: the transaction stays open and
   * `gini recover` rolls it back (never resumes it), retrying what failed.
   */
  | { type: "rollback-incomplete"; reason: string; failed: { seq: number; error: string }[] }
  | { type: "commit" }
  | { type: "abort"; reason: string };

/** A journal that cannot be trusted past a point. */
export class JournalCorruptError extends GiniError {
  constructor(file: string, line: number) {
    super(
      "JOURNAL_CORRUPT",
      `Cannot trust journal "${file}": the checksum of record ${line} does not match`,
      1,
      {
        hint:
          "A record in the middle was damaged; recover by hand from the records before it (gini journal show)",
      },
    );
  }
}

function checksum(body: string): string {
  return sha256Hex(body).slice(0, 16);
}

/** A line's JSON body when its checksum matches, else null (torn or damaged). */
function soundBody(line: string): string | null {
  const body = line.slice(17);
  return line[16] === " " && checksum(body) === line.slice(0, 16) ? body : null;
}

/** Appends records to one transaction's log. */
export class Journal {
  readonly id: string;
  readonly file: string;
  #handle: Deno.FsFile;
  /** The append in progress: concurrent stages' records are written one after another. */
  #tail: Promise<void> = Promise.resolve();

  private constructor(id: string, file: string, handle: Deno.FsFile) {
    this.id = id;
    this.file = file;
    this.#handle = handle;
  }

  /** Starts a transaction. */
  static async begin(stateDir: string, command: string, replay?: Replay): Promise<Journal> {
    const dir = join(stateDir, "journal");
    await Deno.mkdir(dir, { recursive: true });
    const id = `${new Date().toISOString().replace(/[:.]/g, "-")}-${
      crypto.randomUUID().slice(0, 8)
    }`;
    const file = join(dir, `${id}.wal`);
    const journal = new Journal(id, file, await Deno.open(file, { write: true, createNew: true }));
    await journal.append({
      type: "begin",
      id,
      command,
      at: new Date().toISOString(),
      ...(replay ? { replay } : {}),
    });
    return journal;
  }

  /** Reopens a transaction's log to append (recovery). */
  static async reopen(file: string): Promise<Journal> {
    const id = file.split("/").at(-1)!.replace(/\.wal$/, "");
    return new Journal(id, file, await Deno.open(file, { append: true }));
  }

  /**
   * Appends one record and makes it durable before returning. Appends are serialised: a record
   * is never interleaved with another, whichever stage asked first.
   */
  append(record: JournalRecord): Promise<void> {
    const body = JSON.stringify(record);
    const data = new TextEncoder().encode(`${checksum(body)} ${body}\n`);
    const write = async () => {
      let written = 0;
      while (written < data.byteLength) {
        written += await this.#handle.write(data.subarray(written));
      }
      await this.#handle.sync();
    };
    const next = this.#tail.then(write);
    this.#tail = next.catch(() => {});
    return next;
  }

  close(): void {
    this.#handle.close();
  }
}

/** The records of a log; a torn last line is dropped, a bad line before it is an error. */
export async function readJournal(
  file: string,
): Promise<{ records: JournalRecord[]; torn: boolean }> {
  const text = await Deno.readTextFile(file);
  const lines = text.split("\n");
  const complete = text.endsWith("\n");
  const records: JournalRecord[] = [];
  let torn = false;
  for (const [i, line] of lines.entries()) {
    if (line === "") continue;
    const last = i === lines.length - 1 || (i === lines.length - 2 && lines.at(-1) === "");
    const body = soundBody(line);
    if (body === null) {
      if (last && (!complete || i === lines.length - 1)) {
        torn = true;
        break;
      }
      throw new JournalCorruptError(file, i + 1);
    }
    records.push(JSON.parse(body) as JournalRecord);
  }
  return { records, torn };
}

/** A transaction as read back. */
export interface Transaction {
  id: string;
  file: string;
  command: string;
  at: string;
  state: "committed" | "aborted" | "incomplete";
  /** Ops that ran (done and ok) and are not undone yet, in order. */
  applied: Extract<JournalRecord, { type: "intent" }>[];
  /**
   * Ops that started but did not report: each may or may not have happened. Concurrent stages
   * can have several in flight at once.
   */
  inFlight: Extract<JournalRecord, { type: "intent" }>[];
  /** Completed stages and the context keys they wrote, in order. */
  checkpoints: Map<string, Record<string, Json>>;
  /** How to run it again; absent in logs of commands that cannot be resumed. */
  replay: Replay | undefined;
  /** The highest op sequence number used so far. */
  lastSeq: number;
  torn: boolean;
  /** The run failed and its rollback left changes in place: recover must roll it back. */
  rollbackIncomplete: boolean;
}

/** Reads one transaction. */
export async function loadTransaction(file: string): Promise<Transaction> {
  const { records, torn } = await readJournal(file);
  const begin = records.find((r) => r.type === "begin") as
    | Extract<JournalRecord, { type: "begin" }>
    | undefined;
  const intents = new Map<number, Extract<JournalRecord, { type: "intent" }>>();
  const done = new Map<number, boolean>();
  const undone = new Set<number>();
  const checkpoints = new Map<string, Record<string, Json>>();
  let state: Transaction["state"] = "incomplete";
  let rollbackIncomplete = false;
  for (const r of records) {
    if (r.type === "checkpoint") checkpoints.set(r.stage, r.keys);
    else if (r.type === "intent") intents.set(r.seq, r);
    // A cancelled op is as good as in flight: its inverse is safe whether or not it happened.
    else if (r.type === "done" && !r.cancelled) done.set(r.seq, r.ok);
    else if (r.type === "undone") undone.add(r.seq);
    else if (r.type === "commit") state = "committed";
    else if (r.type === "abort") state = "aborted";
    else if (r.type === "rollback-incomplete") rollbackIncomplete = true;
  }
  const applied = [...intents.values()].filter((i) =>
    done.get(i.seq) === true && !undone.has(i.seq)
  );
  const inFlight = [...intents.values()].filter((i) => !done.has(i.seq) && !undone.has(i.seq));
  return {
    id: begin?.id ?? file.split("/").at(-1)!.replace(/\.wal$/, ""),
    file,
    command: begin?.command ?? "unknown",
    at: begin?.at ?? "",
    state,
    applied,
    inFlight,
    checkpoints,
    replay: begin?.replay,
    lastSeq: Math.max(0, ...intents.keys()),
    torn,
    rollbackIncomplete,
  };
}

/** The transaction logs in the state directory, newest first. */
export function journalFiles(stateDir: string): string[] {
  const dir = join(stateDir, "journal");
  const files: string[] = [];
  try {
    // Synchronous: every command lists the journal, and each async call is a trip through the
    // event loop.
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.name.endsWith(".wal")) files.push(join(dir, entry.name));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return files.sort().reverse();
}

/**
 * Whether `tx` is a committed run of the command `path` (`vfio apply`, with any arguments) whose
 * changes are still in place: what an undo command reverses, and `journal prune` keeps.
 */
export function isRunInPlace(tx: Transaction, path: string): boolean {
  return tx.state === "committed" && tx.applied.length > 0 &&
    (tx.command === path || tx.command.startsWith(`${path} `));
}

/** Every transaction in the state directory, newest first. */
export async function listTransactions(stateDir: string): Promise<Transaction[]> {
  const result: Transaction[] = [];
  for (const file of journalFiles(stateDir)) result.push(await loadTransaction(file));
  return result;
}

/**
 * Whether a log ends with a sound `commit` or `abort` record, read from its last bytes only
 * (synchronously: every command asks this of every log). Anything else (a torn or damaged end,
 * another record) is left to a full read.
 */
function endsCleanly(file: string): boolean {
  const handle = Deno.openSync(file, { read: true });
  try {
    const size = handle.statSync().size;
    const length = Math.min(size, 4096);
    handle.seekSync(size - length, Deno.SeekMode.Start);
    const tail = new Uint8Array(length);
    let read = 0;
    while (read < length) {
      const n = handle.readSync(tail.subarray(read));
      if (n === null) break;
      read += n;
    }
    const text = new TextDecoder().decode(tail.subarray(0, read));
    if (!text.endsWith("\n")) return false;
    const body = soundBody(text.slice(0, -1).split("\n").at(-1)!);
    if (body === null) return false;
    const type = (JSON.parse(body) as JournalRecord).type;
    return type === "commit" || type === "abort";
  } finally {
    handle.close();
  }
}

/**
 * The transactions that did not end, newest first. Every start of Gini asks this, so ended logs
 * are recognised from their last record without reading them whole.
 */
export async function incompleteTransactions(stateDir: string): Promise<Transaction[]> {
  const result: Transaction[] = [];
  for (const file of journalFiles(stateDir)) {
    if (endsCleanly(file)) continue;
    const tx = await loadTransaction(file);
    if (tx.state === "incomplete") result.push(tx);
  }
  return result;
}

/** Strings longer than this are journaled as their length and hash (file contents). */
const INLINE_LIMIT = 16 * 1024;

/**
 * An op's arguments as journaled: long strings (the content of an `fs.write`) are replaced by
 * their length and sha256. Undoing never needs them (inverses are journaled whole) and what an
 * op produced is hashed in its `done` record, so the journal stays small.
 */
export function journaledArgs(value: Json): Json {
  if (typeof value === "string") {
    return value.length <= INLINE_LIMIT
      ? value
      : `<${value.length} characters, sha256 ${sha256Hex(value)}, not journaled>`;
  }
  if (Array.isArray(value)) return value.map(journaledArgs);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, journaledArgs(v)]));
  }
  return value;
}
