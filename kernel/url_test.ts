import { fileURLToPath, pathToFileURL } from "node:url";
import { assertEquals, assertThrows } from "../tests/_assert.ts";
import { fromFileUrl, toFileUrl } from "./url.ts";

const PATHS = [
  "/",
  "/a/b.ts",
  "/with space/x",
  "/hash#tag/q?uery",
  "/per%cent/100%",
  "/back\\slash",
  "/new\nline\ttab\rret",
  "/ünïcödé/日本",
  "/a/../b/./c",
  "/trailing/",
  "relative/path",
  "relative/dir/",
];

Deno.test("kernel/url makes and reads file: URLs as node:url does", () => {
  for (const path of PATHS) {
    assertEquals(toFileUrl(path).href, pathToFileURL(path).href, path);
    assertEquals(fromFileUrl(toFileUrl(path)), fileURLToPath(pathToFileURL(path)), path);
    assertEquals(fromFileUrl(toFileUrl(path).href), fileURLToPath(pathToFileURL(path).href), path);
  }
  assertEquals(fromFileUrl("file://localhost/etc/hosts"), "/etc/hosts");
});

Deno.test("kernel/url refuses what is not a local file URL", () => {
  assertThrows(() => fromFileUrl("https://example.org/a"));
  assertThrows(() => fromFileUrl("file://server/share/a"));
  assertThrows(() => fromFileUrl("file:///a%2Fb"));
});
