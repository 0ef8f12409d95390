/**
 * `gini journal prune`: removes the logs of old, ended transactions and the backup blobs no
 * remaining log needs. What recovery or an undo command (`gini vfio undo`) may still need is
 * always kept.
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import { isRunInPlace, journalFiles, loadTransaction, type Transaction } from "./journal.ts";

/** Blobs younger than this are left alone: a run starting now may be about to use one. */
const BLOB_GRACE_MS = 60 * 60 * 1000;

/** What a prune removed (or, in a dry run, would remove) and why the rest stays. */
export interface PruneReport {
  dryRun: boolean;
  removed: { id: string; command: string; state: string; bytes: number }[];
  kept: { incomplete: number; inPlace: number; recent: number };
  blobs: { removed: number; bytes: number; kept: number };
}

/**
 * A committed run of an undoable command (`vfio apply`) whose changes are still in place: its
 * undo command (`gini vfio undo`) reads it.
 */
function inPlace(tx: Transaction, undoable: string[]): boolean {
  return undoable.some((path) => isRunInPlace(tx, path));
}

/** The backup blobs a transaction's undo could still need. */
function blobsNeeded(tx: Transaction): string[] {
  return [...tx.applied, ...tx.inFlight].flatMap((intent) =>
    (intent.inverse ?? []).filter((op) => op.kind === "fs.restore")
      .map((op) => (op.args as { sha256: string }).sha256)
  );
}

async function sizeOf(path: string): Promise<number> {
  return await Deno.stat(path).then((s) => s.size, () => 0);
}

/**
 * Keeps incomplete transactions, runs of `undoable` commands still in place, and the newest `keep` other
 * ended transactions; removes the other logs, then every blob no kept log refers to.
 */
export async function pruneJournal(
  stateDir: string,
  options: { keep: number; dryRun: boolean; now?: number; undoable?: string[] },
): Promise<PruneReport> {
  const report: PruneReport = {
    dryRun: options.dryRun,
    removed: [],
    kept: { incomplete: 0, inPlace: 0, recent: 0 },
    blobs: { removed: 0, bytes: 0, kept: 0 },
  };
  const needed = new Set<string>();
  // One log at a time: an old log may hold megabytes of arguments.
  for (const file of journalFiles(stateDir)) {
    const tx = await loadTransaction(file);
    if (tx.state === "incomplete") report.kept.incomplete++;
    else if (inPlace(tx, options.undoable ?? [])) report.kept.inPlace++;
    else if (report.kept.recent < options.keep) report.kept.recent++;
    else {
      report.removed.push({
        id: tx.id,
        command: tx.command,
        state: tx.state,
        bytes: await sizeOf(tx.file),
      });
      if (!options.dryRun) await Deno.remove(tx.file);
      continue;
    }
    for (const sha256 of blobsNeeded(tx)) needed.add(sha256);
  }
  const dir = join(stateDir, "journal", "blobs");
  const now = options.now ?? Date.now();
  try {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      const info = await Deno.stat(path);
      const fresh = now - (info.mtime?.getTime() ?? now) < BLOB_GRACE_MS;
      if (needed.has(entry.name) || fresh) {
        report.blobs.kept++;
        continue;
      }
      report.blobs.removed++;
      report.blobs.bytes += info.size;
      if (!options.dryRun) await Deno.remove(path);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return report;
}
