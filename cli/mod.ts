/**
 * Gini's command line. A plain line of a plugin's command (`gini status web --json`) is parsed
 * from the plugin's manifest alone (`fast.ts`); everything else, and every line that parser is
 * unsure of, goes through commander (`_commander.ts`), which also gives help, completions and
 * the errors. Neither is loaded until the line needs it.
 *
 * @example
 * ```ts
 * import { main } from "./cli/mod.ts";
 *
 * const code = await main(["plugins", "list", "--json"]);
 * ```
 *
 * @module
 */
import type { UiSink } from "../kernel/ui.ts";

export { VERSION } from "./version.ts";

/** Options of {@linkcode main}: where output goes, the environment and the working folder. */
export interface MainOptions {
  sink?: UiSink;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/** Runs the CLI with `argv`; returns the exit code. */
export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  const env = options.env ?? Deno.env.toObject();
  const cwd = options.cwd ?? Deno.cwd();
  // The worker the command will need starts first, and loads while the kernel does.
  const { prestartFor } = await import("./_line.ts");
  const { discardPrestarted } = await import("../kernel/plugins/host.ts");
  prestartFor(argv, env, cwd);
  try {
    const { fastMain } = await import("./fast.ts");
    const code = await fastMain(argv, options, env, cwd);
    if (code !== undefined) return code;
    const { commanderMain } = await import("./_commander.ts");
    return await commanderMain(argv, { ...options, env, cwd });
  } finally {
    discardPrestarted();
  }
}
