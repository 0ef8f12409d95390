/**
 * The broker's grants for folders a user names on a command line (a `dir` value with `access`):
 * the folder and what is in it for that run, nothing beside or above it, and nothing for another
 * plugin.
 */
import { join } from "node:path";
import { assert, assertThrows } from "../../tests/_assert.ts";
import { PermissionDeniedError } from "../errors.ts";
import { parseManifest } from "../plugins/manifest.ts";
import { resolveStartupEnv } from "../paths.ts";
import { checkPath, grantsFor } from "./broker.ts";

const MANIFEST = `
[plugin]
name = "pages"
version = "1.0.0"
description = "writes pages where it is told"
priority = "third-party:160"

[compatibility]
kernel_api = "^1.0.0"

[[stages]]
name = "write"
reads = ["session.command"]

[[commands]]
path = "pages"
summary = "write pages"
stages = ["write"]

[[commands.flags]]
name = "output"
type = "dir"
access = "write"
summary = "the folder"
`;

Deno.test("grantsFor() lets a plugin write in a folder named on the command line, and nowhere else", async () => {
  const root = await Deno.makeTempDir({ prefix: "gini-broker-" });
  const parsed = parseManifest(MANIFEST, join(root, "plugin.toml"), "extra");
  assert(parsed.ok, parsed.ok ? "" : parsed.errors.map((e) => e.message).join("\n"));
  const env = resolveStartupEnv({}, { HOME: root }, root);
  const out = join(root, "site");
  const grants = grantsFor(
    { ...parsed.manifest, named: { read: [], write: [], readDirs: [], writeDirs: [out] } },
    env,
  );
  assert(checkPath(grants, "fs.write", join(out, "index.html"), "write"));
  assert(checkPath(grants, "fs.mkdir", join(out, "a/b"), "write"));
  assert(checkPath(grants, "fs.copy", join(out, "index.html"), "read"));
  for (const outside of [join(out, "../escape.html"), join(root, "site-2/x"), root]) {
    assertThrows(() => checkPath(grants, "fs.write", outside, "write"), PermissionDeniedError);
  }
  // A symlink inside the folder that leads out of it is followed, and refused.
  await Deno.mkdir(out);
  await Deno.symlink(root, join(out, "up"));
  assertThrows(
    () => checkPath(grants, "fs.write", join(out, "up/escape.html"), "write"),
    PermissionDeniedError,
  );
  // Without the run's named folder, the plugin has no write grant at all.
  const plain = grantsFor(parsed.manifest, env);
  assertThrows(
    () => checkPath(plain, "fs.write", join(out, "index.html"), "write"),
    PermissionDeniedError,
  );
  await Deno.remove(root, { recursive: true });
});
