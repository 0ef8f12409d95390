/**
 * `history.append`: appends one sealed record to an event log (a VM's history), written and
 * fsynced in one `write`. A log is append-only: the inverse appends an "undone" record naming the
 * one it reverses, so a rolled-back run stays visible in the history; only a log the op started
 * is removed by its inverse.
 *
 * @module
 */
import { type Infer, json, obj, opt, str, zodLike } from "../../workers/shape.ts";
import { nextLine } from "../../workers/event_log.ts";
import { defineOp } from "./types.ts";

// A shape, not zod: every lifecycle command records its event (zod: 15-20 ms to load).
const HistoryAppendArgs = obj({
  path: str({ min: 1, pattern: /\.jsonl$/, what: "expected a .jsonl log" }),
  event: str({ pattern: /^[a-z][a-z0-9-]*$/, what: 'expected an event name like "started"' }),
  detail: opt(json),
}, { strict: true });
type HistoryAppendArgs = Infer<typeof HistoryAppendArgs>;

async function readOrEmpty(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  }
}

/**
 * Whether an "undone" record naming `detail` belongs in the log: the record it names is there and
 * not yet undone. The inverse of an op in flight at a crash runs whether or not the op wrote its
 * record, so it must not name a record that never was, nor undo one twice.
 */
function undoes(text: string, detail: unknown): boolean {
  const { event, seq } = (detail ?? {}) as { event?: string; seq?: number };
  const records = text.split("\n").filter((l) => l.trim()).map((l) =>
    JSON.parse(l) as { seq: number; event: string; detail: unknown }
  );
  return records.some((r) => r.seq === seq && r.event === event) &&
    !records.some((r) =>
      r.event === "undone" && (r.detail as { seq?: number } | null)?.seq === seq
    );
}

export const historyAppend = defineOp<HistoryAppendArgs>({
  kind: "history.append",
  schema: zodLike(HistoryAppendArgs),
  pathArgs: ["path"],
  describe: (a) => `Record "${a.event}" in "${a.path}"`,
  estimate: () => ({ bytes: 256, seconds: 0.001 }),
  permission: (a) => [{ grant: "write", path: a.path }],
  // The seq the record will get, so that its inverse names it.
  capture: async (a) => {
    const text = await readOrEmpty(a.path);
    return { seq: text.split("\n").filter((l) => l.trim()).length + 1, existed: text !== "" };
  },
  conflicts: () => [],
  async execute(a) {
    const text = await readOrEmpty(a.path);
    if (a.event === "undone" && !undoes(text, a.detail)) return { seq: 0, unchanged: true };
    const line = await nextLine(text, a.event, a.detail ?? null);
    const file = await Deno.open(a.path, { append: true, create: true, mode: 0o644 });
    try {
      const bytes = new TextEncoder().encode(line);
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    return { seq: (JSON.parse(line) as { seq: number }).seq };
  },
  simulate: (_a, before) => ({ seq: (before as { seq: number }).seq, simulated: true }),
  // A log this op started goes with it (a rolled-back deploy leaves nothing); a record added to
  // a log is answered by an "undone" record, since a log is append-only.
  inverse: (a, before) =>
    a.event === "undone"
      ? []
      : !(before as { existed: boolean }).existed
      ? [{ kind: "fs.remove", args: { path: a.path, missingOk: true } }]
      : [{
        kind: "history.append",
        args: {
          path: a.path,
          event: "undone",
          detail: { event: a.event, seq: (before as { seq: number }).seq },
        },
      }],
});
