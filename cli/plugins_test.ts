/**
 * `gini plugins test DIR [--junit FILE] [--html FILE]`: runs a plugin's tests written with the
 * kit (`@gini/testing`). The compiled gini has no `deno test` inside it, so Gini runs them itself:
 * it imports each test file (`*_test.ts`, `*.test.ts`) with the kit collecting what it registers
 * with `test()`, runs the tests one after another, and reports them on the console and, when
 * asked, as JUnit XML and HTML. The test files are the author's own code and run with Gini's
 * authority, as `deno test -A` would; the plugin they test runs in its sandboxed worker.
 *
 * @module
 */
import { join, relative, resolve } from "node:path";
import { UsageError } from "../kernel/mod.ts";
import { toFileUrl } from "../kernel/url.ts";
import { collectTests } from "../workers/testing.ts";
import {
  consoleLine,
  htmlReport,
  junitReport,
  runTests,
  type TestFile,
  totals,
} from "../workers/test_report.ts";
import type { Cli } from "./_env.ts";

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
