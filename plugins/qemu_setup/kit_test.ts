/**
 * qemu-setup, tested with the kit: a VM file becomes qemu_setup.config valid against its
 * contract, with defaults filled in; a bad value fails naming the key and the line.
 */
import { KitAssertionError, loadPlugin, test } from "../../workers/testing.ts";

const plugin = await loadPlugin(new URL(".", import.meta.url));
const VM = await Deno.readTextFile(new URL("../../examples/headless-linux.toml", import.meta.url));

test("qemu-setup:load-vm-config-toml reads the example VM file and fills in defaults", async () => {
  const run = await plugin.stage("load-vm-config-toml", { vm: VM });
  run.assertSucceeded();
  const config = run.assertWrote<{ name: string; machine: string; cpu: { cores: number } }>(
    "qemu_setup.config",
  );
  if (config.name !== "headless-linux" || config.machine !== "q35" || config.cpu.cores !== 2) {
    throw new KitAssertionError(`qemu_setup.config is ${JSON.stringify(config).slice(0, 300)}`);
  }
});

test("qemu-setup:load-vm-config-toml refuses memory given as a string, naming the key", async () => {
  const run = await plugin.stage("load-vm-config-toml", { vm: 'name = "web"\nmemory = "2G"\n' });
  run.assertFailed('Cannot use "memory"');
  if (run.error?.code !== "CONFIG_INVALID" || !run.error.hint?.includes("line 2")) {
    throw new KitAssertionError(`The error is ${JSON.stringify(run.error)}`);
  }
});
