/**
 * The plan report: every op grouped by stage as "Would …" lines, then a summary
 * of operations, estimated disk usage and time, and conflicts.
 *
 * @module
 */
import type { OpEngine, OpRecord, OpSummary } from "../ops/engine.ts";
import { formatBytes } from "../ops/types.ts";
import type { StageReport } from "./pipeline.ts";

/** A report as data, for `--json`. */
export interface PlanReport {
  dryRun: boolean;
  stages: {
    id: string;
    status: StageReport["status"];
    durationMs: number;
    error?: string;
    /** Skipped because it does not apply to this VM (its plugin was not started). */
    notApplicable?: boolean;
    ops: OpRecord[];
  }[];
  summary: OpSummary;
  /** A dry run's changes named by their sha256 (what a confirmed command checks it runs). */
  digest?: string;
}

/** Groups an engine's records by stage, in the order stages ran. */
export function buildReport(engine: OpEngine, stages: StageReport[]): PlanReport {
  const byStage = new Map<string, OpRecord[]>();
  for (const record of engine.records) {
    byStage.set(record.stage, [...(byStage.get(record.stage) ?? []), record]);
  }
  const ids = [
    ...stages.map((s) => s.id),
    ...[...byStage.keys()].filter((k) => !stages.some((s) => s.id === k)),
  ];
  return {
    dryRun: engine.mode === "dry",
    stages: ids.map((id) => {
      const report = stages.find((s) => s.id === id);
      return {
        id,
        status: report?.status ?? "done",
        durationMs: report?.durationMs ?? 0,
        ...(report?.error ? { error: report.error } : {}),
        ...(report?.notApplicable ? { notApplicable: true } : {}),
        ops: byStage.get(id) ?? [],
      };
    }),
    summary: engine.summary(),
  };
}

function would(description: string): string {
  return `Would ${description.charAt(0).toLowerCase()}${description.slice(1)}`;
}

function formatSeconds(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  return `${Math.round(seconds / 60)} min`;
}

/** The report as terminal text. */
export function renderReport(report: PlanReport): string {
  const lines: string[] = [];
  let quiet = 0;
  const idle = report.stages.filter((s) => s.notApplicable).map((s) => s.id);
  for (const stage of report.stages) {
    if (stage.notApplicable) continue;
    if (stage.status === "done" && stage.ops.every((op) => op.readOnly)) {
      quiet++;
      continue;
    }
    lines.push(
      `${stage.id}${
        stage.status === "done" ? "" : ` (${stage.status}${stage.error ? `: ${stage.error}` : ""})`
      }`,
    );
    for (const op of stage.ops) {
      if (op.readOnly) continue;
      lines.push(
        `  ${
          report.dryRun
            ? would(op.description)
            : `${op.status === "done" ? "✓" : "✗"} ${op.description}`
        }`,
      );
      if (op.preview && report.dryRun) {
        lines.push(...op.preview.split("\n").map((line) => `    ${line}`));
      }
      for (const conflict of op.conflicts) lines.push(`    ! conflict: ${conflict}`);
      if (op.inverse === null) lines.push("    ! cannot be undone automatically");
    }
  }
  const s = report.summary;
  lines.push("");
  lines.push(`Summary${report.dryRun ? " (dry run: nothing was changed)" : ""}:`);
  lines.push(
    `  stages:         ${report.stages.length - idle.length}${
      quiet ? ` (${quiet} changed nothing and are not listed)` : ""
    }`,
  );
  if (idle.length) {
    // By plugin, "linux-setup (6), opencore (5)": none of them was started.
    const plugins = new Map<string, number>();
    for (const plugin of idle.map((id) => id.split(":")[0]!)) {
      plugins.set(plugin, (plugins.get(plugin) ?? 0) + 1);
    }
    const named = [...plugins].sort(([a], [b]) => a.localeCompare(b))
      .map(([plugin, n]) => `${plugin} (${n})`).join(", ");
    lines.push(`  skipped:        ${idle.length} that do not apply to this VM: ${named}`);
  }
  lines.push(`  operations:     ${s.operations}${s.readOnly ? ` (+${s.readOnly} read-only)` : ""}`);
  // What the run allocates now (downloads, copies, files, qcow2 metadata); disks grow later.
  lines.push(`  disk usage:     ${formatBytes(s.bytes)} (estimated)`);
  if (s.virtualBytes) {
    lines.push(`  virtual disks:  ${formatBytes(s.virtualBytes)} (allocated as the guest writes)`);
  }
  lines.push(`  time:           ${formatSeconds(s.seconds)} (estimated)`);
  lines.push(`  conflicts:      ${s.conflicts.length}`);
  for (const c of s.conflicts) lines.push(`    - ${c}`);
  if (s.irreversible) lines.push(`  irreversible:   ${s.irreversible}`);
  return lines.join("\n");
}
