/**
 * The kit's reports: names and messages with XML's special characters (and a control character
 * XML 1.0 forbids) survive into a JUnit file a real JUnit reader parses (python3-junitparser) and
 * into well-formed HTML; a file that fails to load is reported as a failed test; the console
 * report ends with "N passed, N failed".
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../tests/_assert.ts";
import { join } from "node:path";
import { sh } from "../tests/_helpers.ts";
import { consoleReport, htmlReport, junitReport, runTests } from "./test_report.ts";

const NAME = `quotes "double" 'single' <tag> & amp\u0007bell`;

async function results() {
  return await runTests([
    {
      file: "a_test.ts",
      tests: [
        { name: NAME, fn: () => {} },
        {
          name: "fails",
          fn: () => {
            throw new Error('expected <b> & "c"');
          },
        },
      ],
    },
    { file: "broken_test.ts", tests: [], loadError: new SyntaxError("Unexpected token '}'") },
  ]);
}

Deno.test("runTests() runs each test, and reports a file that failed to load as a failed test", async () => {
  const r = await results();
  assertEquals(r.map((x) => [x.file, x.name, x.status]), [
    ["a_test.ts", NAME, "passed"],
    ["a_test.ts", "fails", "failed"],
    ["broken_test.ts", "(loading the file)", "failed"],
  ]);
  assertEquals(r[2]!.failure?.type, "SyntaxError");
  const text = consoleReport(r);
  assertMatch(text, /\n1 passed, 2 failed$/);
  assertStringIncludes(text, "FAIL a_test.ts > fails");
  assertStringIncludes(text, '     expected <b> & "c"');
});

Deno.test("junitReport() escapes names and messages, and a JUnit reader gets them back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "junit.xml");
    await Deno.writeTextFile(file, junitReport(await results()));
    await sh("/usr/bin/xmllint", "--noout", file);
    const script = `
import json, sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
out = {"tests": xml.tests, "failures": xml.failures, "suites": []}
for suite in xml:
    out["suites"].append({"name": suite.name, "tests": suite.tests, "failures": suite.failures,
        "cases": [[c.name, [r.message for r in c.result if isinstance(r, Failure)]] for c in suite]})
print(json.dumps(out))
`;
    const read = JSON.parse(await sh("/usr/bin/python3", "-c", script, file));
    assertEquals(read, {
      tests: 3,
      failures: 2,
      suites: [
        {
          name: "a_test.ts",
          tests: 2,
          failures: 1,
          cases: [
            [NAME.replace("\u0007", ""), []],
            ["fails", ['expected <b> & "c"']],
          ],
        },
        {
          name: "broken_test.ts",
          tests: 1,
          failures: 1,
          cases: [["(loading the file)", ["Unexpected token '}'"]]],
        },
      ],
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("htmlReport() is well-formed and shows each test with its outcome", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "report.html");
    await Deno.writeTextFile(file, htmlReport(await results(), { title: "a <title>" }));
    await sh("/usr/bin/xmllint", "--noout", file);
    await sh("/usr/bin/xmllint", "--html", "--noout", file);
    const cell = (row: number, col: number) =>
      sh("/usr/bin/xmllint", "--xpath", `string(//tbody/tr[${row}]/td[${col}])`, file);
    assertEquals(await cell(1, 1), "passed");
    assertEquals(await cell(1, 3), NAME.replace("\u0007", ""));
    assertEquals(await cell(2, 1), "failed");
    assertEquals(await cell(2, 5), 'expected <b> & "c"');
    assertEquals(await cell(3, 2), "broken_test.ts");
    assert((await sh("/usr/bin/xmllint", "--xpath", "string(//h1)", file)) === "a <title>");
    assertEquals(
      await sh("/usr/bin/xmllint", "--xpath", "string(//p[@id='totals'])", file).then((t) =>
        t.replace(/\d+ ms/, "N ms")
      ),
      "1 passed, 2 failed (3 tests, N ms)",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
