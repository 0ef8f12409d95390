/**
 * `gini plugins test DIR [--junit FILE] [--html FILE]`: runs a plugin's tests written with the
 * kit (`@gini/testing`). The compiled gini has no `deno test` inside it, so Gini runs them itself:
 * it imports each test file (`*_test.ts`, `*.test.ts`) with the kit collecting what it registers
 * with `test()`, runs the tests one after another, and reports them on the console and, when
 * asked, as JUnit XML and HTML. The test files are the author's own code and run with Gini's
 * authority, as `deno test -A` would; the plugin they test runs in its sandboxed worker. For a
 * folder that is not Gini's own, an approved plugin's or under a `--plugin-dir`, it warns first.
 *
 * @module
 */
import { join, relative, resolve } from "node:path";
import { UsageError } from "../kernel/mod.ts";
import { toFileUrl } from "../kernel/url.ts";
import { CORE_PLUGIN_DIR } from "../kernel/plugins/discover.ts";
import { lockPath } from "../kernel/plugins/installed.ts";
import { readLock } from "../kernel/plugins/trust.ts";
import { collectTests } from "../workers/testing.ts";
import {
  consoleLine,
  htmlReport,
  junitReport,
  runTests,
  type TestFile,
  totals,
} from "../workers/test_report.ts";
import type { Cli, CommandEnv } from "./_env.ts";

const TEST_FILE = /(^|[_.])test\.(ts|mts|js|mjs)$/;

/** The test files under `dir`, sorted; hidden folders and node_modules are left out. */
async function testFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith(".") || entry.name === "node_modules") continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory) found.push(...await testFiles(path));
    else if (entry.isFile && TEST_FILE.test(entry.name)) found.push(path);
  }
  return found.sort();
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** The real path, or the path itself when it cannot be resolved. */
async function realPath(path: string): Promise<string> {
  return await Deno.realPath(path).catch(() => path);
}

/**
 * Is `folder` code the user already trusts: Gini's own plugins, an approved plugin folder
 * (plugins.lock), or under a `--plugin-dir` of this run?
 */
async function isTrusted(c: CommandEnv, folder: string, cwd: string): Promise<boolean> {
  const real = await realPath(folder);
  const within = (root: string) => real === root || real.startsWith(`${root}/`);
  const roots = [
    CORE_PLUGIN_DIR.replace(/\/+$/, ""),
    ...(c.flags.pluginDir ?? []).map((d) => resolve(cwd, d)),
  ];
  for (const root of roots) if (within(await realPath(root))) return true;
  const lock = await readLock(lockPath(c.env)).catch(() => null);
  for (const entry of Object.values(lock?.plugins ?? {})) {
    if (entry.kind === "folder" && real === await realPath(entry.source)) return true;
  }
  return false;
}

/** Registers `gini plugins test`. */
export function registerPluginsTest(cli: Cli, group: ReturnType<Cli["program"]["command"]>): void {
  group.command("test")
    .description("run a plugin's tests written with the test kit; JUnit and HTML reports")
    .argument("<dir>", "the plugin's folder (its *_test.ts files are run)")
    .option("--junit <file>", "write a JUnit XML report (what CI systems read)")
    .option("--html <file>", "write an HTML report")
    .action(cli.action(async (c, dir: string, o: { junit?: string; html?: string }) => {
      const folder = resolve(cli.cwd, dir);
      if (!await isDirectory(folder)) {
        throw new UsageError(`Cannot test "${dir}": ${folder} is not a folder`, {
          location: { flag: "DIR" },
          hint: "Give the plugin's folder, the one holding plugin.toml",
        });
      }
      const files = await testFiles(folder);
      if (!files.length) {
        throw new UsageError(`Cannot test "${dir}": ${folder} holds no test files`, {
          location: { flag: "DIR" },
          hint:
            'Name test files *_test.ts and register tests with test() from "@gini/testing" (gini plugins new writes one)',
        });
      }
      if (!await isTrusted(c, folder, cli.cwd)) {
        c.ui.warn(
          `Running the test files in ${folder} with Gini's full rights (they are imported into this process, not into a plugin's worker): it is not an approved plugin or a --plugin-dir, so test only code you trust`,
        );
      }
      const loaded: TestFile[] = [];
      for (const file of files) {
        const name = relative(folder, file);
        try {
          const tests = await collectTests(() => import(toFileUrl(file).href));
          if (!tests.length) {
            c.ui.warn(
              `${name} registers no test with test() from "@gini/testing" (Deno.test is not run here)`,
            );
          }
          loaded.push({ file: name, tests });
        } catch (error) {
          loaded.push({ file: name, tests: [], loadError: error });
        }
      }
      const results = await runTests(loaded, (r) => {
        if (!c.flags.json) c.ui.info(consoleLine(r));
      });
      if (!results.length) {
        throw new UsageError(`Cannot test "${dir}": its test files register no test`, {
          location: { flag: "DIR" },
          hint: 'Register tests with test() from "@gini/testing"',
        });
      }
      const written: string[] = [];
      if (o.junit) {
        const file = resolve(cli.cwd, o.junit);
        await Deno.writeTextFile(file, junitReport(results));
        written.push(file);
      }
      if (o.html) {
        const file = resolve(cli.cwd, o.html);
        await Deno.writeTextFile(file, htmlReport(results, { title: `gini plugins test ${dir}` }));
        written.push(file);
      }
      const t = totals(results);
      c.ui.result(
        { ...t, results, reports: written },
        () =>
          [...written.map((f) => `Wrote ${f}`), `${t.passed} passed, ${t.failed} failed`].join(
            "\n",
          ),
      );
      return t.failed ? 1 : 0;
    }));
}
