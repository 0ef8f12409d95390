/**
 * linux-setup, tested with the kit: the catalogue and a VM file's [linux] table become keys valid
 * against their contracts, and a bad [linux] table fails naming the key.
 */
import { KitAssertionError, loadPlugin, test } from "../../workers/testing.ts";

const plugin = await loadPlugin(new URL(".", import.meta.url));
const VM = await Deno.readTextFile(new URL("../../examples/headless-linux.toml", import.meta.url));

test("linux-setup:list-images writes the catalogue with debian-12 in it", async () => {
  const run = await plugin.stage("list-images");
  run.assertSucceeded();
  const images = run.assertWrote<{ name: string }[]>("linux_setup.catalogue");
  if (!images.some((i) => i.name === "debian-12")) {
    throw new KitAssertionError(`The catalogue lists ${images.map((i) => i.name).join(", ")}`);
  }
});

test("linux-setup:load-config-toml reads the example VM file's [linux] table", async () => {
  const run = await plugin.stage("load-config-toml", { vm: VM });
  run.assertSucceeded();
  const config = run.assertWrote<{ name: string; linux: { image: string; packages: string[] } }>(
    "linux_setup.config",
  );
  if (config.linux.image !== "debian-12" || !config.linux.packages.includes("qemu-guest-agent")) {
    throw new KitAssertionError(`linux_setup.config is ${JSON.stringify(config)}`);
  }
});

test("linux-setup:load-config-toml refuses packages given as a string, naming the key", async () => {
  const run = await plugin.stage("load-config-toml", {
    vm: VM.replace('packages = ["qemu-guest-agent"]', 'packages = "qemu-guest-agent"'),
  });
  run.assertFailed("linux.packages");
});
