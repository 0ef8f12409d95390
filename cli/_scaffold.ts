/**
 * The files `gini plugins new NAME` writes: a manifest with its grants explained, a module with one
 * stage and one event handler, the stage's key contract, a test written with the kit, a README
 * stub, and a deno.json whose import map names the SDK and the kit (`@gini/sdk`,
 * `@gini/testing`) in this Gini, with the npm packages they use, so that `deno test`,
 * `deno check` and `gini plugins bundle` resolve them from any folder.
 *
 * @module
 */
import giniConfig from "../deno.json" with { type: "json" };

/** The words a plugin name gives its files. */
export interface ScaffoldNames {
  /** The plugin's kebab-case name. */
  name: string;
  /** Its context key's namespace (the name in snake case). */
  namespace: string;
}

/** Scaffold names from a plugin name. */
export function scaffoldNames(name: string): ScaffoldNames {
  return { name, namespace: name.replaceAll("-", "_") };
}

function manifest({ name, namespace }: ScaffoldNames): string {
  return `# ${name}: made by "gini plugins new". The manifest reference is in Gini's README
# (Writing a plugin > Manifest reference).
[plugin]
name = "${name}"
version = "0.1.0"
description = "Writes a note about the host under Gini's data directory"
author = "you"
core = false                       # only plugins shipped with Gini may be core
priority = "third-party:170"       # third-party-high 101-150, third-party 151-200, third-party-low 201-255
entry = "mod.ts"
timeout_ms = 10000                 # each stage, preflight and event handler gets this long

[compatibility]
kernel_api = "^1.0.0"

# What the plugin's worker may read itself (Deno permissions); nothing else is granted.
# Host paths are read under --host-root when one is given.
[permissions]
read = ["/etc/hostname"]
# net = []                         # hosts it may fetch from directly
# env = []                         # environment variables it may read

# What the kernel may do on its behalf, through ctx.op. Every op is checked against these.
[ops]
write = ["{data}/${name}"]         # fs.* ops under these roots; {data} {config} {cache} are Gini's directories
# run = ["qemu-img"]               # programs a "run" op may start (argv only, never a shell)
# download = ["example.org"]       # hosts a "download" op may fetch from
# sysfs = []                       # sysfs.write globs under /sys
# lvm = false                      # LVM ops

# Events delivered to definePlugin({ on }): stage:completed and stage:failed come from the kernel.
[events]
subscribe = ["stage:completed"]

[[stages]]
name = "write-note"
description = "Write note.txt with the host's name under the data directory"
writes = ["${namespace}.note"]     # context keys it produces (one producer per key)

[context]
schemas = "contracts.json"         # the JSON Schema of each key it writes
`;
}

function module({ name, namespace }: ScaffoldNames): string {
  return `/**
 * ${name}: one stage that writes a note about the host through the kernel's ops (a plugin never
 * writes files itself), and a handler of the kernel's stage:completed event.
 *
 * @example
 * \`\`\`sh
 * gini --plugin-dir . --dry-run run ${name}:write-note
 * \`\`\`
 *
 * @module
 */
import { definePlugin, stageError } from "@gini/sdk";

export default definePlugin({
  stages: {
    "write-note": async (ctx) => {
      const hostname = (await ctx.host.readText("/etc/hostname")).trim();
      if (!hostname) {
        throw stageError("Cannot write the note: /etc/hostname is empty", "Set the host's name");
      }
      const dir = \`\${ctx.dirs.data}/${name}\`;
      const path = \`\${dir}/note.txt\`;
      await ctx.op("fs.mkdir", { path: dir });
      await ctx.op("fs.write", { path, content: \`Hello from \${hostname}\\n\`, overwrite: true });
      ctx.ui.info(\`\${ctx.dryRun ? "Would write" : "Wrote"} \${path}\`);
      ctx.set("${namespace}.note", { path, hostname });
    },
  },
  on: {
    // The kernel ignores replies to stage:completed; a lifecycle hook's reply is used.
    "stage:completed": (payload, ctx) => {
      const stage = (payload as { stage?: string } | null)?.stage ?? "?";
      ctx.ui.debug(\`stage \${stage} completed\`);
      return { seen: stage };
    },
  },
});
`;
}

function contracts({ namespace }: ScaffoldNames): string {
  return JSON.stringify(
    {
      [`${namespace}.note`]: {
        type: "object",
        properties: {
          path: { type: "string", pattern: "/note\\.txt$" },
          hostname: { type: "string", minLength: 1 },
        },
        required: ["path", "hostname"],
        additionalProperties: false,
      },
    },
    null,
    2,
  ) + "\n";
}

function testFile({ name, namespace }: ScaffoldNames): string {
  return `/**
 * ${name}'s tests, written with Gini's test kit. Run them with \`gini plugins test .\` (or
 * \`deno test -A\` here); add --junit FILE or --html FILE for reports.
 */
import { assertDependenciesResolved, KitAssertionError, loadPlugin, test } from "@gini/testing";

const plugin = await loadPlugin(new URL(".", import.meta.url));
const HOST = { "/etc/hostname": "kit-host\\n" };

test("write-note plans its folder and note, and writes a valid key", async () => {
  const run = await plugin.stage("write-note", { files: HOST });
  run.assertSucceeded();
  run.assertOp(/Would create directory ".*\\/${name}"/, { kind: "fs.mkdir" });
  run.assertOp("note.txt", { kind: "fs.write" });
  run.assertWrote("${namespace}.note", {
    path: \`\${run.sandbox.dirs.data}/${name}/note.txt\`,
    hostname: "kit-host",
  });
});

test("write-note run live writes the note", async () => {
  const run = await plugin.stage("write-note", { files: HOST, live: true });
  run.assertSucceeded();
  const text = await Deno.readTextFile(\`\${run.sandbox.dirs.data}/${name}/note.txt\`);
  if (text !== "Hello from kit-host\\n") {
    throw new KitAssertionError(\`note.txt reads \${JSON.stringify(text)}\`);
  }
});

test("write-note fails when the host has no name", async () => {
  const run = await plugin.stage("write-note", { files: { "/etc/hostname": "\\n" } });
  run.assertFailed("/etc/hostname is empty");
});

test("the stage:completed handler replies with the stage", async () => {
  const run = await plugin.event("stage:completed", { stage: "other:stage", durationMs: 1 });
  run.assertSucceeded();
  if ((run.reply as { seen?: string })?.seen !== "other:stage") {
    throw new KitAssertionError(\`The reply was \${JSON.stringify(run.reply)}\`);
  }
});

test("${name} needs no other plugin", async () => {
  await assertDependenciesResolved(plugin, []);
});
`;
}

function readme({ name }: ScaffoldNames): string {
  return `# ${name}

A Gini plugin. What it does: write \`note.txt\` with the host's name under Gini's data directory.

\`\`\`sh
gini plugins test .                       # its tests (--junit FILE, --html FILE for reports)
gini --plugin-dir . --dry-run run ${name}:write-note
gini plugins bundle .                     # ${name}-0.1.0.zip, to publish
gini plugins install ./${name}-0.1.0.zip  # shows what it may do, asks, installs
\`\`\`

What it may do (\`plugin.toml\`): read \`/etc/hostname\`; write under \`{data}/${name}\`.
`;
}

/** The plugin's deno.json: the SDK, the kit and their npm packages, from the Gini at `sdkDir`. */
function denoConfig(workersDir: string): string {
  const npm = Object.fromEntries(
    Object.entries(giniConfig.imports).filter(([name]) => !name.startsWith("@gini/")),
  );
  return JSON.stringify(
    {
      imports: {
        "@gini/sdk": `${workersDir}/sdk.ts`,
        "@gini/sdk/toml": `${workersDir}/sdk_toml.ts`,
        "@gini/testing": `${workersDir}/testing.ts`,
        ...npm,
      },
      compilerOptions: giniConfig.compilerOptions,
      unstable: ["worker-options"],
      tasks: { test: "deno test -A" },
    },
    null,
    2,
  ) + "\n";
}

/** The scaffold's files by name; `workersDir` is the folder of this Gini's SDK on disk. */
export function scaffoldFiles(names: ScaffoldNames, workersDir: string): Record<string, string> {
  return {
    "plugin.toml": manifest(names),
    "mod.ts": module(names),
    "contracts.json": contracts(names),
    "mod_test.ts": testFile(names),
    "README.md": readme(names),
    "deno.json": denoConfig(workersDir),
  };
}
