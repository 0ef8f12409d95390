/**
 * A stage that times out while the kernel works for it: what it started (a program and its
 * children, a download) is stopped and journaled as cancelled before the rollback begins, and
 * nothing of it is left behind. Evidence is taken from outside: /proc, the journal, the cache.
 *
 * @module
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { runStages } from "../kernel/mod.ts";
import { listTransactions, readJournal } from "../kernel/journal/journal.ts";
import { HostRunner } from "../kernel/host/run.ts";
import { OpCancelledError, OpEngine, type OpRecord } from "../kernel/ops/engine.ts";
import type { Grants } from "../kernel/ops/broker.ts";
import { InterruptedError } from "../kernel/errors.ts";
import { loadFixtures, processesWith, recordingUi, tempEnv, uniqueSeconds } from "./_helpers.ts";

/** The records of the one transaction in a state folder, as written. */
async function journalOf(stateDir: string) {
  const [tx, ...more] = await listTransactions(stateDir);
  assertEquals(more.length, 0);
  return (await readJournal(tx!.file)).records;
}

/**
 * The cancelled op's `done` (ok: false, saying why) comes before every record of the rollback,
 * which undoes the file the stage wrote first.
 */
function assertCancelledBeforeRollback(
  records: Awaited<ReturnType<typeof journalOf>>,
  kind: string,
): void {
  const intent = records.find((r) => r.type === "intent" && r.kind === kind) as
    | { seq: number }
    | undefined;
  assert(intent, `the ${kind} op was journaled`);
  const doneAt = records.findIndex((r) => r.type === "done" && r.seq === intent.seq);
  const done = records[doneAt] as { ok: boolean; error?: string };
  assertEquals(done.ok, false);
  assertStringIncludes(done.error ?? "", 'Cancelled: "sleeper:nap" did not finish within 1000 ms');
  const firstUndo = records.findIndex((r) => r.type === "undone");
  assert(firstUndo > doneAt, "the rollback starts after the cancelled op is journaled");
  assertEquals(records.at(-1)!.type, "abort");
}

Deno.test("a stage that times out during a long run leaves no process behind, journaled as cancelled before the rollback", async () => {
  const env = await tempEnv();
  const seconds = uniqueSeconds();
  const begun = performance.now();
  const { result } = await runStages({
    env,
    loaded: await loadFixtures("sleeper"),
    ui: recordingUi(),
    dryRun: false,
    seeds: { "sleeper.task": { kind: "run", seconds } },
  });
  assertEquals(result.ok, false);
  assertStringIncludes(result.error!.message, '"sleeper:nap" did not finish within 1000 ms');
  assertEquals(processesWith(seconds), [], "the sleep the stage started is gone");
  assert(performance.now() - begun < 30_000);
  assertCancelledBeforeRollback(await journalOf(env.dirs.state), "run");
  const left = await Array.fromAsync(Deno.readDir(join(env.dirs.data, "sleeper"))).catch(() => []);
  assertEquals(left, [], "the rollback removed what the stage wrote");
});

/** A server on 127.0.0.1 that sends headers and a first part of the body, then nothing. */
function stallingServer(sent: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections: Deno.Conn[] = [];
  /** Resolves when the client closes the connection it stalls. */
  const closedByClient = (async () => {
    const conn = await listener.accept();
    connections.push(conn);
    const buffer = new Uint8Array(4096);
    await conn.read(buffer);
    const head = `HTTP/1.1 200 OK\r\ncontent-length: ${sent * 4}\r\n\r\n`;
    await conn.write(new TextEncoder().encode(head));
    await conn.write(new Uint8Array(sent).fill(7));
    // The kernel's download is now waiting for the rest: a read returns only when it hangs up.
    while ((await conn.read(buffer).catch(() => null)) !== null) { /* ignore */ }
    return true;
  })().catch(() => false);
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/stalls.img`,
    closedByClient,
    close() {
      listener.close();
      for (const conn of connections) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
    },
  };
}

Deno.test("a stage that times out during a download aborts the request and removes the partial file before the rollback", async () => {
  const env = await tempEnv();
  const server = stallingServer(64 * 1024);
  try {
    const { result } = await runStages({
      env,
      loaded: await loadFixtures("sleeper"),
      ui: recordingUi(),
      dryRun: false,
      seeds: { "sleeper.task": { kind: "download", url: server.url } },
    });
    assertEquals(result.ok, false);
    assertStringIncludes(result.error!.message, '"sleeper:nap" did not finish within 1000 ms');
    assertEquals(await server.closedByClient, true, "the request was aborted");
    const partial = join(env.dirs.cache, "downloads", "partial");
    assertEquals(await Array.fromAsync(Deno.readDir(partial)), [], "no partial file is left");
    assertCancelledBeforeRollback(await journalOf(env.dirs.state), "download");
  } finally {
    server.close();
  }
});

Deno.test("OpEngine.cancelAll() stops every op in flight, resolves once they are journaled, and refuses later ops", async () => {
  const env = await tempEnv();
  const seen: OpRecord[] = [];
  const engine = new OpEngine("live", { startup: env, host: new HostRunner(env.path) }, {
    afterExecute: (record) => void seen.push({ ...record }),
  });
  const grants: Grants = {
    plugin: "kernel:test",
    write: [],
    read: [],
    run: new Set(["sleep"]),
    lvm: false,
    download: [],
  };
  const [first, second] = [uniqueSeconds(), uniqueSeconds()];
  const running = [first, second].map((seconds) =>
    engine.request(grants, "s", { kind: "run", args: { argv: ["sleep", seconds] } })
  );
  const failed = running.map((r) => assertRejects(() => r, OpCancelledError));
  for (let i = 0; i < 1000 && processesWith(first).length + processesWith(second).length < 2; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await engine.cancelAll("the kernel received SIGTERM");
  assertEquals([...processesWith(first), ...processesWith(second)], []);
  assertEquals(seen.map((r) => [r.status, r.cancelled, r.error]), [
    ["failed", true, "Cancelled: the kernel received SIGTERM"],
    ["failed", true, "Cancelled: the kernel received SIGTERM"],
  ]);
  await Promise.all(failed);
  await assertRejects(
    () => engine.request(grants, "s", { kind: "run", args: { argv: ["sleep", "0"] } }),
    InterruptedError,
  );
});
