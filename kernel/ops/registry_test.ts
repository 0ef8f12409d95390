import { assertEquals } from "../../tests/_assert.ts";
import { OP_KIND_NAMES, opKind } from "./registry.ts";

Deno.test("every op kind loads under its own name, and an unknown name is none", async () => {
  for (const name of OP_KIND_NAMES) assertEquals((await opKind(name))?.kind, name);
  assertEquals(OP_KIND_NAMES.length, 30);
  assertEquals(await opKind("toString"), undefined);
  assertEquals(await opKind("fs.wrte"), undefined);
});
