import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../tests/_assert.ts";
import { HostCommandError } from "../errors.ts";
import { HostRunner, OUTPUT_LIMIT, TIMED_OUT_CODE } from "./run.ts";
import { processesWith, uniqueSeconds } from "../../tests/_helpers.ts";

const host = new HostRunner(Deno.env.get("PATH") ?? "/usr/bin:/bin");

/** Waits until `count` processes with `arg` exist (they are started asynchronously). */
async function started(arg: string, count: number): Promise<void> {
  for (let i = 0; i < 1000 && processesWith(arg).length < count; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assertEquals(processesWith(arg).length, count, `${count} processes with ${arg}`);
}

Deno.test("HostRunner.run() stops the program and the children it started when its signal aborts, and rejects once all are gone", async () => {
  const seconds = uniqueSeconds();
  const controller = new AbortController();
  const reason = new Error("cancelled by the test");
  const running = host.run(["sh", "-c", `sleep ${seconds} & sleep ${seconds}; echo done`], {
    signal: controller.signal,
  });
  await started(seconds, 2);
  controller.abort(reason);
  const error = await assertRejects(() => running);
  assertEquals(error, reason);
  assertEquals(processesWith(seconds), [], "no process of the group outlives run()");
});

Deno.test("HostRunner.run() kills a group that ignores SIGTERM after the grace period, and reports the timeout", async () => {
  const seconds = uniqueSeconds();
  const begun = performance.now();
  const result = await host.run(
    ["sh", "-c", `trap '' TERM; sleep ${seconds} & sleep ${seconds}; echo never`],
    { timeoutMs: 300, killGraceMs: 400, noThrow: true },
  );
  const took = performance.now() - begun;
  assertEquals(result.code, TIMED_OUT_CODE);
  assertEquals(result.stdout, "");
  assertStringIncludes(result.stderr, "stopped after its time limit of 300 ms");
  assert(took >= 700, `SIGKILL came only after the grace period (took ${took.toFixed(0)} ms)`);
  assertEquals(processesWith(seconds), []);

  const error = await assertRejects(
    () => host.run(["sleep", uniqueSeconds()], { timeoutMs: 100 }),
    HostCommandError,
  );
  assertEquals(error.exitStatus, TIMED_OUT_CODE);
  assertEquals(error.hint, "It did not finish within 100 ms");
});

Deno.test("HostRunner.run() keeps stdout's head and stderr's tail, each at most OUTPUT_LIMIT", async () => {
  const size = 3 * OUTPUT_LIMIT;
  const result = await host.run([
    "sh",
    "-c",
    `printf first; head -c ${size} /dev/zero | tr '\\0' o; ` +
    `head -c ${size} /dev/zero | tr '\\0' e >&2; printf last >&2`,
  ]);
  assertEquals(result.stdout.length, OUTPUT_LIMIT);
  assert(result.stdout.startsWith("firstooo"));
  assertEquals(result.stderr.length, OUTPUT_LIMIT);
  assert(result.stderr.endsWith("eeelast"));
  assertEquals(
    await host.run(["cat"], { stdin: "typed in\n" }),
    { code: 0, stdout: "typed in\n", stderr: "" },
  );
});

Deno.test("HostRunner.run() returns when the program exits even if a process it left behind holds its output open", async () => {
  const seconds = uniqueSeconds();
  try {
    const begun = performance.now();
    const result = await host.run(["sh", "-c", `sleep ${seconds} & echo started`]);
    assertEquals(result.stdout, "started\n");
    assert(performance.now() - begun < 10_000);
  } finally {
    for (const pid of processesWith(seconds)) Deno.kill(pid, "SIGKILL");
  }
});
