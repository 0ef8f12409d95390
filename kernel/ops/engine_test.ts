import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../tests/_assert.ts";
import { join } from "node:path";
import { ConflictError, PermissionDeniedError } from "../errors.ts";
import { HostRunner } from "../host/run.ts";
import { resolveStartupEnv } from "../paths.ts";
import type { Grants } from "./broker.ts";
import { OpEngine, OpRequestError } from "./engine.ts";
import { sha256Hex } from "./_fs.ts";

async function setup(mode: "dry" | "live") {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "gini-engine-" }));
  const startup = resolveStartupEnv({ dataDir: join(root, "data") }, {
    HOME: root,
    PATH: Deno.env.get("PATH"),
  }, root);
  const grants: Grants = {
    plugin: "t",
    write: [root],
    read: [root],
    run: new Set(["qemu-img"]),
    lvm: false,
    download: [],
  };
  return {
    root,
    grants,
    engine: new OpEngine(mode, { startup, host: new HostRunner(startup.path) }),
  };
}

Deno.test("OpEngine: fs.write over an existing file is a conflict in a dry run and refused live", async () => {
  const dry = await setup("dry");
  await Deno.writeTextFile(join(dry.root, "f"), "old");
  await dry.engine.request(dry.grants, "s", {
    kind: "fs.write",
    args: { path: join(dry.root, "f"), content: "new" },
  });
  assertEquals(dry.engine.summary().conflicts, [
    `"${join(dry.root, "f")}" exists and would be overwritten`,
  ]);
  assertEquals(await Deno.readTextFile(join(dry.root, "f")), "old");

  const live = await setup("live");
  await Deno.writeTextFile(join(live.root, "f"), "old");
  await assertRejects(
    () =>
      live.engine.request(live.grants, "s", {
        kind: "fs.write",
        args: { path: join(live.root, "f"), content: "new" },
      }),
    ConflictError,
  );
  assertEquals(await Deno.readTextFile(join(live.root, "f")), "old");
});

Deno.test("OpEngine: fs.edit refuses a file changed since the plan and records an exact inverse", async () => {
  const { root, grants, engine } = await setup("live");
  const path = join(root, "grub");
  await Deno.writeTextFile(path, 'GRUB_CMDLINE_LINUX=""\n');
  const planned = await sha256Hex('GRUB_CMDLINE_LINUX=""\n');
  await Deno.writeTextFile(path, "changed behind our back\n");
  await assertRejects(
    () =>
      engine.request(grants, "s", {
        kind: "fs.edit",
        args: { path, expectSha256: planned, content: "x" },
      }),
    ConflictError,
    "changed since the plan was made",
  );
  assertEquals(await Deno.readTextFile(path), "changed behind our back\n");

  const current = await sha256Hex("changed behind our back\n");
  await engine.request(grants, "s", {
    kind: "fs.edit",
    args: { path, expectSha256: current, content: "new\n" },
  });
  assertEquals(await Deno.readTextFile(path), "new\n");
  const record = engine.records.at(-1)!;
  // The inverse names the old content by hash (the journal keeps it as a blob) and checks that
  // the file still has what the edit wrote before putting it back.
  assertEquals(record.inverse, [{
    kind: "fs.restore",
    args: { path, sha256: current, mode: 0o644, expect: await sha256Hex("new\n") },
  }]);
});

Deno.test("OpEngine: fs.mkdir's inverse removes only the directories it created, innermost first", async () => {
  const { root, grants, engine } = await setup("live");
  await engine.request(grants, "s", { kind: "fs.mkdir", args: { path: join(root, "a/b/c") } });
  assertEquals(engine.records[0]!.inverse, [
    { kind: "fs.remove", args: { path: join(root, "a/b/c"), onlyIfEmpty: true } },
    { kind: "fs.remove", args: { path: join(root, "a/b"), onlyIfEmpty: true } },
    { kind: "fs.remove", args: { path: join(root, "a"), onlyIfEmpty: true } },
  ]);
});

Deno.test("OpEngine: run checks the program grant, and read-only invocations run even in a dry run", async () => {
  const { root, grants, engine } = await setup("dry");
  const version = await engine.request(grants, "s", {
    kind: "run",
    args: { argv: ["qemu-img", "--version"] },
  }) as {
    stdout: string;
  };
  assertStringIncludes(version.stdout, "qemu-img version");
  const created = await engine.request(grants, "s", {
    kind: "run",
    args: { argv: ["qemu-img", "create", "-f", "qcow2", join(root, "x.qcow2"), "1G"] },
  });
  assertEquals(created, { code: 0, stdout: "", stderr: "", simulated: true });
  await assertRejects(
    () => engine.request(grants, "s", { kind: "run", args: { argv: ["rm", "-rf", "/"] } }),
    PermissionDeniedError,
    "not in the plugin's run grant",
  );
  await assertRejects(
    () =>
      engine.request(grants, "s", {
        kind: "run",
        args: { argv: ["/usr/bin/qemu-img", "--version"] },
      }),
    PermissionDeniedError,
    "programs are named without a path",
  );
  assertEquals(engine.summary().operations, 1);
  assertEquals(engine.summary().readOnly, 1);
});

Deno.test("OpEngine: unknown op kinds and bad arguments are refused with a hint", async () => {
  const { grants, engine } = await setup("dry");
  const unknown = await assertRejects(
    () => engine.request(grants, "s", { kind: "fs.wirte", args: {} }),
    OpRequestError,
  );
  assertEquals(unknown.hint, 'Did you mean "fs.write"?');
  await assertRejects(
    () => engine.request(grants, "s", { kind: "fs.write", args: { path: 3 } }),
    OpRequestError,
    'argument "path" is invalid',
  );
  assert(engine.records.length === 0);
});

Deno.test("OpEngine: fs.restore puts a backup blob back, is idempotent, and refuses a file changed since", async () => {
  const { root, grants: pluginGrants, engine } = await setup("live");
  // fs.restore is the kernel's (rollbacks): a plugin asking for it is refused.
  const grants = { ...pluginGrants, plugin: "kernel:recovery" };
  const path = join(root, "conf");
  const old = "old content\n";
  const sha = await sha256Hex(old);
  const blob = join(root, ".local/state/gini/journal/blobs", sha);
  await Deno.mkdir(join(root, ".local/state/gini/journal/blobs"), { recursive: true });
  await Deno.writeTextFile(blob, old);
  await Deno.writeTextFile(path, "gini's\n");
  const restore = {
    kind: "fs.restore",
    args: { path, sha256: sha, expect: await sha256Hex("gini's\n") },
  };
  await assertRejects(
    () => engine.request(pluginGrants, "s", restore),
    PermissionDeniedError,
    "only the kernel's own rollback",
  );
  assertEquals(await Deno.readTextFile(path), "gini's\n");
  await engine.request(grants, "s", restore);
  assertEquals(await Deno.readTextFile(path), old);
  assertEquals(
    (await engine.request(grants, "s", restore) as { restored: boolean }).restored,
    false,
  );
  await Deno.writeTextFile(path, "the user's edit\n");
  await assertRejects(
    () => engine.request(grants, "s", restore),
    ConflictError,
    "changed since Gini wrote it",
  );
  assertEquals(await Deno.readTextFile(path), "the user's edit\n");
  await Deno.remove(blob);
  await Deno.writeTextFile(path, "gini's\n");
  await assertRejects(() => engine.request(grants, "s", restore), Error, "backup");
});

Deno.test("OpEngine: a file the same stage created and then removes needs no backup; one that existed does", async () => {
  const { root, grants, engine } = await setup("live");
  const scratch = join(root, "scratch.img");
  await engine.request(grants, "s", { kind: "fs.write", args: { path: scratch, content: "a" } });
  await engine.request(grants, "s", { kind: "fs.remove", args: { path: scratch } });
  assertEquals(engine.records.at(-1)!.inverse, []);
  const kept = join(root, "kept");
  await Deno.writeTextFile(kept, "the user's\n");
  await engine.request(grants, "s", { kind: "fs.remove", args: { path: kept } });
  assertEquals(engine.records.at(-1)!.inverse![0]!.kind, "fs.restore");
});
