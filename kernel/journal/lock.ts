/**
 * One owner per state folder: a live transaction holds `<state>/lock`, a small JSON file naming
 * the process (pid and its start time, so a reused pid is not mistaken for the owner), the
 * command and the transaction. A lock whose process is gone is stale (a crash) and is taken over.
 * Re-entrant within one process: `gini recover --resume` rolls back, then runs, under one lock.
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import { GiniError } from "../errors.ts";

/** Who holds a state folder. */
export interface LockOwner {
  pid: number;
  /** The owner's start time in clock ticks since boot (/proc/PID/stat field 22). */
  startTicks: number;
  command: string;
  /** The transaction it is running, once begun. */
  tx: string | null;
  at: string;
}

/** Another live gini holds the state folder. */
export class StateBusyError extends GiniError {
  readonly owner: LockOwner;
  constructor(owner: LockOwner, wanted: string) {
    super(
      "STATE_BUSY",
      `Cannot ${wanted}: gini (pid ${owner.pid}) is running "${owner.command}"${
        owner.tx ? ` (transaction ${owner.tx})` : ""
      } since ${owner.at}`,
      1,
      {
        // Not "stop it": a healthy run must not be killed (and rolled back) to make room.
        hint: "One gini changes this host at a time: run this again once that one has finished",
      },
    );
    this.owner = owner;
  }
}

/** A process's start time in ticks, or null when it does not exist. */
function startTicks(pid: number): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) may hold spaces and parentheses: count from the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]);
  } catch {
    return null;
  }
}

function lockFile(stateDir: string): string {
  return join(stateDir, "lock");
}

/** The owner of a lock file if that process is still alive (the same one: pid and start time). */
function liveOwner(text: string): LockOwner | null {
  let owner: LockOwner;
  try {
    owner = JSON.parse(text) as LockOwner;
  } catch {
    return null; // torn by a crash while it was being written: not held
  }
  return startTicks(owner.pid) === owner.startTicks ? owner : null;
}

/** The live process holding the state folder, if any (this one included). */
export function stateOwner(stateDir: string): LockOwner | null {
  try {
    return liveOwner(Deno.readTextFileSync(lockFile(stateDir)));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** The lock this process holds, by state folder, with how many holders share it. */
const held = new Map<string, { owner: LockOwner; count: number }>();

/** A held state lock; `release()` once done. */
export interface StateLock {
  /** Records which transaction the lock covers (shown to other processes). */
  setTransaction(id: string): void;
  release(): void;
}

/**
 * Takes the state folder for `command`, or throws {@linkcode StateBusyError} naming the live
 * process that holds it. A lock left by a dead process is taken over.
 */
export function lockState(stateDir: string, command: string): StateLock {
  const file = lockFile(stateDir);
  const mine = held.get(file);
  if (mine) {
    mine.count++;
    return handle(file, mine);
  }
  Deno.mkdirSync(stateDir, { recursive: true });
  const owner: LockOwner = {
    pid: Deno.pid,
    startTicks: startTicks(Deno.pid) ?? 0,
    command,
    tx: null,
    at: new Date().toISOString(),
  };
  // Written aside, then linked into place: link() fails if the lock exists, so only one wins.
  const temp = `${file}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}`;
  Deno.writeTextFileSync(temp, JSON.stringify(owner));
  try {
    for (let attempt = 0;; attempt++) {
      try {
        Deno.linkSync(temp, file);
        break;
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists) || attempt >= 3) throw error;
      }
      const text = (() => {
        try {
          return Deno.readTextFileSync(file);
        } catch {
          return null; // released meanwhile: try again
        }
      })();
      if (text === null) continue;
      const live = liveOwner(text);
      if (live) throw new StateBusyError(live, command);
      // Stale: its owner crashed. Remove it only if it is still the one just read.
      try {
        if (Deno.readTextFileSync(file) === text) Deno.removeSync(file);
      } catch { /* gone already */ }
    }
  } finally {
    Deno.removeSync(temp);
  }
  const entry = { owner, count: 1 };
  held.set(file, entry);
  return handle(file, entry);
}

function handle(file: string, entry: { owner: LockOwner; count: number }): StateLock {
  let released = false;
  return {
    setTransaction(id) {
      entry.owner.tx = id;
      const temp = `${file}.${Deno.pid}.tx`;
      Deno.writeTextFileSync(temp, JSON.stringify(entry.owner));
      Deno.renameSync(temp, file);
    },
    release() {
      if (released) return;
      released = true;
      if (--entry.count > 0) return;
      held.delete(file);
      try {
        Deno.removeSync(file);
      } catch { /* removed by hand */ }
    },
  };
}
