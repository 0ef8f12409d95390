/**
 * opencore, tested with the kit: the macOS release table is a key valid against its contract,
 * and make-vm-file plans the VM file gini create-vm writes.
 */
import { KitAssertionError, loadPlugin, test } from "../../workers/testing.ts";

const plugin = await loadPlugin(new URL(".", import.meta.url));

test("opencore:list-releases writes the release table, sonoma included", async () => {
  const run = await plugin.stage("list-releases");
  run.assertSucceeded();
  const releases = run.assertWrote<{ name: string; boardId: string }[]>("opencore.releases");
  if (!releases.some((r) => r.name === "sonoma")) {
    throw new KitAssertionError(`The releases are ${releases.map((r) => r.name).join(", ")}`);
  }
  run.assertNoOp(/Would/);
});
