/**
 * The download op against curl, on the same file from the same loopback server,
 * in one run: throughput (median of 5) and the op's memory growth. The server is another process.
 *
 * @module
 */
import { join } from "node:path";
import { OpEngine } from "../kernel/ops/engine.ts";
import { HostRunner } from "../kernel/host/run.ts";
import { resolveStartupEnv } from "../kernel/paths.ts";

const SIZE = 512 * 1024 * 1024;
const RUNS = 5;
const root = await Deno.makeTempDir({ prefix: "gini-bench-download-" });
const source = join(root, "image.bin");
{
  const file = await Deno.open(source, { write: true, create: true });
  const block = crypto.getRandomValues(new Uint8Array(1024 * 1024 / 16)).map((b) => b);
  const chunk = new Uint8Array(1024 * 1024);
  for (let i = 0; i < 16; i++) chunk.set(block, i * block.length);
  for (let written = 0; written < SIZE; written += chunk.length) await file.write(chunk);
  file.close();
}
// The server runs in a process of its own, as a mirror would: its work is not the op's.
const serverCode = `
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: (a) => console.log(a.port) },
  async () => {
    const file = await Deno.open(${JSON.stringify(source)});
    return new Response(file.readable, { headers: { "content-length": "${SIZE}" } });
  });
await server.finished;`;
const server = new Deno.Command(Deno.execPath(), {
  args: ["eval", serverCode],
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const port = await (async () => {
  const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the benchmark's server did not start");
    text += value;
  }
  reader.releaseLock();
  return Number(text.trim());
})();
const url = `http://127.0.0.1:${port}/image.bin`;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const mibps = (ms: number) => SIZE / 1024 / 1024 / (ms / 1000);

const curl: number[] = [];
const gini: number[] = [];
let growth = 0;
for (let i = 0; i < RUNS; i++) {
  const out = join(root, "curl.out");
  let start = performance.now();
  const c = await new Deno.Command("curl", { args: ["-s", "-o", out, url] }).output();
  if (!c.success) throw new Error("curl failed");
  curl.push(performance.now() - start);
  await Deno.remove(out);

  const startup = resolveStartupEnv({ cacheDir: join(root, `cache${i}`) }, {
    HOME: root,
    PATH: Deno.env.get("PATH"),
  }, root);
  const engine = new OpEngine("live", { startup, host: new HostRunner(startup.path) });
  const grants = {
    plugin: "bench",
    write: [],
    read: [],
    run: new Set<string>(),
    lvm: false,
    download: ["127.0.0.1"],
  };
  const before = Deno.memoryUsage().rss;
  start = performance.now();
  await engine.request(grants, "bench", { kind: "download", args: { url } });
  gini.push(performance.now() - start);
  growth = Math.max(growth, Deno.memoryUsage().rss - before);
  await Deno.remove(join(root, `cache${i}`), { recursive: true });
}
server.kill("SIGTERM");
await server.status;
await Deno.remove(root, { recursive: true });
const rows: [string, string][] = [
  ["curl -o file, 512 MiB from 127.0.0.1, MiB/s (median of 5)", mibps(median(curl)).toFixed(0)],
  ["download op (sha256 while streaming, fsync, rename), MiB/s", mibps(median(gini)).toFixed(0)],
  ["download op throughput / curl", (median(curl) / median(gini)).toFixed(2)],
  ["largest RSS growth during one download, MiB", (growth / 1024 / 1024).toFixed(1)],
];
for (const [name, value] of rows) {
  // deno-lint-ignore no-console
  console.log(`${value.padStart(10)}  ${name}`);
}
