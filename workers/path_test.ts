import * as node from "node:path";
import { assertEquals } from "../tests/_assert.ts";
import * as ours from "./path.ts";

// Every combination of these, as one path and as pairs, against node:path's own answers.
const SAMPLES = [
  "",
  ".",
  "..",
  "/",
  "//",
  "///",
  "a",
  "a/",
  "a//",
  "/a",
  "/a/",
  "//a",
  "//a/b",
  "a/b",
  "a/b/",
  "/a/b/c",
  "/a/./b",
  "/a/../b",
  "a/../..",
  "../a",
  "./a",
  "/..",
  "/../a",
  "a/b/../../..",
  "/a/b/../../..",
  "x.toml",
  "/vms/tiny/vm.json",
  ".hidden",
  "/a/.b",
  "a.b.c",
  "/a/b.c/",
  "a/./",
  "a/..",
  "..//..",
  "/tmp//gini///x",
];

Deno.test("workers/path answers as node:path does, for every sample", () => {
  const wrong: string[] = [];
  const same = (what: string, got: unknown, want: unknown) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      wrong.push(`${what}: ${JSON.stringify(got)} !== node's ${JSON.stringify(want)}`);
    }
  };
  for (const p of SAMPLES) {
    const q = JSON.stringify(p);
    same(`normalize(${q})`, ours.normalize(p), node.normalize(p));
    same(`dirname(${q})`, ours.dirname(p), node.dirname(p));
    same(`basename(${q})`, ours.basename(p), node.basename(p));
    same(`basename(${q}, ".toml")`, ours.basename(p, ".toml"), node.basename(p, ".toml"));
    // node:path answers "/" for basename("/", "a") and "" for basename("a", "a") (but "a" for
    // basename("/a", "a")); workers/path keeps a name that is only the suffix. No caller asks.
    if (!/^\/+$/.test(p) && node.basename(p) !== "a") {
      same(`basename(${q}, "a")`, ours.basename(p, "a"), node.basename(p, "a"));
    }
    same(`extname(${q})`, ours.extname(p), node.extname(p));
    same(`isAbsolute(${q})`, ours.isAbsolute(p), node.isAbsolute(p));
    same(`resolve(${q})`, ours.resolve(p), node.resolve(p));
    for (const r of SAMPLES) {
      const pair = `${q}, ${JSON.stringify(r)}`;
      same(`join(${pair})`, ours.join(p, r), node.join(p, r));
      same(`resolve(${pair})`, ours.resolve(p, r), node.resolve(p, r));
      same(`relative(${pair})`, ours.relative(p, r), node.relative(p, r));
    }
  }
  same("join()", ours.join(), node.join());
  same('join("a", "", "b")', ours.join("a", "", "b"), node.join("a", "", "b"));
  assertEquals(wrong, []);
});
