/**
 * recovery: the policy half of resumable runs. After every stage of a live run that completed,
 * it asks the kernel for a checkpoint; a failed stage gets none, so resume reruns it after its
 * partial changes are rolled back.
 *
 * @module
 */
import { definePlugin } from "../../workers/sdk.ts";

export default definePlugin({
  hooks: {
    async postStage(info, ctx) {
      if (info.error !== undefined || ctx.dryRun) return;
      await ctx.op("journal.checkpoint", { stage: info.stage });
    },
  },
});
