/**
 * `qmp`: one command to a running VM's QMP socket. `query-*` commands change
 * nothing and also run in a dry run.
 *
 * @module
 */
import { z } from "zod";
import type { Json } from "../../workers/protocol.ts";
import { qmpCommand } from "../host/qmp.ts";
import { defineOp } from "./types.ts";

const QmpArgs = z.strictObject({
  socket: z.string().min(1),
  command: z.string().regex(/^[a-z][a-z0-9_-]*$/),
  arguments: z.record(z.string(), z.json()).optional(),
  timeoutMs: z.number().int().positive().max(600_000).optional(),
  /** Succeed when the VM is not running (its socket refuses): used when undoing a launch. */
  ifRunning: z.boolean().optional(),
});
type QmpArgs = z.infer<typeof QmpArgs>;

export const qmpOp = defineOp<QmpArgs>({
  kind: "qmp",
  schema: QmpArgs as z.ZodType<QmpArgs>,
  pathArgs: ["socket"],
  describe: (a) => `Send QMP "${a.command}" to "${a.socket}"`,
  estimate: () => ({ bytes: 0, seconds: 0.1 }),
  permission: (a) => [{ grant: "write", path: a.socket }],
  readOnly: (a) => a.command.startsWith("query-"),
  capture: () => Promise.resolve(null),
  conflicts: () => [],
  async execute(a) {
    try {
      return await qmpCommand(a.socket, a.command, a.arguments, a.timeoutMs) as Json ?? null;
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
