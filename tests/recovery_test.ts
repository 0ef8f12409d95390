import { assert, assertEquals, assertStringIncludes, assertThrows } from "./_assert.ts";
import { join } from "node:path";
import { JournalCorruptError, readJournal } from "../kernel/journal/journal.ts";
import { REPO, runGini, sh, snapshotTree, tempEnv } from "./_helpers.ts";

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
    "qemu.launch",
  ]);
  const before = await snapshotTree(root);
  for (
    const [variable, op] of changing.flatMap((op) =>
      [["GINI_CRASH_AFTER_OP", op], ["GINI_CRASH_BEFORE_DONE", op]] as const
    )
  ) {
    await t.step(`${variable}=${op.seq} (${op.kind})`, async () => {
      const crashed = await runGini(root, ["up", "tiny.toml"], { [variable]: String(op.seq) });
      assertEquals(crashed.code, 137, `the process should have killed itself: ${crashed.stderr}`);
      const warned = await runGini(root, ["ls"]);
      assertStringIncludes(warned.stderr, "An operation was interrupted: up");
      const dry = await runGini(root, ["recover", "--dry-run"]);
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
});

Deno.test("readJournal() ignores a torn last record and refuses a corrupted one before it", async () => {
  const { root } = await tempEnv();
  await tinyVm(root);
  const plan = JSON.parse((await runGini(root, ["plan", "tiny.toml", "--json"])).stdout);
  const first = plan.stages.flatMap((s: { ops: { seq: number; readOnly: boolean }[] }) => s.ops)
    .find((op: { readOnly: boolean }) => !op.readOnly).seq;
  const crashed = await runGini(root, ["up", "tiny.toml"], { GINI_CRASH_AFTER_OP: String(first) });
  assertEquals(crashed.code, 137);
  const dir = join(root, ".local/state/gini/journal");
  const file = join(dir, (await Array.fromAsync(Deno.readDir(dir)))[0]!.name);
  const text = await Deno.readTextFile(file);
  await Deno.writeTextFile(file, text + '3f2a9c {"type":"done","se');
  const torn = await readJournal(file);
  assertEquals(torn.torn, true);
  assertEquals(torn.records.length, text.trim().split("\n").length);
  const lines = text.split("\n");
  lines[1] = lines[1]!.replace('"intent"', '"intenT"');
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
