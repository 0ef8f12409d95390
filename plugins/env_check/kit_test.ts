/**
 * env-check, tested with the kit: its gather stages on a fixture host tree (tests/fixtures/hosts)
 * read the host only within their grants, plan no op, and write keys valid against their
 * contracts.
 */
import { fileURLToPath } from "node:url";
import { KitAssertionError, loadPlugin, test } from "../../workers/testing.ts";

const plugin = await loadPlugin(new URL(".", import.meta.url));
const HOST = fileURLToPath(new URL("../../tests/fixtures/hosts/intel-nvidia", import.meta.url));

test("env-check:gather-cpu-info reads the fixture's CPU and changes nothing", async () => {
  const run = await plugin.stage("gather-cpu-info", { hostRoot: HOST });
  run.assertSucceeded();
  const value = run.assertWrote<{ cpu: { vendor: string; threads: number; flags: string[] } }>(
    "env_check.cpu",
  );
  if (
    value.cpu.vendor !== "intel" || value.cpu.threads !== 20 || !value.cpu.flags.includes("vmx")
  ) {
    throw new KitAssertionError(`env_check.cpu is ${JSON.stringify(value.cpu).slice(0, 200)}`);
  }
  run.assertNoOp(/Would (create|remove|write)/);
});

test("env-check:gather-os-info names the fixture's distribution", async () => {
  const run = await plugin.stage("gather-os-info", { hostRoot: HOST });
  run.assertSucceeded();
  const value = run.assertWrote<{ id: string; version: string }>("env_check.os");
  if (JSON.stringify(value).indexOf('"debian"') < 0) {
    throw new KitAssertionError(`env_check.os is ${JSON.stringify(value).slice(0, 200)}`);
  }
});
