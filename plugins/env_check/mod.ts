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
import { definePlugin, type Json, type StageContext } from "../../workers/sdk.ts";
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
import type { EnvironmentData, PciDevice } from "./contracts.ts";

/** Runs a gatherer with a tolerant reader and stores its result, warnings and time under `key`. */
async function gather<T extends object>(
  ctx: StageContext,
  key: string,
  fn: (r: TolerantReader) => Promise<T>,
) {
  const started = performance.now();
  const reader = new TolerantReader(ctx.host);
  const data = await fn(reader);
  ctx.set(
    key,
    { ...data, warnings: reader.warnings, ms: performance.now() - started } as unknown as Json,
  );
}

const PROGRAMS: [string, string[]][] = [
  ["qemu-system-x86_64", ["--version"]],
  ["qemu-img", ["--version"]],
  ["swtpm", ["--version"]],
  ["xorriso", ["-version"]],
  ["genisoimage", ["--version"]],
];

async function probePrograms(ctx: StageContext): Promise<Record<string, string | null>> {
  const found: Record<string, string | null> = {};
  await Promise.all(PROGRAMS.map(async ([program, args]) => {
    try {
      const result = await ctx.op<{ code: number; stdout: string; stderr: string }>("run", {
        argv: [program, ...args],
        allowFailure: true,
        timeoutMs: 10_000,
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
    "gather-os-info": (ctx) => gather(ctx, "env_check.os", gatherOs),
    "gather-cpu-info": (ctx) => gather(ctx, "env_check.cpu", gatherCpu),
    "gather-memory-info": (ctx) => gather(ctx, "env_check.memory", gatherMemory),
    "gather-gpu-info": (ctx) => gather(ctx, "env_check.pci", gatherPci),
    "check-iommu": (ctx) => {
      const pci = ctx.get<{ devices: PciDevice[] } & Json>("env_check.pci")!;
      const os = ctx.get<{ cmdline: string }>("env_check.os")!;
      return gather(ctx, "env_check.iommu", (r) => gatherIommu(r, pci.devices, os.cmdline));
    },
    "gather-tools": async (ctx) => {
      const started = performance.now();
      const reader = new TolerantReader(ctx.host);
      const files = await gatherHostFiles(reader);
      // Programs belong to the machine Gini runs on, so they are not asked about a fixture root.
      const real = ctx.host.root === "/";
      const programs = real ? await probePrograms(ctx) : {};
      const lvm = real ? await probeLvm(ctx, reader.warnings) : null;
      ctx.set("env_check.tools", {
        ...files,
        programs,
        lvm,
        notChecked: real ? [] : ["programs", "lvm"],
        warnings: reader.warnings,
        ms: performance.now() - started,
      } as unknown as Json);
    },
    "finalize-host-report": async (ctx) => {
      type Part = { warnings: string[]; ms: number } & Record<string, unknown>;
      const take = (key: string) => {
        const { warnings, ms, ...rest } = ctx.get<Part & Json>(key)! as Part;
        return { rest, warnings, ms };
      };
      const os = take("env_check.os");
      const cpu = take("env_check.cpu");
      const memory = take("env_check.memory");
      const pci = take("env_check.pci");
      const iommu = take("env_check.iommu");
      const tools = take("env_check.tools");
      const parts = [os, cpu, memory, pci, iommu, tools];
      const report = {
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
      } as unknown as Omit<EnvironmentData, "checks">;
      ctx.set(
        "session.environment_data",
        { ...report, checks: computeChecks(report) } as unknown as Json,
      );
      // Lifecycle events for plugins that act on the host as found (nothing runs without subscribers).
      await ctx.emit("on_system_detected", {
        os: report.os,
        cpu: { vendor: report.cpu.vendor, model: report.cpu.model },
        accel: report.accel,
      } as unknown as Json);
      await ctx.emit("on_device_enumeration", { devices: report.pci } as unknown as Json);
      for (const gpu of report.gpus) {
        await ctx.emit("on_gpu_detected", { gpu } as unknown as Json);
      }
    },
  },
  commands: { check: checkCommand },
});
