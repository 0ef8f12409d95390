/**
 * `gini journal verify`: do the files committed transactions produced still hold what Gini wrote?
 * Transactions are replayed oldest first, so a file a later transaction replaced is expected with
 * its newer hash, and one a later transaction removed on purpose (`gini rm`) is not expected.
 * Files are hashed as they are read, never held in memory.
 *
 * @module
 */
import { hashFile } from "../ops/_fs.ts";
import { listTransactions, readJournal } from "./journal.ts";

/** One file that no longer holds what Gini wrote. */
export interface ChangedFile {
  id: string;
  path: string;
  expected: string;
  actual: string;
}

/** What verify found. */
export interface VerifyReport {
  checked: number;
  changed: ChangedFile[];
}

/** Checks every file committed transactions wrote and did not remove later. */
export async function verifyJournal(stateDir: string): Promise<VerifyReport> {
  const expected = new Map<string, { id: string; sha256: string }>();
  const transactions = (await listTransactions(stateDir)).reverse();
  for (const tx of transactions) {
    if (tx.state !== "committed") continue;
    const applied = new Set(tx.applied.map((op) => op.seq));
    const removals = new Map<number, string>();
    for (const op of tx.applied) {
      const path = (op.args as { path?: unknown }).path;
      if (op.kind === "fs.remove" && typeof path === "string") removals.set(op.seq, path);
    }
    const { records } = await readJournal(tx.file);
    for (const r of records) {
      if (r.type !== "done" || !r.ok || !applied.has(r.seq)) continue;
      const removed = removals.get(r.seq);
      if (removed !== undefined) {
        for (const path of [...expected.keys()]) {
          if (path === removed || path.startsWith(`${removed}/`)) expected.delete(path);
        }
        continue;
      }
      const result = (r as { result?: { path?: unknown; sha256?: unknown } }).result;
      if (typeof result?.path === "string" && typeof result.sha256 === "string") {
        expected.set(result.path, { id: tx.id, sha256: result.sha256 });
      }
    }
  }
  const changed: ChangedFile[] = [];
  for (const [path, { id, sha256 }] of expected) {
    // Streamed: the files are disk images of many GiB.
    const actual = await hashFile(path).then((h) => h.sha256, () => "missing");
    if (actual !== sha256) changed.push({ id, path, expected: sha256, actual });
  }
  return { checked: expected.size, changed };
}
