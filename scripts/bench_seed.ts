/**
 * Seed generation: the linux-setup stages of `gini up` for a VM with a local base image
 * (no download, no copy), timed inside the pipeline (median of 7).
 *
 * @module
 */
import { join } from "node:path";
import { fromFileUrl } from "../kernel/url.ts";
import { giniRunFlags } from "./compile.ts";

const REPO = fromFileUrl(new URL("../", import.meta.url));
const work = await Deno.makeTempDir({ prefix: "gini-bench-seed-" });
await new Deno.Command("qemu-img", {
  args: ["create", "-q", "-f", "qcow2", join(work, "base.qcow2"), "1G"],
}).output();
await Deno.writeTextFile(
  join(work, "vm.toml"),
  `name = "seed"\n[linux]\nimage = "base.qcow2"\nhostname = "seed"\npackages = ["nginx"]\nruncmd = ["true"]\n[[disks]]\nsize = "4G"\n`,
);
const totals: number[] = [];
for (let i = 0; i < 7; i++) {
  const home = join(work, `home${i}`);
  await Deno.mkdir(home);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...await giniRunFlags(),
      join(REPO, "main.ts"),
      "up",
      join(work, "vm.toml"),
      "--json",
    ],
    env: { HOME: home, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "null",
  }).output();
  const report = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    stages: { id: string; durationMs: number }[];
  };
  totals.push(
    report.stages.filter((s) => s.id.startsWith("linux-setup:")).reduce(
      (n, s) => n + s.durationMs,
      0,
    ),
  );
  await new Deno.Command(Deno.execPath(), {
    args: ["run", ...await giniRunFlags(), join(REPO, "main.ts"), "down", "seed", "--timeout", "1"],
    env: { HOME: home, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    stdout: "null",
    stderr: "null",
  }).output();
}
const sorted = totals.sort((a, b) => a - b);
// deno-lint-ignore no-console
console.log(
  `${
    sorted[3]!.toFixed(1).padStart(10)
  }  linux-setup stages (seed files, cidata ISO, base image check), sum of stage times, median ms`,
);
await Deno.remove(work, { recursive: true });
