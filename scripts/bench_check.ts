/**
 * Benchmarks `gini check`: gathering inside the worker on a generated host with
 * 256 PCI devices in 64 IOMMU groups, the whole command against a bare `deno run`,
 * and, on this machine, `gini check` against `lspci -nnk` plus a shell loop over
 * /sys/kernel/iommu_groups.
 *
 * @module
 */
import { join } from "node:path";
import { fromFileUrl } from "../kernel/url.ts";
import { type FixtureDevice, writeHost } from "./host_fixture.ts";
import { giniRunFlags } from "./compile.ts";

const REPO = fromFileUrl(new URL("../", import.meta.url));
const RUNS = 7;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function timed(
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ ms: number; stdout: string }> {
  const start = performance.now();
  const out = await new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    env,
    stdout: "piped",
    stderr: "null",
  }).output();
  const ms = performance.now() - start;
  if (out.code > 1) throw new Error(`${argv.join(" ")} exited ${out.code}`);
  return { ms, stdout: new TextDecoder().decode(out.stdout) };
}

/** 64 root ports, each with a group of four functions behind it. */
function bigHost(): FixtureDevice[] {
  const devices: FixtureDevice[] = [];
  for (let g = 0; g < 64; g++) {
    const port = `0000:00:${(g >> 3).toString(16).padStart(2, "0")}.${g & 7}`;
    const bus = (g + 1).toString(16).padStart(2, "0");
    devices.push({
      address: port,
      class: "0x060400",
      vendor: "8086",
      device: "460d",
      driver: "pcieport",
      group: g,
    });
    for (let f = 0; f < 3; f++) {
      devices.push({
        address: `0000:${bus}:00.${f}`,
        class: f === 0 ? "0x030000" : f === 1 ? "0x040300" : "0x0c0330",
        vendor: "10de",
        device: f === 0 ? "2484" : f === 1 ? "228b" : "1ad8",
        driver: f === 0 ? "nvidia" : f === 1 ? "snd_hda_intel" : "xhci_hcd",
        group: g,
        parent: port,
        bootVga: g === 0 && f === 0,
      });
    }
  }
  return devices;
}

const root = await Deno.makeTempDir({ prefix: "gini-bench-host-" });
const home = await Deno.makeTempDir({ prefix: "gini-bench-home-" });
await writeHost(root, {
  osRelease: {
    ID: "debian",
    NAME: "Debian GNU/Linux",
    PRETTY_NAME: "Debian GNU/Linux 12 (bookworm)",
    VERSION_ID: "12",
  },
  kernel: "6.1.0-18-amd64",
  cmdline: "ro quiet intel_iommu=on iommu=pt",
  cpu: {
    vendorId: "GenuineIntel",
    family: 6,
    model: 151,
    name: "Bench CPU",
    cores: 16,
    threads: 32,
    flags: ["vmx", "avx2"],
  },
  memTotalKiB: 65_000_000,
  memAvailableKiB: 60_000_000,
  modules: ["kvm", "kvm_intel"],
  acpiTable: "DMAR",
  iommuUnits: ["dmar0"],
  interruptRemapping: true,
  devices: bigHost(),
  dev: ["kvm"],
});
const flags = await giniRunFlags();
const env = { HOME: home, NO_COLOR: "1", PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
const gini = (
  ...args: string[]
) => [Deno.execPath(), "run", ...flags, join(REPO, "main.ts"), "check", "--json", ...args];
const empty = join(home, "empty.ts");
await Deno.writeTextFile(empty, "");

const gather: number[] = [];
const whole: number[] = [];
const bare: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const run = await timed(gini("--host-root", root), env);
  const report = JSON.parse(run.stdout);
  if (report.pci.length !== 256 || report.iommu.groups.length !== 64) {
    throw new Error("the fixture was not read whole");
  }
  gather.push(report.timings.gatherMs);
  whole.push(run.ms);
  bare.push((await timed([Deno.execPath(), "run", empty])).ms);
}
const live: number[] = [];
const lspci: number[] = [];
const loop =
  'lspci -nnk >/dev/null; for g in /sys/kernel/iommu_groups/*; do for d in "$g"/devices/*; do lspci -nns "${d##*/}"; done; done >/dev/null';
const haveLspci =
  (await new Deno.Command("bash", { args: ["-c", "command -v lspci"], stdout: "null" }).output())
    .success;
for (let i = 0; i < RUNS; i++) {
  live.push((await timed(gini(), env)).ms);
  if (haveLspci) lspci.push((await timed(["bash", "-c", loop])).ms);
}
const rows: [string, number][] = [
  [
    "gathering inside the worker, 256 devices / 64 groups (sum of stage times), median ms",
    median(gather),
  ],
  ["`gini check --json` on that fixture, median ms", median(whole)],
  ["bare `deno run` of an empty script, median ms", median(bare)],
  ["ratio check / bare deno run", median(whole) / median(bare)],
  ["`gini check --json` on this machine, median ms", median(live)],
  ...(haveLspci
    ? [
      [
        "`lspci -nnk` + loop over /sys/kernel/iommu_groups on this machine, median ms",
        median(lspci),
      ] as [string, number],
    ]
    : []),
];
for (const [name, value] of rows) {
  // deno-lint-ignore no-console
  console.log(`${value.toFixed(2).padStart(10)}  ${name}`);
}
await Deno.remove(root, { recursive: true });
await Deno.remove(home, { recursive: true });
