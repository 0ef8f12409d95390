/**
 * How an undo reads: what was (or would be) undone, what cannot be, what failed.
 *
 * @module
 */
import type { RollbackReport } from "../kernel/journal/recovery.ts";

/** The lines of a rollback report. */
export function renderUndo(r: RollbackReport, dryRun: boolean): string[] {
  return [
    ...r.undone.map((u) => `  ${dryRun ? "would undo" : "undid"} #${u.seq} ${u.description}`),
    ...r.irreversible.map((u) => `  ! cannot undo #${u.seq} ${u.description}`),
    ...r.failed.map((u) => `  ✗ #${u.seq} ${u.description}: ${u.error}`),
  ];
}
