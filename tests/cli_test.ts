import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { join, relative } from "node:path";
import { compileArgs, giniRunFlags, INCLUDE } from "../scripts/compile.ts";
import { OP_MODULE_FILES } from "../kernel/ops/registry.ts";
import { REPO, runGini, tempEnv } from "./_helpers.ts";

/** Runs the real entry point in a fresh home (or `home`). */
async function gini(args: string[], home?: string) {
  const root = home ?? (await tempEnv()).root;
  return { ...await runGini(root, args), root };
}

const EXAMPLES = ["--plugin-dir", join(REPO, "plugins/examples")];

Deno.test("gini version prints Gini's, the kernel API's and Deno's versions", async () => {
  const { code, stdout } = await gini(["version"]);
  assertEquals(code, 0);
  assertMatch(
    stdout,
    /^gini \d+\.\d+\.\d+ \(kernel API 1\.0\.0, protocol 1, deno \d+\.\d+\.\d+\)\n$/,
  );
});

Deno.test("gini plugins list --json prints each plugin's name, version, core, priority, permissions, ops and stages", async () => {
  const { code, stdout } = await gini([...EXAMPLES, "plugins", "list", "--json"]);
  assertEquals(code, 0);
  const list = JSON.parse(stdout) as Record<string, unknown>[];
  const compat = list.find((p) => p.name === "compat-check")!;
  assertEquals(compat.version, "1.0.0");
  assertEquals(compat.core, false);
  assertEquals(compat.priority, "third-party:160");
  assertEquals(compat.permissions, {
    read: ["/proc/cpuinfo", "/proc/sys/kernel/osrelease"],
    net: [],
    env: [],
    sys: [],
  });
  assertEquals(compat.ops, {
    write: ["{data}/reports"],
    run: [],
    download: [],
    sysfs: [],
    lvm: false,
    request_files: false,
    checkpoint: false,
  });
  assertEquals((compat.stages as { id: string }[]).map((s) => s.id), ["compat-check:write-report"]);
  for (const plugin of list) {
    for (const key of ["name", "version", "core", "priority", "permissions", "ops", "stages"]) {
      assert(key in plugin, key);
    }
  }
});

Deno.test("gini plugins graph prints a Mermaid flowchart of plugins and stages", async () => {
  const { code, stdout } = await gini([...EXAMPLES, "plugins", "graph"]);
  assertEquals(code, 0);
  assertMatch(stdout, /^flowchart LR\n/);
  assertStringIncludes(
    stdout,
    '  subgraph p_compat_check["compat-check 1.0.0"]\n    compat_check_write_report["write-report"]\n  end',
  );
});

Deno.test("gini plugins info names the plugin's grants and entry hash", async () => {
  const { code, stdout } = await gini([...EXAMPLES, "plugins", "info", "compat-check"]);
  assertEquals(code, 0);
  assertStringIncludes(
    stdout,
    "read: /proc/cpuinfo, /proc/sys/kernel/osrelease; net: none; env: none; sys: none; run, write, ffi, import: never",
  );
  assertMatch(stdout, /entry sha256: [0-9a-f]{64}/);
  const missing = await gini([...EXAMPLES, "plugins", "info", "compat-chek"]);
  assertEquals(missing.code, 2);
  assertStringIncludes(missing.stderr, 'Cannot show plugin "compat-chek": it is not loaded');
  assertStringIncludes(missing.stderr, 'hint: Did you mean "compat-check"?');
});

Deno.test("unknown commands and flags exit 2 with did-you-mean", async (t) => {
  for (
    const [args, expected] of [
      [["versoin"], 'Did you mean "version"?'],
      [["plugins", "lst"], 'Did you mean "list"?'],
      [["plugins", "list", "--jsn"], 'Did you mean "--json"?'],
    ] as const
  ) {
    await t.step(args.join(" "), async () => {
      const { code, stderr } = await gini([...args]);
      assertEquals(code, 2);
      assertStringIncludes(stderr, expected);
    });
  }
});

Deno.test("a bad manifest exits 2 naming the file, line and key; --json prints the error as data", async () => {
  const env = await tempEnv();
  const dir = join(env.root, "bad");
  await Deno.mkdir(dir);
  await Deno.writeTextFile(
    join(dir, "plugin.toml"),
    '[plugin]\nname = "bad"\nversion = "1.0.0"\ndescription = "x"\npriority = "core:1"\n\n[compatibility]\nkernel_api = "^1.0.0"\n',
  );
  const text = await gini(["--plugin-dir", dir, "plugins", "list"], env.root);
  assertEquals(text.code, 2);
  assertStringIncludes(
    text.stderr,
    `${join(dir, "plugin.toml")}:5:1: Cannot use "plugin.priority": expected "class:N"`,
  );
  const json = await gini(["--json", "--plugin-dir", dir, "plugins", "list"], env.root);
  assertEquals(json.code, 2);
  const error = JSON.parse(json.stdout).error;
  assertEquals(error.code, "PLUGINS_UNRESOLVED");
  assertEquals(error.problems[0].location, {
    file: join(dir, "plugin.toml"),
    key: "plugin.priority",
    line: 5,
    column: 1,
  });
});

Deno.test("gini --dry-run run prints the plan and changes nothing; a live run exits 0 and writes", async () => {
  const { root, code, stdout } = await gini([
    ...EXAMPLES,
    "--dry-run",
    "run",
    "compat-check:write-report",
  ]);
  assertEquals(code, 0);
  assertStringIncludes(
    stdout,
    `compat-check:write-report\n  Would create directory "${
      join(root, ".local/share/gini/reports")
    }"`,
  );
  assertStringIncludes(stdout, "Summary (dry run: nothing was changed):");
  assertEquals(await Array.fromAsync(Deno.readDir(root)), []);
  const live = await gini([...EXAMPLES, "run", "compat-check:write-report", "--json"], root);
  assertEquals(live.code, 0);
  const report = JSON.parse(live.stdout);
  assertEquals(report.ok, true);
  assertEquals(report.stages[0].ops.map((op: { kind: string }) => op.kind), [
    "fs.mkdir",
    "fs.write",
  ]);
  assertMatch(
    await Deno.readTextFile(join(root, ".local/share/gini/reports/compat.txt")),
    /^kernel: .+\nvirtualization: (vmx|svm|none)\n$/,
  );
});

Deno.test("the compile task includes every module a worker loads and uses the gini task's flags", async () => {
  const args = await compileArgs();
  assertEquals(
    args.slice(1, 1 + (await giniRunFlags()).length - 1),
    (await giniRunFlags()).filter((f) => f !== "--quiet"),
  );
  for (const flag of ["--allow-all", "--no-prompt", "--unstable-worker-options"]) {
    assert(args.includes(flag), flag);
  }
  const mainGraph = await localModules(join(REPO, "main.ts"));
  const entries: string[] = [];
  for await (const dir of Deno.readDir(join(REPO, "plugins"))) {
    for (const candidate of [join(REPO, "plugins", dir.name, "mod.ts")]) {
      try {
        await Deno.stat(candidate);
        entries.push(candidate);
      } catch { /* examples/ holds plugin folders one level down */ }
    }
  }
  for await (const dir of Deno.readDir(join(REPO, "plugins/examples"))) {
    entries.push(join(REPO, "plugins/examples", dir.name, "mod.ts"));
  }
  assert(entries.length > 0);
  for (const entry of entries) {
    for (const module of await localModules(entry)) {
      const rel = relative(REPO, module);
      assert(
        mainGraph.has(module) || INCLUDE.some((dir) => rel.startsWith(dir)),
        `${rel} is loaded by a worker but not included`,
      );
    }
  }
});

Deno.test("every module imported later (importLater) is included in the compiled binary", async () => {
  // Deno's module graph does not follow a specifier built at run time, so deno compile embeds
  // such a module only through --include.
  const found: string[] = [];
  const pattern = /importLater<[^>]*>\(\s*"([^"]+)",\s*import\.meta\.url/g;
  const scan = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(join(REPO, dir))) {
      if (entry.isDirectory) await scan(join(dir, entry.name));
      if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
      const text = await Deno.readTextFile(join(REPO, dir, entry.name));
      for (const m of text.matchAll(pattern)) found.push(join(dir, m[1]!));
    }
  };
  for (const dir of ["cli", "kernel", "workers", "plugins"]) await scan(dir);
  const main = await Deno.readTextFile(join(REPO, "main.ts"));
  for (const m of main.matchAll(pattern)) found.push(join(".", m[1]!));
  assert(found.length >= 8, `only ${found.length} found: the pattern no longer matches`);
  // The op kinds' modules, named in the registry's table.
  assert(OP_MODULE_FILES.length >= 20);
  found.push(...OP_MODULE_FILES.map((file) => relative(REPO, file)));
  for (const rel of found) {
    await Deno.stat(join(REPO, rel)); // a path that names no file fails here
    assert(INCLUDE.some((dir) => rel.startsWith(dir)), `${rel} is imported later but not included`);
  }
});

async function localModules(entry: string): Promise<Set<string>> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(output.code, 0, new TextDecoder().decode(output.stderr));
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { specifier: string }[];
  };
  return new Set(
    info.modules.filter((m) => m.specifier.startsWith("file:")).map((m) =>
      decodeURIComponent(new URL(m.specifier).pathname)
    ),
  );
}
