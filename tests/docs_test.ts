/**
 * `gini docs`: man pages that groff and man render without a warning, an HTML index that headless
 * Chromium shows with its catalogue and its Mermaid diagrams drawn, Markdown that names every
 * core plugin and every VM file key, the README and docs/ checked against what it makes now,
 * and bad input refused with the flag named.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { basename, join } from "node:path";
import { parse } from "smol-toml";
import { REPO, runGini, tempEnv } from "./_helpers.ts";

/** The names of the plugins shipped with Gini, from their manifests. */
async function corePlugins(): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(join(REPO, "plugins"))) {
    const file = join(REPO, "plugins", entry.name, "plugin.toml");
    const text = await Deno.readTextFile(file).catch(() => null);
    if (text === null) continue;
    const plugin = (parse(text) as { plugin: { name: string; core?: boolean } }).plugin;
    if (plugin.core) names.push(plugin.name);
  }
  assert(names.length >= 10, `expected the core plugins under plugins/, found ${names.join(", ")}`);
  return names.sort();
}

type Schema = {
  properties?: Record<string, Schema>;
  items?: Schema;
  type?: string;
  description?: string;
};

/** Every key of the VM file's JSON Schema (`disks[].size` for a key of each [[disks]]). */
function schemaKeys(schema: Schema, prefix = ""): { key: string; description?: string }[] {
  return Object.entries(schema.properties ?? {}).flatMap(([name, child]) => {
    const key = prefix ? `${prefix}.${name}` : name;
    return [
      { key, ...(child.description ? { description: child.description } : {}) },
      ...schemaKeys(child, key),
      ...(child.type === "array" && child.items?.properties
        ? schemaKeys(child.items, `${key}[]`)
        : []),
    ];
  });
}

/** Runs a program (`argv[0]`); its exit code and output. */
async function run(argv: string[], env: Record<string, string> = {}) {
  const [program, ...args] = argv as [string, ...string[]];
  const out = await new Deno.Command(program, { args, env, stdout: "piped", stderr: "piped" })
    .output()
    .catch((error) => {
      throw new Error(
        `Cannot run ${program}: ${error.message}; install it with: bash scripts/install-host-deps.sh`,
      );
    });
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("gini docs --format man: every page renders with groff -ww and man -l without a warning", async () => {
  const env = await tempEnv();
  const dir = join(env.root, "man");
  const made = await runGini(env.root, ["docs", "--format", "man", "-o", dir]);
  assertEquals(made.code, 0, made.stderr);
  const files = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  // Beside the pages, the marker that lets the next run write over them.
  assert(files.includes(".gini-docs"), files.join(", "));
  const pages = files.filter((f) => f !== ".gini-docs");
  for (const page of ["gini.1", "gini-vm.5", "gini-docs.1", "gini-plugins.1", "gini-check.1"]) {
    assert(pages.includes(page), `expected ${page} among ${pages.join(", ")}`);
  }
  for (const page of pages) {
    const groff = await run(["groff", "-ww", "-man", "-z", join(dir, page)]);
    assertEquals(groff.code, 0, `${page}: ${groff.stderr}`);
    assertEquals(groff.stderr, "", `groff warns about ${page}`);
    const man = await run(["man", "--warnings", "-l", "-P", "cat", join(dir, page)], {
      MANWIDTH: "100",
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    });
    assertEquals(man.code, 0, `${page}: ${man.stderr}`);
    assertEquals(man.stderr, "", `man -l warns about ${page}`);
    assertStringIncludes(man.stdout, "NAME");
  }
  const top = (await run(["man", "-l", "-P", "cat", join(dir, "gini.1")], { MANWIDTH: "200" }))
    .stdout;
  for (const plugin of await corePlugins()) assertStringIncludes(top, `${plugin} 1.`);
  assertStringIncludes(top, "gini-vm(5)");
  const vm = (await run(["man", "-l", "-P", "cat", join(dir, "gini-vm.5")], { MANWIDTH: "200" }))
    .stdout;
  assertStringIncludes(vm, "disks[].backing");
  assertStringIncludes(vm, "windows.password_file");
});

Deno.test("gini docs --format html: headless Chromium shows the catalogue and draws the Mermaid diagrams", async () => {
  const env = await tempEnv();
  const dir = join(env.root, "site");
  // The mermaid package (26 MB from the npm registry) is kept between runs of this test.
  const cache = join(Deno.env.get("HOME") ?? "/tmp", ".cache/gini-test/docs");
  // A machine whose TLS goes through a proxy names its CA for Deno: the download needs it.
  const tls = Object.fromEntries(
    ["DENO_CERT", "DENO_TLS_CA_STORE", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE"]
      .flatMap((name) => Deno.env.get(name) ? [[name, Deno.env.get(name)!]] : []),
  );
  const made = await runGini(
    env.root,
    ["--cache-dir", cache, "docs", "--format", "html", "-o", dir],
    tls,
  );
  assertEquals(made.code, 0, made.stderr);
  const files = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
  assert(
    files.includes("mermaid.min.js"),
    `no mermaid.min.js beside the pages: ${files.join(", ")}`,
  );
  const plugins = await corePlugins();
  for (const plugin of plugins) {
    assert(files.includes(`plugin-${plugin}.html`), `no page for ${plugin}`);
  }
  const index = await Deno.readTextFile(join(dir, "index.html"));
  assert(!/(src|href)="https?:/.test(index), "the index loads something from the network");

  const dom = async (page: string) => {
    const out = await run([
      "chromium",
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      `--user-data-dir=${join(env.root, "chromium")}`,
      "--virtual-time-budget=20000",
      "--dump-dom",
      `file://${join(dir, page)}`,
    ]);
    assertEquals(out.code, 0, out.stderr);
    return out.stdout;
  };
  const shown = await dom("index.html");
  for (const plugin of plugins) {
    assertStringIncludes(shown, `<a href="plugin-${plugin}.html">${plugin}</a>`);
  }
  // Mermaid replaced each diagram's text with an SVG flowchart, and none is a syntax error.
  const drawn = shown.match(/<svg[^>]*aria-roledescription="flowchart-v2"/g) ?? [];
  assertEquals(drawn.length, 2, "expected the dependency and stage diagrams drawn as SVG");
  assert(!shown.includes("Syntax error in text"), "Mermaid could not parse a diagram");
  assertMatch(shown, /<svg[\s\S]*env-check 1\.0\.0[\s\S]*<\/svg>/);
  const page = await dom("plugin-qemu-setup.html");
  assertMatch(page, /<svg[^>]*aria-roledescription="flowchart-v2"[\s\S]*finalize-vm-definition/);
  assertStringIncludes(
    page,
    "The kernel may run for it: <code>qemu-img</code>, <code>virsh</code>",
  );
});

Deno.test("gini docs --format md names every core plugin and every VM file key, each described", async () => {
  const env = await tempEnv();
  const dir = join(env.root, "md");
  const made = await runGini(env.root, ["docs", "-o", dir]);
  assertEquals(made.code, 0, made.stderr);
  assertMatch(made.stdout, /^Wrote \d+ file\(s\) in /);
  const index = await Deno.readTextFile(join(dir, "README.md"));
  for (const plugin of await corePlugins()) {
    assertStringIncludes(index, `[${plugin}](plugin-${plugin}.md)`);
    const page = await Deno.readTextFile(join(dir, `plugin-${plugin}.md`));
    assertStringIncludes(page, "## What it may do");
  }
  assertStringIncludes(index, "```mermaid\nflowchart LR");
  const schema = await runGini(env.root, ["schema", "vm"]);
  assertEquals(schema.code, 0, schema.stderr);
  const keys = schemaKeys(JSON.parse(schema.stdout));
  assert(keys.length > 80, `expected the VM file's keys, found ${keys.length}`);
  const undescribed = keys.filter((k) => !k.description).map((k) => k.key);
  assertEquals(undescribed, [], "every VM file key has a description in vm_schema.ts");
  const reference = await Deno.readTextFile(join(dir, "vm-file.md"));
  for (const { key, description } of keys) {
    assertStringIncludes(reference, `| \`${key}\` |`);
    assertStringIncludes(reference, description!.replace(/\|/g, "\\|").replace(/</g, "\\<"));
  }
  const commands = await Deno.readTextFile(join(dir, "commands.md"));
  for (const command of ["gini docs", "gini plugins info", "gini check", "gini vfio plan"]) {
    assertStringIncludes(commands, `## ${command}\n`);
  }
  // The folder holds the marker the run left, so a second run writes over its pages.
  assert(await Deno.stat(join(dir, ".gini-docs")).then(() => true, () => false));
  await Deno.writeTextFile(join(dir, "vm-file.md"), "stale\n");
  const again = await runGini(env.root, ["docs", "-o", dir]);
  assertEquals(again.code, 0, again.stderr);
  assertStringIncludes(await Deno.readTextFile(join(dir, "vm-file.md")), "| `memory.size` |");
  // Without -o, the same pages are one Markdown document on standard output.
  const printed = await runGini(env.root, ["docs"]);
  assertEquals(printed.code, 0, printed.stderr);
  assertStringIncludes(printed.stdout, "# Plugin env-check");
  assertStringIncludes(printed.stdout, "| `memory.size` |");
});

Deno.test("gini docs --dry-run shows the pages it would write and writes none", async () => {
  const env = await tempEnv();
  const dir = join(env.root, "out");
  const dry = await runGini(env.root, ["--dry-run", "docs", "-o", dir]);
  assertEquals(dry.code, 0, dry.stderr);
  assertStringIncludes(dry.stdout, `Would create file "${join(dir, "vm-file.md")}"`);
  assertMatch(dry.stdout, /Would write \d+ file\(s\)/);
  const exists = await Deno.stat(dir).then(() => true, () => false);
  assert(!exists, "a dry run created the folder");
});

Deno.test("the README's generated sections and docs/ are what gini docs makes now", async (t) => {
  const check = (root: string) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(REPO, "scripts/docs.ts"), "--check", "--root", root],
      stdout: "piped",
      stderr: "piped",
    }).output();
  await t.step("the repository is up to date", async () => {
    const out = await check(REPO);
    const why = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, `${why}\n(the check says which task regenerates them)`);
  });
  await t.step(
    "a page or a README section changed by hand is found, with the task to run",
    async () => {
      const root = await Deno.makeTempDir({ prefix: "gini-docs-check-" });
      await Deno.mkdir(join(root, "docs/man"), { recursive: true });
      for await (const entry of Deno.readDir(join(REPO, "docs"))) {
        if (entry.isFile) {
          await Deno.copyFile(
            join(REPO, "docs", entry.name),
            join(root, "docs", entry.name),
          );
        }
      }
      for await (const entry of Deno.readDir(join(REPO, "docs/man"))) {
        await Deno.copyFile(join(REPO, "docs/man", entry.name), join(root, "docs/man", entry.name));
      }
      const readme = await Deno.readTextFile(join(REPO, "README.md"));
      await Deno.writeTextFile(
        join(root, "README.md"),
        readme.replace(/\| `memory\.size` +\|/, "| `memory.size_gb` |"),
      );
      await Deno.writeTextFile(join(root, "docs/vm-file.md"), "# stale\n");
      await Deno.writeTextFile(join(root, "docs/plugin-gone.md"), "# gone\n");
      const out = await check(root);
      const why = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 1, why);
      assertStringIncludes(why, "docs/vm-file.md is out of date");
      assertStringIncludes(why, "docs/plugin-gone.md is no longer generated");
      assertStringIncludes(why, "README.md's vm-file section is out of date");
      assertStringIncludes(why, "Run: deno task docs");
      await Deno.remove(root, { recursive: true });
    },
  );
});

Deno.test("gini docs refuses bad input with exit code 2, naming the flag", async (t) => {
  const env = await tempEnv();
  await t.step("--format pdf", async () => {
    const out = await runGini(env.root, ["docs", "--format", "pdf"]);
    assertEquals(out.code, 2, out.stderr);
    assertStringIncludes(out.stderr, '--format "pdf"');
    assertStringIncludes(out.stderr, '"md", "html", "man"');
  });
  await t.step("an --output under a file, which cannot be a folder", async () => {
    const file = join(env.root, "notes.txt");
    await Deno.writeTextFile(file, "a file\n");
    const out = await runGini(env.root, ["--json", "docs", "-o", join(file, "docs")]);
    assertEquals(out.code, 2, out.stderr);
    const error = JSON.parse(out.stdout).error;
    assertEquals(error.location.flag, "--output");
    assertStringIncludes(error.message, `"${file}" is not a folder`);
    assertEquals(await Deno.readTextFile(file), "a file\n");
  });
  await t.step("an --output that is a file", async () => {
    const file = join(env.root, basename("page.md"));
    await Deno.writeTextFile(file, "mine\n");
    const out = await runGini(env.root, ["docs", "-o", file]);
    assertEquals(out.code, 2, out.stderr);
    assertStringIncludes(out.stderr, `Cannot use --output "${file}": it is not a folder`);
  });
  await t.step(
    "an --output holding the user's own files, which its pages would replace",
    async () => {
      const dir = join(env.root, "project");
      await Deno.mkdir(dir);
      await Deno.writeTextFile(join(dir, "README.md"), "my project\n");
      const out = await runGini(env.root, ["docs", "-o", "."], {}, dir);
      assertEquals(out.code, 2, out.stderr);
      assertStringIncludes(out.stderr, `Cannot write the pages in --output "${dir}"`);
      assertStringIncludes(out.stderr, '"README.md"');
      assertStringIncludes(out.stderr, "Give --output a new or empty folder");
      assertEquals(await Deno.readTextFile(join(dir, "README.md")), "my project\n");
      assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["README.md"]);
    },
  );
  await t.step(
    "an --output in a folder no file can be made in, whatever its mode bits",
    async () => {
      // Read-only to everyone; for root, whom mode bits do not stop, immutable too (chattr +i).
      const locked = join(env.root, "locked");
      await Deno.mkdir(locked, { mode: 0o777 });
      await Deno.chmod(locked, 0o555);
      const root = Deno.uid() === 0;
      if (root) {
        const out = await run(["chattr", "+i", locked]);
        assertEquals(out.code, 0, out.stderr);
      }
      try {
        const out = await runGini(env.root, ["--json", "docs", "-o", join(locked, "docs")]);
        assertEquals(out.code, 2, out.stderr);
        const error = JSON.parse(out.stdout).error;
        assertEquals(error.location.flag, "--output");
        assertStringIncludes(error.message, `the folder "${locked}" is not writable by this user`);
        assertEquals([...Deno.readDirSync(locked)], []);
      } finally {
        if (root) await run(["chattr", "-i", locked]);
        await Deno.chmod(locked, 0o755);
      }
    },
  );
  await t.step("its stage run on its own, without the command's plugin set", async () => {
    const out = await runGini(env.root, ["run", "docs:generate"]);
    assertEquals(out.code, 2, out.stderr);
    assertStringIncludes(out.stderr, 'the kernel gave no "session.plugins"');
    assertStringIncludes(out.stderr, "Run it as gini docs");
  });
  await t.step("--format man without a folder", async () => {
    const out = await runGini(env.root, ["docs", "--format", "man"]);
    assertEquals(out.code, 2, out.stderr);
    assertStringIncludes(out.stderr, "Give --output a folder");
  });
});
