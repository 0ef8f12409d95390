import { assert, assertEquals } from "../../tests/_assert.ts";
import { join } from "../../workers/path.ts";
import { tempEnv } from "../../tests/_helpers.ts";
import { loadPlugins } from "../mod.ts";
import { discardPrestarted, PluginHost, prestart, takePrestarted } from "./host.ts";
import { cachedCoreManifests, discoverPlugins, saveCheckedManifests } from "./discover.ts";

const manifest = (description: string, priority = "third-party:160") =>
  `[plugin]
name = "cached"
version = "1.0.0"
description = "${description}"
priority = "${priority}"

[compatibility]
kernel_api = "^1.0.0"
`;

Deno.test("a checked manifest is reused only while its text is the same, and kept only by a live run", async () => {
  const root = await Deno.makeTempDir({ prefix: "gini-cache-" });
  const dir = join(root, "plugins", "cached");
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "plugin.toml"), manifest("first"));
  const file = join(root, "state", "manifests.json");
  const sources = [{ dir: join(root, "plugins"), origin: "extra" as const }];

  // Discovery alone (a plan, a query, a dry run) reads the cache and writes none.
  await discoverPlugins(sources, file);
  assertEquals(await Deno.stat(file).catch(() => null), null);

  const first = await discoverPlugins(sources, file);
  saveCheckedManifests();
  assertEquals(first.manifests[0]?.plugin.description, "first");
  assertEquals((await Deno.stat(file)).mode! & 0o777, 0o600);
  assertEquals(cachedDescriptions(file), ["first"]);

  // Edited: checked again, and a mistake is reported, not hidden by the cache.
  await Deno.writeTextFile(join(dir, "plugin.toml"), manifest("second", "core:60"));
  const second = await discoverPlugins(sources, file);
  saveCheckedManifests();
  assertEquals(second.manifests, []);
  assert(second.errors.some((e) => e.message.includes("core")), second.errors[0]?.message);

  await Deno.writeTextFile(join(dir, "plugin.toml"), manifest("third"));
  const third = await discoverPlugins(sources, file);
  saveCheckedManifests();
  assertEquals(third.manifests[0]?.plugin.description, "third");
  assertEquals(cachedDescriptions(file), ["third"]);

  // The same text in another folder, named relative to another working folder: that folder's.
  const other = join(root, "elsewhere", "plugins", "cached");
  await Deno.mkdir(other, { recursive: true });
  await Deno.copyFile(join(dir, "plugin.toml"), join(other, "plugin.toml"));
  const cwd = Deno.cwd();
  try {
    Deno.chdir(root);
    const here = await discoverPlugins([{ dir: "plugins", origin: "extra" }], file);
    saveCheckedManifests();
    Deno.chdir(join(root, "elsewhere"));
    const there = await discoverPlugins([{ dir: "plugins", origin: "extra" }], file);
    assertEquals(here.manifests[0]?.dir, dir);
    assertEquals(there.manifests[0]?.dir, other);
  } finally {
    Deno.chdir(cwd);
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("a worker is started ahead only from a core manifest whose file still holds its text", async () => {
  const env = await tempEnv();
  const file = join(env.dirs.state, "manifests.json");
  await loadPlugins(env, []);
  saveCheckedManifests();
  const core = cachedCoreManifests(file);
  assert(core.some((m) => m.plugin.name === "deploy"), "deploy is cached");
  // An entry whose text is not its file's, or outside Gini's core plugins, is not used.
  const data = JSON.parse(await Deno.readTextFile(file));
  const [path, entry] = Object.entries(data.entries).find(([p]) => p.includes("/deploy/"))! as [
    string,
    { text: string; manifest: { dir: string } },
  ];
  entry.text += "\n# changed";
  data.entries["/tmp/elsewhere/plugin.toml"] = { ...entry, text: "x" };
  entry.manifest.dir = "/tmp/elsewhere";
  await Deno.writeTextFile(file, JSON.stringify(data));
  const after = cachedCoreManifests(file);
  assertEquals(after.some((m) => m.plugin.name === "deploy"), false, path);
  assertEquals(after.some((m) => m.file.startsWith("/tmp/elsewhere")), false);
  await Deno.remove(env.root, { recursive: true });
});

/** The descriptions of the manifests the cache at `file` holds. */
function cachedDescriptions(file: string): string[] {
  const data = JSON.parse(Deno.readTextFileSync(file));
  return Object.values(
    data.entries as Record<string, { manifest: { plugin: { description: string } } }>,
  )
    .map((e) => e.manifest.plugin.description);
}

Deno.test("a worker started ahead is taken only by a run that would start the same one", async () => {
  const env = await tempEnv();
  const loaded = await loadPlugins(env, []);
  const recovery = loaded.plugins.find((m) => m.plugin.name === "recovery")!;
  try {
    prestart(recovery, env, false);
    // Another mode, or another manifest: not this worker.
    assertEquals(takePrestarted(recovery, env, true, () => {}), undefined);
    const wider = { ...recovery, permissions: { ...recovery.permissions, net: ["example.org"] } };
    assertEquals(takePrestarted(wider, env, false, () => {}), undefined);
    const taken = takePrestarted(recovery, env, false, () => {});
    assert(taken instanceof PluginHost);
    assertEquals((await taken.start()).stages, []);
    taken.terminate("done");
    // Only once.
    assertEquals(takePrestarted(recovery, env, false, () => {}), undefined);

    // Only a plugin shipped with Gini is started ahead; the rest are ended when the run ends.
    prestart({ ...recovery, origin: "extra" }, env, false);
    assertEquals(takePrestarted({ ...recovery, origin: "extra" }, env, false, () => {}), undefined);
    prestart(recovery, env, true);
  } finally {
    discardPrestarted();
  }
  assertEquals(takePrestarted(recovery, env, true, () => {}), undefined);
  await Deno.remove(env.root, { recursive: true });
});
