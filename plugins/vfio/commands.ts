/**
 * How vfio presents `gini vfio plan|apply|status`: the device set, the kernel's plan of the file
 * edits and rebuilds, and the next step; `--json` prints the plan report with the VFIO plan as
 * `vfio`.
 *
 * @module
 */
import {
  type CommandDefinition,
  type CommandView,
  contextValue,
  type Json,
} from "../../workers/sdk.ts";
import { VFIO_PLAN, VFIO_STATUS, type VfioPlan, type VfioStatus } from "./contracts.ts";

/** The text of `gini vfio plan` (`dryRun`) and of `gini vfio apply`; `report` is the kernel's plan. */
export function renderVfio(plan: VfioPlan, report: string, dryRun: boolean): string {
  const lines = [
    "Devices (whole IOMMU groups):",
    ...plan.devices.map((d) =>
      `  ${d.address}  [${d.vendor}:${d.device}]  ${d.name}  (group ${d.iommuGroup ?? "?"}, ${
        d.driver ?? "no driver"
      }${d.reason === "listed" ? "" : `, ${d.reason}`})`
    ),
    `vfio-pci.ids: ${plan.ids.join(",")}`,
    `Kernel arguments: ${plan.kernelArgs.join(" ")}`,
    `Initramfs: ${plan.initramfs}; boot loader: ${plan.bootloader}`,
    "",
  ];
  if (plan.files.length === 0 && plan.bindNow.length === 0) {
    lines.push("Nothing to change: the host is already configured for these devices");
    return lines.join("\n");
  }
  lines.push(report);
  if (dryRun) lines.push("", "Apply it with: gini vfio apply (the same flags)");
  else lines.push("", "Reboot to load vfio-pci at boot. Undo it with: gini vfio undo");
  return lines.join("\n");
}

/** The text of `gini vfio status`. */
export function renderStatus(s: VfioStatus): string {
  return [
    `Bound to vfio-pci now: ${
      s.bound.length ? s.bound.map((b) => `${b.address} ${b.name}`).join(", ") : "none"
    }`,
    `Configured: ids ${s.configured.ids.join(",") || "none"}; kernel arguments ${
      s.configured.kernelArgs.join(" ") || "none"
    } (${s.configured.initramfs ?? "?"}, ${s.configured.bootloader ?? "?"})`,
    `Running kernel arguments: ${s.running.kernelArgs.join(" ") || "none"}`,
    s.rebootPending
      ? "A reboot is pending: the running kernel lacks the configuration"
      : "No reboot pending",
    ...s.notes.map((n) => `note: ${n}`),
  ].join("\n");
}

/** plan and apply: the text above, and the plan report with the VFIO plan as `vfio`. */
function renderPlan(view: CommandView) {
  const plan = contextValue(view, VFIO_PLAN)!;
  return {
    text: renderVfio(plan, view.plan, view.dryRun),
    data: { ...(view.report as Record<string, Json>), vfio: plan },
  };
}

/** vfio's output for each of its commands. */
export const commands: Record<string, CommandDefinition> = {
  "vfio plan": { render: renderPlan },
  "vfio apply": { render: renderPlan },
  "vfio status": {
    render(view) {
      const status = contextValue(view, VFIO_STATUS)!;
      return { text: renderStatus(status), data: status };
    },
  },
};
