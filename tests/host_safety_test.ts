/**
 * The kernel owns its transactions: a rollback that fails part-way is not forgotten, two gini
 * processes do not race over one state folder, and signals stop a run the kernel's way whatever
 * plugins registered. Real `gini` processes; evidence from outside them (the tree, exit codes).
 *
 * @module
 */
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { approvedPlan, loadPlugins, PlanChangedError, runStages } from "../kernel/mod.ts";
import { listTransactions } from "../kernel/journal/journal.ts";
import {
  FIXTURE_PLUGINS,
  processesWith,
  recordingUi,
  REPO,
  runGini,
  sh,
  snapshotTree,
  spawnGini,
  tempEnv,
} from "./_helpers.ts";

const WAITER = ["--plugin-dir", join(FIXTURE_PLUGINS, "waiter")];

async function until(what: string, check: () => Promise<boolean>, ms = 60_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const exists = (path: string) => () => Deno.stat(path).then(() => true, () => false);

Deno.test("a rollback that fails part-way leaves an open transaction that gini recover completes", async () => {
  const { root } = await tempEnv();
  const data = join(root, ".local/share/gini");
  await Deno.mkdir(data, { recursive: true });
  const before = await snapshotTree(root);
  const { output } = await spawnGini(root, [...WAITER, "run", "waiter:work"]);
  const a = join(data, "waiter/a.txt");
  await until("the plugin made its files", exists(join(data, "waiter/b.txt")));
  // Immutable, even to root: the rollback cannot remove it until the flag is cleared.
  await sh("chattr", "+i", a);
  try {
    await Deno.writeTextFile(join(data, "waiter-go"), "fail\n");
    const failed = await output;
    assertEquals(failed.code, 1, failed.stderr);
    assertStringIncludes(failed.stderr, "2 change(s) could not be undone and are still in place");
    assertStringIncludes(failed.stderr, 'a.txt" (6 B): Operation not permitted');
    assertStringIncludes(failed.stderr, "it still holds");
    assertStringIncludes(failed.stderr, 'run "gini recover" to finish undoing them');
    const [tx] = JSON.parse((await runGini(root, ["journal", "list", "--json"])).stdout);
    assertEquals(tx.state, "incomplete", "the transaction is not closed");
    const warned = await runGini(root, ["ls"]);
    assertStringIncludes(warned.stderr, "could not be fully undone");
    // Still immutable: recover fails again, says why, and keeps the transaction open.
    const again = await runGini(root, ["recover"]);
    assertEquals(again.code, 1, again.stderr + again.stdout);
    assertStringIncludes(again.stdout, "Operation not permitted");
  } finally {
    await sh("chattr", "-i", a);
  }
  await Deno.remove(join(data, "waiter-go"));
  const recovered = await runGini(root, ["recover"]);
  assertEquals(recovered.code, 0, recovered.stderr + recovered.stdout);
  assertStringIncludes(recovered.stdout, "Rolled back");
  assertEquals(await snapshotTree(root), before, "the tree is as it was before the run");
  assertEquals((await runGini(root, ["recover"])).stdout.trim(), "Nothing to recover");
});

Deno.test("while one gini changes the host, a second one's recover is refused and names it", async () => {
  const { root } = await tempEnv();
  const data = join(root, ".local/share/gini");
  await Deno.mkdir(data, { recursive: true });
  const { child, output } = await spawnGini(root, [...WAITER, "run", "waiter:work"]);
  await until("the plugin made its files", exists(join(data, "waiter/b.txt")));

  const recover = await runGini(root, ["recover"]);
  assertEquals(recover.code, 1, recover.stderr);
  assertStringIncludes(recover.stderr, `gini (pid ${child.pid}) is running "run waiter:work"`);
  const dry = await runGini(root, ["recover", "--dry-run"]);
  assertEquals(dry.code, 0, dry.stderr);
  assertStringIncludes(dry.stderr, `gini pid ${child.pid} is running it now`);
  assertEquals(dry.stdout.trim(), "Nothing to recover");
  const ls = await runGini(root, ["ls"]);
  assertStringIncludes(ls.stderr, `In progress in another process: run waiter:work`);
  assert(!ls.stderr.includes("was interrupted"), ls.stderr);
  // A second live run is refused too, before it changes anything.
  const second = await runGini(root, [...WAITER, "run", "waiter:work"]);
  assertEquals(second.code, 1, second.stderr);
  assertStringIncludes(second.stderr, `gini (pid ${child.pid})`);

  await Deno.writeTextFile(join(data, "waiter-go"), "ok\n");
  const done = await output;
  assertEquals(done.code, 0, done.stderr);
  assertEquals(await Deno.readTextFile(join(data, "waiter/c.txt")), "third\n");
  const [tx] = JSON.parse((await runGini(root, ["journal", "list", "--json"])).stdout);
  assertEquals(tx.state, "committed");
  assertEquals(tx.changes, 4, "the refused run journaled nothing into it");
  await assertGone(join(root, ".local/state/gini/lock"));
});

Deno.test("a lock left by a crashed gini is taken over, and its transaction recovered", async () => {
  const { root } = await tempEnv();
  const data = join(root, ".local/share/gini");
  await Deno.mkdir(data, { recursive: true });
  const before = await snapshotTree(root);
  const { child, output } = await spawnGini(root, [...WAITER, "run", "waiter:work"]);
  await until("the plugin made its files", exists(join(data, "waiter/b.txt")));
  child.kill("SIGKILL");
  assertEquals((await output).code, 137);
  const lock = join(root, ".local/state/gini/lock");
  assert(await exists(lock)(), "the dead process's lock is still there");
  const ls = await runGini(root, ["ls"]);
  assertStringIncludes(ls.stderr, "An operation was interrupted: run waiter:work");
  const recovered = await runGini(root, ["recover"]);
  assertEquals(recovered.code, 0, recovered.stderr + recovered.stdout);
  assertEquals(await snapshotTree(root), before);
  await assertGone(lock);
});

async function assertGone(path: string) {
  assert(!(await exists(path)()), `${path} is gone`);
}

Deno.test("a confirmed change runs only the approved plan: a host changed in between is refused, and nothing stays changed", async () => {
  const root = await Deno.makeTempDir({ prefix: "gini-approved-" });
  await sh("cp", "-a", `${join(REPO, "tests/fixtures/distros/debian-grub")}/.`, root);
  const env = await tempEnv(root);
  const options = {
    env,
    loaded: await loadPlugins(env, []),
    ui: recordingUi(),
    targets: ["vfio:configure"],
    seeds: {
      "session.command": {
        plugin: "vfio",
        path: "vfio apply",
        args: {},
        flags: { device: ["0000:01:00.0"], force: false, "bind-now": false },
        cwd: root,
      },
    },
    command: "vfio apply 0000:01:00.0",
    recoverBy: "rollback" as const,
  };
  const plan = await runStages({ ...options, dryRun: true });
  assert(plan.result.ok, plan.result.error?.message);
  const approved = approvedPlan(plan.report);
  assertEquals(plan.report.digest, approved.digest);
  assert(Object.values(approved.stages).flat().length >= 2, "the plan changes several files");

  // After the user said yes, someone edits the boot loader's defaults.
  const grub = join(root, "etc/default/grub");
  await Deno.writeTextFile(
    grub,
    (await Deno.readTextFile(grub)).replace('DEFAULT="quiet"', 'DEFAULT="quiet splash"'),
  );
  const before = await snapshotTree(root);
  const live = await runStages({ ...options, dryRun: false, approved });
  assert(!live.result.ok, "the changed plan was refused");
  assert(live.result.error instanceof PlanChangedError, String(live.result.error));
  assertStringIncludes(live.result.error.message, "did not show");
  assertEquals(await snapshotTree(root), before, "what ran before the refusal was undone");
  const [tx] = await listTransactions(env.dirs.state);
  assertEquals(tx!.state, "aborted");

  // The plan shown now is another, made from the file as it is.
  const again = await runStages({ ...options, dryRun: true });
  assert(again.report.digest !== approved.digest, "a changed host gives another plan");
  const edit = again.report.stages.flatMap((s) => s.ops).find((op) =>
    op.kind === "fs.edit" && op.description.includes("/etc/default/grub")
  );
  assertStringIncludes(edit?.preview ?? "", '-GRUB_CMDLINE_LINUX_DEFAULT="quiet splash"');
});

Deno.test("a plugin that ignores stop signals cannot keep gini alive: SIGTERM, SIGHUP and Ctrl-C stop the run, and recover restores the tree", async (t) => {
  const deaf = ["--plugin-dir", join(FIXTURE_PLUGINS, "deaf")];
  const { root } = await tempEnv();
  const data = join(root, ".local/share/gini");
  await Deno.mkdir(data, { recursive: true });
  const before = await snapshotTree(root);

  await t.step("a plan (dry run) ends at once with 143", async () => {
    const { child, output } = await spawnGini(root, [...deaf, "--dry-run", "run", "deaf:work"]);
    // The worker is up (and has registered its listeners) well within this.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const sent = Date.now();
    child.kill("SIGTERM");
    const out = await output;
    assertEquals(out.code, 143, out.stderr);
    assertStringIncludes(out.stderr, "Stopped by SIGTERM");
    assert(Date.now() - sent < 10_000, "it did not wait for the plugin");
  });

  for (const [signal, code] of [["SIGTERM", 143], ["SIGHUP", 129], ["SIGINT", 130]] as const) {
    await t.step(`${signal} during a live run: exit ${code}, then recover undoes it`, async () => {
      const { child, output } = await spawnGini(root, [...deaf, "run", "deaf:work"]);
      await until("the plugin changed the host", exists(join(data, "deaf/started")));
      child.kill(signal);
      const out = await output;
      assertEquals(out.code, code, out.stderr);
      assertStringIncludes(out.stderr, "Interrupted after 2 change(s)");
      assertStringIncludes(out.stderr, "gini recover");
      const [tx] = JSON.parse((await runGini(root, ["journal", "list", "--json"])).stdout);
      assertEquals(tx.state, "incomplete");
      const recovered = await runGini(root, ["recover"]);
      assertEquals(recovered.code, 0, recovered.stderr + recovered.stdout);
      assertEquals(await snapshotTree(root), before);
    });
  }
});

Deno.test("a stop signal during a rollback lets it finish: no program of it left running, the transaction closed", async () => {
  const { root } = await tempEnv();
  const data = join(root, ".local/share/gini");
  await Deno.mkdir(data, { recursive: true });
  const before = await snapshotTree(root);
  const plugin = ["--plugin-dir", join(FIXTURE_PLUGINS, "slow_undo")];
  const { child, output } = await spawnGini(root, [...plugin, "run", "slow-undo:work"]);
  await until(
    "the rollback runs its undo",
    () => Promise.resolve(processesWith("3.14159").length > 0),
  );
  child.kill("SIGTERM");
  const out = await output;
  assertEquals(out.code, 1, out.stderr);
  assertStringIncludes(out.stderr, "SIGTERM: finishing the rollback in progress first");
  assertEquals(processesWith("3.14159"), [], "the undo's program finished, not orphaned");
  const [tx] = JSON.parse((await runGini(root, ["journal", "list", "--json"])).stdout);
  assertEquals(tx.state, "aborted");
  assertEquals(await snapshotTree(root), before);
});
