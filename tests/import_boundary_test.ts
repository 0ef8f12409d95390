/**
 * The tree shows the architecture: nothing under cli/, kernel/ or workers/ (nor main.ts) imports
 * from plugins/; a plugin imports only the SDK's folder (workers/), its own files, npm packages and
 * other plugins' public modules (never a `_` file of another folder, never the kernel or the CLI;
 * a plugin's tests may use the kernel to run it).
 */
import { assertEquals } from "./_assert.ts";
import { dirname, join, relative, resolve } from "node:path";
import { REPO } from "./_helpers.ts";

/** Every static or dynamic import specifier in a TypeScript source. */
export function importsOf(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?(?:[^"';]*?\s+from\s+)?["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']/g,
  ];
  for (const pattern of patterns) {
    for (const match of source.matchAll(pattern)) found.push(match[1]!);
  }
  return found;
}

async function sources(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) files.push(...await sources(path));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

/** Why `file` may not import `specifier`, or undefined. */
function violation(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined; // npm:, node: and the import map's names
  const from = relative(REPO, file);
  const to = relative(REPO, resolve(dirname(file), specifier));
  const [top] = from.split("/");
  if (from === "main.ts" || ["cli", "kernel", "workers"].includes(top!)) {
    return to.startsWith("plugins/") ? "the kernel side imports no plugin" : undefined;
  }
  if (top !== "plugins") return undefined;
  const own = from.split("/").slice(0, from.startsWith("plugins/examples/") ? 3 : 2).join("/");
  if (to.startsWith(`${own}/`)) return undefined;
  if (to.startsWith("workers/")) return undefined;
  // A plugin's own tests may run it through the kernel and share the tests' helpers.
  if (from.endsWith("_test.ts") && /^(tests|kernel)\//.test(to)) return undefined;
  if (to.startsWith("plugins/")) {
    return to.split("/").some((part) => part.startsWith("_"))
      ? "another plugin's private (_) file"
      : undefined;
  }
  return "a plugin imports only the SDK, its own files and other plugins' public modules";
}

Deno.test("importsOf() finds static, type, re-export and dynamic imports", () => {
  assertEquals(
    importsOf(`import a from "./a.ts";
import type { B } from "../b.ts";
export { c } from "./c.ts";
import "./d.ts";
const e = await import("./e.ts");
import {
  f,
} from "./f.ts";`),
    ["./a.ts", "../b.ts", "./c.ts", "./d.ts", "./f.ts", "./e.ts"],
  );
});

Deno.test("no forbidden import: the kernel side never imports plugins, plugins keep to their surface", async () => {
  const files = [
    join(REPO, "main.ts"),
    ...(await Promise.all(
      ["cli", "kernel", "workers", "plugins"].map((d) => sources(join(REPO, d))),
    ))
      .flat(),
  ];
  const problems: string[] = [];
  for (const file of files) {
    for (const specifier of importsOf(await Deno.readTextFile(file))) {
      const why = violation(file, specifier);
      if (why) problems.push(`${relative(REPO, file)} imports "${specifier}": ${why}`);
    }
  }
  assertEquals(problems, []);
});

Deno.test("the boundary check catches each kind of forbidden import", () => {
  const cases: [string, string][] = [
    ["kernel/vms.ts", "../plugins/qemu_setup/contracts.ts"],
    ["cli/mod.ts", "../plugins/env_check/render.ts"],
    ["workers/sdk.ts", "../plugins/deploy/mod.ts"],
    ["plugins/deploy/mod.ts", "../qemu_setup/_qemu_args.ts"],
    ["plugins/vfio/mod.ts", "../../kernel/ops/_fs.ts"],
    ["plugins/vfio/mod.ts", "../../cli/mod.ts"],
  ];
  for (const [file, specifier] of cases) {
    assertEquals(typeof violation(join(REPO, file), specifier), "string", `${file} → ${specifier}`);
  }
  assertEquals(
    violation(join(REPO, "plugins/deploy/mod.ts"), "../qemu_setup/contracts.ts"),
    undefined,
  );
  assertEquals(violation(join(REPO, "plugins/deploy/mod.ts"), "../../workers/sdk.ts"), undefined);
  assertEquals(violation(join(REPO, "plugins/deploy/mod.ts"), "./_files.ts"), undefined);
});
