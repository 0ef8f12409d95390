/**
 * What a long journal history costs every command: `gini ls` with an empty state directory,
 * then with N committed transactions whose logs each hold 5 MiB of arguments (as a macOS deploy
 * journaled them before long arguments were replaced by their hash) and one incomplete one.
 * Wall time (median of 7) and peak memory (GNU time's maximum resident set).
 *
 *   deno run --allow-all scripts/bench_startup.ts [N]
 *
 * @module
 */
import { join } from "node:path";
import { fromFileUrl } from "../kernel/url.ts";
import { giniRunFlags } from "./compile.ts";
import { Journal } from "../kernel/journal/journal.ts";

const REPO = fromFileUrl(new URL("../", import.meta.url));
const RUNS = 7;
const LOGS = Number(Deno.args[0] ?? 100);

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

async function measure(home: string): Promise<{ ms: number; kib: number }> {
  const times: number[] = [];
  const peaks: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    const out = await new Deno.Command("/usr/bin/time", {
      args: [
        "-f",
        "%M",
        Deno.execPath(),
        "run",
        ...await giniRunFlags(),
        join(REPO, "main.ts"),
        "ls",
      ],
      env: { HOME: home, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1" },
      stdout: "null",
      stderr: "piped",
    }).output();
    times.push(performance.now() - start);
    const stderr = new TextDecoder().decode(out.stderr).trim().split("\n");
    if (!out.success) throw new Error(`gini ls failed:\n${stderr.join("\n")}`);
    peaks.push(Number(stderr.at(-1)));
  }
  return { ms: median(times), kib: median(peaks) };
}

const empty = await Deno.makeTempDir({ prefix: "gini-bench-startup-" });
const full = await Deno.makeTempDir({ prefix: "gini-bench-startup-" });
const state = join(full, ".local/state/gini");
const big = "A".repeat(5 * 1024 * 1024);
for (let i = 0; i <= LOGS; i++) {
  const journal = await Journal.begin(state, `up vm${i}.toml`);
  await journal.append({
    type: "intent",
    seq: 1,
    stage: "opencore:assemble",
    plugin: "opencore",
    kind: "fs.write",
    args: { path: `/nowhere/vm${i}/BOOTx64.efi`, contentBase64: big },
    description: "Create file",
    inverse: [],
  });
  await journal.append({ type: "done", seq: 1, ok: true });
  // The last one is left incomplete: the start-up check must find it.
  if (i < LOGS) await journal.append({ type: "commit" });
  journal.close();
}
const a = await measure(empty);
const b = await measure(full);
// deno-lint-ignore no-console
console.log(
  [
    `gini ls, median of ${RUNS}:`,
    `  empty state:                         ${a.ms.toFixed(0)} ms, ${
      (a.kib / 1024).toFixed(0)
    } MiB`,
    `  ${LOGS} ended logs of 5 MiB + 1 incomplete: ${b.ms.toFixed(0)} ms, ${
      (b.kib / 1024).toFixed(0)
    } MiB`,
  ].join("\n"),
);
await Deno.remove(empty, { recursive: true });
await Deno.remove(full, { recursive: true });
