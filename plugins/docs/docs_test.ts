/**
 * docs' own parts: the tarball reader that takes `dist/mermaid.min.js` out of the npm package,
 * checked against archives GNU tar makes.
 */
import { join } from "node:path";
import { assertEquals, assertRejects } from "../../tests/_assert.ts";
import { tarMember } from "./_mermaid.ts";

async function tar(dir: string, out: string, ...members: string[]): Promise<void> {
  const made = await new Deno.Command("tar", {
    args: ["--format=ustar", "-czf", out, "-C", dir, ...members],
    stderr: "piped",
  }).output();
  assertEquals(made.code, 0, new TextDecoder().decode(made.stderr));
}

Deno.test("tarMember() takes one file out of a gzipped tarball, streamed, and null for none", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gini-docs-tar-" });
  await Deno.mkdir(join(dir, "package/dist"), { recursive: true });
  // Sizes that are not multiples of 512, and a large member before the one asked for.
  const big = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 7) % 251);
  await Deno.writeFile(join(dir, "package/dist/big.bin"), big);
  const wanted = `window.mermaid = {};\n${"x".repeat(70_001)}\n`;
  await Deno.writeTextFile(join(dir, "package/dist/mermaid.min.js"), wanted);
  await Deno.writeTextFile(join(dir, "package/package.json"), '{"name":"mermaid"}\n');
  await Deno.writeTextFile(join(dir, "package/empty.txt"), "");
  const archive = join(dir, "m.tgz");
  await tar(dir, archive, "package/dist/big.bin", "package/dist/mermaid.min.js", "package");
  const got = await tarMember(archive, "package/dist/mermaid.min.js");
  assertEquals(got && new TextDecoder().decode(got), wanted);
  assertEquals(await tarMember(archive, "package/dist/big.bin"), big);
  assertEquals(await tarMember(archive, "package/empty.txt"), new Uint8Array(0));
  assertEquals(await tarMember(archive, "package/dist/mermaid.js"), null);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tarMember() refuses a truncated tarball instead of answering with a member cut short or none", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gini-docs-tar-" });
  await Deno.mkdir(join(dir, "package/dist"), { recursive: true });
  const wanted = new Uint8Array(200_003).map((_, i) => (i * 31 + (i >> 9)) % 253);
  await Deno.writeFile(join(dir, "package/dist/mermaid.min.js"), wanted);
  const archive = join(dir, "m.tgz");
  await tar(dir, archive, "package/dist/mermaid.min.js");
  const whole = await Deno.readFile(archive);
  assertEquals(await tarMember(archive, "package/dist/mermaid.min.js"), wanted);
  await Deno.writeFile(archive, whole.subarray(0, whole.length - 2_000));
  await assertRejects(() => tarMember(archive, "package/dist/mermaid.min.js"));
  await Deno.remove(dir, { recursive: true });
});
