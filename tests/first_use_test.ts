/**
 * What a new user meets first: the README's main job and every example plan on this host
 * before anything is downloaded, `gini new` writes a file that deploys a usable guest and
 * nothing else, and the CLI reports every bad input with exit code 2, as text or as JSON.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { DENO_DIR, REPO, runGini, tempEnv } from "./_helpers.ts";
import { install } from "../scripts/install.ts";

async function gini(args: string[], home?: string) {
  const root = home ?? (await tempEnv()).root;
  return { ...await runGini(root, args), root };
}

/** Every path under `dir`, for "nothing was written" checks. */
async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, prefix: string) => {
    for await (const e of Deno.readDir(d)) {
      out.push(`${prefix}${e.name}`);
      if (e.isDirectory) await walk(join(d, e.name), `${prefix}${e.name}/`);
    }
  };
  await walk(dir, "");
  return out.sort();
}

const journalLogs = async (home: string) =>
  await Array.fromAsync(Deno.readDir(join(home, ".local/state/gini/journal"))).then(
    (e) => e.map((x) => x.name),
    () => [] as string[],
  );

Deno.test("gini plan works for every example before anything is downloaded; those needing what the host lacks name it", async (t) => {
  const threads = navigator.hardwareConcurrency;
  for (const example of ["headless-linux", "desktop-spice"]) {
    await t.step(`${example} plans, downloads nothing and writes nothing`, async () => {
      const { code, stdout, stderr, root } = await gini([
        "plan",
        join(REPO, "examples", `${example}.toml`),
      ]);
      assertEquals(code, 0, stderr);
      // The catalogue image: its URL and its size from the catalogue, then the overlay on it.
      assertMatch(stdout, /Would download "https:\/\/[^"]+\.(qcow2|img)" \(about \d+\.\d MiB\)/);
      assertMatch(stdout, /Would create qcow2 disk "[^"]+\/root\.qcow2" \(\d+\.0 GiB, overlay of/);
      // Real allocation (the download, the files, qcow2 metadata) apart from virtual sizes.
      assertMatch(stdout, /disk usage: +[\d.]+ MiB \(estimated/);
      assertMatch(stdout, /virtual disks: +\d+\.0 GiB/);
      assertStringIncludes(stdout, "hostfwd=tcp:127.0.0.1:22");
      // The home has no SSH key: the warning says how to get one in.
      assertStringIncludes(stderr, 'make a key with "ssh-keygen -t ed25519"');
      if (example === "desktop-spice" && threads < 4) {
        assertStringIncludes(stderr, `gets 4 vCPUs on a host with ${threads} threads`);
      }
      assertEquals(await listTree(root), []);
    });
  }
  await t.step(
    "headless-linux with a key in ~/.ssh: the key reaches the seed's user-data",
    async () => {
      const { root } = await tempEnv();
      await Deno.mkdir(join(root, ".ssh"));
      const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGini ada@example";
      await Deno.writeTextFile(join(root, ".ssh/id_ed25519.pub"), `${key}\n`);
      const { code, stdout, stderr } = await gini([
        "--json",
        "plan",
        join(REPO, "examples/headless-linux.toml"),
      ], root);
      assertEquals(code, 0, stderr);
      assert(!stderr.includes("ssh-keygen"), stderr);
      const report = JSON.parse(stdout);
      const writes = report.stages.flatMap((
        s: { ops: { kind: string; args: { path?: string; content?: string } }[] },
      ) => s.ops)
        .filter((op: { kind: string; args: { path?: string } }) =>
          op.kind === "fs.write" && op.args.path?.endsWith("/user-data")
        );
      assertStringIncludes(writes[0].args.content, key);
    },
  );
  await t.step("lvm names the volume group the host lacks", async () => {
    const { code, stderr } = await gini(["plan", join(REPO, "examples/lvm.toml")]);
    assertEquals(code, 2);
    assertStringIncludes(stderr, 'lvm.toml:14:1: Cannot find volume group "vg0"');
  });
  await t.step("passthrough names the PCI device the host lacks", async () => {
    const { code, stderr } = await gini(["plan", join(REPO, "examples/passthrough.toml")]);
    assertEquals(code, 2);
    assertStringIncludes(stderr, 'Cannot pass through "0000:01:00.0": no such PCI device');
  });
  await t.step("a failed plan or a refused up leaves no journal log", async () => {
    const { root } = await tempEnv();
    const up = await gini(["up", join(REPO, "examples/lvm.toml")], root);
    assertEquals(up.code, 2);
    assertEquals(await journalLogs(root), []);
  });
});

Deno.test("gini new writes a catalogue Linux guest that plans, refuses bad names and writes nothing in a dry run", async (t) => {
  const { root } = await tempEnv();
  const work = join(root, "work");
  await Deno.mkdir(work);
  // gini new writes into the current folder: run it from `work`.
  const newIn = (args: string[]) => runGini(root, args, {}, work);
  for (
    const [name, args, flag] of [
      ["a name with ..", ["new", "../evil"], "../evil"],
      ["a name with a space", ["new", "my vm"], "my vm"],
      ["an unknown guest", ["new", "x", "--guest", "bsd"], "--guest"],
      ["an unknown image", ["new", "x", "--image", "debain-12"], "--image"],
    ] as const
  ) {
    await t.step(`${name} exits 2 and writes nothing`, async () => {
      const out = await newIn([...args]);
      assertEquals(out.code, 2, out.stderr);
      assertStringIncludes(out.stderr, flag);
      assertEquals(await listTree(root).then((l) => l.filter((p) => !p.startsWith(".local"))), [
        "work",
      ]);
    });
  }
  await t.step("--dry-run shows the file and writes nothing", async () => {
    const out = await newIn(["--dry-run", "new", "web"]);
    assertEquals(out.code, 0, out.stderr);
    assertStringIncludes(out.stdout, `Would write ${join(work, "web.toml")}`);
    assertStringIncludes(out.stdout, 'image = "debian-12"');
    assertEquals(await listTree(work), []);
  });
  await t.step("the written file uses the catalogue image and plans", async () => {
    const out = await newIn(["new", "web", "--image", "ubuntu-24.04"]);
    assertEquals(out.code, 0, out.stderr);
    const text = await Deno.readTextFile(join(work, "web.toml"));
    assertStringIncludes(text, "[linux]");
    assertStringIncludes(text, 'image = "ubuntu-24.04"');
    const plan = await newIn(["plan", "web.toml"]);
    assertEquals(plan.code, 0, plan.stderr);
    assertStringIncludes(plan.stdout, "noble-server-cloudimg-amd64.img");
    assertStringIncludes(plan.stdout, "xorriso");
  });
  await t.step("an existing file is not overwritten", async () => {
    const out = await newIn(["new", "web"]);
    assertEquals(out.code, 2);
    assertStringIncludes(out.stderr, "it exists");
  });
});

Deno.test("the design's create-vm example plans with a warning on a small host; bad flags are named", async () => {
  const { code, stderr } = await gini([
    "--dry-run",
    "create-vm",
    "--name",
    "My macOS VM",
    "--version",
    "monterey",
    "--cpu-cores",
    "64",
    "--ram",
    "8G",
  ]);
  assertEquals(code, 0, stderr);
  assertMatch(stderr, /gets 64 vCPUs on a host with \d+ threads.*--cpu-cores \d+ avoids it/);
  const createVm = (...flags: string[]) =>
    gini(["--dry-run", "create-vm", "--name", "m", "--version", "monterey", ...flags]);
  const ram = await createVm("--ram", "lots");
  assertEquals(ram.code, 2);
  assertStringIncludes(ram.stderr, 'Cannot use --ram "lots"');
  // More memory than the host has: refused, naming the flag rather than a file never written.
  const huge = await createVm("--ram", "64T", "--cpu-cores", "2");
  assertEquals(huge.code, 2, huge.stderr);
  assertMatch(huge.stderr, /error: --ram: Cannot give "m" 64T of memory/);
  assert(!huge.stderr.includes(".toml"), huge.stderr);
});

Deno.test("gini --version and gini version agree; bad input exits 2 as text or JSON, never a stack trace", async (t) => {
  const version = await gini(["version"]);
  const flag = await gini(["--version"]);
  assertEquals([flag.code, flag.stdout], [0, version.stdout]);
  for (
    const [name, args, needle] of [
      ["a bad --stage-timeout", ["run", "--stage-timeout", "abc"], "--stage-timeout"],
      ["a bad --timeout", ["down", "x", "--timeout", "soon"], "--timeout"],
      ["a bad --keep", ["journal", "prune", "--keep", "-1"], "--keep"],
      ["an unknown command", ["verison"], '"version"'],
      ["an unknown flag", ["ls", "--jsn"], '"--json"'],
      ["a missing argument", ["plan"], "vm.toml"],
    ] as const
  ) {
    await t.step(name, async () => {
      const text = await gini([...args]);
      assertEquals(text.code, 2, text.stderr);
      assertStringIncludes(text.stderr, needle);
      assert(!/\n\s+at /.test(text.stderr), text.stderr);
      const json = await gini(["--json", ...args]);
      assertEquals(json.code, 2);
      const error = JSON.parse(json.stdout).error;
      assertEquals(error.code, "USAGE");
      assertStringIncludes(`${error.message} ${error.hint ?? ""}`, needle);
    });
  }
});

Deno.test("gini run with no stage names runs what it can and says what it skipped for want of inputs", async () => {
  const { code, stdout, stderr, root } = await gini([
    "--plugin-dir",
    join(REPO, "plugins/examples"),
    "--dry-run",
    "run",
  ]);
  assertEquals(code, 0, stderr);
  assertStringIncludes(
    stdout,
    'qemu-setup:load-vm-config-toml (skipped: needs "session.user_vm_request", which only a command provides)',
  );
  assertStringIncludes(stdout, "compat-check:write-report\n  Would create directory");
  assertEquals(await listTree(root), []);
});

Deno.test("deno task install writes a gini launcher with the task's flags that runs from any folder", async () => {
  const { root } = await tempEnv();
  const path = await install(join(root, "bin"));
  assertEquals((await Deno.stat(path)).mode! & 0o777, 0o755);
  const out = await new Deno.Command(path, {
    args: ["version"],
    cwd: "/",
    env: { HOME: root, NO_COLOR: "1", PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", DENO_DIR },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const direct = await gini(["version"]);
  assertEquals(new TextDecoder().decode(out.stdout), direct.stdout);
  assertStringIncludes(await Deno.readTextFile(path), "'--unstable-worker-options'");
});
