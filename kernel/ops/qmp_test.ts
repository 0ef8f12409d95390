import { assertEquals, assertRejects, assertThrows } from "../../tests/_assert.ts";
import { qmpOp } from "./qmp.ts";
import { parseArgs } from "./types.ts";

Deno.test("qmp: queries after a command are queries only, led by a query, and read-only", async () => {
  const socket = "/nonexistent/qmp.sock";
  assertThrows(() => parseArgs(qmpOp, { socket, command: "query-status", queries: ["quit"] }));
  const led = parseArgs(qmpOp, { socket, command: "quit", queries: ["query-status"] });
  assertEquals(qmpOp.readOnly!(led, undefined as never), false);
  await assertRejects(() => qmpOp.execute(led, undefined as never, null), TypeError, "lead");
  const batch = parseArgs(qmpOp, {
    socket,
    command: "query-cpus-fast",
    queries: ["query-memory-size-summary", "query-block"],
  });
  assertEquals(qmpOp.readOnly!(batch, undefined as never), true);
  assertEquals(
    qmpOp.describe(batch),
    `Send QMP "query-cpus-fast", "query-memory-size-summary", "query-block" to "${socket}"`,
  );
});
