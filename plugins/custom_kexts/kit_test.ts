/**
 * custom-kexts, tested with the kit: a macOS VM file that names no kexts adds none and plans no
 * copy; its dependency on opencore resolves against Gini's core plugins.
 */
import {
  assertDependenciesResolved,
  corePlugins,
  loadPlugin,
  test,
} from "../../workers/testing.ts";

const plugin = await loadPlugin(new URL(".", import.meta.url));
const qemuSetup = await loadPlugin(new URL("../qemu_setup/", import.meta.url));

test("custom-kexts:add-kexts adds nothing for a VM file that names no kexts", async () => {
  const loaded = await qemuSetup.stage("load-vm-config-toml", {
    vm: 'name = "mac"\nguest = "macos"\n\n[macos]\nversion = "sonoma"\n',
  });
  const run = await plugin.stage("add-kexts", {
    context: {
      "qemu_setup.config": loaded.assertWrote("qemu_setup.config"),
      "opencore.config": null,
    },
  });
  run.assertSucceeded();
  run.assertWrote("opencore.custom_kexts", { kexts: [], copies: [] });
  run.assertNoOp(/Would/);
});

test("custom-kexts resolves against the core plugins", async () => {
  await assertDependenciesResolved(plugin, await corePlugins());
});
