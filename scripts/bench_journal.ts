/**
 * The recovery journal's cost per op: the same ops through the OpEngine with journaling off and
 * on (fsync of every record included), for new files (fs.write) and for edits of existing files
 * (fs.edit, whose old content is first copied, streamed, into a backup blob).
 *
 *   deno run --allow-all scripts/bench_journal.ts [ops]
 *
 * @module
 */
import { join } from "node:path";
import { OpEngine } from "../kernel/ops/engine.ts";
import { HostRunner } from "../kernel/host/run.ts";
import { resolveStartupEnv } from "../kernel/paths.ts";
import type { Grants } from "../kernel/ops/broker.ts";
import { Journal } from "../kernel/journal/journal.ts";
import { journalObserver } from "../kernel/journal/recovery.ts";
import { sha256Hex } from "../kernel/ops/_fs.ts";

const OPS = Number(Deno.args[0] ?? 300);
const content = "x".repeat(4096);

async function run(kind: "fs.write" | "fs.edit", journaled: boolean): Promise<number> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "gini-bench-journal-" }));
  const startup = resolveStartupEnv({}, { HOME: root, PATH: Deno.env.get("PATH") }, root);
  const grants: Grants = {
    plugin: "bench",
    write: [root],
    read: [root],
    run: new Set(),
    lvm: false,
    download: [],
  };
  const oldHash = await sha256Hex("old\n");
  for (let i = 0; i < OPS && kind === "fs.edit"; i++) {
    await Deno.writeTextFile(join(root, `f${i}`), "old\n");
  }
  const journal = journaled ? await Journal.begin(startup.dirs.state, "bench") : undefined;
  const engine = new OpEngine(
    "live",
    { startup, host: new HostRunner(startup.path) },
    journal ? journalObserver(journal, startup) : {},
  );
  const started = performance.now();
  for (let i = 0; i < OPS; i++) {
    const path = join(root, `f${i}`);
    await engine.request(grants, "bench", {
      kind,
      args: kind === "fs.write" ? { path, content } : { path, expectSha256: oldHash, content },
    });
  }
  const elapsed = performance.now() - started;
  journal?.close();
  await Deno.remove(root, { recursive: true });
  return elapsed / OPS;
}

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const kind of ["fs.write", "fs.edit"] as const) {
  const off: number[] = [];
  const on: number[] = [];
  for (let round = 0; round < 5; round++) {
    off.push(await run(kind, false));
    on.push(await run(kind, true));
  }
  const [a, b] = [median(off), median(on)];
  // deno-lint-ignore no-console
  console.log(
    `${kind.padEnd(8)} ${OPS} ops × 5 rounds, median per op: journal off ${a.toFixed(3)} ms, on ${
      b.toFixed(3)
    } ms, overhead ${(b - a).toFixed(3)} ms/op`,
  );
}
