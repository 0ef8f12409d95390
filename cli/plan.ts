/**
 * `gini plan FILE`: everything `gini up` would do for a VM file, changing nothing.
 *
 * @module
 */
import type { Cli } from "./_env.ts";
import { deployVm } from "./_pipeline.ts";
import { completeWith } from "./completions.ts";

/** Registers `gini plan`. */
export function registerPlan(cli: Cli): void {
  const command = cli.program.command("plan")
    .description("show everything `gini up` would do for a VM file, changing nothing")
    .argument("<vm.toml>", "the VM file")
    .action(cli.action((c, file: string) => deployVm(c, file, true)));
  completeWith(command, 0, "files", ".toml");
}
