/**
 * `gini version`: the versions of Gini, its kernel API, the worker protocol and Deno.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import { KERNEL_API_VERSION, PROTOCOL_VERSION } from "../kernel/versions.ts";
import type { Cli } from "./_env.ts";

/** Gini's version. */
export const VERSION = denoJson.version;

/** What `gini version` prints. */
export function versions() {
  return {
    gini: VERSION,
    kernelApi: KERNEL_API_VERSION,
    protocol: PROTOCOL_VERSION,
    deno: Deno.version.deno,
  };
}

/** Its line of text. */
export function versionLine(data: ReturnType<typeof versions>): string {
  return `gini ${data.gini} (kernel API ${data.kernelApi}, protocol ${data.protocol}, deno ${data.deno})`;
}

/**
 * `gini version` or `gini version --json` (either order) exactly: answered before the kernel
 * is loaded (the command needs none of it). Gives whether it answered.
 */
export function quickVersion(args: string[]): boolean {
  const json = args.includes("--json");
  const rest = args.filter((a) => a !== "--json");
  if (rest.length !== 1 || rest[0] !== "version" || args.length - rest.length > 1) return false;
  const data = versions();
  const text = json ? JSON.stringify(data, null, 2) : versionLine(data);
  Deno.stdout.writeSync(new TextEncoder().encode(`${text}\n`));
  return true;
}

/** Registers `gini version`. */
export function registerVersion(cli: Cli): void {
  cli.program.command("version")
    .description("print versions of Gini, its kernel API and Deno")
    .action(cli.action(({ ui }) => {
      const data = versions();
      ui.result(data, () => versionLine(data));
    }));
}
