import { assert, assertEquals } from "../tests/_assert.ts";
import { nextLine, verifyLog } from "./event_log.ts";

async function log(...events: string[]): Promise<string> {
  let text = "";
  for (const [i, event] of events.entries()) {
    text += await nextLine(text, event, { i }, `2026-12-01T00:00:0${i}.000Z`);
  }
  return text;
}

Deno.test("a log read back holds its records in order, chained", async () => {
  const text = await log("deployed", "started", "stopped");
  const { records, broken } = await verifyLog(text);
  assertEquals(broken, null);
  assertEquals(records.map((r) => [r.seq, r.event]), [[1, "deployed"], [2, "started"], [
    3,
    "stopped",
  ]]);
  assertEquals(records[1]!.prev, records[0]!.sha256);
});

Deno.test("an edited, removed, reordered or cut line breaks the chain at that line", async () => {
  const lines = (await log("deployed", "started", "stopped")).trimEnd().split("\n");
  const cases: [string, string[], number, RegExp][] = [
    ["edited", [lines[0]!, lines[1]!.replace('"started"', '"stopped"'), lines[2]!], 2, /checksum/],
    ["removed", [lines[0]!, lines[2]!], 2, /does not follow/],
    ["reordered", [lines[1]!, lines[0]!, lines[2]!], 1, /does not follow/],
    ["cut short", [lines[0]!, lines[1]!.slice(0, 20)], 2, /not JSON/],
  ];
  for (const [what, broken, line, reason] of cases) {
    const result = await verifyLog(broken.join("\n") + "\n");
    assert(result.broken, `${what}: the chain should break`);
    assertEquals(result.broken.line, line, what);
    assert(reason.test(result.broken.reason), `${what}: ${result.broken.reason}`);
    assertEquals(result.records.length, line - 1, what);
  }
});
