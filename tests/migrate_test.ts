/**
 * `gini migrate` on real QEMUs under TCG with the tiny guest counting on its serial console
 * (gini.tick): to a new QEMU on this host, and to a QEMU another Gini started waiting
 * (`gini start --incoming`). The guest's counter goes on across the move; the forward, the
 * monitor and the history follow it.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { qmpCommand } from "../kernel/host/qmp.ts";
import { runGini, tinyVmHome, waitFor } from "./_helpers.ts";

/** A tiny VM that counts, with a forward (and what else `rest` adds). */
function countingVm(rest: string) {
  return tinyVmHome(`[[disks]]\nname = "root"\nsize = "64M"\n${rest}`, "gini.tick");
}

/** The guest's last counter value in its serial log. */
async function lastTick(log: string): Promise<number> {
  const ticks = [...(await Deno.readTextFile(log)).matchAll(/^tick (\d+)/gm)];
  return ticks.length ? Number(ticks.at(-1)![1]) : -1;
}

/** Waits until the guest has counted past `n`. */
async function countsPast(log: string, n: number, seconds = 60): Promise<number> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const tick = await lastTick(log);
    if (tick > n) return tick;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the guest did not count past ${n} in ${seconds} s: last ${await lastTick(log)}`);
}

/** Whether the QEMU behind a monitor forwards host port `port` (HMP info usernet). */
async function forwards(socket: string, port: number): Promise<boolean> {
  const table = await qmpCommand(socket, "human-monitor-command", {
    "command-line": "info usernet",
  }) as string;
  return new RegExp(`HOST_FORWARD.*127\\.0\\.0\\.1\\s+${port}\\b`).test(table);
}

/** Whether nothing listens on a TCP port of 127.0.0.1. */
function free(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

const json = async <T>(root: string, ...args: string[]): Promise<T> => {
  const out = await runGini(root, [...args, "--json"]);
  assertEquals(out.code, 0, `gini ${args.join(" ")}: ${out.stderr}`);
  return JSON.parse(out.stdout) as T;
};

Deno.test("a running VM moves live to a new QEMU on this host: the guest counts on, its forward and monitor follow", async () => {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const { root, dir } = await countingVm(
    `[[network]]\nforwards = [{ protocol = "tcp", host = ${port}, guest = 22 }]\n`,
  );
  const log = join(dir, "serial.log");
  try {
    const stopped = await runGini(root, ["migrate", "tiny"]);
    assertEquals(stopped.code, 2, "a VM that does not exist");
    assertEquals((await runGini(root, ["up", "--no-start", "tiny.toml"])).code, 0);
    const notRunning = await runGini(root, ["migrate", "tiny"]);
    assertEquals(notRunning.code, 2, notRunning.stderr);
    assertStringIncludes(notRunning.stderr, 'Cannot migrate VM "tiny": it is not running');

    assertEquals((await runGini(root, ["start", "tiny"])).code, 0);
    await waitFor(log, "tick 2 ", 120);
    const before = (await json<{ pid: number }>(root, "status", "tiny")).pid;
    assert(await forwards(join(dir, "qmp.sock"), port), "the old QEMU forwards the port");
    assert(!free(port));

    // --dry-run says what would happen and changes nothing.
    const dry = await runGini(root, ["migrate", "tiny", "--dry-run"]);
    assertEquals(dry.code, 0, dry.stderr);
    assertStringIncludes(dry.stdout, 'Would migrate VM "tiny" live to a new QEMU process');
    assertEquals((await json<{ pid: number }>(root, "status", "tiny")).pid, before);

    const moved = await json<{ pid: number; to: string; downtimeMs: number; warnings: string[] }>(
      root,
      "migrate",
      "tiny",
    );
    assertEquals([moved.to, moved.warnings], ["local", []]);
    assert(moved.pid && moved.pid !== before, `a new QEMU: ${moved.pid} (was ${before})`);
    assertEquals(
      await Deno.stat(`/proc/${before}`).then(() => "alive", () => "gone"),
      "gone",
      "the old QEMU quit",
    );
    const at = await lastTick(log);
    // The guest goes on counting where it was: no reboot (no second boot marker), no reset.
    await countsPast(log, at + 2);
    const text = await Deno.readTextFile(log);
    assertEquals(text.split("GINI-TINY-GUEST-BOOTED").length - 1, 1, "the guest did not reboot");
    const ticks = [...text.matchAll(/^tick (\d+)/gm)].map((m) => Number(m[1]));
    assertEquals(ticks, ticks.map((_, i) => i), "the counter neither restarted nor skipped");

    const status = await json<{ state: string; pid: number }>(root, "status", "tiny");
    assertEquals([status.state, status.pid], ["running", moved.pid]);
    // The monitor socket is the new QEMU's now, and it forwards the port.
    assert(await forwards(join(dir, "qmp.sock"), port), "the new QEMU forwards the port");
    assert(!free(port));
    const history = await json<{ records: { event: string; detail: unknown }[] }>(
      root,
      "history",
      "tiny",
    );
    assertEquals(history.records.at(-1), {
      ...history.records.at(-1)!,
      event: "migrated",
      detail: { to: "local" },
    });
    // Nothing of the move is left beside the VM.
    const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
    assertEquals(names.filter((n) => n.startsWith("incoming-") || n === "migrate.sock"), []);

    const stop = await runGini(root, ["stop", "tiny", "--timeout", "1"]);
    assertEquals(stop.code, 0, stop.stderr);
    assert(free(port), "the port is free once the VM stopped");
  } finally {
    await runGini(root, ["kill", "tiny"]);
  }
});

Deno.test("gini start --incoming waits for a VM's state; gini migrate --to sends it there and stops here", async () => {
  const source = await countingVm("");
  const target = await countingVm("");
  const socket = join(target.root, "incoming.sock");
  try {
    assertEquals((await runGini(source.root, ["up", "tiny.toml"])).code, 0);
    assertEquals((await runGini(target.root, ["up", "--no-start", "tiny.toml"])).code, 0);
    const bad = await runGini(target.root, ["start", "tiny", "--incoming", "tcp:nowhere"]);
    assertEquals(bad.code, 2, bad.stderr);
    assertStringIncludes(bad.stderr, '--incoming "tcp:nowhere" is not a QEMU migration URI');

    const waiting = await json<{ outcome: string }>(
      target.root,
      "start",
      "tiny",
      "--incoming",
      `unix:${socket}`,
    );
    assertEquals(waiting.outcome, "waiting");
    await waitFor(join(source.dir, "serial.log"), "tick 2 ", 120);
    const badTo = await runGini(source.root, ["migrate", "tiny", "--to", "ftp://x"]);
    assertEquals(badTo.code, 2);
    assertMatch(badTo.stderr, /--to "ftp:\/\/x" is not a QEMU migration URI/);

    const sent = await json<{ to: string; pid: number | null }>(
      source.root,
      "migrate",
      "tiny",
      "--to",
      `unix:${socket}`,
    );
    assertEquals(sent, { ...sent, to: `unix:${socket}`, pid: null });
    assertEquals((await json<{ state: string }>(source.root, "status", "tiny")).state, "stopped");
    const events = (await json<{ records: { event: string }[] }>(source.root, "history", "tiny"))
      .records.map((r) => r.event);
    assertEquals(events.slice(-2), ["started", "migrated-away"]);
    // Stopped by the move, not by a crash: nothing is reconciled as "exited".
    const after = await runGini(source.root, ["status", "tiny"]);
    assert(!after.stdout.includes("ended without Gini"), after.stdout);

    // The other side runs the guest on from where it was: its console shows the counter going on
    // (the target's log starts empty: it never booted the guest itself).
    const tick = await countsPast(join(target.dir, "serial.log"), -1);
    assert(tick > 0, `the counter went on from where it was: ${tick}`);
    assertEquals((await json<{ state: string }>(target.root, "status", "tiny")).state, "running");
  } finally {
    await runGini(source.root, ["kill", "tiny"]);
    await runGini(target.root, ["kill", "tiny"]);
  }
});
