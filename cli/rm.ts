/**
 * `gini rm NAME`: removes what `gini up` created for a VM, after showing the plan and asking.
 *
 * @module
 */
import { approvedPlan, PlanChangedError, renderReport } from "../kernel/mod.ts";
import { type Cli, confirmed, plugins } from "./_env.ts";
import { runVerb, type VerbRun } from "./_pipeline.ts";
import { completeWith } from "./completions.ts";

/** Registers `gini rm`. */
export function registerRm(cli: Cli): void {
  const command = cli.program.command("rm")
    .description("remove what `gini up` created for a VM (asks first; --yes skips)")
    .argument("<name>", "the VM's name")
    .action(cli.action(async (c, name: string) => {
      const loaded = await plugins(c);
      const run: VerbRun = {
        verb: "rm",
        dryRun: true,
        seeds: { "session.target_vm": { name } },
        command: `rm ${name}`,
        args: { name },
      };
      const plan = await runVerb(c, loaded, run);
      if (c.flags.dryRun) {
        c.ui.result(plan.report, () => renderReport(plan.report));
        return;
      }
      const approved = approvedPlan(plan.report);
      if (
        !confirmed(
          c,
          `Remove VM "${name}" and its disks? (plan ${approved.digest.slice(7, 19)})`,
          `Cannot remove VM "${name}" without confirmation`,
          renderReport(plan.report),
        )
      ) return 1;
      try {
        const { report, output } = await runVerb(c, loaded, { ...run, dryRun: false, approved });
        c.ui.result(report, () => output?.text ?? `VM "${name}" removed`);
      } catch (error) {
        if (error instanceof PlanChangedError) {
          const again = await runVerb(c, loaded, run).catch(() => undefined);
          if (again) c.ui.info(`The plan now:\n${renderReport(again.report)}`);
        }
        throw error;
      }
    }));
  completeWith(command, 0, "vms");
}
