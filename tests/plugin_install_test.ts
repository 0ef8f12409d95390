/**
 * Third-party plugins from a package: bundled reproducibly, served by a real HTTP server on
 * 127.0.0.1, installed only with approval (a terminal's yes or --yes), pinned, refused when the
 * stored bytes change, asked again when an upgrade wants more, refused on a downgrade or a changed
 * signing key, and — placed by hand — not loaded until approved.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { FIXTURE_PLUGINS, REPO, runGini, tempEnv } from "./_helpers.ts";
import { unzipSync } from "fflate";
import { zipPackage } from "../kernel/plugins/package.ts";

/** A plugin source folder under the repository (so it resolves the SDK and its npm imports). */
async function pluginSource(
  root: string,
  name: string,
  edit: (toml: string) => string = (t) => t,
): Promise<string> {
  const dir = join(root, name);
  await Deno.mkdir(dir, { recursive: true });
  const mod = await Deno.readTextFile(join(FIXTURE_PLUGINS, "notes", "mod.ts"));
  const depth = dir.slice(REPO.length).split("/").filter(Boolean).length;
  await Deno.writeTextFile(
    join(dir, "mod.ts"),
    mod.replace("../../../../workers/sdk.ts", `${"../".repeat(depth)}workers/sdk.ts`),
  );
  const toml = await Deno.readTextFile(join(FIXTURE_PLUGINS, "notes", "plugin.toml"));
  await Deno.writeTextFile(join(dir, "plugin.toml"), edit(toml));
  return dir;
}

const version = (v: string) => (toml: string) =>
  toml.replace('version = "1.0.0"', `version = "${v}"`);
const wider = (toml: string) =>
  version("2.0.0")(toml).replace(
    '[ops]\nwrite = ["{data}/notes"]',
    '[permissions]\nread = ["/etc/hostname"]\n\n[ops]\nwrite = ["{data}/notes"]',
  );

/** A static file server on 127.0.0.1 standing in for any web host; counts what it served. */
function serve(dir: string) {
  const served: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const name = new URL(req.url).pathname.slice(1);
    served.push(name);
    try {
      return new Response(await Deno.readFile(join(dir, name)));
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return { url: (name: string) => `http://127.0.0.1:${server.addr.port}/${name}`, served, server };
}

async function lock(root: string) {
  try {
    return JSON.parse(await Deno.readTextFile(join(root, ".config/gini/plugins.lock"))) as {
      plugins: Record<string, { version: string; sha256: string; signer?: string }>;
    };
  } catch {
    return { plugins: {} };
  }
}

async function stored(root: string): Promise<string[]> {
  try {
    const dir = join(root, ".local/share/gini/plugins/packages");
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

Deno.test("plugin packages: bundle, install with approval, pin, tamper, upgrade, sign, approve", async (t) => {
  const env = await tempEnv();
  const build = join(REPO, ".gini-test", `install-${crypto.randomUUID().slice(0, 8)}`);
  const site = join(env.root, "site");
  await Deno.mkdir(site, { recursive: true });
  const http = serve(site);
  const gini = (...args: string[]) => runGini(env.root, args);
  const bundle = async (name: string, edit?: (t: string) => string, ...extra: string[]) => {
    const src = await pluginSource(build, name, edit);
    const out = await gini(
      "--json",
      "plugins",
      "bundle",
      src,
      "-o",
      join(site, `${name}.zip`),
      ...extra,
    );
    assertEquals(out.code, 0, out.stderr);
    return JSON.parse(out.stdout) as { sha256: string; file: string };
  };
  try {
    const v1 = await bundle("notes-1");

    await t.step("the same sources give the same package bytes", async () => {
      const again = await bundle("notes-1-again");
      assertEquals(again.sha256, v1.sha256);
    });

    await t.step("without --yes off a terminal: refused (exit 2), nothing stored", async () => {
      const out = await gini("plugins", "install", http.url("notes-1.zip"));
      assertEquals(out.code, 2, out.stderr);
      assertStringIncludes(out.stderr, 'Cannot install plugin "notes" without approval');
      assertEquals(await stored(env.root), []);
      assertEquals((await lock(env.root)).plugins, {});
    });

    await t.step("a pin that does not match: refused, nothing stored", async () => {
      const out = await gini(
        "plugins",
        "install",
        http.url("notes-1.zip"),
        "--sha256",
        "0".repeat(64),
        "--yes",
      );
      assertEquals(out.code, 1, out.stderr);
      assertStringIncludes(out.stderr, `expected ${"0".repeat(64)}`);
      assertEquals(await stored(env.root), []);
    });

    await t.step("on a terminal, the summary is shown and a yes installs it", async () => {
      const command = [
        Deno.execPath(),
        "run",
        "--quiet",
        "--allow-all",
        "--no-prompt",
        "--unstable-worker-options",
        "--v8-flags=--disallow-code-generation-from-strings",
        join(REPO, "main.ts"),
        "plugins",
        "install",
        http.url("notes-1.zip"),
        "--sha256",
        v1.sha256,
      ].map((w) => `'${w}'`).join(" ");
      const child = new Deno.Command("script", {
        args: ["-qec", command, "/dev/null"],
        env: { HOME: env.root, NO_COLOR: "1", PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      // The question is asked once the package is read; answer it then.
      await new Promise((r) => setTimeout(r, 200));
      await writer.write(new TextEncoder().encode("y\n"));
      await writer.close();
      const out = await child.output();
      const text = new TextDecoder().decode(out.stdout);
      assertEquals(out.code, 0, text);
      assertStringIncludes(text, 'Install plugin "notes" 1.0.0');
      assertStringIncludes(text, "Write files: {data}/notes");
      assertStringIncludes(text, "not signed");
      assertEquals((await lock(env.root)).plugins.notes?.sha256, v1.sha256);
      const files = await stored(env.root);
      assertEquals(files, [`${v1.sha256}.zip`]);
      const mode =
        (await Deno.stat(join(env.root, ".local/share/gini/plugins/packages", files[0]!)))
          .mode! & 0o777;
      assertEquals(mode, 0o444);
    });

    await t.step(
      "installed: listed with source, sha256 and approval; its command runs",
      async () => {
        const list = await gini("--json", "plugins", "list");
        assertEquals(list.code, 0, list.stderr);
        const notes = (JSON.parse(list.stdout) as Record<string, unknown>[]).find((p) =>
          p.name === "notes"
        )!;
        assertEquals(notes.source, http.url("notes-1.zip"));
        assertEquals(notes.sha256, v1.sha256);
        assertEquals(notes.approved, true);
        const run = await gini("--yes", "notes", "add", "hello");
        assertEquals(run.code, 0, run.stderr);
        const note = await Deno.readTextFile(join(env.root, ".local/share/gini/notes/note-0.txt"));
        assertStringIncludes(note, "hello");
      },
    );

    await t.step("an upgrade that wants more is blocked until approved again", async () => {
      await bundle("notes-2", wider);
      const blocked = await gini("plugins", "upgrade", "notes", http.url("notes-2.zip"));
      assertEquals(blocked.code, 2, blocked.stderr);
      assertStringIncludes(blocked.stderr, 'Cannot upgrade plugin "notes" without approval');
      assertEquals((await lock(env.root)).plugins.notes?.version, "1.0.0");
      const dry = await gini("--dry-run", "plugins", "upgrade", "notes", http.url("notes-2.zip"));
      assertMatch(dry.stdout, /may now also:\n.*Read files: \/etc\/hostname/);
      const approved = await gini("--yes", "plugins", "upgrade", "notes", http.url("notes-2.zip"));
      assertEquals(approved.code, 0, approved.stderr);
      assertEquals((await lock(env.root)).plugins.notes?.version, "2.0.0");
      assertEquals((await stored(env.root)).length, 1, "the old package is removed");
    });

    await t.step("a downgrade is refused without --allow-downgrade", async () => {
      const out = await gini("--yes", "plugins", "upgrade", "notes", http.url("notes-1.zip"));
      assertEquals(out.code, 1, out.stderr);
      assertStringIncludes(out.stderr, "from 2.0.0 to 1.0.0: that is a downgrade");
      assertEquals((await lock(env.root)).plugins.notes?.version, "2.0.0");
      const allowed = await gini(
        "--yes",
        "plugins",
        "upgrade",
        "notes",
        http.url("notes-1.zip"),
        "--allow-downgrade",
      );
      assertEquals(allowed.code, 0, allowed.stderr);
      assertEquals((await lock(env.root)).plugins.notes?.version, "1.0.0");
    });

    await t.step("stored bytes changed after approval: refused at load, never run", async () => {
      const [file] = await stored(env.root);
      const path = join(env.root, ".local/share/gini/plugins/packages", file!);
      await Deno.chmod(path, 0o644);
      const bytes = await Deno.readFile(path);
      bytes[bytes.length - 30] = bytes[bytes.length - 30]! ^ 0xff;
      await Deno.writeFile(path, bytes);
      const run = await gini("--yes", "notes", "add", "tampered");
      assertEquals(run.code, 2, run.stderr); // unknown command: the plugin is not loaded
      const list = await gini("plugins", "list");
      assertMatch(list.stdout, /notes\s+NOT LOADED: its package .* changed since it was approved/);
      const notes = await Array.fromAsync(Deno.readDir(join(env.root, ".local/share/gini/notes")));
      assertEquals(notes.length, 1, "no note was written by the tampered plugin");
      const removed = await gini("plugins", "remove", "notes");
      assertEquals(removed.code, 0, removed.stderr);
      assertEquals(await stored(env.root), []);
      assertEquals((await lock(env.root)).plugins, {});
    });

    await t.step(
      "signed: the key is pinned; a package signed by another key is refused",
      async () => {
        const keyA = join(env.root, "a.key");
        const keyB = join(env.root, "b.key");
        assertEquals((await gini("plugins", "keygen", "-o", keyA)).code, 0);
        assertEquals((await gini("plugins", "keygen", "-o", keyB)).code, 0);
        assertEquals((await Deno.stat(keyA)).mode! & 0o777, 0o600);
        await bundle("signed-1", version("1.1.0"), "--sign", keyA);
        const install = await gini("--yes", "plugins", "install", http.url("signed-1.zip"));
        assertEquals(install.code, 0, install.stderr);
        assertMatch(install.stderr, /signed\s+by key [0-9a-f ]+/);
        const signer = (await lock(env.root)).plugins.notes?.signer;
        assert(signer, "the signer key is recorded");
        await bundle("signed-2", version("1.2.0"), "--sign", keyB);
        const other = await gini("--yes", "plugins", "upgrade", "notes", http.url("signed-2.zip"));
        assertEquals(other.code, 1, other.stderr);
        assertStringIncludes(other.stderr, "not by the key pinned");
        await bundle("unsigned-3", version("1.3.0"));
        const unsigned = await gini(
          "--yes",
          "plugins",
          "upgrade",
          "notes",
          http.url("unsigned-3.zip"),
        );
        assertEquals(unsigned.code, 1, unsigned.stderr);
        assertStringIncludes(unsigned.stderr, "is signed");
        assertEquals((await lock(env.root)).plugins.notes?.version, "1.1.0");
        // A signature that does not match its package is refused at install.
        await Deno.copyFile(join(site, "signed-1.zip.sig"), join(site, "notes-1.zip.sig"));
        await gini("plugins", "remove", "notes");
        const forged = await gini("--yes", "plugins", "install", http.url("notes-1.zip"));
        assertEquals(forged.code, 1, forged.stderr);
        assertStringIncludes(forged.stderr, "does not match the package");
        await Deno.remove(join(site, "notes-1.zip.sig"));
      },
    );

    await t.step("a folder placed by hand is not loaded until approved", async () => {
      const folder = join(env.root, ".local/share/gini/plugins/notes");
      await Deno.mkdir(folder, { recursive: true });
      // What a distribution does with a package: unpack it into the plugin folder.
      const files = unzipSync(await Deno.readFile(join(site, "notes-1.zip")));
      for (const [name, bytes] of Object.entries(files)) {
        await Deno.writeFile(join(folder, name), bytes);
      }
      const before = await gini("plugins", "list");
      assertMatch(
        before.stdout,
        /notes\s+NOT LOADED: not approved: run "gini plugins approve notes"/,
      );
      assertEquals((await gini("--yes", "notes", "add", "x")).code, 2);
      const approve = await gini("--yes", "plugins", "approve", "notes");
      assertEquals(approve.code, 0, approve.stderr);
      assertStringIncludes(approve.stderr, 'Approve plugin "notes" 1.0.0');
      await Deno.remove(join(env.root, ".local/share/gini/notes"), { recursive: true });
      const run = await gini("--yes", "notes", "add", "by-hand");
      assertEquals(run.code, 0, run.stderr);
      // Editing the approved module makes it unapproved again.
      await Deno.writeTextFile(join(folder, "plugin.js"), "\n// edited", { append: true });
      const after = await gini("plugins", "list");
      assertMatch(after.stdout, /notes\s+NOT LOADED: its files changed since they were approved/);
    });

    await t.step(
      "a package whose module imports a host file or a URL is refused at install",
      async () => {
        const toml = new TextEncoder().encode(
          version("9.0.0")(await Deno.readTextFile(join(FIXTURE_PLUGINS, "notes", "plugin.toml")))
            .replace(
              'priority = "third-party:160"',
              'priority = "third-party:160"\nentry = "plugin.js"',
            )
            .replace('name = "notes"', 'name = "importer"'),
        );
        for (
          const [name, code] of [
            ["file", 'import s from "/etc/shadow" with { type: "text" };\nexport default s;'],
            ["url", `export const m = await import("${http.url("evil.js")}");`],
          ]
        ) {
          const zip = zipPackage({
            "plugin.toml": toml,
            "plugin.js": new TextEncoder().encode(code!),
          });
          await Deno.writeFile(join(site, `importer-${name}.zip`), zip);
          const out = await gini("--yes", "plugins", "install", http.url(`importer-${name}.zip`));
          assertEquals(out.code, 2, out.stderr);
          assertStringIncludes(out.stderr, "a plugin may import nothing outside its own bundle");
        }
        assert(!http.served.includes("evil.js"), "the URL was never fetched");
        assert(!(await lock(env.root)).plugins.importer);
      },
    );
  } finally {
    await http.server.shutdown();
    await Deno.remove(build, { recursive: true }).catch(() => {});
    await Deno.remove(env.root, { recursive: true }).catch(() => {});
  }
});
