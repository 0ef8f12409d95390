/**
 * `journal.checkpoint`: records that a stage completed, with the context keys it wrote, in the
 * transaction's journal; `gini recover --resume` restarts the pipeline after the checkpointed
 * stages with their keys restored. Bookkeeping: it changes nothing on the host, is never shown
 * in a plan, and does nothing in a dry run.
 *
 * @module
 */
import { type Infer, obj, str, zodLike } from "../../workers/shape.ts";
import { defineOp } from "./types.ts";

const CheckpointArgs = obj({
  /** A stage id (`plugin:stage`) that completed in this run. */
  stage: str({ pattern: /^[a-z0-9-]+:[a-z0-9-]+$/, what: 'expected a stage id like "deploy:up"' }),
}, { strict: true });
type CheckpointArgs = Infer<typeof CheckpointArgs>;

export const journalCheckpoint = defineOp<CheckpointArgs>({
  kind: "journal.checkpoint",
  schema: zodLike(CheckpointArgs),
  pathArgs: [],
  bookkeeping: true,
  describe: (a) => `Checkpoint stage "${a.stage}"`,
  estimate: () => ({ bytes: 0, seconds: 0 }),
  permission: () => [{ grant: "checkpoint" }],
  capture: () => Promise.resolve(null),
  conflicts: () => [],
  execute: async (a, env) =>
    env.checkpoint ? await env.checkpoint(a.stage) : { stage: a.stage, saved: false },
  simulate: (a) => ({ stage: a.stage, saved: false }),
  inverse: () => [],
});
