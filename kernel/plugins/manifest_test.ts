import { assertEquals, assertStringIncludes } from "../../tests/_assert.ts";
import { join } from "node:path";
import { formatError } from "../errors.ts";
import { discoverPlugins } from "./discover.ts";
import { parseManifest } from "./manifest.ts";

const HEAD = `[plugin]
name = "demo"
version = "1.0.0"
description = "demo"
priority = "third-party:160"
[compatibility]
kernel_api = "^1.0.0"
[[stages]]
name = "run"
writes = ["demo.out"]
`;

/** The keys of the errors a manifest's commands produce. */
function commandProblems(commands: string, origin: "core" | "extra" = "extra"): string[] {
  const withSummaries = commands.replace(/^(path = .*)$/gm, '$1\nsummary = "s"');
  const parsed = parseManifest(HEAD + withSummaries, "/p/plugin.toml", origin);
  return parsed.ok ? [] : parsed.errors.map((e) => e.location?.key ?? e.message);
}

Deno.test("parseManifest() holds a command to what the rest of its manifest declares", async (t) => {
  const cases: [string, string, string[]][] = [
    [
      "a valid query",
      `[[commands]]\npath = "demo show"\nstages = ["run"]\nresult = "demo.out"`,
      [],
    ],
    ["an unknown stage", `[[commands]]\npath = "x"\nstages = ["rnu"]`, ["commands.0.stages.0"]],
    [
      "a result no stage writes",
      `[[commands]]\npath = "x"\nstages = ["run"]\nresult = "demo.other"`,
      ["commands.0.result"],
    ],
    ["no stage", `[[commands]]\npath = "x"`, ["commands.0.stages"]],
    [
      "a group with a flag",
      `[[commands]]\npath = "x"\nmode = "group"\n[[commands.flags]]\nname = "f"\nsummary = "f"`,
      ["commands.0.mode"],
    ],
    ["an undo of nothing", `[[commands]]\npath = "x"\nmode = "undo"\nundoes = "y"`, [
      "commands.0.undoes",
    ]],
    [
      "a global flag",
      `[[commands]]\npath = "x"\nstages = ["run"]\n[[commands.flags]]\nname = "json"\nsummary = "j"`,
      ["commands.0.flags.0.name"],
    ],
    [
      "a taken letter",
      `[[commands]]\npath = "x"\nstages = ["run"]\n[[commands.flags]]\nname = "nope"\nshort = "n"\nsummary = "n"`,
      ["commands.0.flags.0.short"],
    ],
    [
      "a boolean with choices",
      `[[commands]]\npath = "x"\nstages = ["run"]\n[[commands.flags]]\nname = "b"\ntype = "boolean"\nchoices = ["a"]\nsummary = "b"`,
      ["commands.0.flags.0.type"],
    ],
    [
      "access on a string",
      `[[commands]]\npath = "x"\nstages = ["run"]\n[[commands.arguments]]\nname = "a"\naccess = "write"\nsummary = "a"`,
      ["commands.0.arguments.0.access"],
    ],
    [
      "a repeating first argument",
      `[[commands]]\npath = "x"\nstages = ["run"]\n[[commands.arguments]]\nname = "a"\nrepeatable = true\nsummary = "a"\n[[commands.arguments]]\nname = "b"\nsummary = "b"`,
      ["commands.0.arguments.0.repeatable"],
    ],
    [
      "a granted file defaulting outside the current folder",
      `[[commands]]\npath = "x"\nstages = ["run"]\n[[commands.flags]]\nname = "out"\ntype = "file"\naccess = "write"\ndefault = "/etc/passwd"\nsummary = "o"`,
      ["commands.0.flags.0.default"],
    ],
    [
      "a third party's written folder with a default",
      `[[commands]]\npath = "x"\nstages = ["run"]\n[[commands.flags]]\nname = "keys"\ntype = "dir"\naccess = "write"\ndefault = ".ssh"\nsummary = "k"`,
      ["commands.0.flags.0.default"],
    ],
    [
      "a third party's read file argument with a default",
      `[[commands]]\npath = "x"\nstages = ["run"]\n[[commands.arguments]]\nname = "in"\ntype = "file"\naccess = "read"\ndefault = "{name}.toml"\nsummary = "i"\n[[commands.arguments]]\nname = "name"\nsummary = "n"`,
      ["commands.0.arguments.0.default"],
    ],
    ["a query asking", `[[commands]]\npath = "x"\nstages = ["run"]\nconfirm = "Sure?"`, [
      "commands.0.confirm",
    ]],
    [
      "a third party not asking",
      `[[commands]]\npath = "x"\nmode = "change"\nstages = ["run"]\nask = false`,
      ["commands.0.ask"],
    ],
    [
      "a path twice",
      `[[commands]]\npath = "x"\nstages = ["run"]\n[[commands]]\npath = "x"\nstages = ["run"]`,
      ["commands.1.path"],
    ],
  ];
  for (const [name, commands, keys] of cases) {
    await t.step(name, () => assertEquals(commandProblems(commands), keys));
  }
  await t.step("a core plugin may give a granted folder a default in the current folder", () => {
    const flag = (value: string) =>
      `[[commands]]\npath = "x"\nstages = ["run"]\n[[commands.flags]]\nname = "out"\ntype = "dir"\naccess = "write"\ndefault = "${value}"\nsummary = "o"`;
    assertEquals(commandProblems(flag("site"), "core"), []);
    assertEquals(commandProblems(flag("/etc"), "core"), ["commands.0.flags.0.default"]);
  });
  await t.step("a core plugin may change without asking", () => {
    assertEquals(
      commandProblems(
        `[[commands]]\npath = "x"\nmode = "change"\nstages = ["run"]\nask = false`,
        "core",
      ),
      [],
    );
  });
});

Deno.test("parseManifest() keeps the kernel's keys and the core's powers from third-party plugins", async (t) => {
  const keys = (text: string, origin: "core" | "extra" = "extra") => {
    const parsed = parseManifest(text, "/p/plugin.toml", origin);
    return parsed.ok ? [] : parsed.errors.map((e) => e.location?.key ?? e.message);
  };
  const cases: [string, string, string[]][] = [
    ["a reserved priority", HEAD.replace("third-party:160", "kernel:0"), ["plugin.priority"]],
    ["serving a verb", HEAD.replace('name = "run"', 'name = "run"\nserves = ["rm"]'), [
      "stages.0.serves",
    ]],
    ["a grant on the journal", `${HEAD}[ops]\nwrite = ["{state}/journal"]\n`, ["ops.write.0"]],
    ["a grant on installed plugins", `${HEAD}[permissions]\nread = ["{data}/plugins"]\n`, [
      "permissions.read.0",
    ]],
    [
      "producing a key the kernel seeds",
      HEAD.replace('writes = ["demo.out"]', 'writes = ["session.target_vm"]'),
      ["stages.0.writes.0"],
    ],
  ];
  for (const [name, text, expected] of cases) {
    await t.step(name, () => assertEquals(keys(text), expected));
  }
  await t.step("a core plugin may serve a verb, but not produce a seeded key either", () => {
    assertEquals(keys(HEAD.replace('name = "run"', 'name = "run"\nserves = ["rm"]'), "core"), []);
    assertEquals(
      keys(HEAD.replace('writes = ["demo.out"]', 'writes = ["session.command"]'), "core"),
      ["stages.0.writes.0"],
    );
  });
});

Deno.test("discoverPlugins() refuses a third-party default on a folder it may write, naming file, key and fix", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gini-manifest-default-" });
  try {
    await Deno.mkdir(join(dir, "demo"));
    const file = join(dir, "demo", "plugin.toml");
    await Deno.writeTextFile(
      file,
      `${HEAD}[[commands]]\npath = "demo keys"\nsummary = "s"\nstages = ["run"]\n` +
        `[[commands.flags]]\nname = "keys"\ntype = "dir"\naccess = "write"\ndefault = ".ssh"\nsummary = "k"\n`,
    );
    const discovery = await discoverPlugins([{ dir, origin: "extra" }]);
    assertEquals(discovery.manifests, []);
    assertEquals(discovery.errors.length, 1);
    const text = formatError(discovery.errors[0]!);
    assertStringIncludes(text, file);
    assertStringIncludes(text, "commands.0.flags.0.default");
    assertStringIncludes(text, '--keys, which it may write, has a default ".ssh"');
    assertStringIncludes(text, "hint: Remove default from --keys");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
