import { assertEquals, assertStringIncludes, assertThrows } from "../../tests/_assert.ts";
import { join } from "node:path";
import { PluginResolutionError } from "../errors.ts";
import { discoverPlugins } from "./discover.ts";
import { resolvePlugins } from "./resolve.ts";

function manifest(name: string, extra = "", deps = ""): string {
  return `[plugin]
name = "${name}"
version = "1.0.0"
description = "test"
priority = "third-party:160"

[compatibility]
kernel_api = "^1.0.0"
${deps ? `\n[dependencies]\n${deps}\n` : ""}
${extra}`;
}

/** Writes plugins into a temporary directory and resolves them; no worker is started. */
async function resolveTree(files: Record<string, string>) {
  const dir = await Deno.makeTempDir({ prefix: "gini-manifests-" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(join(dir, name), { recursive: true });
    await Deno.writeTextFile(join(dir, name, "plugin.toml"), text);
    await Deno.writeTextFile(
      join(dir, name, "mod.ts"),
      "throw new Error('a worker was started');\n",
    );
  }
  const discovery = await discoverPlugins([{ dir, origin: "extra" }]);
  return { dir, resolve: () => resolvePlugins(discovery.manifests, discovery.errors) };
}

Deno.test("resolvePlugins() rejects bad manifests before any worker starts, naming file and key", async (t) => {
  const cases: {
    name: string;
    files: Record<string, string>;
    expect: { file: string; key: string; text: string }[];
  }[] = [
    {
      name: "missing field",
      files: { a: manifest("a").replace('description = "test"\n', "") },
      expect: [{ file: "a", key: "plugin.description", text: "is missing: expected string" }],
    },
    {
      name: "unknown key with did-you-mean",
      files: { a: manifest("a", "[permissions]\nreed = []\n") },
      expect: [{
        file: "a",
        key: "permissions.reed",
        text: 'Cannot use unknown key "permissions.reed"',
      }],
    },
    {
      name: "bad semver version",
      files: { a: manifest("a").replace('version = "1.0.0"', 'version = "one"') },
      expect: [{ file: "a", key: "plugin.version", text: "expected a semantic version" }],
    },
    {
      name: "bad semver range",
      files: { a: manifest("a", "", 'b = "not a range"'), b: manifest("b") },
      expect: [{ file: "a", key: "dependencies.b", text: "expected a semver range" }],
    },
    {
      name: "cycle",
      files: { a: manifest("a", "", 'b = "^1.0.0"'), b: manifest("b", "", 'a = "^1.0.0"') },
      expect: [{ file: "a", key: "dependencies", text: "form a cycle a → b → a" }],
    },
    {
      name: "missing dependency",
      files: { a: manifest("a", "", 'qemu-setup = "^1.0.0"') },
      expect: [{
        file: "a",
        key: "dependencies.qemu-setup",
        text: 'it depends on "qemu-setup", which is not installed',
      }],
    },
    {
      name: "version conflict",
      files: { a: manifest("a", "", 'b = "^2.0.0"'), b: manifest("b") },
      expect: [{
        file: "a",
        key: "dependencies.b",
        text: 'it needs "b" ^2.0.0, but 1.0.0 is installed',
      }],
    },
    {
      name: "two producers of one context key",
      files: {
        a: manifest("a", '[[stages]]\nname = "one"\nwrites = ["session.vm_definition"]\n'),
        b: manifest("b", '[[stages]]\nname = "two"\nwrites = ["session.vm_definition"]\n'),
      },
      expect: [{ file: "b", key: "stages.0.writes", text: 'stage "a:one" already produces it' }],
    },
    {
      name: "kernel API the kernel does not offer",
      files: { a: manifest("a").replace('kernel_api = "^1.0.0"', 'kernel_api = "^2.0.0"') },
      expect: [{
        file: "a",
        key: "compatibility.kernel_api",
        text: 'it needs kernel API "^2.0.0"',
      }],
    },
    {
      name: "TOML syntax error with line",
      files: { a: manifest("a") + "\n[ops\n" },
      expect: [{ file: "a", key: "", text: "Cannot parse TOML" }],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const { dir, resolve } = await resolveTree(c.files);
      const error = assertThrows(resolve, PluginResolutionError);
      assertEquals(error.problems.length, c.expect.length, error.message);
      for (const [i, e] of c.expect.entries()) {
        const problem = error.problems[i]!;
        assertStringIncludes(problem.message, e.text);
        assertEquals(problem.location?.file, join(dir, e.file, "plugin.toml"));
        if (e.key) assertEquals(problem.location?.key, e.key);
        else assertEquals(typeof problem.location?.line, "number");
      }
    });
  }
});

Deno.test("resolvePlugins() reports every problem of several plugins together", async () => {
  const { resolve } = await resolveTree({
    a: manifest("a", "", 'missing = "^1.0.0"'),
    b: manifest("b").replace('version = "1.0.0"', 'version = "x"'),
  });
  const error = assertThrows(resolve, PluginResolutionError);
  assertEquals(error.problems.length, 2);
});

Deno.test("resolvePlugins() orders by priority, then dependencies first, and skips failing optional plugins", async () => {
  const { resolve } = await resolveTree({
    late: manifest("late").replace("third-party:160", "third-party:200"),
    early: manifest("early", "", 'late = "^1.0.0"').replace(
      "third-party:160",
      "third-party-high:120",
    ),
    middle: manifest("middle"),
    broken: manifest("broken", "", 'absent = "^1.0.0"').replace(
      "priority =",
      "optional = true\npriority =",
    ),
  });
  const resolution = resolve();
  assertEquals(resolution.plugins.map((p) => p.plugin.name), ["middle", "late", "early"]);
  assertEquals(resolution.skipped.map((s) => s.plugin), ["broken"]);
});

Deno.test("resolvePlugins() reports unknown keys with the manifest's line", async () => {
  const { resolve } = await resolveTree({
    a: manifest("a", '[ops]\nwrite = []\nruns = ["qemu-img"]\n'),
  });
  const error = assertThrows(resolve, PluginResolutionError);
  assertEquals(error.problems[0]!.hint, 'Did you mean "run"?');
  assertEquals(error.problems[0]!.location?.line, 12);
});
