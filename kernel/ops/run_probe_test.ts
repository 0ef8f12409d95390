/**
 * The run op's probe cache: a version query is answered from `{state}/probes.json` while the
 * program is the same file (path, size, mtime), and asked again once it changes.
 */
import { parseArgs } from "./types.ts";
import { assertEquals, assertThrows } from "../../tests/_assert.ts";
import { join } from "node:path";
import { HostRunner } from "../host/run.ts";
import { runOp } from "./run.ts";
import type { OpEnv } from "./types.ts";

Deno.test("a version probe runs the program once while it is unchanged, and again when it changes", async () => {
  const root = await Deno.makeTempDir({ prefix: "gini-probe-" });
  const bin = join(root, "bin");
  const state = join(root, "state");
  await Deno.mkdir(bin);
  const runs = join(root, "runs");
  const program = join(bin, "frob");
  const write = (version: string) =>
    Deno.writeTextFile(
      program,
      `#!/bin/sh\necho x >> '${runs}'\necho "frob version ${version}"\n`,
      { mode: 0o755 },
    );
  await write("1.0");
  const env = {
    startup: { dirs: { state } },
    host: new HostRunner(`${bin}:/usr/bin:/bin`),
  } as unknown as OpEnv;
  const args = parseArgs(runOp, { argv: ["frob", "--version"], probe: "store" });
  const probe = () => runOp.execute(args, env, null) as Promise<{ stdout: string; cached?: true }>;
  const count = async () => (await Deno.readTextFile(runs)).split("\n").filter(Boolean).length;

  assertEquals((await probe()).stdout, "frob version 1.0\n");
  const again = await probe();
  assertEquals([again.stdout, again.cached, await count()], ["frob version 1.0\n", true, 1]);
  assertEquals((await Deno.stat(join(state, "probes.json"))).mode! & 0o777, 0o600);

  // An upgrade: another file (size and mtime) behind the same path.
  await write("2.0.1");
  await Deno.utime(program, new Date(), new Date(Date.now() + 5000));
  const upgraded = await probe();
  assertEquals([upgraded.stdout, upgraded.cached, await count()], [
    "frob version 2.0.1\n",
    undefined,
    2,
  ]);
  // Without probe, or with "refresh", the program runs; "use" reads the cache and writes nothing.
  const plain = parseArgs(runOp, { argv: ["frob", "--version"] });
  await runOp.execute(plain, env, null);
  assertEquals(await count(), 3);
  const refresh = parseArgs(runOp, { argv: ["frob", "--version"], probe: "refresh" });
  assertEquals((await runOp.execute(refresh, env, null) as { cached?: true }).cached, undefined);
  assertEquals(await count(), 4);
  // A damaged cache is no cache: the program runs, and a good file replaces it.
  await Deno.writeTextFile(join(state, "probes.json"), '{"torn": ');
  assertEquals((await probe()).cached, undefined);
  assertEquals(await count(), 5);
  assertEquals((await probe()).cached, true);
  await Deno.remove(join(state, "probes.json"));
  const use = parseArgs(runOp, { argv: ["frob", "--version"], probe: "use" });
  await runOp.execute(use, env, null);
  await runOp.execute(use, env, null);
  assertEquals(await count(), 7, "without a kept answer, use runs the program each time");
  assertEquals(
    await Deno.stat(join(state, "probes.json")).then(() => "kept", () => "none"),
    "none",
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("probe is only for a version query", () => {
  assertThrows(() => parseArgs(runOp, { argv: ["frob", "--delete-all"], probe: "store" }));
});
