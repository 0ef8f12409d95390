/**
 * `gini up FILE`: creates and starts the VM a file describes, through the stages that serve
 * "up" (or "create" with `--no-start`).
 *
 * @module
 */
import type { Cli } from "./_env.ts";
import { deployVm } from "./_pipeline.ts";
import { completeWith } from "./completions.ts";

/** Registers `gini up`. */
export function registerUp(cli: Cli): void {
  const command = cli.program.command("up")
    .description("create and start the VM a file describes (--dry-run: the same as plan)")
    .argument("<vm.toml>", "the VM file")
    .option("--no-start", "create the disks and files, but do not start the VM")
    .action(
      cli.action((c, file: string, options: { start: boolean }) =>
        deployVm(c, file, c.flags.dryRun ?? false, options.start)
      ),
    );
  completeWith(command, 0, "files", ".toml");
}
