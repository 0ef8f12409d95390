import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { runStages } from "../kernel/mod.ts";
import { listTransactions, readJournal } from "../kernel/journal/journal.ts";
import { loadFixtures, recordingUi, tempEnv } from "./_helpers.ts";

Deno.test("runPipeline() orders stages by the keys they read, runs hooks around each, and delivers events across workers", async () => {
  const env = await tempEnv();
  const { result } = await runStages({
    env,
    loaded: await loadFixtures("observer", "greeter"),
    ui: recordingUi(),
    dryRun: false,
    seeds: { "greeter.mode": "normal" },
  });
  assert(result.ok, result.error?.message);
  // Reported in the order they ran: "second" reads what "first" writes.
  assertEquals(result.stages.map((s) => [s.id, s.status]), [
    ["greeter:first", "done"],
    ["greeter:second", "done"],
  ]);
  assertEquals(result.context["greeter.replies"], [{ echoed: { n: 2 } }]);
  assertEquals(
    await Deno.readTextFile(join(env.dirs.data, "observer/log.txt")),
    [
      "pre greeter:first",
      "post greeter:first",
      "completed greeter:first",
      "pre greeter:second",
      "greeted 2",
      "post greeter:second",
      "completed greeter:second",
      "",
    ].join("\n"),
  );
  // Ops of event handlers belong to the stage the event came from: a resume redoes them with it.
  const [tx] = await listTransactions(env.dirs.state);
  const { records } = await readJournal(tx!.file);
  const stages = records.flatMap((r) => r.type === "intent" ? [r.stage] : []);
  assertEquals(new Set(stages), new Set(["greeter:first", "greeter:second"]));
});

Deno.test("runPipeline() refuses a value that breaks its key's contract", async () => {
  const env = await tempEnv();
  const { result } = await runStages({
    env,
    loaded: await loadFixtures("greeter"),
    ui: recordingUi(),
    dryRun: false,
    seeds: { "greeter.mode": "break-contract" },
  });
  assertEquals(result.ok, false);
  assertStringIncludes(
    result.error!.message,
    `its value for "greeter.first" breaks the key's contract at "n"`,
  );
  assertEquals(result.stages.find((s) => s.id === "greeter:second")?.status, "skipped");
});

Deno.test("a preflight veto stops the run before any stage, with the plugin's reason", async () => {
  const env = await tempEnv();
  let error: unknown;
  try {
    await runStages({
      env,
      loaded: await loadFixtures("vetoer"),
      ui: recordingUi(),
      dryRun: false,
    });
  } catch (e) {
    error = e;
  }
  assertEquals(
    (error as Error).message,
    'Cannot start: plugin "vetoer" refused in its preflight: the host has no frobnicator',
  );
});

Deno.test("a stage whose manifest's when does not match the VM file is skipped without starting its plugin; its keys are null", async () => {
  const run = async (text: string, fixtures = ["picky"]) =>
    await runStages({
      env: await tempEnv(),
      loaded: await loadFixtures(...fixtures),
      ui: recordingUi(),
      dryRun: true,
      seeds: { "session.user_vm_request": { file: "/vm.toml", text } },
      targets: ["picky:mac-only"],
    });
  // A Linux VM file: nothing of picky's starts (its preflight would refuse the run).
  const { result } = await run('name = "box"\n[linux]\nimage = "debian-12"\n');
  assert(result.ok, result.error?.message);
  assertEquals(result.stages.map((s) => [s.id, s.status, s.error, s.notApplicable]), [[
    "picky:mac-only",
    "skipped",
    "does not apply: the VM file has no [macos]",
    true,
  ]]);
  assertEquals(result.context["picky.mac"], null);
  // A [macos] table with another guest does not apply either.
  const other = await run('name = "box"\nguest = "linux"\n[macos]\nversion = "sonoma"\n');
  assertEquals(
    other.result.stages[0]!.error,
    'does not apply: the VM\'s guest is "linux", not macos',
  );
  // A macOS VM file: the plugin starts, and says so.
  let error: unknown;
  try {
    await run('name = "mac"\nguest = "macos"\n[macos]\nversion = "sonoma"\n');
  } catch (e) {
    error = e;
  }
  assertStringIncludes(String(error), "picky was started");
});

Deno.test("a stage after one that does not apply runs, and reads its key as null", async () => {
  const { result } = await runStages({
    env: await tempEnv(),
    loaded: await loadFixtures("picky", "picky_reader"),
    ui: recordingUi(),
    dryRun: true,
    seeds: { "session.user_vm_request": { file: "/vm.toml", text: 'name = "box"\n' } },
    targets: ["picky-reader:read"],
  });
  assert(result.ok, result.error?.message);
  assertEquals(result.stages.map((s) => [s.id, s.status]), [
    ["picky-reader:read", "done"],
    ["picky:mac-only", "skipped"],
  ]);
  assertEquals(result.context["picky_reader.saw"], { mac: null });
});
