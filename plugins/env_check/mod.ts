/**
 * env-check: the host doctor. It only gathers and computes; the only things it
 * asks the kernel for are read-only version queries. Its result is
 * `session.environment_data`, with the PASS/WARN/FAIL checks `gini check` prints.
 *
 * @example
 * ```sh
 * deno task gini check
 * deno task gini check --json --host-root tests/fixtures/hosts/intel-nvidia
 * ```
 *
 * @module
 */
import { type ContextKey, definePlugin, type StageContext } from "../../workers/sdk.ts";
import { TolerantReader } from "./_reader.ts";
import {
  gatherCpu,
  gatherHostFiles,
  gatherIommu,
  gatherMemory,
  gatherOs,
  gatherPci,
  parseVersion,
} from "./_gather.ts";
import { computeChecks } from "./_checks.ts";
import { checkCommand } from "./commands.ts";
import {
  CPU_INFO,
  ENVIRONMENT_DATA,
  type EnvironmentData,
  IOMMU_INFO,
  MEMORY_INFO,
  OS_INFO,
  PCI_INFO,
  TOOLS_INFO,
} from "./contracts.ts";

/** What every part of the host report has besides its data. */
type Timed = { warnings: string[]; ms: number };

/** Runs a gatherer with a tolerant reader: its result, with the reader's warnings and the time. */
async function gather<T extends object>(
  ctx: StageContext,
  fn: (r: TolerantReader) => Promise<T>,
): Promise<T & Timed> {
  const started = performance.now();
  const reader = new TolerantReader(ctx.host);
  const data = await fn(reader);
  return { ...data, warnings: reader.warnings, ms: performance.now() - started };
}

const PROGRAMS: [string, string[]][] = [
  ["qemu-system-x86_64", ["--version"]],
  ["qemu-img", ["--version"]],
  ["swtpm", ["--version"]],
  ["xorriso", ["-version"]],
  ["genisoimage", ["--version"]],
];

/**
 * The programs' versions. The kernel answers from its probe cache while a program is unchanged
 * (same path, size and mtime). `gini check` and live runs keep new answers there; a plan only
 * reads it (a plan writes nothing); `gini check --refresh` asks each program again.
 */
async function probePrograms(ctx: StageContext): Promise<Record<string, string | null>> {
  const found: Record<string, string | null> = {};
  const command = ctx.get("session.command") as
    | { plugin?: string; path?: string; flags?: Record<string, unknown> }
    | undefined;
  const check = command?.plugin === "env-check" && command.path === "check";
  const probe = check && command.flags?.refresh === true
    ? "refresh"
    : check || !ctx.dryRun
    ? "store"
    : "use";
  await Promise.all(PROGRAMS.map(async ([program, args]) => {
    try {
      const result = await ctx.op<{ code: number; stdout: string; stderr: string }>("run", {
        argv: [program, ...args],
        allowFailure: true,
        timeoutMs: 10_000,
        probe,
      });
      found[program] = result.code === 0 ? parseVersion(result.stdout || result.stderr) : null;
    } catch {
      found[program] = null;
    }
  }));
  return found;
}

async function probeLvm(ctx: StageContext, warnings: string[]) {
  try {
    const result = await ctx.op<{ code: number; stdout: string; stderr: string }>("run", {
      argv: [
        "vgs",
        "--reportformat",
        "json",
        "--units",
        "b",
        "--nosuffix",
        "-o",
        "vg_name,vg_size,vg_free",
      ],
      allowFailure: true,
      timeoutMs: 15_000,
    });
    if (result.code !== 0) {
      warnings.push(`vgs failed: ${result.stderr.trim().split("\n").at(-1) ?? ""}`);
      return { volumeGroups: [] };
    }
    const report = JSON.parse(result.stdout) as {
      report?: { vg?: { vg_name: string; vg_size: string; vg_free: string }[] }[];
    };
    return {
      volumeGroups: (report.report?.[0]?.vg ?? []).map((vg) => ({
        name: vg.vg_name,
        sizeBytes: Number(vg.vg_size),
        freeBytes: Number(vg.vg_free),
      })),
    };
  } catch {
    return null;
  }
}

export default definePlugin({
  stages: {
    "gather-os-info": async (ctx) => ctx.set(OS_INFO, await gather(ctx, gatherOs)),
    "gather-cpu-info": async (ctx) => ctx.set(CPU_INFO, await gather(ctx, gatherCpu)),
    "gather-memory-info": async (ctx) => ctx.set(MEMORY_INFO, await gather(ctx, gatherMemory)),
    "gather-gpu-info": async (ctx) => ctx.set(PCI_INFO, await gather(ctx, gatherPci)),
    "check-iommu": async (ctx) => {
      const pci = ctx.get(PCI_INFO)!;
      const os = ctx.get(OS_INFO)!;
      ctx.set(IOMMU_INFO, await gather(ctx, (r) => gatherIommu(r, pci.devices, os.cmdline)));
    },
    "gather-tools": async (ctx) => {
      const started = performance.now();
      const reader = new TolerantReader(ctx.host);
      const files = await gatherHostFiles(reader);
      // Programs belong to the machine Gini runs on, so they are not asked about a fixture root.
      const real = ctx.host.root === "/";
      const programs = real ? await probePrograms(ctx) : {};
      const lvm = real ? await probeLvm(ctx, reader.warnings) : null;
      ctx.set(TOOLS_INFO, {
        ...files,
        programs,
        lvm,
        notChecked: real ? [] : ["programs", "lvm"],
        warnings: reader.warnings,
        ms: performance.now() - started,
      });
    },
    "finalize-host-report": async (ctx) => {
      const take = <T extends Timed>(key: ContextKey<T>) => {
        const { warnings, ms, ...rest } = ctx.get(key)!;
        return { rest, warnings, ms };
      };
      const os = take(OS_INFO);
      const cpu = take(CPU_INFO);
      const memory = take(MEMORY_INFO);
      const pci = take(PCI_INFO);
      const iommu = take(IOMMU_INFO);
      const tools = take(TOOLS_INFO);
      const parts = [os, cpu, memory, pci, iommu, tools];
      const report: Omit<EnvironmentData, "checks"> = {
        hostRoot: ctx.host.root,
        os: os.rest,
        ...cpu.rest,
        ...memory.rest,
        pci: pci.rest.devices,
        gpus: pci.rest.gpus,
        iommu: iommu.rest,
        ...tools.rest,
        warnings: parts.flatMap((p) => p.warnings),
        timings: { gatherMs: parts.reduce((n, p) => n + p.ms, 0) },
      };
      ctx.set(ENVIRONMENT_DATA, { ...report, checks: computeChecks(report) });
      // Lifecycle events for plugins that act on the host as found (nothing runs without subscribers).
      await ctx.emit("on_system_detected", {
        os: report.os,
        cpu: { vendor: report.cpu.vendor, model: report.cpu.model },
        accel: report.accel,
      });
      await ctx.emit("on_device_enumeration", { devices: report.pci });
      for (const gpu of report.gpus) {
        await ctx.emit("on_gpu_detected", { gpu });
      }
    },
  },
  commands: { check: checkCommand },
});
