import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { renderReport, runStages } from "../kernel/mod.ts";
import { discoverPlugins } from "../kernel/plugins/discover.ts";
import { resolvePlugins } from "../kernel/plugins/resolve.ts";
import { recordingUi, REPO, snapshotTree, tempEnv } from "./_helpers.ts";

async function loadExample() {
  const discovery = await discoverPlugins([{
    dir: join(REPO, "plugins/examples/compat_check"),
    origin: "extra",
  }]);
  return resolvePlugins(discovery.manifests, discovery.errors);
}

Deno.test("a dry run changes nothing on disk and plans exactly the ops a live run executes", async () => {
  const env = await tempEnv();
  await Deno.mkdir(env.dirs.data, { recursive: true });
  await Deno.writeTextFile(join(env.dirs.data, "keep.txt"), "untouched\n");
  const before = await snapshotTree(env.root);

  const dry = await runStages({
    env,
    loaded: await loadExample(),
    ui: recordingUi(),
    dryRun: true,
  });
  assert(dry.result.ok, dry.result.error?.message);
  assertEquals(await snapshotTree(env.root), before, "the dry run changed nothing");

  const live = await runStages({
    env,
    loaded: await loadExample(),
    ui: recordingUi(),
    dryRun: false,
  });
  assert(live.result.ok, live.result.error?.message);
  const shape = (records: typeof dry.report.stages) =>
    records.flatMap((s) => s.ops.map((op) => ({ stage: op.stage, kind: op.kind, args: op.args })));
  assertEquals(shape(live.report.stages), shape(dry.report.stages));
  assertEquals(live.report.stages.flatMap((s) => s.ops.map((o) => o.status)), ["done", "done"]);
  assertEquals(
    await Deno.readTextFile(join(env.dirs.data, "reports/compat.txt")),
    (dry.report.stages[0]!.ops[1]!.args as { content: string }).content,
  );

  const text = renderReport(dry.report);
  assertStringIncludes(text, "compat-check:write-report\n");
  assertStringIncludes(text, `  Would create directory "${join(env.dirs.data, "reports")}"`);
  assertStringIncludes(text, `  Would create file "${join(env.dirs.data, "reports/compat.txt")}"`);
  assertStringIncludes(text, "  operations:     2\n");
  assertStringIncludes(text, "  conflicts:      0");
});
