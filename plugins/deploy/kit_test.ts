/**
 * deploy, tested with the kit: with no VM deployed, gini ls's stage lists none and changes
 * nothing; its dependencies resolve against Gini's core plugins and not without qemu-setup.
 */
import {
  assertDependenciesResolved,
  corePlugins,
  KitAssertionError,
  loadPlugin,
  test,
} from "../../workers/testing.ts";

const plugin = await loadPlugin(new URL(".", import.meta.url));

test("deploy:list lists no VM in an empty data directory and plans nothing", async () => {
  const run = await plugin.stage("list");
  run.assertSucceeded();
  run.assertWrote("deploy.vms", []);
  run.assertNoOp(/Would/);
});

test("deploy resolves against the core plugins, and not without qemu-setup", async () => {
  await assertDependenciesResolved(plugin, await corePlugins());
  try {
    await assertDependenciesResolved(plugin, []);
  } catch (error) {
    if (error instanceof KitAssertionError && error.message.includes('"qemu-setup"')) return;
    throw error;
  }
  throw new KitAssertionError("deploy resolved without qemu-setup");
});
