import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { runStages } from "../kernel/mod.ts";
import { loadFixtures, recordingUi, tempEnv } from "./_helpers.ts";

Deno.test("a plugin without read permission is denied /etc/hostname, and the kernel serves it no /proc read", async () => {
  const env = await tempEnv();
  const { result } = await runStages({
    env,
    loaded: await loadFixtures("reader_none"),
    ui: recordingUi(),
    dryRun: false,
  });
  assert(result.ok, result.error?.message);
  assertEquals(result.context["reader_none.result"], {
    direct: "denied: NotCapable",
    viaKernel: "denied: NotCapable",
    cpuinfo: "denied: PermissionDeniedError",
  });
});

Deno.test('a plugin granted read = ["/proc"] reads /proc/cpuinfo but not /etc/hostname, and cannot run programs', async () => {
  const env = await tempEnv();
  const { result } = await runStages({
    env,
    loaded: await loadFixtures("reader_proc"),
    ui: recordingUi(),
    dryRun: false,
  });
  assert(result.ok, result.error?.message);
  assertEquals(result.context["reader_proc.result"], {
    cpuinfoHasProcessor: true,
    hostnameDirect: "denied: NotCapable",
    hostnameViaKernel: "denied: NotCapable",
    run: "denied: NotCapable",
  });
});

Deno.test("Object.prototype.run = true in the kernel does not grant a plugin run", async () => {
  const env = await tempEnv();
  const proto = Object.prototype as unknown as Record<string, unknown>;
  proto.run = true;
  proto.write = true;
  try {
    const { result } = await runStages({
      env,
      loaded: await loadFixtures("reader_proc"),
      ui: recordingUi(),
      dryRun: false,
    });
    assert(result.ok, result.error?.message);
    assertEquals(
      (result.context["reader_proc.result"] as Record<string, unknown>).run,
      "denied: NotCapable",
    );
  } finally {
    delete proto.run;
    delete proto.write;
  }
});

Deno.test("a stage that never yields is terminated at its timeout while another plugin's stage completes", async () => {
  const env = await tempEnv();
  const { result } = await runStages({
    env,
    loaded: await loadFixtures("spinner", "steady"),
    ui: recordingUi(),
    dryRun: false,
  });
  assertEquals(result.ok, false);
  assertMatch(
    result.error!.message,
    /Stage "spinner:spin" of plugin "spinner" failed: "spinner:spin" did not finish within 1500 ms/,
  );
  const byId = Object.fromEntries(result.stages.map((s) => [s.id, s.status]));
  assertEquals(byId, { "spinner:spin": "failed", "steady:work": "done" });
  // The other stage finished; the run as a whole failed, so what it wrote was rolled back.
  assertEquals(
    await Deno.stat(join(env.dirs.data, "steady/done.txt")).then(() => true, () => false),
    false,
  );
});

Deno.test("malformed, oversized and __proto__-laden messages and Deno.exit do not crash or corrupt the kernel", async () => {
  const env = await tempEnv();
  const ui = recordingUi();
  const { result } = await runStages({
    env,
    loaded: await loadFixtures("hostile"),
    ui,
    dryRun: false,
    seeds: { "hostile.mode": "messages" },
  });
  assert(result.ok, result.error?.message);
  assertEquals(result.context["hostile.outcome"], {
    exit: "threw: Cannot use Deno.exit in a plugin: Gini's sandbox removes it",
  });
  assertEquals(({} as Record<string, unknown>).polluted, undefined);
  const warnings = ui.err.join("");
  assertStringIncludes(
    warnings,
    'Ignored a message from plugin "hostile": the message does not match the protocol',
  );
  assertStringIncludes(warnings, "is larger than");
  assertStringIncludes(warnings, 'holds the forbidden key "__proto__"');
  assertStringIncludes(warnings, "nested deeper than");
  assertStringIncludes(warnings, "request for unknown call 424242");
  assertEquals((await Deno.readTextFile("/etc/passwd")).length > 0, true);
});

Deno.test("a plugin calling Deno.exit fails its stage with a clear error", async () => {
  const env = await tempEnv();
  const { result } = await runStages({
    env,
    loaded: await loadFixtures("hostile"),
    ui: recordingUi(),
    dryRun: false,
    seeds: { "hostile.mode": "exit" },
  });
  assertEquals(result.ok, false);
  assertStringIncludes(
    result.error!.message,
    'Stage "hostile:attack" of plugin "hostile" failed: Cannot use Deno.exit in a plugin',
  );
});

Deno.test("a plugin flooding the kernel with messages is terminated", async () => {
  const env = await tempEnv();
  const { result } = await runStages({
    env,
    loaded: await loadFixtures("hostile"),
    ui: recordingUi(),
    dryRun: false,
    seeds: { "hostile.mode": "flood" },
  });
  assertEquals(result.ok, false);
  assertStringIncludes(result.error!.message, "flooded the kernel");
});
