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
import { importLater } from "../kernel/lazy.ts";

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
  const { prestartFor } = await importLater<typeof import("./_line.ts")>(
    "./_line.ts",
    import.meta.url,
  );
  const { discardPrestarted } = await importLater<typeof import("../kernel/plugins/host.ts")>(
    "../kernel/plugins/host.ts",
    import.meta.url,
  );
  prestartFor(argv, env, cwd);
  try {
    const { fastMain } = await importLater<typeof import("./fast.ts")>(
      "./fast.ts",
      import.meta.url,
    );
    const code = await fastMain(argv, options, env, cwd);
    if (code !== undefined) return code;
    const { commanderMain } = await importLater<typeof import("./_commander.ts")>(
      "./_commander.ts",
      import.meta.url,
    );
    return await commanderMain(argv, { ...options, env, cwd });
  } finally {
    discardPrestarted();
  }
}
