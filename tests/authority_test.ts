/**
 * The kernel never lends its authority to a plugin: hostile plugins that point the argv of
 * programs they may run outside their grants, ask for programs whose arguments the kernel
 * cannot check, climb out of --host-root with ".." or a symlink, or read the kernel's own /proc
 * files. Evidence from outside the plugin: canary paths that stay absent, a secret that appears
 * in no output, exit codes.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { runStages } from "../kernel/mod.ts";
import { PermissionDeniedError, PluginResolutionError } from "../kernel/errors.ts";
import { HostRunner } from "../kernel/host/run.ts";
import type { Grants } from "../kernel/ops/broker.ts";
import { OpEngine } from "../kernel/ops/engine.ts";
import { parseManifest } from "../kernel/plugins/manifest.ts";
import { resolveStartupEnv } from "../kernel/paths.ts";
import { FIXTURE_PLUGINS, loadFixtures, recordingUi, runGini, tempEnv } from "./_helpers.ts";

const SECRET = "gini-authority-secret-5f1c9e";

const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);

Deno.test("run checks the paths in a program's argv against the plugin's grants, its undo's too, and refuses an argv the kernel cannot read", async (t) => {
  const cases: [kind: string, expected: string, dryRun?: boolean][] = [
    ["create", "outside the plugin's write grant"],
    ["undo", "outside the plugin's write grant"],
    ["convert", "outside the plugin's read grant"],
    ["info", "outside the plugin's read grant", true],
    ["rebase", 'subcommand "rebase" is not understood'],
    ["xorriso", 'only "-as mkisofs"'],
    ["mcopy", "outside the plugin's write grant"],
    ["launch", "not ones the kernel can check"],
    ["backing", "outside the plugin's read grant"],
    ["two-o", 'option "-o" is given more than once'],
    ["equals", "outside the plugin's write grant"],
    ["protocol", "names a protocol, not a file"],
    ["header", "give its format as raw"],
    ["proc-copy", "not those of a process"],
  ];
  for (const [kind, expected, dryRun] of cases) {
    await t.step(`${kind}${dryRun ? " (dry run)" : ""}`, async () => {
      const env = await tempEnv();
      const canary = join(env.root, "canary.img");
      const secret = join(env.root, "secret.txt");
      await Deno.writeTextFile(secret, `${SECRET}\n`);
      const ui = recordingUi();
      const { result } = await runStages({
        env,
        loaded: await loadFixtures("argv_borrower"),
        ui,
        dryRun: dryRun ?? false,
        seeds: { "argv_borrower.attempt": { kind, canary, secret } },
      });
      assertEquals(result.ok, false, `the ${kind} attempt was let through`);
      assertStringIncludes(result.error!.message, 'Cannot let plugin "argv-borrower"');
      assertStringIncludes(result.error!.message, expected);
      // Evidence from outside the plugin: no canary, nothing made from the secret, no leak.
      assertEquals(await exists(canary), false, "the canary was written");
      const dir = join(env.dirs.data, "argv-borrower");
      for (const made of ["stolen.img", "overlay.qcow2", "qemu.pid", "fat.img"]) {
        assertEquals(await exists(join(dir, made)), false, `${made} was made`);
      }
      const output = [...ui.out, ...ui.err, JSON.stringify(result.context ?? {})].join("\n");
      assert(!output.includes(SECRET), "the secret leaked into the output");
    });
  }
});

Deno.test("a core plugin may run an argv the kernel cannot read; a third-party plugin may not", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "gini-authority-" }));
  const startup = resolveStartupEnv({ dataDir: join(root, "data") }, { HOME: root }, root);
  const engine = new OpEngine("dry", { startup, host: new HostRunner(startup.path) });
  const grants = (core: boolean): Grants => ({
    plugin: core ? "deploy" : "third",
    core,
    write: [root],
    read: [root],
    run: new Set(["virsh", "qemu-img"]),
    lvm: false,
    download: [],
  });
  const define = { kind: "run", args: { argv: ["virsh", "define", join(root, "vm.xml")] } };
  assertEquals(await engine.request(grants(true), "s", define), {
    code: 0,
    stdout: "",
    stderr: "",
    simulated: true,
  });
  await assertRejects(
    () => engine.request(grants(false), "s", define),
    PermissionDeniedError,
    "the domain XML it reads names disks and files the kernel does not check",
  );
  // A core plugin reads what the user's VM file names, wherever it is; its outputs stay checked.
  const info = {
    kind: "run",
    args: {
      argv: ["qemu-img", "info", "-f", "raw", "/nonexistent/disk.qcow2"],
      allowFailure: true,
    },
  };
  await engine.request(grants(true), "s", info);
  await assertRejects(
    () => engine.request(grants(false), "s", info),
    PermissionDeniedError,
    "outside the plugin's read grant",
  );
  await assertRejects(
    () =>
      engine.request(grants(true), "s", {
        kind: "run",
        args: { argv: ["qemu-img", "create", "-f", "raw", "/nonexistent/x.img", "1M"] },
      }),
    PermissionDeniedError,
    "outside the plugin's write grant",
  );
});

Deno.test("a third-party manifest naming a program without an argv description is refused at load, and the program never runs", async () => {
  await assertRejects(
    () => loadFixtures("shell_runner"),
    PluginResolutionError,
    'the program "sh" in [ops].run',
  );
  const env = await tempEnv();
  const flags = ["--plugin-dir", join(FIXTURE_PLUGINS, "shell_runner")];
  const list = await runGini(env.root, [...flags, "plugins", "list"]);
  assertEquals(list.code, 2, list.stderr);
  assertStringIncludes(list.stderr, "shell_runner/plugin.toml");
  assertStringIncludes(list.stderr, 'Cannot grant plugin "shell-runner" the program "sh"');
  assertStringIncludes(list.stderr, 'Remove "sh" from [ops].run');
  const run = await runGini(env.root, [...flags, "shell-runner"]);
  assertEquals(run.code, 2, run.stderr);
  // The shell would have written into Gini's data directory (HOME is env.root).
  assertEquals(await exists(join(env.root, ".local/share/gini/shell-canary")), false);
});

Deno.test('a grant with ".." is refused at load, and nothing is written where it climbs to', async () => {
  const base = await Deno.makeTempDir({ prefix: "gini-climb-" });
  const hostRoot = join(base, "host");
  await Deno.mkdir(join(base, "outside"), { recursive: true });
  await Deno.mkdir(hostRoot);
  const victim = join(base, "outside/victim.txt");
  const loaded = await loadFixtures("climber").catch((error: Error) => error);
  if (!(loaded instanceof Error)) {
    // Loaded: let it try, so that the evidence below is about what happened.
    await runStages({
      env: await tempEnv(hostRoot),
      loaded,
      ui: recordingUi(),
      dryRun: false,
      seeds: { "climber.target": victim },
    });
  }
  assert(loaded instanceof PluginResolutionError, "the manifest was loaded");
  assertStringIncludes(loaded.message, join(FIXTURE_PLUGINS, "climber/plugin.toml"));
  assertStringIncludes(loaded.message, 'Cannot grant "/../outside" in [ops].write');
  assertEquals(await exists(victim), false);
});

Deno.test('".." is refused in [permissions].read, [ops].write and [ops].sysfs alike', async (t) => {
  const manifest = (table: string, key: string, value: string) =>
    `[plugin]\nname = "x"\nversion = "1.0.0"\ndescription = "x"\npriority = "third-party:160"\n` +
    `[compatibility]\nkernel_api = "^1.0.0"\n[${table}]\n${key} = ["${value}"]\n`;
  for (
    const [table, key, value] of [
      ["permissions", "read", "{config}/../.."],
      ["ops", "write", "/var/lib/../../etc"],
      ["ops", "sysfs", "/sys/../etc/x"],
    ]
  ) {
    await t.step(`[${table}].${key}`, () => {
      const parsed = parseManifest(manifest(table!, key!, value!), "/p/plugin.toml", "extra");
      assert(!parsed.ok);
      assertEquals(parsed.errors.length, 1);
      assertStringIncludes(
        parsed.errors[0]!.message,
        `Cannot grant "${value}" in [${table}].${key}`,
      );
      assertEquals(parsed.errors[0]!.location?.key, `${table}.${key}.0`);
    });
  }
});

Deno.test("a grant that a symlink in the host tree leads outside --host-root is refused, and nothing is written there", async () => {
  const base = await Deno.makeTempDir({ prefix: "gini-escape-" });
  const hostRoot = join(base, "host");
  await Deno.mkdir(join(hostRoot, "var/lib"), { recursive: true });
  await Deno.mkdir(join(base, "outside"));
  await Deno.symlink(join(base, "outside"), join(hostRoot, "var/lib/escape"));
  const { result } = await runStages({
    env: await tempEnv(hostRoot),
    loaded: await loadFixtures("host_escaper"),
    ui: recordingUi(),
    dryRun: false,
  });
  assertEquals(result.ok, false);
  assertStringIncludes(result.error!.message, '"/var/lib/escape"');
  assertStringIncludes(result.error!.message, "outside the host root");
  assertEquals(await exists(join(base, "outside/victim.txt")), false);
});

Deno.test("the kernel serves a plugin no /proc file of a process: not its environment by any name, command line, maps, mounts, files or root", async () => {
  const env = await tempEnv();
  const out = await runGini(
    env.root,
    ["--json", "--plugin-dir", join(FIXTURE_PLUGINS, "proc_snoop"), "proc-snoop"],
    { GINI_AUTHORITY_SECRET: SECRET },
  );
  assertEquals(out.code, 0, out.stderr);
  assert(!out.stdout.includes(SECRET), "the secret leaked into stdout");
  assert(!out.stderr.includes(SECRET), "the secret leaked into stderr");
  const printed = JSON.parse(out.stdout) as Record<string, unknown>;
  const result = (printed.result ?? printed) as Record<string, string | boolean>;
  assertEquals(result.cpuinfo, true, "a system-wide file is still served");
  const attempts = Object.entries(result).filter(([key]) => key !== "cpuinfo");
  assertEquals(attempts.length, 11);
  for (const [key, value] of attempts) {
    assert(String(value).startsWith("denied: "), `${key}: ${value}`);
  }
  assertStringIncludes(String(result.pidEnviron), "not those of a process");
});
