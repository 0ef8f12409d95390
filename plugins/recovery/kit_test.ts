/**
 * recovery, tested with the kit: its post-stage hook asks for a checkpoint after a stage that
 * completed in a live run, and for none in a dry run or after a failed stage.
 */
import { KitAssertionError, loadPlugin, test } from "../../workers/testing.ts";

const plugin = await loadPlugin(new URL(".", import.meta.url));
const STAGE = "qemu-setup:define-cpu-ram";

test("recovery checkpoints a completed stage of a live run", async () => {
  const run = await plugin.hook("post-stage", STAGE, { live: true });
  run.assertSucceeded();
  const asked = JSON.stringify(run.requested);
  if (asked !== JSON.stringify([{ kind: "journal.checkpoint", args: { stage: STAGE } }])) {
    throw new KitAssertionError(`It asked for ${asked}`);
  }
});

test("recovery asks for no checkpoint in a dry run or after a failed stage", async () => {
  const dry = await plugin.hook("post-stage", STAGE);
  const failed = await plugin.hook("post-stage", STAGE, { live: true, error: "it broke" });
  for (const run of [dry, failed]) {
    run.assertSucceeded();
    if (run.requested.length) {
      throw new KitAssertionError(`${run.label} asked for ${JSON.stringify(run.requested)}`);
    }
  }
});
