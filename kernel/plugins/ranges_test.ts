import semver from "semver";
import { assertEquals } from "../../tests/_assert.ts";
import { simpleSatisfies } from "./ranges.ts";

Deno.test("simple ranges answer as semver does, and other forms are left to it", () => {
  const versions = ["0.0.1", "0.0.2", "0.1.0", "0.1.5", "0.2.0", "1.0.0", "1.2.3", "1.2.9", "1.3.0"]
    .concat(["1.9.9", "2.0.0", "10.0.0"]);
  const ranges = ["^0.0.1", "^0.1.0", "^1.0.0", "^1.2.3", "~1.2.3", "~0.1.0", ">=1.2.3", "1.2.3"]
    .concat(["=1.0.0", " ^1.0.0 ", "^10.0.0", ">=0.0.0"]);
  for (const v of versions) {
    for (const r of ranges) {
      assertEquals(simpleSatisfies(v, r), semver.satisfies(v, r), `${v} in ${r}`);
    }
  }
  for (const r of ["^1.0", "1.x", ">=1.0.0 <2.0.0", "^1.0.0 || ^2.0.0", "*", "1.0.0 - 2.0.0"]) {
    assertEquals(simpleSatisfies("1.0.0", r), undefined, r);
  }
  assertEquals(simpleSatisfies("1.0.0-beta.1", "^1.0.0"), undefined);
});
