/**
 * A VM's life after `up`, on a real QEMU under TCG with the tiny guest: start, stop, kill, pause
 * and resume by name; `up` of a VM that exists converges (starts it, applies a change, refuses a
 * shrink); status and history; a crash found at the next call.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { qmpCommand } from "../kernel/host/qmp.ts";
import { runGini, sh, tinyVmHome } from "./_helpers.ts";

const gini = (root: string, ...args: string[]) => runGini(root, args);

/** The tiny guest with a 64 MiB disk and a forward to its port 22 (a random host port). */
const tinyVm = () =>
  tinyVmHome(`[[disks]]
name = "root"
size = "64M"
[[network]]
type = "user"
forwards = [{ protocol = "tcp", host = ${20000 + Math.floor(Math.random() * 20000)}, guest = 22 }]
`);

async function json<T>(root: string, ...args: string[]): Promise<T> {
  const out = await gini(root, ...args, "--json");
  assertEquals(out.code, 0, `gini ${args.join(" ")}: ${out.stderr}`);
  return JSON.parse(out.stdout) as T;
}

type Status = { state: string; pid: number | null; memoryBytes: number; since: string | null };
type History = { records: { event: string }[]; broken: { line: number } | null };

const events = async (root: string) =>
  (await json<History>(root, "history", "tiny")).records.map((r) => r.event);

/** Writes a byte pattern into a stopped VM's disk, or checks it is there. */
const qemuIo = (disk: string, command: string) => sh("qemu-io", "-f", "qcow2", "-c", command, disk);

Deno.test("start, stop, pause, resume and kill by name, each recorded in the VM's history", async () => {
  const { root, dir } = await tinyVm();
  const up = await gini(root, "up", "tiny.toml");
  assertEquals(up.code, 0, up.stderr);
  try {
    const running = await json<Status>(root, "status", "tiny");
    assertEquals(running.state, "running");
    assertEquals(running.pid, Number(await Deno.readTextFile(join(dir, "qemu.pid"))));
    assert(running.since, "a running VM says since when");

    const pause = await gini(root, "pause", "tiny");
    assertEquals(pause.code, 0, pause.stderr);
    const paused = await qmpCommand(join(dir, "qmp.sock"), "query-status", undefined) as {
      status: string;
    };
    assertEquals(paused.status, "paused", "QEMU itself says the vCPUs are stopped");
    assertEquals((await json<Status>(root, "status", "tiny")).state, "paused");
    assertEquals((await gini(root, "pause", "tiny")).stdout.trim(), 'VM "tiny" is already paused');
    assertEquals((await gini(root, "resume", "tiny")).code, 0);
    assertEquals((await json<Status>(root, "status", "tiny")).state, "running");

    // The busybox guest ignores the power button: stop forces it after the timeout.
    const stop = await gini(root, "stop", "tiny", "--timeout", "1");
    assertEquals(stop.code, 0, stop.stderr);
    assertStringIncludes(stop.stdout, 'VM "tiny" stopped (forced after the timeout)');
    assertStringIncludes(stop.stderr, "did not power off within 1 s");
    assertEquals((await json<Status>(root, "status", "tiny")).state, "stopped");

    const start = await json<{ outcome: string; pid: number }>(root, "start", "tiny");
    assertEquals(start.outcome, "started");
    assertEquals(start.pid, Number(await Deno.readTextFile(join(dir, "qemu.pid"))));
    assertEquals(
      (await json<{ outcome: string }>(root, "start", "tiny")).outcome,
      "already-running",
    );

    const kill = await gini(root, "kill", "tiny");
    assertEquals(kill.code, 0, kill.stderr);
    assertEquals((await json<Status>(root, "status", "tiny")).state, "stopped");
    assertEquals(await events(root), [
      "deployed",
      "started",
      "paused",
      "resumed",
      "stopped",
      "started",
      "killed",
    ]);
  } finally {
    await gini(root, "kill", "tiny");
  }
});

Deno.test("a QEMU that dies behind Gini's back shows in status, and in the history at the next call", async () => {
  const { root, dir } = await tinyVm();
  assertEquals((await gini(root, "up", "tiny.toml")).code, 0);
  try {
    Deno.kill(Number(await Deno.readTextFile(join(dir, "qemu.pid"))), "SIGKILL");
    for (
      let i = 0;
      i < 40 && (await json<Status>(root, "status", "tiny")).state !== "stopped";
      i++
    ) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const status = await gini(root, "status", "tiny");
    assertStringIncludes(status.stdout, 'VM "tiny": stopped');
    assertStringIncludes(status.stdout, "it ended without Gini");
    assertEquals(await events(root), ["deployed", "started"], "a query changes nothing");
    assertEquals((await gini(root, "start", "tiny")).code, 0);
    assertEquals(await events(root), ["deployed", "started", "exited", "started"]);

    // A history edited behind Gini's back is reported, with the line.
    const file = join(dir, "history.jsonl");
    const lines = (await Deno.readTextFile(file)).trimEnd().split("\n");
    lines[1] = lines[1]!.replace('"started"', '"stopped"');
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    const history = await json<History>(root, "history", "tiny");
    assertEquals(history.broken?.line, 2);
    assertEquals(history.records.length, 1);
    assertMatch((await gini(root, "status", "tiny")).stdout, /history is broken at line 2/);
  } finally {
    await gini(root, "kill", "tiny");
  }
});

Deno.test("gini up converges: an unchanged stopped VM starts with its disk kept; a change is planned and applied; a shrink is refused", async () => {
  const { root, dir, file } = await tinyVm();
  assertEquals((await gini(root, "up", "tiny.toml")).code, 0);
  try {
    const again = await gini(root, "up", "tiny.toml");
    assertEquals(again.code, 0, again.stderr);
    assertStringIncludes(
      again.stdout,
      'VM "tiny" is running and its file is unchanged: nothing to do',
    );

    assertEquals((await gini(root, "stop", "tiny", "--timeout", "1")).code, 0);
    const disk = join(dir, "root.qcow2");
    await qemuIo(disk, "write -P 0xab 0 64k");
    const restart = await gini(root, "up", "tiny.toml");
    assertEquals(restart.code, 0, restart.stderr);
    assertStringIncludes(restart.stdout, "its file is unchanged: started it");
    assertEquals((await json<Status>(root, "status", "tiny")).state, "running");
    assertEquals((await gini(root, "stop", "tiny", "--timeout", "1")).code, 0);
    await qemuIo(disk, "read -P 0xab 0 64k"); // fails unless the disk is the one written

    // More memory and a bigger disk: the plan shows both, up applies both.
    const text = await Deno.readTextFile(file);
    await Deno.writeTextFile(
      file,
      text.replace('size = "256M"', 'size = "384M"').replace('size = "64M"', 'size = "96M"'),
    );
    const plan = await gini(root, "plan", "tiny.toml");
    assertEquals(plan.code, 0, plan.stderr);
    assertStringIncludes(plan.stdout, "up would apply 2 change(s)");
    assertStringIncludes(plan.stdout, "~ memory.bytes: 268435456 → 402653184");
    assertStringIncludes(plan.stdout, "~ disks[disk0].sizeBytes: 67108864 → 100663296");
    assertStringIncludes(plan.stdout, "Would run qemu-img resize");
    const applied = await gini(root, "up", "tiny.toml");
    assertEquals(applied.code, 0, applied.stderr);
    const status = await json<Status>(root, "status", "tiny");
    assertEquals(status.memoryBytes, 384 * 1024 * 1024, "QEMU reports the new memory size");
    const info = JSON.parse(await sh("qemu-img", "info", "-U", "--output=json", disk));
    assertEquals(info["virtual-size"], 96 * 1024 * 1024);

    // A change while it runs, and a shrink, are refused with the change named; nothing moves.
    const definition = await Deno.readTextFile(join(dir, "vm.json"));
    await Deno.writeTextFile(
      file,
      text.replace('size = "256M"', 'size = "512M"').replace('size = "64M"', 'size = "96M"'),
    );
    const whileRunning = await gini(root, "up", "tiny.toml");
    assertEquals(whileRunning.code, 2);
    assertStringIncludes(whileRunning.stderr, 'Cannot change VM "tiny" while it is running');
    assertStringIncludes(whileRunning.stderr, "Stop it first (gini stop tiny)");
    assertStringIncludes(whileRunning.stderr, "~ memory.bytes: 402653184 → 536870912");
    assertEquals((await gini(root, "stop", "tiny", "--timeout", "1")).code, 0);
    await Deno.writeTextFile(file, text.replace('size = "256M"', 'size = "384M"'));
    const shrink = await gini(root, "up", "tiny.toml");
    assertEquals(shrink.code, 2);
    assertStringIncludes(shrink.stderr, "! disks[disk0].sizeBytes: 100663296 → 67108864");
    assertStringIncludes(shrink.stderr, "shrinking a disk would cut off the guest's data");
    assertEquals(await Deno.readTextFile(join(dir, "vm.json")), definition);
    assertEquals(
      JSON.parse(await sh("qemu-img", "info", "--output=json", disk))["virtual-size"],
      96 * 1024 * 1024,
    );
    assertEquals(await events(root), [
      "deployed",
      "started",
      "stopped",
      "started",
      "stopped",
      "changed",
      "started",
      "stopped",
    ]);
  } finally {
    await gini(root, "kill", "tiny");
  }
});

Deno.test("gini ls shows each VM's state, ports and how to get in; --dry-run of start changes nothing", async () => {
  const { root } = await tinyVm();
  assertEquals((await gini(root, "up", "--no-start", "tiny.toml")).code, 0);
  const list = await gini(root, "ls");
  assertMatch(list.stdout, /^NAME\s+STATE\s+BACKEND\s+CPU\s+MEMORY\s+PORTS\s+GET IN$/m);
  assertMatch(
    list.stdout,
    /^tiny\s+stopped\s+qemu\/tcg\s+2\s+256 MiB\s+127\.0\.0\.1:\d+->22\/tcp\s+gini ssh tiny$/m,
  );
  const dry = await gini(root, "start", "tiny", "--dry-run");
  assertEquals(dry.code, 0, dry.stderr);
  assertStringIncludes(dry.stdout, 'Would start VM "tiny"');
  assertEquals((await json<Status>(root, "status", "tiny")).state, "stopped");
  const missing = await gini(root, "start", "nope");
  assertEquals(missing.code, 2);
  assertStringIncludes(missing.stderr, 'Cannot find VM "nope": Gini made no VM of that name');
  assertStringIncludes(missing.stderr, "VMs: tiny");
});

Deno.test("save stops a VM with its memory in a file; start resumes it where it was, without booting again", async () => {
  const { root, dir } = await tinyVm();
  assertEquals((await gini(root, "up", "tiny.toml")).code, 0);
  try {
    const serial = join(dir, "serial.log");
    const booted = async () =>
      (await Deno.readTextFile(serial)).split("GINI-TINY-GUEST-BOOTED").length - 1;
    for (let i = 0; i < 600 && await booted() === 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
    assertEquals(await booted(), 1, "the guest booted once");
    const save = await json<{ outcome: string }>(root, "save", "tiny");
    assertEquals(save.outcome, "saved");
    assert(
      (await Deno.stat(join(dir, "saved.state"))).size > 1024 * 1024,
      "the state file holds the memory",
    );
    const status = await json<Status & { savedState: string | null }>(root, "status", "tiny");
    assertEquals([status.state, status.savedState], ["stopped", join(dir, "saved.state")]);
    // Another configuration would not match the saved memory: up refuses to change it.
    const file = join(root, "tiny.toml");
    const text = await Deno.readTextFile(file);
    await Deno.writeTextFile(file, text.replace('size = "256M"', 'size = "512M"'));
    const changed = await gini(root, "up", "tiny.toml");
    assertEquals(changed.code, 2);
    assertStringIncludes(changed.stderr, "it has a saved state of the old settings");
    await Deno.writeTextFile(file, text);
    const start = await json<{ outcome: string }>(root, "start", "tiny");
    assertEquals(start.outcome, "restored");
    const qmp = await qmpCommand(join(dir, "qmp.sock"), "query-status", undefined) as {
      status: string;
    };
    assertEquals(qmp.status, "running");
    await new Promise((r) => setTimeout(r, 2000));
    assertEquals(await booted(), 1, "the guest went on where it was: it did not boot again");
    await Deno.stat(join(dir, "saved.state")).then(
      () => assert(false, "a state is used once: the file is removed after the restore"),
      () => {},
    );
    const restore = await gini(root, "restore", "tiny");
    assertEquals(restore.code, 0);
    assertStringIncludes(restore.stdout, 'VM "tiny" is already running');
    assertEquals((await events(root)).slice(-2), ["saved", "restored"]);
  } finally {
    await gini(root, "kill", "tiny");
  }
});

Deno.test("a guest whose kernel panics is crashed (pvpanic): status says so, restart records the crash and boots it again", async () => {
  const { root, dir } = await tinyVmHome(`[[disks]]\nname = "root"\nsize = "64M"\n`, "gini.panic");
  const up = await gini(root, "up", "tiny.toml");
  assertEquals(up.code, 0, up.stderr);
  try {
    assertStringIncludes(await Deno.readTextFile(join(dir, "start.sh")), "-device pvpanic");
    let status = await json<Status>(root, "status", "tiny");
    for (let i = 0; i < 240 && status.state !== "crashed"; i++) {
      await new Promise((r) => setTimeout(r, 500));
      status = await json<Status>(root, "status", "tiny");
    }
    assertEquals(status.state, "crashed");
    assertStringIncludes(await Deno.readTextFile(join(dir, "serial.log")), "Kernel panic");
    const text = await gini(root, "status", "tiny");
    assertStringIncludes(text.stdout, "its kernel panicked");
    // What a crashed VM cannot do is refused with the way out, and changes nothing.
    const pause = await gini(root, "pause", "tiny");
    assertEquals(pause.code, 2, pause.stderr);
    assertStringIncludes(pause.stderr, "it crashed (its kernel panicked)");
    assertStringIncludes(pause.stderr, "gini restart tiny");
    assertEquals((await gini(root, "resume", "tiny")).code, 2);
    assertEquals(await events(root), ["deployed", "started"]);
    // restart stops it at once (a panicked guest answers no power button) and boots it again.
    const restart = await gini(root, "restart", "tiny", "--timeout", "60");
    assertEquals(restart.code, 0, restart.stderr);
    assertEquals(await events(root), ["deployed", "started", "crashed", "stopped", "started"]);
    const history = await json<{ records: { event: string; detail: unknown }[] }>(
      root,
      "history",
      "tiny",
    );
    assertEquals(history.records[3]!.detail, { how: "quit" });
  } finally {
    await gini(root, "kill", "tiny");
  }
});
