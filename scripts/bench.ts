/**
 * Kernel benchmarks: cold `gini version`, per-stage overhead, plugin start-up,
 * op round trip and memory. Prints a table (or JSON with --json).
 *
 * @example
 * ```sh
 * deno task bench
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { OpEngine } from "../kernel/ops/engine.ts";
import { HostRunner } from "../kernel/host/run.ts";
import { resolveStartupEnv, runStages } from "../kernel/mod.ts";
import { Pipeline } from "../kernel/stages/pipeline.ts";
import { discoverPlugins } from "../kernel/plugins/discover.ts";
import { resolvePlugins } from "../kernel/plugins/resolve.ts";
import { createUi } from "../kernel/ui.ts";
import { fromFileUrl, toFileUrl } from "../kernel/url.ts";
import { giniRunFlags } from "./compile.ts";

const REPO = fromFileUrl(new URL("../", import.meta.url));
const SDK = toFileUrl(join(REPO, "workers/sdk.ts")).href;
const quietUi = createUi({ sink: { out: () => {}, err: () => {}, isTerminal: false } });

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Writes `plugins` plugins with `stages` no-op stages each; one plugin also has a stage doing ops. */
async function makePlugins(
  dir: string,
  plugins: number,
  stages: number,
  opCount = 0,
): Promise<void> {
  for (let p = 0; p < plugins; p++) {
    const name = `bench-${p}`;
    await Deno.mkdir(join(dir, name), { recursive: true });
    const stageToml = Array.from(
      { length: stages },
      (_, s) => `[[stages]]\nname = "s${s}"\n${s > 0 ? `after = ["${name}:s${s - 1}"]\n` : ""}`,
    ).join("\n");
    const opsStage = p === 0 && opCount
      ? `\n[[stages]]\nname = "ops"\nwrites = ["bench.latencies"]\n`
      : "";
    await Deno.writeTextFile(
      join(dir, name, "plugin.toml"),
      `[plugin]\nname = "${name}"\nversion = "1.0.0"\ndescription = "bench"\npriority = "third-party:160"\n\n[compatibility]\nkernel_api = "^1.0.0"\n\n[ops]\nwrite = ["{data}/bench"]\n\n${stageToml}${opsStage}`,
    );
    const fns = Array.from({ length: stages }, (_, s) => `"s${s}": () => {},`).join("\n    ");
    const opsFn = p === 0 && opCount
      ? `ops: async (ctx) => {
      const times = [];
      for (let i = 0; i < ${opCount}; i++) {
        const t = performance.now();
        await ctx.op("fs.write", { path: ctx.dirs.data + "/bench/f" + i, content: "x" });
        times.push(performance.now() - t);
      }
      ctx.set("bench.latencies", times);
    },`
      : "";
    await Deno.writeTextFile(
      join(dir, name, "mod.ts"),
      `import { definePlugin } from "${SDK}";\nexport default definePlugin({ stages: {\n    ${fns}\n    ${opsFn}\n  } });\n`,
    );
  }
}

async function setup(plugins: number, stages: number, opCount = 0) {
  const root = await Deno.makeTempDir({ prefix: "gini-bench-" });
  await makePlugins(join(root, "plugins"), plugins, stages, opCount);
  const env = resolveStartupEnv({ dataDir: join(root, "data") }, {
    HOME: root,
    PATH: Deno.env.get("PATH"),
  }, root);
  const discovery = await discoverPlugins([{ dir: join(root, "plugins"), origin: "extra" }]);
  return { env, loaded: resolvePlugins(discovery.manifests, discovery.errors) };
}

async function timePipeline(plugins: number, stages: number): Promise<number> {
  const { env, loaded } = await setup(plugins, stages);
  const start = performance.now();
  const { result } = await runStages({ env, loaded, ui: quietUi, dryRun: true });
  if (!result.ok) throw result.error;
  return performance.now() - start;
}

async function startPlugins(count: number): Promise<{ ms: number; rssMiB: number }> {
  const start = performance.now();
  const { env, loaded } = await setup(count, 1);
  const engine = new OpEngine("dry", { startup: env, host: new HostRunner(env.path) });
  const pipeline = new Pipeline({ resolution: loaded, env, engine, ui: quietUi });
  await Promise.all(loaded.plugins.map((p) => pipeline.host(p.plugin.name)));
  const ms = performance.now() - start;
  const rssMiB = Deno.memoryUsage().rss / 1024 / 1024;
  await pipeline.close();
  return { ms, rssMiB };
}

async function coldVersion(runs: number): Promise<number[]> {
  const flags = await giniRunFlags();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, join(REPO, "main.ts"), "version"],
      stdout: "null",
      stderr: "null",
    }).output();
    if (out.code !== 0) throw new Error("gini version failed");
    times.push(performance.now() - start);
  }
  return times;
}

const results: Record<string, number> = {};
const cold = await coldVersion(7);
results["cold `gini version`, median ms"] = percentile(cold, 50);

const full = [] as number[];
const base = [] as number[];
for (let i = 0; i < 3; i++) {
  full.push(await timePipeline(10, 20));
  base.push(await timePipeline(10, 1));
}
results["200 no-op stages / 10 plugins, total ms (median of 3)"] = percentile(full, 50);
results["kernel overhead per stage, ms ((200-stage run − 10-stage run) / 190)"] =
  (percentile(full, 50) - percentile(base, 50)) / 190;

const ten = await startPlugins(10);
results["load+resolve+start 10 plugins, ms"] = ten.ms;
results["peak RSS with 10 workers, MiB"] = ten.rssMiB;
const fifty = await startPlugins(50);
results["load+resolve+start 50 plugins, ms"] = fifty.ms;

{
  const { env, loaded } = await setup(1, 1, 2000);
  const { result } = await runStages({
    env,
    loaded,
    ui: quietUi,
    dryRun: true,
    targets: ["bench-0:ops"],
  });
  const latencies = (result.context["bench.latencies"] as number[]).slice(100);
  results["op round trip worker→kernel→worker (fs.write, dry), p50 ms"] = percentile(latencies, 50);
  results["op round trip, p99 ms"] = percentile(latencies, 99);
}

if (Deno.args.includes("--json")) {
  // deno-lint-ignore no-console
  console.log(JSON.stringify(results, null, 2));
} else {
  for (const [name, value] of Object.entries(results)) {
    // deno-lint-ignore no-console
    console.log(`${value.toFixed(3).padStart(10)}  ${name}`);
  }
}
