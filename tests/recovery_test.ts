import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
  assertThrows,
} from "./_assert.ts";
import { sha256Hex } from "../kernel/ops/_fs.ts";
import { join } from "node:path";
import { JournalCorruptError, readJournal } from "../kernel/journal/journal.ts";
import { REPO, runGini, sh, snapshotTree, spawnGini, tempEnv } from "./_helpers.ts";

async function tinyVm(root: string): Promise<void> {
  const guest = await sh("bash", join(REPO, "scripts/build-tiny-guest.sh"));
  await sh("qemu-img", "create", "-q", "-f", "qcow2", join(root, "base.qcow2"), "64M");
  await Deno.writeTextFile(
    join(root, "tiny.toml"),
    `name = "tiny"\n[memory]\nsize = "256M"\n[boot]\nkernel = "${guest}/vmlinuz"\ninitrd = "${guest}/initrd.img"\ncmdline = "console=ttyS0"\n[[disks]]\nname = "root"\nbacking = "base.qcow2"\nsize = "128M"\n[[disks]]\nname = "data"\nsize = "16M"\nformat = "raw"\n`,
  );
}

Deno.test("a deploy killed after any op is rolled back by gini recover to exactly the tree before it", async (t) => {
  const { root } = await tempEnv();
  await tinyVm(root);
  const plan = JSON.parse((await runGini(root, ["plan", "tiny.toml", "--json"])).stdout);
  const changing = plan.stages.flatMap((
    s: { ops: { seq: number; readOnly: boolean; kind: string }[] },
  ) => s.ops)
    .filter((op: { readOnly: boolean }) => !op.readOnly) as { seq: number; kind: string }[];
  assertEquals(changing.map((op) => op.kind), [
    "fs.mkdir",
    "image.create",
    "image.create",
    "fs.write",
    "fs.write",
    "fs.write",
    "history.append",
    "qemu.launch",
    "history.append",
  ]);
  const before = await snapshotTree(root);
  for (
    const [variable, op, n] of changing.flatMap((op, i) =>
      [["GINI_CRASH_AFTER_OP", op, i + 1], ["GINI_CRASH_BEFORE_DONE", op, i + 1]] as const
    )
  ) {
    await t.step(`${variable}=${n} (${op.kind})`, async () => {
      const crashed = await runGini(root, ["up", "tiny.toml"], { [variable]: String(n) });
      assertEquals(crashed.code, 137, `the process should have killed itself: ${crashed.stderr}`);
      const warned = await runGini(root, ["ls"]);
      assertStringIncludes(warned.stderr, "An operation was interrupted: up");
      const dry = await runGini(root, ["recover", "--rollback", "--dry-run"]);
      assertEquals(dry.code, 0, dry.stderr);
      assertStringIncludes(dry.stdout, "Would roll back");
      const recovered = await runGini(root, ["recover", "--rollback"]);
      assertEquals(recovered.code, 0, recovered.stderr);
      assertEquals(await snapshotTree(root), before);
      const list = JSON.parse((await runGini(root, ["journal", "list", "--json"])).stdout);
      assert(list.every((tx: { state: string }) => tx.state !== "incomplete"));
      assertEquals((await runGini(root, ["recover"])).stdout.trim(), "Nothing to recover");
    });
  }
});

/** A Linux VM with a local base image and a cloud-init seed, booting the tiny guest's kernel. */
async function linuxVm(root: string): Promise<void> {
  const guest = await sh("bash", join(REPO, "scripts/build-tiny-guest.sh"));
  await sh("qemu-img", "create", "-q", "-f", "qcow2", join(root, "base.qcow2"), "64M");
  await Deno.writeTextFile(
    join(root, "tiny.toml"),
    `name = "tiny"\n[memory]\nsize = "256M"\n[boot]\nkernel = "${guest}/vmlinuz"\ninitrd = "${guest}/initrd.img"\ncmdline = "console=ttyS0"\n[[disks]]\nsize = "128M"\n[[disks]]\nname = "data"\nsize = "16M"\nformat = "raw"\n[linux]\nimage = "base.qcow2"\nhostname = "tiny"\nruncmd = ["true"]\n`,
  );
}

/** A tree with file contents as hashes, so that a difference prints readably. */
async function hashedTree(root: string): Promise<Record<string, string>> {
  const tree = await snapshotTree(root);
  for (const [key, value] of Object.entries(tree)) {
    if (value !== "dir" && !value.startsWith("-> ")) tree[key] = await sha256Hex(value);
  }
  return tree;
}

/** The VM's files once stopped, without what QEMU writes while it runs. */
async function stoppedTree(root: string): Promise<Record<string, string>> {
  const down = await runGini(root, ["down", "tiny", "--timeout", "1"]);
  assertEquals(down.code, 0, down.stderr);
  for (const runtime of ["serial.log", "qemu.pid", "qmp.sock"]) {
    await Deno.remove(join(root, ".local/share/gini/vms/tiny", runtime)).catch(() => {});
  }
  return await hashedTree(root);
}

/** Removes the VM (and checks that gini rm leaves the tree as before). */
async function removeVm(root: string, before: Record<string, string>): Promise<void> {
  const rm = await runGini(root, ["rm", "tiny", "--yes"]);
  assertEquals(rm.code, 0, rm.stderr);
  assertEquals(await hashedTree(root), before);
}

Deno.test("a Linux deploy killed after any change is resumed by gini recover to the tree of an uninterrupted run", async (t) => {
  const { root } = await tempEnv();
  await linuxVm(root);
  const plan = JSON.parse((await runGini(root, ["plan", "tiny.toml", "--json"])).stdout);
  const changing = plan.stages.flatMap((s: { ops: { readOnly: boolean; kind: string }[] }) => s.ops)
    .filter((op: { readOnly: boolean }) => !op.readOnly) as { kind: string; stage: string }[];
  assert(changing.some((op) => op.kind === "run"), "the seed ISO is made by xorriso");
  // The VM starts, and its history records it.
  assertEquals(changing.slice(-2).map((op) => op.kind), ["qemu.launch", "history.append"]);
  const up = await runGini(root, ["up", "tiny.toml"]);
  assertEquals(up.code, 0, up.stderr);
  const expected = await stoppedTree(root);
  const rm = await runGini(root, ["rm", "tiny", "--yes"]);
  assertEquals(rm.code, 0, rm.stderr);
  // What gini rm leaves (the empty vms folder); every step below ends here.
  const before = await hashedTree(root);

  for (
    const [variable, op, n] of changing.flatMap((op, i) =>
      [["GINI_CRASH_AFTER_OP", op, i + 1], ["GINI_CRASH_BEFORE_DONE", op, i + 1]] as const
    )
  ) {
    await t.step(`${variable}=${n} (${op.kind} in ${op.stage})`, async () => {
      const crashed = await runGini(root, ["up", "tiny.toml"], { [variable]: String(n) });
      assertEquals(crashed.code, 137, crashed.stderr);
      const warned = await runGini(root, ["ls"]);
      assertStringIncludes(warned.stderr, 'Run "gini recover" to finish it (--resume)');
      const dry = await runGini(root, ["recover", "--dry-run"]);
      assertEquals(dry.code, 0, dry.stderr);
      assertStringIncludes(dry.stdout, "Would resume");
      assertStringIncludes(dry.stdout, "then would run:");
      // Without a flag, an interrupted deployment is resumed.
      const resumed = await runGini(root, ["recover"]);
      assertEquals(resumed.code, 0, resumed.stderr + resumed.stdout);
      assertStringIncludes(resumed.stdout, "Resumed");
      assertEquals(await stoppedTree(root), expected);
      const list = JSON.parse((await runGini(root, ["journal", "list", "--json"])).stdout);
      assertEquals(list[0].state, "committed");
      assertEquals((await runGini(root, ["recover"])).stdout.trim(), "Nothing to recover");
      await removeVm(root, before);
    });
  }

  await t.step("Ctrl-C stops between two changes; resume finishes the same deploy", async () => {
    const n = changing.findIndex((op) => op.stage === "deploy:create-disks") + 2;
    const interrupted = await runGini(root, ["up", "tiny.toml"], {
      GINI_INTERRUPT_AFTER_OP: String(n),
    });
    assertEquals(interrupted.code, 130, interrupted.stderr);
    assertStringIncludes(interrupted.stderr, "Interrupted: finishing the operation in progress");
    assertStringIncludes(interrupted.stderr, "gini recover --resume");
    const [tx] = JSON.parse((await runGini(root, ["journal", "list", "--json"])).stdout);
    assertEquals(tx.state, "incomplete");
    // The seed's xorriso runs beside create-disks: a change of the other stage already under
    // way when Ctrl-C came finishes too; none starts after it.
    assert(tx.changes >= n && tx.changes < changing.length, `${tx.changes} change(s)`);
    assertStringIncludes(interrupted.stderr, `Interrupted after ${tx.changes} change(s)`);
    const resumed = await runGini(root, ["recover", "--resume"]);
    assertEquals(resumed.code, 0, resumed.stderr + resumed.stdout);
    assertEquals(await stoppedTree(root), expected);
    await removeVm(root, before);
  });

  await t.step(
    "SIGTERM during the deploy: exit 143, and recover restores the tree byte for byte",
    async () => {
      const { child, output } = await spawnGini(root, ["up", "tiny.toml"]);
      // Stopped once three changes are journaled (their intents are in the log before they run).
      const journal = join(root, ".local/state/gini/journal");
      const deadline = Date.now() + 120_000;
      for (let intents = 0; intents < 3;) {
        if (Date.now() > deadline) {
          child.kill("SIGKILL");
          throw new Error(
            `the deploy journaled ${intents} change(s) in 120 s: ${(await output).stderr}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
        const logs = await Array.fromAsync(Deno.readDir(journal)).catch(() => []);
        intents = 0;
        for (const log of logs) {
          const text = await Deno.readTextFile(join(journal, log.name)).catch(() => "");
          if (!text.includes('"type":"commit"')) intents = text.split('"type":"intent"').length - 1;
        }
      }
      child.kill("SIGTERM");
      const stopped = await output;
      assertEquals(stopped.code, 143, stopped.stderr);
      assertStringIncludes(stopped.stderr, "Stopping on SIGTERM");
      assertStringIncludes(stopped.stderr, "gini recover");
      const rolledBack = await runGini(root, ["recover", "--rollback"]);
      assertEquals(rolledBack.code, 0, rolledBack.stderr + rolledBack.stdout);
      assertEquals(await hashedTree(root), before);
      assertEquals((await runGini(root, ["recover"])).stdout.trim(), "Nothing to recover");
    },
  );

  await t.step("a resume killed part-way is resumed again", async () => {
    const crashed = await runGini(root, ["up", "tiny.toml"], { GINI_CRASH_AFTER_OP: "2" });
    assertEquals(crashed.code, 137);
    const again = await runGini(root, ["recover", "--resume"], { GINI_CRASH_AFTER_OP: "1" });
    assertEquals(again.code, 137, again.stderr);
    const resumed = await runGini(root, ["recover", "--resume"]);
    assertEquals(resumed.code, 0, resumed.stderr + resumed.stdout);
    assertEquals(await stoppedTree(root), expected);
    await removeVm(root, before);
  });
});

Deno.test("a full data disk: the failing op is reported, earlier changes are rolled back, nothing is left", async () => {
  const { root } = await tempEnv();
  await linuxVm(root);
  const data = join(root, "small-data");
  await Deno.mkdir(data);
  // 256 KiB: the seed's three files fit, its ISO (~370 KiB) does not.
  await sh("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", data);
  try {
    const before = await snapshotTree(root);
    const failed = await runGini(root, ["--data-dir", data, "up", "tiny.toml"]);
    assertEquals(failed.code, 1, failed.stderr);
    // xorriso checks the free space itself before it writes.
    assertMatch(failed.stderr, /No space left on device|exceeds free space/);
    assertStringIncludes(failed.stderr, "xorriso");
    assertStringIncludes(failed.stderr, "undoing the");
    assertEquals(await snapshotTree(root), before);
    assertEquals([...Deno.readDirSync(data)], []);
    const [tx] = JSON.parse((await runGini(root, ["journal", "list", "--json"])).stdout);
    assertEquals(tx.state, "aborted");
    assertEquals(tx.changes, 0);
  } finally {
    await sh("umount", data);
  }
});

Deno.test("a deploy that fails part-way rolls back what it did, and a committed one verifies", async () => {
  const { root } = await tempEnv();
  await tinyVm(root);
  const before = await snapshotTree(root);
  // A file where the second disk goes makes image.create fail after the first disk was made.
  await Deno.mkdir(join(root, ".local/share/gini/vms/tiny"), { recursive: true });
  await Deno.writeTextFile(join(root, ".local/share/gini/vms/tiny/data.img"), "in the way");
  const failed = await runGini(root, ["up", "tiny.toml"]);
  assertEquals(failed.code, 1);
  assertStringIncludes(failed.stderr, "undoing the");
  assertEquals(
    await Deno.stat(join(root, ".local/share/gini/vms/tiny/root.qcow2")).then(
      () => true,
      () => false,
    ),
    false,
  );
  // What is left is the directory holding the file we put in the way.
  await Deno.remove(join(root, ".local/share"), { recursive: true });
  assertEquals(await snapshotTree(root), before);

  const up = await runGini(root, ["up", "tiny.toml"]);
  assertEquals(up.code, 0, up.stderr);
  const verify = await runGini(root, ["journal", "verify"]);
  assertEquals(verify.code, 0, verify.stderr);
  assertStringIncludes(verify.stdout, "file(s) checked: all as Gini left them");
  await Deno.writeTextFile(
    join(root, ".local/share/gini/vms/tiny/start.sh"),
    "#!/bin/sh\necho changed\n",
  );
  const changed = await runGini(root, ["journal", "verify"]);
  assertEquals(changed.code, 1);
  assertStringIncludes(changed.stdout, "changed: ");
  await runGini(root, ["down", "tiny", "--timeout", "1"]);
  // Files a later transaction removed on purpose are not reported as changed.
  assertEquals((await runGini(root, ["rm", "tiny", "--yes"])).code, 0);
  const afterRm = await runGini(root, ["journal", "verify", "--json"]);
  assertEquals(afterRm.code, 0, afterRm.stdout);
  assertEquals(JSON.parse(afterRm.stdout).changed, []);
});

Deno.test("readJournal() ignores a torn last record and refuses a corrupted one before it", async () => {
  const { root } = await tempEnv();
  await tinyVm(root);
  const crashed = await runGini(root, ["up", "tiny.toml"], { GINI_CRASH_AFTER_OP: "1" });
  assertEquals(crashed.code, 137);
  const dir = join(root, ".local/state/gini/journal");
  const file = join(dir, (await Array.fromAsync(Deno.readDir(dir)))[0]!.name);
  const text = await Deno.readTextFile(file);
  await Deno.writeTextFile(file, text + '3f2a9c {"type":"done","se');
  const torn = await readJournal(file);
  assertEquals(torn.torn, true);
  assertEquals(torn.records.length, text.trim().split("\n").length);
  const lines = text.split("\n");
  lines[1] = lines[1]!.replace('"type"', '"typE"');
  await Deno.writeTextFile(file, lines.join("\n"));
  await assertThrowsAsync(() => readJournal(file));
});

async function assertThrowsAsync(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    assert(error instanceof JournalCorruptError, String(error));
    return;
  }
  assertThrows(() => {
    throw new Error("expected JournalCorruptError");
  }, JournalCorruptError);
}
