/**
 * An append-only event log, one JSON record per line, each sealed with the sha256 of the record
 * before it and its own fields, so a line changed, removed or reordered behind Gini's back is
 * found (`verifyLog`). A VM's history (`<data>/vms/NAME/history.jsonl`) is one: the kernel's
 * `history.append` op seals and appends, and plugins read it back with `verifyLog`.
 *
 * @module
 */
import type { Json } from "./protocol.ts";

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** One record as it is stored. */
export interface LogRecord {
  /** 1, 2, 3… in order. */
  seq: number;
  /** ISO time it was appended. */
  at: string;
  event: string;
  detail: Json;
  /** `sha256` of the previous record ("" for the first). */
  prev: string;
  /** sha256 of `prev` and the record's other fields. */
  sha256: string;
}

/** The hex digest that seals a record's fields after `prev`. */
export function sealOf(record: Omit<LogRecord, "sha256">): Promise<string> {
  const { seq, at, event, detail, prev } = record;
  return sha256Hex(`${prev}\n${JSON.stringify([seq, at, event, detail])}`);
}

/** The next record after the log's text `text`, sealed, as the line to append (with "\n"). */
export async function nextLine(
  text: string,
  event: string,
  detail: Json,
  at = new Date().toISOString(),
): Promise<string> {
  const lines = text.split("\n").filter((l) => l.trim());
  const last = lines.length ? JSON.parse(lines.at(-1)!) as LogRecord : undefined;
  const record = { seq: (last?.seq ?? 0) + 1, at, event, detail, prev: last?.sha256 ?? "" };
  return JSON.stringify({ ...record, sha256: await sealOf(record) }) + "\n";
}

/** A log read back: its records, and where the chain breaks (null when it holds). */
export interface VerifiedLog {
  records: LogRecord[];
  broken: { line: number; reason: string } | null;
}

/** Reads and checks a log: records up to the first that does not chain or seal. */
export async function verifyLog(text: string): Promise<VerifiedLog> {
  const records: LogRecord[] = [];
  const parsed = text.split("\n").map((line) => {
    if (!line.trim()) return undefined;
    try {
      return JSON.parse(line) as LogRecord;
    } catch {
      return null;
    }
  });
  // Every seal at once (each needs only its own record): `gini status` checks the whole history,
  // and one digest after another is a trip through the event loop each.
  const seals = await Promise.all(parsed.map((r) => r ? sealOf(r) : undefined));
  let prev = "";
  for (const [i, record] of parsed.entries()) {
    if (record === undefined) continue;
    const broken = (reason: string) => ({ records, broken: { line: i + 1, reason } });
    if (record === null) return broken("not JSON (a write cut short, or an edit)");
    if (record.prev !== prev || record.seq !== records.length + 1) {
      return broken("does not follow the record before it (a line removed or reordered)");
    }
    if (record.sha256 !== seals[i]) {
      return broken("its checksum does not match its content (edited)");
    }
    records.push(record);
    prev = record.sha256;
  }
  return { records, broken: null };
}
