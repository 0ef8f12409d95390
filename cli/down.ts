/**
 * `gini down NAME`: powers a VM off (ACPI), then stops it after a timeout, through the stages
 * that serve "down".
 *
 * @module
 */
import { UsageError } from "../kernel/mod.ts";
import { type Cli, plugins } from "./_env.ts";
import { runVerb } from "./_pipeline.ts";
import { completeWith } from "./completions.ts";

/** Registers `gini down`. */
export function registerDown(cli: Cli): void {
  const command = cli.program.command("down")
    .description("power a VM off over QMP (ACPI), then stop it after a timeout")
    .argument("<name>", "the VM's name")
    .option("--timeout <seconds>", "how long to wait for the guest to power off", "60")
    .action(cli.action(async (c, name: string, options: { timeout: string }) => {
      const seconds = Number(options.timeout);
      if (!Number.isFinite(seconds) || seconds <= 0) {
        throw new UsageError(`Cannot use --timeout "${options.timeout}": expected seconds`, {
          location: { flag: "--timeout" },
          hint: "For example: --timeout 120",
        });
      }
      const outcome = await runVerb(c, await plugins(c), {
        verb: "down",
        dryRun: c.flags.dryRun ?? false,
        seeds: { "session.target_vm": { name, timeoutMs: seconds * 1000 } },
        command: `down ${name}`,
        args: { name },
      });
      // Stopping is reported by what happened to the VM, not by a plan.
      c.ui.result(
        outcome.output?.data ?? outcome.report,
        () => outcome.output?.text ?? `VM "${name}": done`,
      );
    }));
  completeWith(command, 0, "vms");
}
