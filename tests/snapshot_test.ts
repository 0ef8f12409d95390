/**
 * `gini snapshot create|list|revert|delete` on a real QEMU under TCG with the tiny guest: a
 * stopped VM through qemu-img, a running one through QMP snapshot jobs (memory included), a UEFI
 * VM whose variables are qcow2 (quickemu #1261), and the refusals: a revert to another
 * configuration, a raw disk.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { qmpCommand } from "../kernel/host/qmp.ts";
import { runGini, sh, tinyVmHome, waitFor } from "./_helpers.ts";

const gini = (root: string, ...args: string[]) => runGini(root, args);

type Snapshots = {
  via: string;
  tag: string | null;
  images: string[];
  snapshots: { tag: string; date: string; vmStateBytes: number; images: number; of: number }[];
};

async function json<T>(root: string, ...args: string[]): Promise<T> {
  const out = await gini(root, ...args, "--json");
  assertEquals(out.code, 0, `gini ${args.join(" ")}: ${out.stderr}`);
  return JSON.parse(out.stdout) as T;
}

/** A tiny VM's file with a 64 MiB root disk; `extra` is appended (another disk, [firmware]). */
const tinyVm = (extra = "") => tinyVmHome(`[[disks]]\nname = "root"\nsize = "64M"\n${extra}`);

/** qemu-io on a stopped VM's disk. */
const qemuIo = (disk: string, command: string) => sh("qemu-io", "-f", "qcow2", "-c", command, disk);

/**
 * qemu-io inside the running VM (HMP through QMP) on the device of disk `id`, then a flush, so
 * that the image file holds what the guest's disk holds (qemu-io prints to QEMU's own stdout).
 */
const liveIo = async (dir: string, id: string, command: string) => {
  for (const c of [command, "flush"]) {
    const out = await qmpCommand(join(dir, "qmp.sock"), "human-monitor-command", {
      // A virtio-blk-pci device's block backend is its virtio-backend child's.
      "command-line": `qemu-io -d /machine/peripheral/${id}/virtio-backend "${c}"`,
    });
    assertEquals(out, "", `qemu-io ${c}`);
  }
};

/** Reads the image of a running VM (shared, read-only). */
const sharedIo = (disk: string, command: string) =>
  sh("qemu-io", "-U", "-r", "-f", "qcow2", "-c", command, disk);

const events = async (root: string) =>
  (await json<{ records: { event: string }[] }>(root, "history", "tiny")).records.map((r) =>
    r.event
  );

async function stop(root: string) {
  await gini(root, "kill", "tiny");
}

Deno.test("a stopped VM: create, a write to its disk, revert brings the bytes back; list and delete", async () => {
  const { root, dir } = await tinyVm();
  const up = await gini(root, "up", "tiny.toml", "--no-start");
  assertEquals(up.code, 0, up.stderr);
  const disk = join(dir, "root.qcow2");

  const created = await json<Snapshots>(root, "snapshot", "create", "tiny", "clean");
  assertEquals([created.via, created.tag, created.images], ["qemu-img", "clean", [disk]]);
  const record = JSON.parse(await Deno.readTextFile(join(dir, "snapshots/clean.json")));
  assertEquals(record.definition.memory.bytes, 256 * 1024 * 1024);
  assertMatch(record.sha256, /^[0-9a-f]{64}$/);

  await qemuIo(disk, "write -P 0xab 0 64k");
  assertStringIncludes(await qemuIo(disk, "read -P 0xab 0 64k"), "read 65536/65536");

  // Revert discards state: it asks, and without a terminal or --yes it is refused.
  const asked = await gini(root, "snapshot", "revert", "tiny", "clean");
  assertEquals(asked.code, 2, asked.stderr);
  assertStringIncludes(asked.stderr, 'Cannot run "gini snapshot revert" without confirmation');
  assertEquals(
    (await qemuIo(disk, "read -P 0xab 0 64k")).includes("Pattern verification failed"),
    false,
  );
  const revert = await gini(root, "snapshot", "revert", "tiny", "clean", "--yes");
  assertEquals(revert.code, 0, revert.stderr);
  assertStringIncludes(revert.stdout, 'VM "tiny": reverted to snapshot "clean"');
  const back = await qemuIo(disk, "read -P 0 0 64k");
  assertEquals(back.includes("Pattern verification failed"), false, back);

  const defaultTag = await json<Snapshots>(root, "snapshot", "create", "tiny");
  assertMatch(defaultTag.tag!, /^snap-\d{8}-\d{6}$/);

  const list = await gini(root, "snapshot", "list", "tiny");
  assertEquals(list.code, 0, list.stderr);
  assertMatch(
    list.stdout,
    /^TAG +DATE +VM STATE +IMAGES +CONFIG\nclean +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ +- +1\/1 +current\n/,
  );
  const listed = await json<Snapshots>(root, "snapshot", "list", "tiny");
  assertEquals(listed.snapshots.map((s) => s.tag), ["clean", defaultTag.tag]);
  assertEquals(listed.snapshots[0]!.vmStateBytes, 0);

  const bad = await gini(root, "snapshot", "create", "tiny", "no/slash");
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, 'Cannot use "no/slash" as a snapshot tag');
  const again = await gini(root, "snapshot", "create", "tiny", "clean");
  assertEquals(again.code, 2);
  assertStringIncludes(again.stderr, 'Cannot create snapshot "clean" of VM "tiny": it exists');

  const del = await gini(root, "snapshot", "delete", "tiny", "clean", "--yes");
  assertEquals(del.code, 0, del.stderr);
  assertEquals((await sh("qemu-img", "snapshot", "-l", disk)).includes("clean"), false);
  assertEquals(await Deno.stat(join(dir, "snapshots/clean.json")).then(() => 1, () => 0), 0);
  const missing = await gini(root, "snapshot", "revert", "tiny", "clean", "--yes");
  assertEquals(missing.code, 2);
  assertStringIncludes(missing.stderr, `Its snapshots: ${defaultTag.tag}`);
  assertEquals((await events(root)).slice(1), [
    "snapshot-created",
    "snapshot-reverted",
    "snapshot-created",
    "snapshot-deleted",
  ]);
});

Deno.test("a running VM: a snapshot with its memory; a write inside the VM is undone by revert", async () => {
  const { root, dir } = await tinyVm();
  const up = await gini(root, "up", "tiny.toml");
  assertEquals(up.code, 0, up.stderr);
  try {
    await waitFor(join(dir, "serial.log"), "GINI-TINY-GUEST-BOOTED", 120);
    const created = await json<Snapshots>(root, "snapshot", "create", "tiny", "live");
    assertEquals(created.via, "qmp");
    const listed = await json<Snapshots>(root, "snapshot", "list", "tiny");
    assertEquals(listed.snapshots.map((s) => s.tag), ["live"]);
    assert(listed.snapshots[0]!.vmStateBytes > 0, "the snapshot holds the VM's memory");
    const list = await gini(root, "snapshot", "list", "tiny");
    assertMatch(list.stdout, /\nlive +\S+ \S+ +\d+\.\d MiB +1\/1 +current/);

    const disk = join(dir, "root.qcow2");
    await liveIo(dir, "disk0", "write -P 0xab 0 64k");
    const written = await sharedIo(disk, "read -P 0xab 0 64k");
    assertEquals(written.includes("Pattern verification failed"), false, written);
    const revert = await gini(root, "snapshot", "revert", "tiny", "live", "--yes");
    assertEquals(revert.code, 0, revert.stderr);
    await liveIo(dir, "disk0", "flush");
    const back = await sharedIo(disk, "read -P 0 0 64k");
    assertEquals(back.includes("Pattern verification failed"), false, back);
    const status = await qmpCommand(join(dir, "qmp.sock"), "query-status", undefined) as {
      status: string;
    };
    assertEquals(status.status, "running", "the VM runs on from the snapshot");
    // Each job was dismissed.
    assertEquals(await qmpCommand(join(dir, "qmp.sock"), "query-jobs", undefined), []);

    const del = await gini(root, "snapshot", "delete", "tiny", "live", "--yes");
    assertEquals(del.code, 0, del.stderr);
    assertEquals((await json<Snapshots>(root, "snapshot", "list", "tiny")).snapshots, []);
  } finally {
    await stop(root);
  }
});

Deno.test("a UEFI VM snapshots while running: its variables are a qcow2 node in the snapshot (quickemu #1261)", async () => {
  const { root, dir } = await tinyVm('[firmware]\ntype = "uefi"\n');
  const up = await gini(root, "up", "tiny.toml");
  assertEquals(up.code, 0, up.stderr);
  try {
    await waitFor(join(dir, "serial.log"), "GINI-TINY-GUEST-BOOTED", 180);
    const created = await json<Snapshots>(root, "snapshot", "create", "tiny", "uefi");
    assertEquals(created.images, [join(dir, "root.qcow2"), join(dir, "OVMF_VARS.qcow2")]);
    const vars = JSON.parse(
      await sh("qemu-img", "info", "-U", "--output=json", join(dir, "OVMF_VARS.qcow2")),
    );
    assertEquals(vars.snapshots.map((s: { name: string }) => s.name), ["uefi"]);
    const listed = await json<Snapshots>(root, "snapshot", "list", "tiny");
    assertEquals([listed.snapshots[0]!.images, listed.snapshots[0]!.of], [2, 2]);
    const revert = await gini(root, "snapshot", "revert", "tiny", "uefi", "--yes");
    assertEquals(revert.code, 0, revert.stderr);
  } finally {
    await stop(root);
  }
});

Deno.test("refusals: a revert to another configuration shows the difference; a raw disk is named", async () => {
  const { root, dir, file } = await tinyVm();
  assertEquals((await gini(root, "up", "tiny.toml", "--no-start")).code, 0);
  assertEquals((await gini(root, "snapshot", "create", "tiny", "small")).code, 0);
  await Deno.writeTextFile(
    file,
    (await Deno.readTextFile(file)).replace('size = "256M"', 'size = "320M"'),
  );
  const up = await gini(root, "up", "tiny.toml");
  assertEquals(up.code, 0, up.stderr);
  try {
    const refused = await gini(root, "snapshot", "revert", "tiny", "small", "--yes");
    assertEquals(refused.code, 2, refused.stderr);
    assertStringIncludes(
      refused.stderr,
      'Cannot revert VM "tiny" to snapshot "small": it was taken with another configuration',
    );
    assertStringIncludes(refused.stderr, "~ memory.bytes: 268435456 → 335544320");
    const json = await gini(root, "snapshot", "revert", "tiny", "small", "--yes", "--json");
    assertEquals(JSON.parse(json.stdout).error.code, "USAGE");
  } finally {
    await stop(root);
  }
  assert((await Deno.stat(join(dir, "root.qcow2"))).isFile);

  const raw = await tinyVm('[[disks]]\nname = "data"\nsize = "16M"\nformat = "raw"\n');
  assertEquals((await gini(raw.root, "up", "tiny.toml", "--no-start")).code, 0);
  const rawRefused = await gini(raw.root, "snapshot", "create", "tiny");
  assertEquals(rawRefused.code, 2);
  assertStringIncludes(
    rawRefused.stderr,
    `Cannot snapshot VM "tiny": disk "data" (${
      join(raw.dir, "data.img")
    }) is raw, and a raw image cannot hold internal snapshots`,
  );
  assertStringIncludes(rawRefused.stderr, 'format = "qcow2"');
});
