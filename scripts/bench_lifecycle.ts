/**
 * A VM's day-to-day commands on the tiny guest under TCG, in one run (medians of 5):
 * `gini start NAME` against QEMU's own start (its argv run directly, as start.sh does),
 * `gini status --json` of a running VM (while its guest boots under TCG, which takes one of
 * two cores, and once it is idle), `gini ls` with 50 VMs, and bare `deno run` for scale. The
 * machine it was written on is shared and noisy: each row says the spread of its runs too.
 *
 * @module
 */
import { join } from "node:path";
import { qmpCommand } from "../kernel/host/qmp.ts";
import { fromFileUrl } from "../kernel/url.ts";
import { giniRunFlags } from "./compile.ts";

const REPO = fromFileUrl(new URL("../", import.meta.url));
const RUNS = 9;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
/** " (runs 88-131)": the fastest and slowest of the runs. */
const spread = (v: number[]) => ` (runs ${Math.min(...v).toFixed(0)}-${Math.max(...v).toFixed(0)})`;

async function run(argv: string[], env: Record<string, string>): Promise<number> {
  const start = performance.now();
  const out = await new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - start;
  if (!out.success) {
    throw new Error(`${argv.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  return ms;
}

/** Stops the VM over QMP and waits until its monitor is gone (not timed). */
async function quit(socket: string): Promise<void> {
  await qmpCommand(socket, "quit", undefined).catch(() => {});
  for (let i = 0; i < 100; i++) {
    try {
      await qmpCommand(socket, "query-status", undefined, 500);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const guest = new TextDecoder().decode(
  (await new Deno.Command("bash", {
    args: [join(REPO, "scripts/build-tiny-guest.sh")],
    stderr: "inherit",
  }).output()).stdout,
).trim();
const home = await Deno.makeTempDir({ prefix: "gini-bench-life-" });
const env = { HOME: home, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1" };
await Deno.writeTextFile(
  join(home, "tiny.toml"),
  `name = "tiny"\n[memory]\nsize = "256M"\n[boot]\nkernel = "${guest}/vmlinuz"\ninitrd = "${guest}/initrd.img"\ncmdline = "console=ttyS0 panic=-1"\n[[disks]]\nname = "root"\nsize = "64M"\n`,
);
const gini = [Deno.execPath(), "run", ...await giniRunFlags(), join(REPO, "main.ts")];
await run([...gini, "up", "--no-start", join(home, "tiny.toml")], env);
const vms = join(home, ".local/share/gini/vms");
const def = JSON.parse(await Deno.readTextFile(join(vms, "tiny/vm.json"))) as {
  argv: string[];
  paths: { qmpSocket: string; pidFile: string };
};

/**
 * Waits (untimed) until the guest's QEMU uses less than a tenth of a core: under TCG its boot
 * takes one of this machine's two cores for several seconds, which a KVM host would not lose.
 */
async function idle(pidFile: string): Promise<void> {
  const pid = (await Deno.readTextFile(pidFile)).trim();
  const ticks = async () => {
    const fields = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1]!.split(" ");
    return Number(fields[11]) + Number(fields[12]);
  };
  for (let i = 0, last = await ticks(); i < 60; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const now = await ticks();
    if (now - last < 5) return;
    last = now;
  }
}

const qemu: number[] = [];
const start: number[] = [];
const status: number[] = [];
const statusIdle: number[] = [];
for (let i = 0; i < RUNS; i++) {
  qemu.push(await run(def.argv, env));
  await quit(def.paths.qmpSocket);
  start.push(await run([...gini, "start", "tiny"], env));
  status.push(await run([...gini, "status", "tiny", "--json"], env));
  await idle(def.paths.pidFile);
  statusIdle.push(await run([...gini, "status", "tiny", "--json"], env));
  await quit(def.paths.qmpSocket);
}

// The runtime alone, in this same run, for scale.
const empty = await Deno.makeTempFile({ suffix: ".ts" });
const bare: number[] = [];
for (let i = 0; i < RUNS; i++) bare.push(await run([Deno.execPath(), "run", empty], env));
await Deno.remove(empty);

// 49 more (stopped) VMs beside it, each its own folder and definition.
const text = await Deno.readTextFile(join(vms, "tiny/vm.json"));
for (let i = 1; i < 50; i++) {
  const name = `tiny-${i}`;
  await Deno.mkdir(join(vms, name));
  await Deno.writeTextFile(
    join(vms, name, "vm.json"),
    text.replaceAll('"tiny"', `"${name}"`).replaceAll("/vms/tiny/", `/vms/${name}/`),
  );
}
const ls: number[] = [];
for (let i = 0; i < RUNS; i++) ls.push(await run([...gini, "ls", "--json"], env));

const rows: [string, string][] = [
  [
    `QEMU's own start of the tiny guest (its argv, daemonized), median ms${spread(qemu)}`,
    median(qemu).toFixed(0),
  ],
  [`gini start tiny (stopped → running), median ms${spread(start)}`, median(start).toFixed(0)],
  [
    "what gini start adds to QEMU's own start, ms (goal ≤ 150)",
    (median(start) - median(qemu)).toFixed(0),
  ],
  [
    `gini status tiny --json (running, its guest booting under TCG), median ms${
      spread(status)
    } (goal ≤ 100)`,
    median(status).toFixed(0),
  ],
  [
    `gini status tiny --json (running, its guest idle), median ms${
      spread(statusIdle)
    } (goal ≤ 100)`,
    median(statusIdle).toFixed(0),
  ],
  [`bare \`deno run\` of an empty script, median ms${spread(bare)}`, median(bare).toFixed(0)],
  [`gini ls --json with 50 VMs, median ms${spread(ls)} (goal ≤ 300)`, median(ls).toFixed(0)],
];
for (const [name, value] of rows) {
  // deno-lint-ignore no-console
  console.log(`${value.padStart(10)}  ${name}`);
}
await Deno.remove(home, { recursive: true });
