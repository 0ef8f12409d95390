/**
 * The plugin author's path and the test kit: `gini plugins new` makes a folder whose own tests
 * pass under `gini plugins test` (and `deno test`) and which `gini plugins bundle` packages; kit
 * assertions that should fail (a wrong op, a key value breaking its contract, an unresolved
 * dependency, an invalid config) fail naming what differs; the JUnit report is well-formed and
 * read by a real JUnit reader (python3-junitparser) with the right counts; the HTML report is
 * well-formed and lists each test with its outcome; bad input exits 2 naming what to fix.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { DENO_DIR, REPO, runGini, sh } from "./_helpers.ts";
import {
  assertConfigValid,
  assertDependenciesResolved,
  corePlugins,
  KitAssertionError,
  loadPlugin,
} from "../workers/testing.ts";

/** Runs `fn`, which must throw a KitAssertionError; returns its message. */
async function kitFailure(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (error) {
    assert(error instanceof KitAssertionError, `expected a KitAssertionError, got ${error}`);
    return error.message;
  }
  throw new Error("the kit assertion held, but it should have failed");
}

/** A plugin folder made by `gini plugins new` under a fresh home. */
async function scaffold(name: string): Promise<{ home: string; dir: string }> {
  const home = await Deno.makeTempDir({ prefix: "gini-kit-test-" });
  const out = await runGini(home, ["plugins", "new", name, "--dir", "src"]);
  assertEquals(out.code, 0, out.stderr);
  assertStringIncludes(out.stdout, `Made plugin "${name}"`);
  return { home, dir: join(home, "src", name) };
}

/** The JUnit report as python3-junitparser reads it: totals, then each case. */
async function readJunit(file: string) {
  const script = `
import json, sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
cases = []
for suite in xml:
    for case in suite:
        failed = any(isinstance(r, Failure) for r in case.result)
        cases.append({"suite": suite.name, "name": case.name, "failed": failed,
                      "message": next((r.message for r in case.result if isinstance(r, Failure)), None)})
print(json.dumps({"tests": xml.tests, "failures": xml.failures, "errors": xml.errors, "cases": cases}))
`;
  return JSON.parse(await sh("/usr/bin/python3", "-c", script, file)) as {
    tests: number;
    failures: number;
    errors: number;
    cases: { suite: string; name: string; failed: boolean; message: string | null }[];
  };
}

/** Each row of the HTML report: outcome and test name, read back with xmllint's XPath. */
async function htmlRows(file: string): Promise<string[]> {
  await sh("/usr/bin/xmllint", "--noout", file); // well-formed as XML, so every tag is closed
  await sh("/usr/bin/xmllint", "--html", "--noout", file); // and HTML without parser errors
  const rows = Number(await sh("/usr/bin/xmllint", "--xpath", "count(//tbody/tr)", file));
  const out: string[] = [];
  for (let i = 1; i <= rows; i++) {
    const cell = (n: number) =>
      sh("/usr/bin/xmllint", "--xpath", `string(//tbody/tr[${i}]/td[${n}])`, file);
    out.push(`${await cell(1)} ${await cell(3)}`);
  }
  return out;
}

Deno.test("gini plugins new makes a plugin whose own tests pass and which bundles", async () => {
  const { home, dir } = await scaffold("host-notes");
  try {
    const test = await runGini(home, [
      "plugins",
      "test",
      dir,
      "--junit",
      "junit.xml",
      "--html",
      "report.html",
    ]);
    assertEquals(test.code, 0, test.stderr);
    assertMatch(test.stdout, /^5 passed, 0 failed$/m);
    assertStringIncludes(test.stderr, "ok   mod_test.ts > write-note run live writes the note");
    // Neither approved nor a --plugin-dir: it says first that the tests run with Gini's rights.
    const warning = `Running the test files in ${dir} with Gini's full rights`;
    assertStringIncludes(test.stderr.split("\n")[0]!, warning);
    const authoring = await runGini(home, [
      "--plugin-dir",
      join(home, "src"),
      "plugins",
      "test",
      dir,
    ]);
    assertEquals(authoring.code, 0, authoring.stderr);
    assert(!authoring.stderr.includes(warning), authoring.stderr);

    const junit = await readJunit(join(home, "junit.xml"));
    assertEquals([junit.tests, junit.failures, junit.errors], [5, 0, 0]);
    assertEquals(junit.cases.map((c) => c.suite), Array(5).fill("mod_test.ts"));
    assertEquals(junit.cases.filter((c) => c.failed), []);
    const rows = await htmlRows(join(home, "report.html"));
    assertEquals(rows.length, 5);
    assert(rows.every((r) => r.startsWith("passed ")), rows.join("\n"));
    assert(rows.includes("passed the stage:completed handler replies with the stage"));

    const bundle = await runGini(home, ["plugins", "bundle", dir, "-o", "host-notes.zip"]);
    assertEquals(bundle.code, 0, bundle.stderr);
    assertMatch(bundle.stdout, /Wrote .*host-notes\.zip \(host-notes 0\.1\.0, \d+ bytes\)/);
    const install = await runGini(home, ["plugins", "install", "host-notes.zip", "--yes"]);
    assertEquals(install.code, 0, install.stderr);
    const run = await runGini(home, ["--dry-run", "run", "host-notes:write-note"]);
    assertEquals(run.code, 0, run.stderr);
    assertMatch(run.stdout, /Would create file ".*\/host-notes\/note\.txt"/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("the scaffold's tests also pass under deno test, through its deno.json", async () => {
  const { home, dir } = await scaffold("deno-notes");
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", "--no-check"],
      cwd: dir,
      env: { HOME: home, NO_COLOR: "1", DENO_DIR, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, text);
    assertMatch(text, /ok \| 5 passed \| 0 failed/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("gini plugins test reports failing kit tests naming what differs, in JUnit and HTML", async () => {
  const { home, dir } = await scaffold("bad-notes");
  try {
    // A stage whose key breaks its contract (hostname must not be empty).
    const mod = await Deno.readTextFile(join(dir, "mod.ts"));
    await Deno.writeTextFile(
      join(dir, "mod.ts"),
      mod.replace(
        'ctx.set("bad_notes.note", { path, hostname })',
        'ctx.set("bad_notes.note", { path, hostname: "" })',
      ),
    );
    await Deno.writeTextFile(
      join(dir, "more_test.ts"),
      `import { assertDependenciesResolved, loadPlugin, test } from "@gini/testing";
const plugin = await loadPlugin(new URL(".", import.meta.url));
test("write-note removes something", async () => {
  const run = await plugin.stage("write-note", { files: { "/etc/hostname": "h\\n" } });
  run.assertOp(/Would remove/);
});
test("it resolves against an old qemu-setup", async () => {
  const toml = await Deno.readTextFile(new URL("plugin.toml", import.meta.url));
  await Deno.writeTextFile(new URL("plugin.toml", import.meta.url), toml + '\\n[dependencies]\\nqemu-setup = "^2.0.0"\\n');
  try {
    await assertDependenciesResolved(await loadPlugin(new URL(".", import.meta.url)), [{ name: "qemu-setup", version: "1.4.0" }]);
  } finally {
    await Deno.writeTextFile(new URL("plugin.toml", import.meta.url), toml);
  }
});
`,
    );
    const out = await runGini(home, [
      "plugins",
      "test",
      dir,
      "--junit",
      "j.xml",
      "--html",
      "r.html",
    ]);
    assertEquals(out.code, 1, out.stderr);
    assertMatch(out.stdout, /^3 passed, 4 failed$/m);
    assertMatch(
      out.stderr,
      /FAIL mod_test\.ts > write-note plans .*\n.*Expected bad-notes:write-note to succeed, but it failed: .*breaks the key's contract at "hostname"/,
    );
    assertMatch(out.stderr, /found ""/);
    assertMatch(
      out.stderr,
      /FAIL more_test\.ts > write-note removes something.*\n.*matching \/Would remove\/, but its ops were:\n.*fs\.mkdir: Would create directory/,
    );
    assertMatch(out.stderr, /needs "qemu-setup" \^2\.0\.0, but 1\.4\.0 is installed/);

    const junit = await readJunit(join(home, "j.xml"));
    assertEquals([junit.tests, junit.failures, junit.errors], [7, 4, 0]);
    const failed = junit.cases.filter((c) => c.failed);
    assertEquals(
      failed.map((c) => `${c.suite} > ${c.name}`),
      [
        "mod_test.ts > write-note plans its folder and note, and writes a valid key",
        "mod_test.ts > write-note run live writes the note",
        "more_test.ts > write-note removes something",
        "more_test.ts > it resolves against an old qemu-setup",
      ],
    );
    assertStringIncludes(failed[2]!.message!, "Would remove");
    const rows = await htmlRows(join(home, "r.html"));
    assertEquals(rows.filter((r) => r.startsWith("failed ")).length, 4);
    assertEquals(rows.filter((r) => r.startsWith("passed ")).length, 3);
    assert(rows.includes("failed write-note removes something"), rows.join("\n"));
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("kit assertions that should fail say what differs", async (t) => {
  const plugin = await loadPlugin(join(REPO, "plugins/examples/compat_check"));
  const HOST = {
    "/proc/cpuinfo": "flags\t\t: vmx\n",
    "/proc/sys/kernel/osrelease": "6.1.0\n",
  };
  const run = await plugin.stage("write-report", { files: HOST });
  run.assertSucceeded();

  await t.step("a wrong op lists the ops planned", async () => {
    const message = await kitFailure(() => run.assertOp("Would remove", { kind: "fs.remove" }));
    assertStringIncludes(message, 'an op of kind "fs.remove" matching "Would remove"');
    assertMatch(message, /fs\.write: Would create file ".*compat\.txt"/);
  });
  await t.step("a wrong value names the key and both values", async () => {
    const message = await kitFailure(() =>
      run.assertWrote("compat.report", {
        path: `${run.sandbox.dirs.data}/reports/compat.txt`,
        virtualization: "svm",
        kernel: "6.1.0",
      })
    );
    assertStringIncludes(message, 'at "virtualization": expected "svm", found "vmx"');
  });
  await t.step("a key not written names what was", async () => {
    const message = await kitFailure(() => run.assertWrote("compat.other"));
    assertStringIncludes(message, 'to write "compat.other", but it wrote "compat.report"');
  });
  await t.step("a stage given a key it does not read is refused", async () => {
    const message = await kitFailure(() =>
      plugin.stage("write-report", { context: { "session.command": null } })
    );
    assertStringIncludes(message, "it does not read it (its reads: none)");
  });
  await t.step("a missing dependency is named, and core plugins satisfy it", async () => {
    const deploy = await loadPlugin(join(REPO, "plugins/deploy"));
    const message = await kitFailure(() => assertDependenciesResolved(deploy, []));
    assertStringIncludes(message, 'it depends on "qemu-setup", which is not installed');
    await assertDependenciesResolved(deploy, await corePlugins());
  });
  await t.step("an invalid config names each key that does not fit", async () => {
    const schema = {
      type: "object",
      properties: { memory: { type: "integer", minimum: 256 }, name: { type: "string" } },
      required: ["name"],
    };
    assertConfigValid('name = "web"\nmemory = 1024\n', schema, "vm.toml");
    const message = await kitFailure(() =>
      assertConfigValid('memory = "lots"\n', schema, "vm.toml")
    );
    assertStringIncludes(message, "Expected vm.toml to be valid against its schema");
    assertStringIncludes(message, 'at "memory"');
    assertStringIncludes(message, 'at "name"');
  });
  await t.step("a stage expected to fail that succeeded lists its ops", async () => {
    const message = await kitFailure(() => run.assertFailed());
    assertStringIncludes(message, "to fail, but it succeeded with ops:");
  });
});

Deno.test("a live kit call runs an op that acts on the host only with allowHostOps", async (t) => {
  const toucher = await loadPlugin(join(REPO, "tests/fixtures/plugins/host_toucher"));
  const exists = (path: string) => Deno.stat(path).then(() => true, () => false);
  await t.step("live, without the option: refused naming the op and the option", async () => {
    const run = await toucher.stage("touch", { live: true });
    run.assertFailed('Cannot run the op "run" in a live kit call');
    run.assertFailed("allowHostOps: true");
    assertEquals(run.ops.map((o) => o.kind), ["fs.mkdir"]);
    assert(!await exists(`${run.sandbox.dirs.data}/host-toucher/disk.img`), "qemu-img ran");
  });
  await t.step("a dry run plans it without the option", async () => {
    const run = await toucher.stage("touch");
    run.assertSucceeded();
    run.assertOp(/qemu-img/, { kind: "run" });
  });
  await t.step("live with allowHostOps: true, it runs", async () => {
    const run = await toucher.stage("touch", { live: true, allowHostOps: true });
    run.assertSucceeded();
    assert(await exists(`${run.sandbox.dirs.data}/host-toucher/disk.img`), "qemu-img did not run");
  });
});

Deno.test("the kit checks ops against the manifest's grants, as the kernel does", async () => {
  const escaper = await loadPlugin(join(REPO, "tests/fixtures/plugins/escaper"));
  const outside = await escaper.stage("write", {
    context: { "escaper.target": "/etc/gini-kit-escape" },
    live: true,
  });
  outside.assertFailed("/etc/gini-kit-escape");
  assertEquals(outside.ops, []);
  const probe = await escaper.stage("write", { context: { "escaper.target": "/tmp/x" } });
  const inside = await escaper.stage("write", {
    context: { "escaper.target": `${probe.sandbox.dirs.data}/escaper/x` },
  });
  inside.assertFailed("/escaper/x"); // another call's sandbox: outside this call's {data}
  await Deno.stat("/etc/gini-kit-escape").then(
    () => assert(false, "the kit let the plugin write /etc/gini-kit-escape"),
    (error) => assert(error instanceof Deno.errors.NotFound),
  );
});

Deno.test("bad input to plugins new and plugins test exits 2 naming what to fix", async () => {
  const home = await Deno.makeTempDir({ prefix: "gini-kit-test-" });
  try {
    const bad = await runGini(home, ["plugins", "new", "Host_Notes"]);
    assertEquals(bad.code, 2, bad.stderr);
    assertStringIncludes(
      bad.stderr,
      'Cannot make plugin "Host_Notes": NAME must be a kebab-case name',
    );
    await Deno.mkdir(join(home, "taken"));
    await Deno.writeTextFile(join(home, "taken", "keep.txt"), "mine\n");
    const taken = await runGini(home, ["plugins", "new", "taken"]);
    assertEquals(taken.code, 2, taken.stderr);
    assertStringIncludes(taken.stderr, "the folder is not empty");
    assertEquals(await Deno.readTextFile(join(home, "taken", "keep.txt")), "mine\n");
    const empty = await runGini(home, ["plugins", "test", "taken"]);
    assertEquals(empty.code, 2, empty.stderr);
    assertStringIncludes(empty.stderr, "holds no test files");
    assertStringIncludes(empty.stderr, "*_test.ts");
    const missing = await runGini(home, ["plugins", "test", "nowhere"]);
    assertEquals(missing.code, 2, missing.stderr);
    assertStringIncludes(missing.stderr, "is not a folder");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("the kit answers the events a stage emits with the mock's replies, and checks contracts", async () => {
  const greeter = await loadPlugin(join(REPO, "tests/fixtures/plugins/greeter"));
  const run = await greeter.stage("second", {
    context: { "greeter.first": { n: 1 } },
    replies: { "greeting:sent": (payload) => ({ hello: (payload as { n: number }).n }) },
  });
  run.assertSucceeded();
  assertEquals(run.emitted, [{ event: "greeting:sent", payload: { n: 2 } }]);
  run.assertWrote("greeter.replies", [{ hello: 2 }]);

  const broken = await greeter.stage("first", { context: { "greeter.mode": "break-contract" } });
  const message = await kitFailure(() => broken.assertWrote("greeter.first"));
  assertMatch(message, /breaks the key's contract at "n": .* \(found "not a number"\)/);
  broken.assertFailed('breaks the key\'s contract at "n"');
});

Deno.test("the kit refuses a plugin whose stages do not match its manifest, as the kernel does", async () => {
  const { home, dir } = await scaffold("odd-notes");
  try {
    const mod = await Deno.readTextFile(join(dir, "mod.ts"));
    await Deno.writeTextFile(
      join(dir, "mod.ts"),
      mod.replace('"write-note": async', '"write-notes": async'),
    );
    const plugin = await loadPlugin(dir);
    const run = await plugin.stage("write-note", { files: { "/etc/hostname": "h\n" } });
    run.assertFailed(
      "its stages do not match " + join(dir, "plugin.toml") +
        ": declared but not defined: write-note; defined but not declared: write-notes",
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
