import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { runStages } from "../kernel/mod.ts";
import { loadFixtures, recordingUi, snapshotTree, tempEnv } from "./_helpers.ts";

async function writeAs(
  target: (env: { data: string; root: string }) => string,
  prepare?: (env: { data: string; root: string }) => Promise<void>,
) {
  const env = await tempEnv();
  const places = { data: env.dirs.data, root: env.root };
  await Deno.mkdir(join(env.dirs.data, "escaper"), { recursive: true });
  await Deno.mkdir(join(env.root, "outside"), { recursive: true });
  await Deno.writeTextFile(join(env.root, "outside/victim.txt"), "original\n");
  await prepare?.(places);
  const before = await snapshotTree(env.root);
  const { result } = await runStages({
    env,
    loaded: await loadFixtures("escaper"),
    ui: recordingUi(),
    dryRun: false,
    seeds: { "escaper.target": target(places) },
  });
  return { env, result, before, after: await snapshotTree(env.root) };
}

Deno.test("fs.write inside the plugin's grant succeeds", async () => {
  const { result, env } = await writeAs(({ data }) => join(data, "escaper/ok.txt"));
  assert(result.ok, result.error?.message);
  assertEquals(await Deno.readTextFile(join(env.dirs.data, "escaper/ok.txt")), "escaped\n");
});

Deno.test("fs.write is refused with PermissionDeniedError outside the grant, through .., and through a symlink", async (t) => {
  const cases: [
    string,
    (p: { data: string; root: string }) => string,
    ((p: { data: string; root: string }) => Promise<void>)?,
  ][] = [
    ["outside the grant", ({ root }) => join(root, "outside/victim.txt")],
    ["through ..", ({ data }) => `${data}/escaper/../../outside/victim.txt`],
    [
      "through a symlinked directory inside the grant",
      ({ data }) => join(data, "escaper/link/victim.txt"),
      ({ data, root }) => Deno.symlink(join(root, "outside"), join(data, "escaper/link")),
    ],
    [
      "through a symlinked file inside the grant",
      ({ data }) => join(data, "escaper/victim-link.txt"),
      ({ data, root }) =>
        Deno.symlink(join(root, "outside/victim.txt"), join(data, "escaper/victim-link.txt")),
    ],
    [
      "through a dangling symlink to a new file outside",
      ({ data }) => join(data, "escaper/new-link.txt"),
      ({ data, root }) =>
        Deno.symlink(join(root, "outside/new.txt"), join(data, "escaper/new-link.txt")),
    ],
    ["with a relative path", () => "escaper/relative.txt"],
  ];
  for (const [name, target, prepare] of cases) {
    await t.step(name, async () => {
      const { result, before, after } = await writeAs(target, prepare);
      assertEquals(result.ok, false);
      assertStringIncludes(result.error!.message, 'Cannot let plugin "escaper" run "fs.write" on');
      assertEquals(after, before, "nothing on disk changed");
    });
  }
});

Deno.test("a plugin cannot borrow the kernel's authority: undo programs, environment, setuid modes and fs.restore are checked", async (t) => {
  for (
    const [kind, expected] of [
      ["undo", 'run "run" on "sh"'],
      ["env", "LD_PRELOAD"],
      ["path", "PATH"],
      ["setuid", "no setuid"],
      ["restore", "only the kernel's own rollback"],
    ] as const
  ) {
    await t.step(kind, async () => {
      const env = await tempEnv();
      const canary = join(env.root, "canary");
      const { result } = await runStages({
        env,
        loaded: await loadFixtures("borrower"),
        ui: recordingUi(),
        dryRun: false,
        seeds: { "borrower.attempt": { kind, canary } },
      });
      assertEquals(result.ok, false);
      assertStringIncludes(result.error!.message, expected);
      // Evidence from outside the plugin: no canary, and no file with setuid or setgid bits.
      assertEquals(await Deno.stat(canary).then(() => true, () => false), false);
      const dir = join(env.dirs.data, "borrower");
      const entries = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
      for (const entry of entries) {
        assertEquals((await Deno.stat(join(dir, entry.name))).mode! & 0o7000, 0, entry.name);
      }
    });
  }
});
