/**
 * How env-check presents `gini check`: the PASS/WARN/FAIL report (or, with `--iommu`, the IOMMU
 * groups), the report as `--json` data, and exit code 1 when a check fails.
 *
 * @module
 */
import { type CommandDefinition, contextValue } from "../../workers/sdk.ts";
import { ENVIRONMENT_DATA } from "./contracts.ts";
import { renderChecks, renderIommu } from "./render.ts";

/** `gini check [--iommu]`. */
export const checkCommand: CommandDefinition = {
  render(view) {
    const report = contextValue(view, ENVIRONMENT_DATA)!;
    const exitCode = report.checks.some((c) => c.status === "FAIL") ? 1 : 0;
    return view.flags.iommu
      ? { text: renderIommu(report, view.paint), data: report.iommu, exitCode }
      : { text: renderChecks(report, view.paint), data: report, exitCode };
  },
};
