/**
 * Runs the tests the kit collected (`gini plugins test`) and reports them: console lines, JUnit
 * XML (what CI systems read: `<testsuites>` with one `<testsuite>` per test file) and one
 * self-contained HTML page.
 *
 * @example
 * ```ts
 * import { collectTests } from "./testing.ts";
 * import { junitReport, runTests } from "./test_report.ts";
 *
 * const tests = await collectTests(() => import("/home/ada/my_plugin/mod_test.ts"));
 * const results = await runTests([{ file: "mod_test.ts", tests }]);
 * await Deno.writeTextFile("junit.xml", junitReport(results));
 * ```
 *
 * @module
 */
import type { KitTest } from "./testing.ts";

/** One test's outcome. */
export interface TestResult {
  /** The test file, as the user named it (relative to the folder tested). */
  file: string;
  name: string;
  status: "passed" | "failed";
  durationMs: number;
  /** The failure's message, and its stack when it has one. */
  failure?: { message: string; type: string; stack?: string };
}

/** A test file with the tests it registered, or the error that kept it from loading. */
export interface TestFile {
  file: string;
  tests: KitTest[];
  loadError?: unknown;
}

/** Totals of a run. */
export interface TestTotals {
  tests: number;
  passed: number;
  failed: number;
  durationMs: number;
}

function failureOf(error: unknown): NonNullable<TestResult["failure"]> {
  if (error instanceof Error) {
    return {
      message: error.message,
      type: error.name,
      ...(error.stack ? { stack: error.stack } : {}),
    };
  }
  return { message: String(error), type: "Error" };
}

/** Runs each file's tests one after another; `onResult` hears each outcome as it comes. */
export async function runTests(
  files: TestFile[],
  onResult: (result: TestResult) => void = () => {},
): Promise<TestResult[]> {
  const results: TestResult[] = [];
  const add = (result: TestResult) => {
    results.push(result);
    onResult(result);
  };
  for (const { file, tests, loadError } of files) {
    if (loadError !== undefined) {
      add({
        file,
        name: "(loading the file)",
        status: "failed",
        durationMs: 0,
        failure: failureOf(loadError),
      });
      continue;
    }
    for (const t of tests) {
      const start = performance.now();
      try {
        await t.fn();
        add({ file, name: t.name, status: "passed", durationMs: performance.now() - start });
      } catch (error) {
        add({
          file,
          name: t.name,
          status: "failed",
          durationMs: performance.now() - start,
          failure: failureOf(error),
        });
      }
    }
  }
  return results;
}

/** Counts of a run. */
export function totals(results: TestResult[]): TestTotals {
  const failed = results.filter((r) => r.status === "failed").length;
  return {
    tests: results.length,
    passed: results.length - failed,
    failed,
    durationMs: results.reduce((sum, r) => sum + r.durationMs, 0),
  };
}

function ms(durationMs: number): string {
  return `${Math.round(durationMs)} ms`;
}

/** One console line for a test (and its failure, indented). */
export function consoleLine(r: TestResult): string {
  const head = `${r.status === "passed" ? "ok  " : "FAIL"} ${r.file} > ${r.name} (${
    ms(r.durationMs)
  })`;
  if (!r.failure) return head;
  return `${head}\n${r.failure.message.split("\n").map((l) => `     ${l}`).join("\n")}`;
}

/** The console report: a line per test, then "N passed, N failed". */
export function consoleReport(results: TestResult[]): string {
  const t = totals(results);
  return [...results.map(consoleLine), "", `${t.passed} passed, ${t.failed} failed`].join("\n");
}

/** Escapes text for XML content and attribute values; drops characters XML 1.0 forbids. */
export function escapeXml(text: string): string {
  return text
    // deno-lint-ignore no-control-regex
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

function seconds(durationMs: number): string {
  return (durationMs / 1000).toFixed(3);
}

function byFile(results: TestResult[]): Map<string, TestResult[]> {
  const files = new Map<string, TestResult[]>();
  for (const r of results) files.set(r.file, [...(files.get(r.file) ?? []), r]);
  return files;
}

/**
 * The JUnit XML report: `<testsuites>` holding a `<testsuite>` per file, a `<testcase>` per test
 * (`classname` is the file), `<failure message type>` with the stack for a failed one.
 */
export function junitReport(
  results: TestResult[],
  options: { name?: string; timestamp?: Date } = {},
): string {
  const all = totals(results);
  const name = escapeXml(options.name ?? "gini plugins test");
  const timestamp = (options.timestamp ?? new Date()).toISOString().replace(/\.\d+Z$/, "");
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${name}" tests="${all.tests}" failures="${all.failed}" errors="0" skipped="0" time="${
      seconds(all.durationMs)
    }">`,
  ];
  let id = 0;
  for (const [file, tests] of byFile(results)) {
    const t = totals(tests);
    lines.push(
      `  <testsuite name="${
        escapeXml(file)
      }" id="${id++}" package="${name}" hostname="localhost" timestamp="${timestamp}" tests="${t.tests}" failures="${t.failed}" errors="0" skipped="0" time="${
        seconds(t.durationMs)
      }">`,
      "    <properties/>",
    );
    for (const r of tests) {
      const open = `    <testcase name="${escapeXml(r.name)}" classname="${
        escapeXml(file)
      }" time="${seconds(r.durationMs)}"`;
      if (!r.failure) {
        lines.push(`${open}/>`);
        continue;
      }
      lines.push(
        `${open}>`,
        `      <failure message="${escapeXml(r.failure.message)}" type="${
          escapeXml(r.failure.type)
        }">${escapeXml(r.failure.stack ?? r.failure.message)}</failure>`,
        "    </testcase>",
      );
    }
    lines.push("    <system-out/>", "    <system-err/>", "  </testsuite>");
  }
  lines.push("</testsuites>", "");
  return lines.join("\n");
}

/** The HTML report: one self-contained page with the totals and a row per test. */
export function htmlReport(results: TestResult[], options: { title?: string } = {}): string {
  const t = totals(results);
  const title = escapeXml(options.title ?? "gini plugins test");
  const rows = results.map((r) =>
    [
      `<tr class="${r.status}">`,
      `<td class="outcome">${r.status}</td>`,
      `<td>${escapeXml(r.file)}</td>`,
      `<td class="name">${escapeXml(r.name)}</td>`,
      `<td>${ms(r.durationMs)}</td>`,
      `<td>${r.failure ? `<pre>${escapeXml(r.failure.message)}</pre>` : ""}</td>`,
      "</tr>",
    ].join("")
  );
  return [
    "<!DOCTYPE html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8"/>',
    `<title>${title}</title>`,
    "<style>",
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}",
    "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}",
    "tr.passed .outcome{color:#070}tr.failed .outcome{color:#b00;font-weight:bold}",
    "pre{margin:0;white-space:pre-wrap}",
    "</style>",
    "</head>",
    "<body>",
    `<h1>${title}</h1>`,
    `<p id="totals">${t.passed} passed, ${t.failed} failed (${t.tests} tests, ${
      ms(t.durationMs)
    })</p>`,
    "<table>",
    "<thead><tr><th>outcome</th><th>file</th><th>test</th><th>time</th><th>failure</th></tr></thead>",
    "<tbody>",
    ...rows,
    "</tbody>",
    "</table>",
    "</body>",
    "</html>",
    "",
  ].join("\n");
}
