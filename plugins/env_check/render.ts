/**
 * Text for `gini check` and `gini check --iommu`.
 *
 * @module
 */
import type { EnvironmentData } from "./contracts.ts";

type Paint = (colour: "ok" | "warn" | "error" | "debug" | "bold", text: string) => string;

const GIB = 1024 ** 3;

function short(address: string): string {
  return address.startsWith("0000:") ? address.slice(5) : address;
}

/** The virt-host-validate style report. */
export function renderChecks(report: EnvironmentData, paint: Paint = (_, t) => t): string {
  const lines = [
    `Host: ${report.os.prettyName}, kernel ${report.os.kernel}`,
    `CPU:  ${report.cpu.model} (${report.cpu.vendor}, ${report.cpu.sockets} socket${
      report.cpu.sockets === 1 ? "" : "s"
    }, ${report.cpu.cores} cores, ${report.cpu.threads} threads)`,
    `RAM:  ${(report.memory.totalBytes / GIB).toFixed(1)} GiB, ${
      (report.memory.availableBytes / GIB).toFixed(1)
    } GiB available`,
    `Accelerator: ${report.accel}${
      report.hostRoot === "/" ? "" : `   (host root: ${report.hostRoot})`
    }`,
    "",
  ];
  const colour = { PASS: "ok", WARN: "warn", FAIL: "error" } as const;
  for (const check of report.checks) {
    lines.push(
      `${paint(colour[check.status], check.status.padEnd(4))}  ${check.title}: ${check.detail}`,
    );
    if (check.hint) lines.push(`      ${paint("debug", `hint: ${check.hint}`)}`);
  }
  const count = (s: string) => report.checks.filter((c) => c.status === s).length;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  lines.push(
    "",
    `${count("PASS")} passed, ${plural(count("WARN"), "warning")}, ${count("FAIL")} failed`,
  );
  if (report.notChecked.length) {
    lines.push(`Not checked on a host root: ${report.notChecked.join(", ")}`);
  }
  for (const warning of report.warnings) lines.push(paint("warn", `warning: ${warning}`));
  return lines.join("\n");
}

/** IOMMU groups as ls-iommu lists them, with groups that mix a GPU and unrelated devices flagged. */
export function renderIommu(report: EnvironmentData, paint: Paint = (_, t) => t): string {
  if (!report.iommu.enabled) {
    return "No IOMMU groups: the IOMMU is off in firmware or in the kernel (see gini check)";
  }
  const byAddress = new Map(report.pci.map((d) => [d.address, d]));
  const lines: string[] = [];
  for (const group of report.iommu.groups) {
    const gpu = report.gpus.find((g) => g.iommuGroup === group.id);
    const unrelated = gpu
      ? group.devices.filter((d) =>
        d.address.slice(0, -2) !== gpu.address.slice(0, -2) && !d.class.startsWith("06")
      )
      : [];
    lines.push(
      `IOMMU group ${group.id}:${
        unrelated.length
          ? paint("warn", "  ! a GPU shares this group with unrelated devices (no ACS isolation)")
          : ""
      }`,
    );
    for (const member of group.devices) {
      const d = byAddress.get(member.address);
      const name = [d?.vendorName, d?.deviceName].filter(Boolean).join(" ") || "unknown device";
      const rev = d?.revision && d.revision !== "00" ? ` (rev ${d.revision})` : "";
      lines.push(
        `  ${short(member.address)} ${
          d?.className ?? "Class"
        } [${member.class}]: ${name} [${member.vendor}:${member.device}]${rev}${
          member.driver ? `  driver: ${member.driver}` : ""
        }`,
      );
    }
  }
  return lines.join("\n");
}
