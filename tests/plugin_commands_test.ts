/**
 * A third-party plugin's command, as rich as the kernel's: typed arguments and flags checked by the
 * kernel from the manifest (exit 2, "did you mean"), a change shown as a plan, confirmed, run
 * exactly as approved and journaled, and rolled back when it fails; help and `--help` start no
 * plugin worker.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { FIXTURE_PLUGINS, runGini, tempEnv } from "./_helpers.ts";
import { main } from "../cli/mod.ts";

const NOTES = ["--plugin-dir", join(FIXTURE_PLUGINS, "notes")];

async function notesIn(root: string): Promise<string[]> {
  const dir = join(root, ".local/share/gini/notes");
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

Deno.test("a plugin's change command: plan, refusal without confirmation, apply, rollback", async (t) => {
  const env = await tempEnv();
  const gini = (...args: string[]) => runGini(env.root, [...NOTES, ...args]);

  await t.step("help lists it beside the kernel's commands, with its flags", async () => {
    const help = await gini("--help");
    assertEquals(help.code, 0, help.stderr);
    assertMatch(help.stdout, /notes\s+notes a plugin writes/);
    const sub = await gini("notes", "add", "--help");
    assertStringIncludes(sub.stdout, "-c, --copies <copies>");
    assertStringIncludes(sub.stdout, "one of: txt, md");
  });

  await t.step("--dry-run shows the plan and writes nothing", async () => {
    const dry = await gini("--dry-run", "notes", "add", "hello", "--copies", "2");
    assertEquals(dry.code, 0, dry.stderr);
    assertStringIncludes(dry.stdout, "note-1.txt");
    assertStringIncludes(dry.stdout, "Would write 2 note(s)");
    assertEquals(await notesIn(env.root), []);
  });

  await t.step(
    "without --yes and off a terminal it is refused, and nothing is written",
    async () => {
      const refused = await gini("notes", "add", "hello");
      assertEquals(refused.code, 2, refused.stderr);
      assertStringIncludes(refused.stderr, 'Cannot run "gini notes add" without confirmation');
      assertEquals(await notesIn(env.root), []);
    },
  );

  await t.step("with --yes it runs the plan, journaled", async () => {
    const done = await gini("--yes", "notes", "add", "hello", "-c", "2", "--format", "md");
    assertEquals(done.code, 0, done.stderr);
    assertStringIncludes(done.stdout, "Wrote 2 note(s)");
    assertEquals(await notesIn(env.root), ["note-0.md", "note-1.md"]);
    assertEquals(
      await Deno.readTextFile(join(env.root, ".local/share/gini/notes/note-0.md")),
      "hello\n",
    );
    const list = JSON.parse((await gini("--json", "journal", "list")).stdout) as {
      command: string;
      state: string;
    }[];
    assertEquals(list[0]?.command, "notes add hello --copies 2 --format md");
    assertEquals(list[0]?.state, "committed");
  });

  await t.step("a failure after writing rolls every write back", async () => {
    const failed = await gini("--yes", "notes", "add", "again", "--copies", "3", "--fail-after");
    assertEquals(failed.code, 1, failed.stderr);
    assertStringIncludes(failed.stderr, "asked to fail after writing");
    assertEquals(await notesIn(env.root), ["note-0.md", "note-1.md"], "only the earlier notes");
    const list = JSON.parse((await gini("--json", "journal", "list")).stdout) as {
      state: string;
    }[];
    assertEquals(list[0]?.state, "aborted");
  });

  await t.step("bad values are refused by the kernel with exit code 2", async (t) => {
    const cases: [string, string[], string][] = [
      [
        "a number",
        ["notes", "add", "x", "--copies", "two"],
        'Cannot use --copies "two": expected a number',
      ],
      ["a choice", ["notes", "add", "x", "--format", "mdd"], 'Did you mean "md"?'],
      ["an unknown flag", ["notes", "add", "x", "--copise", "2"], 'Did you mean "--copies"?'],
      ["a missing argument", ["notes", "add"], 'Missing required argument "text"'],
      [
        "a stage's own check",
        ["--yes", "notes", "add", "x", "--copies", "0"],
        "Cannot write 0 copies",
      ],
    ];
    for (const [name, args, message] of cases) {
      await t.step(name, async () => {
        const out = await gini(...args);
        assertEquals(out.code, 2, out.stderr);
        assertStringIncludes(out.stderr, message);
      });
    }
    assertEquals(await notesIn(env.root), ["note-0.md", "note-1.md"]);
  });
  await Deno.remove(env.root, { recursive: true });
});

Deno.test("a third-party change command may not skip the confirmation", async () => {
  const env = await tempEnv();
  const out = await runGini(env.root, [
    "--plugin-dir",
    join(FIXTURE_PLUGINS, "notes_unasked"),
    "plugins",
    "list",
  ]);
  assertEquals(out.code, 2, out.stderr);
  assertStringIncludes(out.stderr, "notes_unasked/plugin.toml");
  assertStringIncludes(
    out.stderr,
    "only plugins shipped with Gini may change the host without asking",
  );
  await Deno.remove(env.root, { recursive: true });
});

Deno.test("gini --help, gini version and a plugin command's --help start no plugin worker", async () => {
  const env = await tempEnv();
  const RealWorker = globalThis.Worker;
  let started = 0;
  globalThis.Worker = class extends RealWorker {
    constructor(...args: ConstructorParameters<typeof Worker>) {
      super(...args);
      started++;
    }
  };
  const out: string[] = [];
  const sink = { out: (s: string) => void out.push(s), err: () => {}, isTerminal: false };
  try {
    for (const args of [["--help"], ["version"], ["notes", "add", "--help"], ["help", "notes"]]) {
      const code = await main([...NOTES, ...args], {
        sink,
        env: { HOME: env.root },
        cwd: env.root,
      });
      assertEquals(code, 0, args.join(" "));
    }
    // The same wrapper counts a worker that does start.
    const code = await main([...NOTES, "--dry-run", "notes", "add", "x"], {
      sink,
      env: { HOME: env.root },
      cwd: env.root,
    });
    assertEquals(code, 0);
  } finally {
    globalThis.Worker = RealWorker;
  }
  assert(out.join("").includes("notes a plugin writes"));
  assertEquals(started, 1, "only the dry run started a worker");
  await Deno.remove(env.root, { recursive: true });
});

Deno.test("a hostile plugin cannot shadow core commands or hide its plan behind its rendering", async (t) => {
  const env = await tempEnv();
  const gini = (...args: string[]) =>
    runGini(env.root, ["--plugin-dir", join(FIXTURE_PLUGINS, "usurper"), ...args]);
  await t.step("a word another plugin owns stays theirs", async () => {
    const fans = await gini("vfio", "fans");
    assertEquals(fans.code, 2, fans.stderr);
    assertStringIncludes(fans.stderr, 'Unknown command "fans"');
    const help = await gini("--help");
    assert(!help.stdout.includes("all checks pass"), help.stdout);
  });
  await t.step("the kernel's plan is shown, and the render's escapes are removed", async () => {
    const dry = await gini("--dry-run", "tidy");
    assertEquals(dry.code, 0, dry.stderr);
    assertStringIncludes(dry.stdout, "usurper/owned");
    assertStringIncludes(dry.stdout, "Nothing will change");
    assert(!dry.stdout.includes("\x1b"), JSON.stringify(dry.stdout));
    const refused = await gini("tidy");
    assertEquals(refused.code, 2);
    assertEquals(await notesIn(env.root), []);
    assertEquals(
      await Deno.stat(join(env.root, ".local/share/gini/usurper")).then(() => true, () => false),
      false,
    );
  });
  await Deno.remove(env.root, { recursive: true });
});
