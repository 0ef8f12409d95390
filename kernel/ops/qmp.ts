/**
 * `qmp`: one command to a running VM's QMP socket, or with `queries`, more `query-*` commands
 * after it on the same connection (the result is then the list of results). `query-*` commands
 * change nothing and also run in a dry run.
 *
 * @module
 */
import {
  arr,
  bool,
  type Infer,
  json,
  num,
  obj,
  opt,
  rec,
  str,
  zodLike,
} from "../../workers/shape.ts";
import type { Json } from "../../workers/protocol.ts";
import { qmpCommands } from "../host/qmp.ts";
import { defineOp } from "./types.ts";

// A shape, not zod: every command about a running VM asks QMP, and zod costs a run 15-20 ms.
const QmpArgs = obj({
  socket: str({ min: 1 }),
  command: str({
    pattern: /^[a-z][a-z0-9_-]*$/,
    what: 'expected a QMP command like "query-status"',
  }),
  arguments: opt(rec(json)),
  /** Queries sent after `command` on the same connection (with it, `command` is a query too). */
  queries: opt(
    arr(str({ pattern: /^query-[a-z0-9-]+$/, what: 'expected a query like "query-block"' }), {
      max: 16,
    }),
  ),
  timeoutMs: opt(num({ int: true, min: 1, max: 600_000 })),
  /** Succeed when the VM is not running (its socket refuses): used when undoing a launch. */
  ifRunning: opt(bool()),
}, { strict: true });
type QmpArgs = Infer<typeof QmpArgs>;

export const qmpOp = defineOp<QmpArgs>({
  kind: "qmp",
  schema: zodLike(QmpArgs),
  pathArgs: ["socket"],
  describe: (a) =>
    `Send QMP ${
      [a.command, ...(a.queries ?? [])].map((c) => `"${c}"`).join(", ")
    } to "${a.socket}"`,
  estimate: () => ({ bytes: 0, seconds: 0.1 }),
  permission: (a) => [{ grant: "write", path: a.socket }],
  readOnly: (a) => a.command.startsWith("query-"),
  capture: () => Promise.resolve(null),
  conflicts: () => [],
  async execute(a) {
    if (a.queries && !a.command.startsWith("query-")) {
      throw new TypeError(`QMP "${a.command}" cannot lead queries: only a query-* command can`);
    }
    const commands = [
      { command: a.command, args: a.arguments },
      ...(a.queries ?? []).map((command) => ({ command })),
    ];
    try {
      const results = await qmpCommands(a.socket, commands, a.timeoutMs) as Json[];
      return a.queries ? results.map((r) => r ?? null) : results[0] ?? null;
    } catch (error) {
      const gone = error instanceof Deno.errors.NotFound ||
        error instanceof Deno.errors.ConnectionRefused;
      if (a.ifRunning && gone) return { notRunning: true };
      throw error;
    }
  },
  simulate: () => ({ simulated: true }),
  inverse: (a) => a.command.startsWith("query-") ? [] : null,
});
