/**
 * `gini plan` against `virt-install --print-xml` on the same VM, in one run:
 * wall time (median of 7) and peak memory (GNU time's maximum resident set).
 *
 * @module
 */
import { join } from "node:path";
import { fromFileUrl } from "../kernel/url.ts";
import { giniRunFlags } from "./compile.ts";

const REPO = fromFileUrl(new URL("../", import.meta.url));
const RUNS = 7;

async function measure(
  argv: string[],
  env: Record<string, string>,
): Promise<{ ms: number; kib: number }> {
  const start = performance.now();
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-f", "%M", ...argv],
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - start;
  const stderr = new TextDecoder().decode(out.stderr).trim().split("\n");
  if (!out.success) throw new Error(`${argv.join(" ")} failed:\n${stderr.join("\n")}`);
  return { ms, kib: Number(stderr.at(-1)) };
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

const present = await new Deno.Command("bash", {
  args: ["-c", "command -v virt-install && test -x /usr/bin/time"],
  stdout: "null",
})
  .output();
if (!present.success) {
  // deno-lint-ignore no-console
  console.log(
    "bench_plan: skipped: install virtinst and time (apt-get install virtinst time) to compare with virt-install",
  );
  Deno.exit(0);
}
const work = await Deno.makeTempDir({ prefix: "gini-bench-plan-" });
await new Deno.Command("qemu-img", {
  args: ["create", "-q", "-f", "qcow2", join(work, "debian-12-genericcloud-amd64.qcow2"), "2G"],
}).output();
await Deno.copyFile(join(REPO, "examples/headless-linux.toml"), join(work, "headless-linux.toml"));
const env = { HOME: work, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1" };
const gini = [
  Deno.execPath(),
  "run",
  ...await giniRunFlags(),
  join(REPO, "main.ts"),
  "plan",
  join(work, "headless-linux.toml"),
];
const virtInstall = [
  "virt-install",
  "--connect",
  "test:///default",
  "--name",
  "headless-linux",
  "--memory",
  "2048",
  "--vcpus",
  "2",
  "--disk",
  `size=20,backing_store=${join(work, "debian-12-genericcloud-amd64.qcow2")}`,
  "--import",
  "--osinfo",
  "debian11",
  "--network",
  "user",
  "--graphics",
  "none",
  "--print-xml",
];
const g: { ms: number; kib: number }[] = [];
const v: { ms: number; kib: number }[] = [];
for (let i = 0; i < RUNS; i++) {
  g.push(await measure(gini, env));
  v.push(await measure(virtInstall, env));
}
const rows: [string, string][] = [
  [
    "gini plan examples/headless-linux.toml (checks the host too), median ms",
    median(g.map((x) => x.ms)).toFixed(0),
  ],
  ["virt-install --print-xml (test:///default), median ms", median(v.map((x) => x.ms)).toFixed(0)],
  [
    "speed-up of gini over virt-install",
    (median(v.map((x) => x.ms)) / median(g.map((x) => x.ms))).toFixed(2),
  ],
  ["gini peak RSS, MiB", (Math.max(...g.map((x) => x.kib)) / 1024).toFixed(1)],
  ["virt-install peak RSS, MiB", (Math.max(...v.map((x) => x.kib)) / 1024).toFixed(1)],
];
for (const [name, value] of rows) {
  // deno-lint-ignore no-console
  console.log(`${value.padStart(10)}  ${name}`);
}
await Deno.remove(work, { recursive: true });
