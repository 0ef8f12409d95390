import { createHash } from "node:crypto";
import { assertEquals } from "../tests/_assert.ts";
import { sha256Hex } from "./sha256.ts";

Deno.test("sha256Hex answers as node:crypto does, at every length around the block edges", () => {
  const bytes = crypto.getRandomValues(new Uint8Array(300));
  for (let length = 0; length <= 300; length++) {
    const data = bytes.subarray(0, length);
    assertEquals(sha256Hex(data), createHash("sha256").update(data).digest("hex"), `${length}`);
  }
  const big = crypto.getRandomValues(new Uint8Array(65536));
  assertEquals(sha256Hex(big), createHash("sha256").update(big).digest("hex"));
  const text = "journal ✓ record\n".repeat(100);
  assertEquals(sha256Hex(text), createHash("sha256").update(text).digest("hex"));
  assertEquals(
    sha256Hex("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});
