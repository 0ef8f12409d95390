/**
 * Hostile third-party packages against Gini's sandbox, driven through the real CLI as a user
 * would: `gini plugins bundle` builds each package in `tests/fixtures/packages`, `gini plugins
 * install --yes` installs it (one of them from an HTTP server), and `gini run` runs it. Every test
 * checks what can be seen from outside the plugin: what reached the test's HTTP server on
 * 127.0.0.1, what the kernel wrote, the `gini` process's exit, umask and working folder, and
 * what was printed.
 *
 * One set of bundles and one home serve every test. The server hands the port to the packages in
 * `{config}/sandbox-port/port`; `holder` alone may read `{config}/sandbox-secret/secret.txt`.
 *
 * @module
 */
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { basename, join } from "node:path";
import { unzipSync } from "fflate";
import { zipPackage } from "../kernel/plugins/package.ts";
import { type CommandOutput, DENO_DIR, REPO, runGini, spawnGini } from "./_helpers.ts";
import { giniRunFlags } from "../scripts/compile.ts";

const PACKAGES = join(REPO, "tests/fixtures/packages");
const INSTALLED = ["holder", "leaker", "exiter", "signaller", "terminal", "forger"];
const ESC = "\x1b";
const BEL = "\x07";

interface Request {
  method: string;
  path: string;
  body: string;
}

interface Sandbox {
  home: string;
  config: string;
  data: string;
  bundles: string;
  secret: string;
  port: number;
  /** Every request the server received, in order. */
  requests: Request[];
  gini(...args: string[]): Promise<CommandOutput>;
}

let shared: Promise<Sandbox> | undefined;

/** The one home, server and set of installed packages every test uses. */
function sandbox(): Promise<Sandbox> {
  return shared ??= build();
}

async function build(): Promise<Sandbox> {
  const home = await Deno.realPath(await Deno.makeTempDir({ prefix: "gini-sandbox-" }));
  const config = join(home, ".config/gini");
  const data = join(home, ".local/share/gini");
  const bundles = join(home, "bundles");
  await Deno.mkdir(bundles);
  const requests: Request[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const url = new URL(request.url);
      requests.push({ method: request.method, path: url.pathname, body: await request.text() });
      if (url.pathname.startsWith("/packages/")) {
        try {
          return new Response(await Deno.readFile(join(bundles, basename(url.pathname))));
        } catch {
          return new Response("not found", { status: 404 });
        }
      }
      if (url.pathname === "/x.js") {
        return new Response("export default 1;", {
          headers: { "content-type": "text/javascript" },
        });
      }
      return new Response("ok");
    },
  );
  server.unref();
  globalThis.addEventListener("unload", () => {
    Deno.removeSync(home, { recursive: true });
  });
  const port = server.addr.port;
  const secret = `SANDBOX-SECRET-${crypto.randomUUID()}`;
  await Deno.mkdir(join(config, "sandbox-secret"), { recursive: true });
  await Deno.mkdir(join(config, "sandbox-port"), { recursive: true });
  await Deno.writeTextFile(join(config, "sandbox-secret/secret.txt"), `${secret}\n`, {
    mode: 0o600,
  });
  await Deno.writeTextFile(join(config, "sandbox-port/port"), `${port}\n`);
  const gini = (...args: string[]) => runGini(home, args);
  const built = await Promise.all(
    [...INSTALLED, "canary"].map((name) =>
      gini("plugins", "bundle", join(PACKAGES, name), "-o", join(bundles, `${name}.zip`))
    ),
  );
  for (const out of built) assertEquals(out.code, 0, out.stderr);
  for (const name of INSTALLED) {
    const out = await gini("plugins", "install", join(bundles, `${name}.zip`), "--yes");
    assertEquals(out.code, 0, `${name}: ${out.stderr}`);
  }
  // canary comes from the server, pinned to the sha256 its publisher gives.
  const sha256 = await sha256Of(join(bundles, "canary.zip"));
  const url = `http://127.0.0.1:${port}/packages/canary.zip`;
  const out = await gini("plugins", "install", url, "--sha256", sha256, "--yes");
  assertEquals(out.code, 0, out.stderr);
  assert(requests.some((r) => r.path === "/packages/canary.zip"), "not fetched from the server");
  return { home, config, data, bundles, secret, port, requests, gini };
}

async function sha256Of(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Requests made from `from` on (an index into `requests`). */
function since(s: Sandbox, from: number): Request[] {
  return s.requests.slice(from);
}

async function readOr(path: string, fallback = "(missing)"): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return fallback;
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** A package's files, changed by `edit`, zipped again as an author would. */
async function repack(
  from: string,
  to: string,
  edit: (files: Record<string, Uint8Array>) => void,
): Promise<void> {
  const files = unzipSync(await Deno.readFile(from));
  edit(files);
  await Deno.writeFile(to, zipPackage(files));
}

const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);
const bytes = (s: string) => new TextEncoder().encode(s);

/** Fails unless the line holding each occurrence of `mark` also names the plugin. */
function onlyFromKernel(output: string, mark: string, plugin: string): void {
  for (const line of output.split("\n")) {
    if (line.includes(mark)) {
      assertStringIncludes(line, `[${plugin}]`, `printed past the kernel: ${JSON.stringify(line)}`);
    }
  }
}

const options = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "two installed plugins cannot pass a secret between them, in one run or across runs",
  ...options,
  async fn() {
    const s = await sandbox();
    // The second run finds what the first left behind (the Cache API keeps data between runs).
    for (const run of [1, 2]) {
      const from = s.requests.length;
      const out = await s.gini("run", "holder:share", "leaker:collect");
      const log = await readOr(join(s.data, "evidence/leaker/log.json"));
      assertEquals(out.code, 0, `run ${run}: ${out.stdout}\n${out.stderr}`);
      const posts = since(s, from).filter((r) => r.path === "/leak");
      assertEquals(posts.length, 1, `run ${run}: leaker reports once`);
      for (const request of s.requests) {
        assert(
          !request.body.includes(s.secret) && !request.path.includes(s.secret),
          `run ${run}: the secret reached the server (${request.method} ${request.path}):\n${log}`,
        );
      }
      assert(!log.includes(s.secret), `run ${run}: the secret reached leaker:\n${log}`);
    }
  },
});

Deno.test({
  name:
    "a plugin cannot end the kernel's process: Deno.exit, process.exit/abort/kill, a worker of its own",
  ...options,
  async fn() {
    const s = await sandbox();
    const out = await s.gini("run", "exiter:attack", "exiter:after");
    const log = await readOr(join(s.data, "evidence/exiter/attack.json"));
    assertEquals(out.code, 0, `${out.stdout}\n${out.stderr}\n${log}`);
    assert(await exists(join(s.data, "evidence/exiter/survived")), log);
  },
});

Deno.test({
  name: "SIGTERM still stops gini whatever listeners a plugin adds, and its umask and folder stay",
  ...options,
  async fn() {
    const s = await sandbox();
    const armed = join(s.data, "evidence/signaller/armed.json");
    await Deno.remove(armed).catch(() => {});
    const ownUmask = umaskOf("self");
    const { child, output } = await spawnGini(s.home, ["run", "signaller:hold"]);
    let finished: CommandOutput | undefined;
    void output.then((o) => finished = o);
    try {
      for (let waited = 0; !await exists(armed); waited += 100) {
        assert(!finished, `gini ended before the plugin was armed: ${finished?.stderr}`);
        assert(waited < 30_000, "the plugin never armed");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const log = await readOr(armed);
      assertEquals(umaskOf(String(child.pid)), ownUmask, `the kernel's umask changed:\n${log}`);
      assertEquals(
        await Deno.readLink(`/proc/${child.pid}/cwd`),
        s.home,
        `the kernel's folder changed:\n${log}`,
      );
      // The kernel wrote armed.json after the attempts, with its default mode under the umask.
      assertEquals((await Deno.stat(armed)).mode! & 0o777, 0o644 & ~ownUmask, log);
      child.kill("SIGTERM");
      const deadline = Date.now() + 20_000;
      while (!finished && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert(finished, `gini still runs 20 s after SIGTERM:\n${log}`);
      assertEquals(finished.code, 143, finished.stderr);
      // The interrupted run is the kernel's to finish: rolling it back removes what it wrote.
      const recovered = await s.gini("--yes", "recover", "--rollback");
      assertEquals(recovered.code, 0, recovered.stderr);
      assert(!await exists(armed), "the rollback left armed.json");
    } finally {
      if (!finished) {
        child.kill("SIGKILL");
        await output;
      }
    }
  },
});

function umaskOf(pid: string): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return parseInt(status.match(/^Umask:\s*([0-7]+)/m)![1]!, 8);
}

/** Runs gini as runGini does, with `input` on its standard input. */
async function giniWithInput(home: string, args: string[], input: string): Promise<CommandOutput> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...await giniRunFlags(), join(REPO, "main.ts"), ...args],
    cwd: home,
    env: { HOME: home, NO_COLOR: "1", PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", DENO_DIR },
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(bytes(input));
  await writer.close();
  const out = await child.output();
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test({
  name: "a plugin neither prints past the kernel nor reads what the user types",
  ...options,
  async fn() {
    const s = await sandbox();
    const typed = `TYPED-${crypto.randomUUID()}`;
    const out = await giniWithInput(s.home, ["run", "terminal:speak"], `${typed}\n`);
    const log = await readOr(join(s.data, "evidence/terminal/log.json"));
    assertEquals(out.code, 0, `${out.stdout}\n${out.stderr}`);
    const printed = out.stdout + out.stderr;
    assert(!printed.includes(ESC) && !printed.includes(BEL), JSON.stringify(printed));
    onlyFromKernel(printed, "TERMINAL-MARK", "terminal");
    assert(!log.includes(typed), `the plugin read the terminal:\n${log}`);
  },
});

Deno.test({
  name: "a plugin's error message reaches the terminal without its escape sequences",
  ...options,
  async fn(t) {
    const s = await sandbox();
    // Thrown in a stage: the kernel prints the message it got from the worker as it is.
    await t.step("thrown in a stage", async () => {
      const out = await s.gini("run", "terminal:fail");
      assertEquals(out.code, 1, out.stderr);
      assertStringIncludes(out.stderr, "TERMINAL-FAIL");
      const printed = out.stdout + out.stderr;
      assert(!printed.includes(ESC) && !printed.includes(BEL), JSON.stringify(printed));
    });
    // Thrown outside any call: the bootstrap's error listener reports it; Deno prints nothing itself.
    await t.step("thrown outside any call", async () => {
      const out = await s.gini("run", "terminal:stray");
      assertEquals(out.code, 1, out.stderr);
      assertStringIncludes(out.stderr, "TERMINAL-STRAY");
      const printed = out.stdout + out.stderr;
      assert(!printed.includes(ESC) && !printed.includes(BEL), JSON.stringify(printed));
    });
  },
});

Deno.test({
  name: "messages a plugin forges to the kernel act with its own grants only",
  ...options,
  async fn() {
    const s = await sandbox();
    const lock = join(s.config, "plugins.lock");
    const before = await Deno.readTextFile(lock);
    const out = await s.gini("run", "forger:forge");
    const printed = out.stdout + out.stderr;
    assert(!printed.includes("Uncaught"), printed);
    // Its forged answer to its own call was taken as the stage's, and its write refused.
    assertEquals(out.code, 1, printed);
    assertStringIncludes(
      printed,
      'it wrote context key "session.command", which it does not declare',
    );
    assertEquals(await Deno.readTextFile(lock), before, "plugins.lock changed");
    assert(!await exists(join(s.data, "evidence/forged.txt")), "a write outside its grant");
    onlyFromKernel(printed, "FORGED-AS-KERNEL", "forger");
    // The kernel is still itself: the lock it reads lists every package.
    const list = await s.gini("--json", "plugins", "list");
    assertEquals(list.code, 0, list.stderr);
    for (const name of INSTALLED) assertStringIncludes(list.stdout, `"${name}"`);
  },
});

Deno.test({
  name: "an installed package's code runs only while its bytes are the approved ones, and only " +
    "in a process that forbids code from strings",
  ...options,
  async fn(t) {
    const s = await sandbox();
    const loaded = (from: number, mark: string) =>
      since(s, from).some((r) => r.path === `/loaded/${mark}`);

    await t.step("as installed (from HTTP, pinned), it runs", async () => {
      const from = s.requests.length;
      const out = await s.gini("run", "canary:mark");
      assertEquals(out.code, 0, out.stderr);
      assert(loaded(from, "canary-1"));
      assertEquals(await readOr(join(s.data, "evidence/canary/canary")), "canary-1");
    });

    await t.step("without V8's no-code-from-strings flag, gini refuses to start it", async () => {
      const flags = (await giniRunFlags()).filter((f) => !f.includes("code-generation"));
      const from = s.requests.length;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", ...flags, join(REPO, "main.ts"), "run", "canary:mark"],
        cwd: s.home,
        env: { HOME: s.home, NO_COLOR: "1", PATH: Deno.env.get("PATH") ?? "", DENO_DIR },
        clearEnv: true,
      }).output();
      assertEquals(out.code, 1);
      assertStringIncludes(text(out.stderr), "allows code built from strings");
      assert(!loaded(from, "canary-1"), "its code ran");
    });

    await t.step(
      "its stored package edited (even by root), it is refused and never runs",
      async () => {
        const sha256 = await sha256Of(join(s.bundles, "canary.zip"));
        const stored = join(s.data, "plugins/packages", `${sha256}.zip`);
        assertEquals((await Deno.stat(stored)).mode! & 0o777, 0o444);
        await Deno.chmod(stored, 0o644);
        await repack(stored, stored, (files) => {
          files["plugin.js"] = bytes(text(files["plugin.js"]).replaceAll("canary-1", "canary-2"));
        });
        const from = s.requests.length;
        const out = await s.gini("run", "canary:mark");
        assert(out.code !== 0, out.stdout);
        assert(!loaded(from, "canary-2"), "the edited code ran");
        const list = await s.gini("plugins", "list");
        assertStringIncludes(list.stdout + list.stderr, "changed since it was approved");
        const removed = await s.gini("plugins", "remove", "canary");
        assertEquals(removed.code, 0, removed.stderr);
      },
    );
  },
});

Deno.test({
  name: "a plugin folder placed by hand runs only once approved, and not after its module changes",
  ...options,
  async fn() {
    const s = await sandbox();
    const dir = join(s.data, "plugins/placed");
    await Deno.mkdir(dir, { recursive: true });
    const files = unzipSync(await Deno.readFile(join(s.bundles, "canary.zip")));
    const code = text(files["plugin.js"]);
    await Deno.writeTextFile(
      join(dir, "plugin.toml"),
      text(files["plugin.toml"]).replace('name = "canary"', 'name = "placed"'),
    );
    await Deno.writeTextFile(join(dir, "plugin.js"), code.replaceAll("canary-1", "placed-1"));
    const ran = (from: number, mark: string) =>
      since(s, from).some((r) => r.path === `/loaded/${mark}`);

    let from = s.requests.length;
    const list = await s.gini("plugins", "list");
    assertStringIncludes(list.stdout + list.stderr, "gini plugins approve placed");
    const refused = await s.gini("run", "placed:mark");
    assert(refused.code !== 0, refused.stdout);
    assert(!ran(from, "placed-1"), "an unapproved folder ran");

    const approved = await s.gini("plugins", "approve", "placed", "--yes");
    assertEquals(approved.code, 0, approved.stderr);
    from = s.requests.length;
    const out = await s.gini("run", "placed:mark");
    assertEquals(out.code, 0, out.stderr);
    assert(ran(from, "placed-1"), "the approved folder did not run");

    await Deno.writeTextFile(join(dir, "plugin.js"), code.replaceAll("canary-1", "placed-2"));
    from = s.requests.length;
    const changed = await s.gini("run", "placed:mark");
    assert(changed.code !== 0, changed.stdout);
    assert(!ran(from, "placed-2"), "the changed module ran");
    const after = await s.gini("plugins", "list");
    assertStringIncludes(after.stdout + after.stderr, "changed since they were approved");
    await Deno.remove(dir, { recursive: true });
    await s.gini("plugins", "remove", "placed");
  },
});

Deno.test({
  name:
    "a folder placed by hand stops running when its JSON Schema file changes, until approved again",
  ...options,
  async fn() {
    const s = await sandbox();
    const dir = join(s.data, "plugins/schemed");
    await Deno.mkdir(dir, { recursive: true });
    const files = unzipSync(await Deno.readFile(join(s.bundles, "canary.zip")));
    const toml = text(files["plugin.toml"])
      .replace('name = "canary"', 'name = "schemed"')
      .replace('name = "mark"', 'name = "mark"\nwrites = ["schemed.note"]');
    await Deno.writeTextFile(
      join(dir, "plugin.toml"),
      `${toml}\n[context]\nschemas = "contracts.json"\n`,
    );
    await Deno.writeTextFile(join(dir, "plugin.js"), text(files["plugin.js"]));
    const schema = (type: string) => JSON.stringify({ "schemed.note": { type } });
    await Deno.writeTextFile(join(dir, "contracts.json"), schema("string"));
    const approved = await s.gini("plugins", "approve", "schemed", "--yes");
    assertEquals(approved.code, 0, approved.stderr);
    assertEquals((await s.gini("run", "schemed:mark")).code, 0);
    try {
      await Deno.writeTextFile(join(dir, "contracts.json"), schema("number"));
      const changed = await s.gini("run", "schemed:mark");
      assert(changed.code !== 0, `it ran with a schema nobody approved:\n${changed.stdout}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
      await s.gini("plugins", "remove", "schemed");
    }
  },
});

/**
 * Modules that reach outside the package, as an author would hand-write them into plugin.js
 * after bundling (the zip is theirs to make): each is appended to canary's bundle.
 */
function smuggled(s: Sandbox, canary: string): Record<string, string> {
  const url = `http://127.0.0.1:${s.port}/x.js`;
  const nbsp = "\u00a0";
  // es-module-lexer takes `/` after a character it does not know as whitespace for a division,
  // so it reads the regex's quote as opening a string, which hides what follows on the line.
  const behindRegex = (space: string, hidden: string) => `let q; q =${space}/'/; ${hidden} // '`;
  return {
    "a static text import of a file": `import t from "file://${canary}" with { type: "text" };`,
    "a static JSON import": `import j from "file://${canary}.json" with { type: "json" };`,
    "a literal import() of a URL": `globalThis.later = () => import("${url}");`,
    "an import() of node:worker_threads": `globalThis.later = () => import("node:worker_threads");`,
    "a static import of node:worker_threads": `import { Worker } from "node:worker_threads";`,
    "export * from": `export * from "node:worker_threads";`,
    "export { … } from": `export { Worker } from "node:worker_threads";`,
    "import defer": `import defer * as threads from "node:worker_threads";`,
    "import source": `import source s from "${url}";`,
    "import.source()": `globalThis.later = () => import.source("${url}");`,
    "an escape in the specifier": `import "node:worker_thread\\u0073";`,
    "a comment before (": `globalThis.later = () => import/**/("${url}");`,
    "a line break before (": `globalThis.later = () => import\n("${url}");`,
    "import() inside a template": 'globalThis.later = () => `${import("' + url + '")}`;',
    "a no-break space before a regex": behindRegex(
      nbsp,
      `globalThis.later = () => import("${url}");`,
    ),
    "a byte-order mark before a regex": behindRegex(
      "\ufeff",
      `globalThis.later = () => import("${url}");`,
    ),
    "a line separator before a regex": behindRegex(
      "\u2028",
      `globalThis.later = () => import("${url}");`,
    ),
    "an ideographic space before a regex": behindRegex(
      "\u3000",
      `globalThis.later = () => import("${url}");`,
    ),
    "export * hidden behind a regex": behindRegex(
      nbsp,
      `export * from "data:text/javascript,%69mport('node:worker_threads')";`,
    ),
    // Plain ASCII: after a class body the lexer expects a regex where V8 sees a division.
    "import() between two divisions": `const u = "${url}"; let v = class {} / 1; ` +
      `globalThis.later = () => import(u); let w = 2 / 1;`,
    // The lexer reads this as `import "node:path"`; V8 as import(u) followed by a string.
    "import() read as a static import": `const u = "${url}";\nimport \u2003(u), "node:path";`,
  };
}

Deno.test({
  name:
    "a package whose module reaches outside itself is refused at install, however it is written",
  ...options,
  async fn(t) {
    const s = await sandbox();
    const home = await Deno.makeTempDir({ dir: s.home, prefix: "variants-" });
    const canary = join(s.home, "import-canary.txt");
    await Deno.writeTextFile(canary, "IMPORT-CANARY\n");
    await Deno.writeTextFile(`${canary}.json`, '{"canary": true}\n');
    const base = join(s.bundles, "canary.zip");
    const variants: [string, (files: Record<string, Uint8Array>) => void, string][] = [];
    for (const [name, code] of Object.entries(smuggled(s, canary))) {
      variants.push([name, (files) => {
        files["plugin.js"] = bytes(`${text(files["plugin.js"])}\n${code}\n`);
      }, "Cannot accept the plugin module"]);
    }
    const manifest = (from: string, to: string) => (files: Record<string, Uint8Array>) => {
      const toml = text(files["plugin.toml"]);
      assertStringIncludes(toml, from);
      files["plugin.toml"] = bytes(toml.replace(from, to));
    };
    variants.push(
      [
        "a stage producing session.command",
        manifest('name = "mark"', 'name = "mark"\nwrites = ["session.command"]'),
        'write "session.command"',
      ],
      ["the core priority class", manifest("third-party:160", "core:60"), "core"],
      ["core = true", manifest("[plugin]", "[plugin]\ncore = true"), "core"],
      ["a file besides the module", (files) => {
        files["extra.js"] = bytes("export default 1;\n");
      }, '"extra.js"'],
    );
    // Each in a home of its own, so that one installed does not hide another.
    const outcomes = await Promise.all(variants.map(async ([, edit], i) => {
      const own = join(home, `variant-${i}`);
      await Deno.mkdir(own);
      const zip = join(own, "canary.zip");
      await repack(base, zip, edit);
      const out = await runGini(own, ["plugins", "install", zip, "--yes"]);
      return { ...out, recorded: await exists(join(own, ".config/gini/plugins.lock")) };
    }));
    for (const [i, [name, , message]] of variants.entries()) {
      await t.step(name, () => {
        const out = outcomes[i]!;
        assert(out.code !== 0 && !out.recorded, `installed:\n${out.stdout}`);
        assertStringIncludes(out.stderr, message);
      });
    }
    await t.step("the same package without them installs", async () => {
      const out = await runGini(home, ["plugins", "install", base, "--yes"]);
      assertEquals(out.code, 0, out.stderr);
    });
    assert(!s.requests.some((r) => r.path === "/x.js"), "a module was fetched from the server");
  },
});

Deno.test({
  name: "gini plugins bundle refuses a module importing a URL, and inlines a file it imports",
  ...options,
  async fn() {
    const s = await sandbox();
    const sdk = join(REPO, "workers/sdk.ts");
    const manifest = (name: string) =>
      text(
        unzipSync(Deno.readFileSync(join(s.bundles, "canary.zip")))["plugin.toml"],
      ).replace('name = "canary"', `name = "${name}"`).replace('entry = "plugin.js"', "");
    // Source folders outside the repository, resolving the SDK's dependencies as it does.
    const { imports } = JSON.parse(await Deno.readTextFile(join(REPO, "deno.json")));
    const folder = async (name: string) => {
      const dir = join(s.home, `src-${name}`);
      await Deno.mkdir(dir);
      await Deno.writeTextFile(join(dir, "deno.json"), JSON.stringify({ imports, lock: false }));
      await Deno.writeTextFile(join(dir, "plugin.toml"), manifest(name));
      return dir;
    };
    const remote = await folder("remote");
    await Deno.writeTextFile(
      join(remote, "mod.ts"),
      `import { definePlugin } from "${sdk}";\n` +
        `export default definePlugin({ stages: { mark: async () => {\n` +
        `  await import("http://127.0.0.1:${s.port}/x.js");\n} } });\n`,
    );
    const refused = await s.gini("plugins", "bundle", remote, "-o", join(s.home, "remote.zip"));
    assert(refused.code !== 0, refused.stdout);
    assert(!await exists(join(s.home, "remote.zip")));

    // A text import is read when the author bundles, on the author's machine: the package holds
    // that copy, and never reads the file where it is installed.
    const inline = await folder("inline");
    const file = join(s.home, "inline-canary.txt");
    await Deno.writeTextFile(file, "AT-BUNDLE-TIME");
    await Deno.writeTextFile(
      join(inline, "mod.ts"),
      `import { definePlugin } from "${sdk}";\n` +
        `import seen from "${file}" with { type: "text" };\n` +
        `export default definePlugin({ stages: { mark: async (ctx) => {\n` +
        `  await ctx.op("fs.mkdir", { path: ctx.dirs.data + "/evidence/canary" });\n` +
        `  await ctx.op("fs.write", { path: ctx.dirs.data + "/evidence/canary/inline", ` +
        `content: seen, overwrite: true });\n} } });\n`,
    );
    const zip = join(s.home, "inline.zip");
    const bundled = await s.gini("plugins", "bundle", inline, "-o", zip);
    assertEquals(bundled.code, 0, bundled.stderr);
    await Deno.writeTextFile(file, "AT-RUN-TIME");
    assertEquals((await s.gini("plugins", "install", zip, "--yes")).code, 0);
    const out = await s.gini("run", "inline:mark");
    assertEquals(out.code, 0, out.stderr);
    assertEquals(await readOr(join(s.data, "evidence/canary/inline")), "AT-BUNDLE-TIME");
    await s.gini("plugins", "remove", "inline");
    assert(!s.requests.some((r) => r.path === "/x.js"), "a module was fetched from the server");
  },
});
